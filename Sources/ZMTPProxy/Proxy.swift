import Synchronization
import ZMTP
import ZMTPEngine

/// Forwards messages between two sockets in both directions (`zmq_proxy_steerable`): what the
/// frontend receives goes out on the backend, and what the backend receives goes out on the
/// frontend. For an XSUB frontend and an XPUB backend (a broker, Zeek's central one) that is data
/// from publishers to subscribers and subscriptions from subscribers to publishers.
///
/// - Messages stay whole (every frame of a multipart message is forwarded together) and are not
///   copied: the frames received are the frames sent.
/// - Forwarding runs where the messages arrive: on the I/O thread that queued them (through
///   ``Socket/observeChanges(_:)``), not on a proxy thread they would be handed to and back from.
///   The thread that called ``run()`` only takes over when one I/O thread has forwarded a long
///   stream and should get back to its connections.
/// - Back-pressure: when the receiving side cannot take a message (a no-drop XPUB with a full
///   subscriber, a PUSH with no room), the proxy holds it and stops reading from that direction's
///   source until there is room, as libzmq's proxy blocks in `zmq_msg_send`. The other direction
///   keeps flowing.
/// - A capture socket, if given, gets a copy of every message forwarded in either direction; it
///   never slows the proxy down (a full capture socket misses messages). A `tap` closure sees the
///   same messages in process (for logging what passes, as `zmtp proxy --debug subscriptions` does).
/// - Steering from any thread: ``pause()``, ``resume()``, ``terminate()`` and ``statistics``
///   (PAUSE, RESUME, TERMINATE and STATISTICS of libzmq's control socket).
///
/// The proxy does not own the sockets: ``run()`` returns after ``terminate()`` or when either
/// socket is closed, and closing them stays the caller's job.
public final class Proxy: Sendable {
    public let frontend: Socket
    public let backend: Socket
    public let capture: Socket?
    private let tap: (@Sendable (Message, ProxyDirection) -> Void)?

    private let counters = Counters()
    /// What only the thread forwarding right now touches; holding this lock is what makes a thread
    /// the forwarder (others only raise `pending` and leave).
    private let forwarding = Mutex(Forwarding())
    /// Set by every change notification; the forwarder clears it before each round, so a change made
    /// while it works is never missed.
    private let pending = Atomic<Bool>(false)
    /// Steering and the outcome ``run()`` waits for, with the condition it waits on.
    private let control = ConditionLockHandle()
    nonisolated(unsafe) private var state = Control()

    private struct Forwarding {
        var toBackend: Message?
        var toFrontend: Message?
    }

    private struct Control {
        var paused = false
        var terminated = false
        var running = false
        /// The forwarder ran out of budget on an I/O thread: ``run()``'s thread is to continue.
        var handOff = false
        var handOffs = 0
        /// Why forwarding stopped: a socket closed (nil error) or failed.
        var finished = false
        var error: (any Error)?
    }

    /// Messages forwarded per direction in one round (so one busy direction cannot starve the other).
    static let batch = 256
    /// Rounds an I/O thread forwards before it hands the rest to ``run()``'s thread, so that one
    /// endless stream cannot keep it from its other connections.
    let ioThreadRounds: Int

    /// - Parameters:
    ///   - frontend: the socket whose messages go out on `backend` (an XSUB facing publishers).
    ///   - backend: the socket whose messages go out on `frontend` (an XPUB facing subscribers).
    ///   - capture: gets a copy of every forwarded message, when it has room.
    ///   - tap: called with every forwarded message and its direction, on the forwarding thread
    ///     (often an I/O thread): keep it short and never block in it.
    public convenience init(
        frontend: Socket, backend: Socket, capture: Socket? = nil,
        tap: (@Sendable (Message, ProxyDirection) -> Void)? = nil
    ) {
        self.init(frontend: frontend, backend: backend, capture: capture, tap: tap, ioThreadRounds: 16)
    }

    init(
        frontend: Socket, backend: Socket, capture: Socket?, tap: (@Sendable (Message, ProxyDirection) -> Void)? = nil,
        ioThreadRounds: Int
    ) {
        self.frontend = frontend
        self.backend = backend
        self.capture = capture
        self.tap = tap
        self.ioThreadRounds = max(1, ioThreadRounds)
    }

    /// How many times an I/O thread handed forwarding over to ``run()``'s thread (for tests).
    var handOffs: Int { control.withLock { state.handOffs } }

    // MARK: - Steering

    /// Stops forwarding until ``resume()`` (PAUSE). Messages wait in the sockets' queues meanwhile. A
    /// forwarding round already under way finishes first (at most ``batch`` messages per direction).
    public func pause() {
        control.withLock { state.paused = true }
    }

    /// Forwards again after ``pause()`` (RESUME).
    public func resume() {
        let running = control.withLock { () -> Bool in
            state.paused = false
            return state.running
        }
        if running { changed() }  // before run(), forwarding starts there
    }

    /// Makes ``run()`` return (TERMINATE). A message held back for want of room is dropped.
    public func terminate() {
        control.withLock { state.terminated = true }
        control.broadcast()
    }

    /// What has been forwarded so far (STATISTICS).
    public var statistics: ProxyStatistics { counters.snapshot() }

    // MARK: - Forwarding

    /// Forwards until ``terminate()`` is called or either socket is closed. Call it once; the calling
    /// thread mostly waits (see the type's notes on where forwarding runs).
    /// - Throws: ``SocketError`` other than ``SocketError/closed`` from either socket.
    public func run() throws {
        let begun = control.withLock { () -> Bool in
            defer { state.running = true }
            return !state.running && !state.terminated
        }
        guard begun else { return }
        let observations = [frontend, backend].map { socket in
            socket.observeChanges { [weak self] in self?.changed() }
        }
        defer {
            for observation in observations { observation.cancel() }
            forwarding.withLock { $0 = Forwarding() }  // drop a held message
        }
        changed()  // what arrived before the observers were in place
        while true {
            let (handOff, outcome) = control.withLock { () -> (Bool, Result<Bool, any Error>?) in
                while !state.terminated && !state.finished && !state.handOff { _ = control.wait(until: nil) }
                if state.terminated { return (false, .success(true)) }
                if state.finished { return (false, state.error.map { .failure($0) } ?? .success(true)) }
                state.handOff = false
                return (true, nil)
            }
            if let outcome { _ = try outcome.get(); return }
            if handOff { forward(rounds: nil) }
        }
    }

    /// A socket's queues changed: forward on this thread, unless another thread is at it already
    /// (that one sees `pending` and goes round again).
    private func changed() {
        pending.store(true, ordering: .sequentiallyConsistent)
        forward(rounds: ioThreadRounds)
    }

    /// Forwards while changes keep coming, as the one forwarder; `rounds` bounds the work on an I/O
    /// thread (nil: no bound, for ``run()``'s thread).
    private func forward(rounds: Int?) {
        while pending.load(ordering: .sequentiallyConsistent) {
            let ran: Void? = forwarding.withLockIfAvailable { forwarding -> Void in
                var round = 0
                while pending.exchange(false, ordering: .sequentiallyConsistent) {
                    // A closed socket ends the proxy even when nothing would make it throw (paused, or
                    // a held message waiting for room that never comes).
                    if frontend.isClosed || backend.isClosed {
                        control.withLock { state.finished = true }
                        control.broadcast()
                        return
                    }
                    let (paused, stopped) = control.withLock { (state.paused, state.terminated || state.finished) }
                    if paused || stopped { return }
                    if let rounds, round == rounds {
                        pending.store(true, ordering: .sequentiallyConsistent)
                        control.withLock {
                            state.handOff = true
                            state.handOffs += 1
                        }
                        control.broadcast()
                        return
                    }
                    round += 1
                    do {
                        // A full batch in either direction means more may be waiting: go round again.
                        let full = try move(from: frontend, to: backend, held: &forwarding.toBackend, frontToBack: true)
                        let fullBack = try move(from: backend, to: frontend, held: &forwarding.toFrontend, frontToBack: false)
                        if full || fullBack { pending.store(true, ordering: .sequentiallyConsistent) }
                    } catch {
                        control.withLock {
                            state.finished = true
                            if case SocketError.closed = error {} else { state.error = error }
                        }
                        control.broadcast()
                        return
                    }
                }
            }
            if ran == nil { return }  // another thread forwards; it will see `pending`
            if rounds != nil && control.withLock({ state.handOff }) { return }
        }
    }

    /// Moves up to ``batch`` messages from `source` to `destination`, starting with the one held
    /// back last time; keeps the first that does not fit. Returns whether it stopped at the batch
    /// limit. Counts locally and publishes the counts once per call (atomic adds per message would
    /// cost more than the rest of the bookkeeping).
    private func move(from source: Socket, to destination: Socket, held: inout Message?, frontToBack: Bool) throws -> Bool {
        var received = Tally(), sent = Tally()
        defer {
            counters.add(received, frontToBack ? .frontendReceived : .backendReceived)
            counters.add(sent, frontToBack ? .backendSent : .frontendSent)
        }
        if let message = held {
            guard try destination.trySend(message) else { return false }
            held = nil
            forwarded(message, frontToBack, &sent)
        }
        for _ in 0..<Self.batch {
            guard let message = try source.tryReceive() else { return false }
            received.count(message)
            guard try destination.trySend(message) else {
                held = message
                return false
            }
            forwarded(message, frontToBack, &sent)
        }
        return true
    }

    private func forwarded(_ message: Message, _ frontToBack: Bool, _ tally: inout Tally) {
        tally.count(message)
        if let capture { _ = try? capture.trySend(message) }
        tap?(message, frontToBack ? .frontendToBackend : .backendToFrontend)
    }
}

/// Which way a message crossed a ``Proxy``.
public enum ProxyDirection: Sendable, Hashable {
    /// Received on the frontend, sent on the backend (data, for an XSUB/XPUB broker).
    case frontendToBackend
    /// Received on the backend, sent on the frontend (subscriptions, for an XSUB/XPUB broker).
    case backendToFrontend
}

/// Frames and bytes counted by one forwarding pass.
struct Tally {
    var frames: UInt64 = 0
    var bytes: UInt64 = 0
    mutating func count(_ message: Message) {
        frames &+= UInt64(message.frames.count)
        bytes &+= UInt64(message.byteCount)
    }
}

/// The counters of a ``Proxy`` (libzmq's STATISTICS reply, in its order). A "message" is a
/// **frame**, as libzmq 4.3.5 counts (a 4-frame Zeek event counts 4), so that dashboards fed by
/// Zeek's own broker read the same numbers from ours; bytes are the sum of the frames' sizes.
public struct ProxyStatistics: Sendable, Hashable {
    public var frontendMessagesReceived: UInt64 = 0
    public var frontendBytesReceived: UInt64 = 0
    public var frontendMessagesSent: UInt64 = 0
    public var frontendBytesSent: UInt64 = 0
    public var backendMessagesReceived: UInt64 = 0
    public var backendBytesReceived: UInt64 = 0
    public var backendMessagesSent: UInt64 = 0
    public var backendBytesSent: UInt64 = 0

    public init() {}
}

/// Atomic counters, written by the forwarding thread and read by anyone.
final class Counters: Sendable {
    enum Slot: Int { case frontendReceived, frontendSent, backendReceived, backendSent }
    /// One slot's frames and bytes.
    private final class Pair: Sendable {
        let frames = Atomic<UInt64>(0)
        let bytes = Atomic<UInt64>(0)
    }
    /// Indexed by ``Slot``.
    private let pairs = [Pair(), Pair(), Pair(), Pair()]

    func add(_ tally: Tally, _ slot: Slot) {
        guard tally.frames > 0 else { return }
        let pair = pairs[slot.rawValue]
        pair.frames.add(tally.frames, ordering: .relaxed)
        pair.bytes.add(tally.bytes, ordering: .relaxed)
    }

    func snapshot() -> ProxyStatistics {
        func load(_ slot: Slot) -> (frames: UInt64, bytes: UInt64) {
            (pairs[slot.rawValue].frames.load(ordering: .relaxed), pairs[slot.rawValue].bytes.load(ordering: .relaxed))
        }
        var statistics = ProxyStatistics()
        (statistics.frontendMessagesReceived, statistics.frontendBytesReceived) = load(.frontendReceived)
        (statistics.frontendMessagesSent, statistics.frontendBytesSent) = load(.frontendSent)
        (statistics.backendMessagesReceived, statistics.backendBytesReceived) = load(.backendReceived)
        (statistics.backendMessagesSent, statistics.backendBytesSent) = load(.backendSent)
        return statistics
    }
}
