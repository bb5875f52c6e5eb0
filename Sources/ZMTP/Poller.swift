import Synchronization
import ZMTPEngine

/// What a socket can do without blocking (libzmq's `ZMQ_POLLIN` / `ZMQ_POLLOUT`).
public struct PollEvents: OptionSet, Hashable, Sendable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// A message can be received now.
    public static let readable = PollEvents(rawValue: 1)
    /// A message can be sent now without blocking.
    public static let writable = PollEvents(rawValue: 2)
}

/// Waits on several sockets at once (libzmq's `zmq_poller`).
///
/// ```swift
/// let poller = Poller()
/// poller.add(logs, events: .readable)
/// poller.add(control, events: .readable)
/// for (socket, _) in try poller.poll(timeout: .seconds(1)) {
///     let message = try socket.tryReceive()
/// }
/// ```
///
/// Readiness is level-triggered and advisory: another thread may take the message first, so act on
/// a ready socket with ``Socket/tryReceive()`` / ``Socket/trySend(_:)``.
public final class Poller: Sendable {
    private let signal = PollerSignal()
    /// Set by ``wake()``: the next (or current) ``poll(timeout:)`` returns at once.
    private let woken = Atomic<Bool>(false)
    private let entries = LockedBox<[(socket: Socket, events: PollEvents)]>([])

    public init() {}

    deinit {
        for entry in entries.withLock({ $0 }) { entry.socket.removeObserver(signal) }
    }

    /// Watches `socket` for `events` (replacing what it was watched for before).
    public func add(_ socket: Socket, events: PollEvents = .readable) {
        entries.withLock { list in
            list.removeAll { $0.socket === socket }
            list.append((socket, events))
        }
        socket.addObserver(signal)
    }

    /// Stops watching `socket`.
    public func remove(_ socket: Socket) {
        entries.withLock { list in list.removeAll { $0.socket === socket } }
        socket.removeObserver(signal)
    }

    /// Makes a ``poll(timeout:)`` in progress (or the next one) return at once with an empty result:
    /// for another thread to get a polling loop's attention (a proxy's TERMINATE).
    public func wake() {
        woken.store(true, ordering: .releasing)
        signal.signal()
    }

    /// Waits until at least one watched socket is ready for what it is watched for, or `timeout`
    /// passes (nil waits forever, `.zero` only checks). Returns the ready sockets with their ready
    /// events, in the order they were added; empty on timeout.
    public func poll(timeout: Duration?) -> [(socket: Socket, events: PollEvents)] {
        let deadline = timeout.map { EventLoop.now() + $0 }
        while true {
            let seen = signal.current
            if woken.exchange(false, ordering: .acquiringAndReleasing) { return [] }
            let watched = entries.withLock { $0 }
            var ready: [(socket: Socket, events: PollEvents)] = []
            for entry in watched {
                let events = entry.socket.lock.withLock { entry.socket.readiness() }.intersection(entry.events)
                if !events.isEmpty { ready.append((entry.socket, events)) }
            }
            if !ready.isEmpty { return ready }
            if let deadline, deadline <= EventLoop.now() { return [] }
            signal.wait(changedFrom: seen, until: deadline)
        }
    }
}

/// A change counter that sockets bump and a poller waits on.
final class PollerSignal: ChangeObserver, @unchecked Sendable {
    // @unchecked: `count` is guarded by `lock`.
    private let lock = ConditionLockHandle()
    private var count: UInt64 = 0

    var current: UInt64 { lock.withLock { count } }

    func signal() {
        lock.withLock { count &+= 1 }
        lock.broadcast()
    }

    func socketChanged() { signal() }

    func wait(changedFrom seen: UInt64, until deadline: MonotonicInstant?) {
        lock.withLock {
            while count == seen {
                if let deadline, deadline <= EventLoop.now() { return }
                _ = lock.wait(until: deadline?.nanoseconds)
            }
        }
    }
}

/// A value behind a lock.
final class LockedBox<Value>: @unchecked Sendable {
    // @unchecked: `value` is only touched inside `withLock`.
    private let lock = ConditionLockHandle()
    private var value: Value
    init(_ value: Value) { self.value = value }
    func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R { try lock.withLock { try body(&value) } }
}
