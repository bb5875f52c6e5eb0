import ZMTPEngine

/// A socket's monitor: the ``SocketEvent``s it selected, in order (libzmq's `zmq_socket_monitor`).
///
/// Read it either way:
/// - `for await event in monitor { … }` in a task;
/// - ``next(timeout:)`` or ``tryNext()`` from a thread, without tasks (so a thread pool busy with
///   blocking work cannot starve it).
///
/// The sequence ends after ``SocketEvent/Kind/monitorStopped`` when the socket closes, or at once
/// after ``cancel()``. At most ``bufferLimit`` events wait for a slow reader; later ones are dropped
/// (and counted in ``droppedEvents``) until it catches up, as libzmq drops events at its monitor
/// socket's high-water mark. The socket holds its monitors weakly: releasing the last reference stops
/// the monitoring too.
public final class SocketMonitor: AsyncSequence, @unchecked Sendable {
    // @unchecked: every mutable field is guarded by `lock`.
    public typealias Element = SocketEvent

    /// The events this monitor reports.
    public let selection: SocketEvent.Kind
    /// How many unread events it keeps.
    public let bufferLimit: Int
    private let lock = ConditionLockHandle()
    private var queue = RingQueue<SocketEvent>()
    private var finished = false
    private var dropped = 0
    private var waiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
    private var nextWaiter: UInt64 = 0
    private weak var socket: Socket?

    init(socket: Socket?, selection: SocketEvent.Kind, bufferLimit: Int) {
        self.socket = socket
        self.selection = selection
        self.bufferLimit = Swift.max(1, bufferLimit)
    }

    /// Events dropped because the reader fell more than ``bufferLimit`` behind.
    public var droppedEvents: Int { lock.withLock { dropped } }

    /// Takes the next event, waiting up to `timeout` (nil: until one arrives or the monitor ends).
    /// Returns nil at the timeout or when the monitor has ended and every event was read.
    public func next(timeout: Duration?) -> SocketEvent? {
        let deadline = timeout.map { EventLoop.now() + $0 }
        return lock.withLock {
            while true {
                if let event = take() { return event }
                if finished { return nil }
                if let deadline, deadline <= EventLoop.now() { return nil }
                _ = lock.wait(until: deadline?.nanoseconds)
            }
        }
    }

    /// Takes the next event if one is waiting.
    public func tryNext() -> SocketEvent? { lock.withLock { take() } }

    /// Stops monitoring: nothing more is recorded, and the sequence ends after what was already.
    public func cancel() {
        socket?.removeMonitor(self)
        finish()
    }

    // MARK: - Feeding (the socket)

    /// Records an event (any thread).
    func record(_ event: SocketEvent) {
        guard selection.contains(event.kind) else { return }
        let wake = lock.withLock { () -> [CheckedContinuation<Void, Never>] in
            guard !finished else { return [] }
            if queue.count >= bufferLimit {
                dropped += 1
                return []
            }
            queue.push(event)
            return takeWaiters()
        }
        for continuation in wake { continuation.resume() }
    }

    /// Ends the sequence once the queued events are read.
    func finish() {
        let wake = lock.withLock { () -> [CheckedContinuation<Void, Never>] in
            finished = true
            return takeWaiters()
        }
        for continuation in wake { continuation.resume() }
    }

    /// (lock held)
    private func take() -> SocketEvent? { queue.pop() }

    /// Wakes threads and tasks waiting for an event (lock held; tasks are resumed by the caller).
    private func takeWaiters() -> [CheckedContinuation<Void, Never>] {
        lock.broadcast()
        defer { waiters.removeAll() }
        return Array(waiters.values)
    }

    // MARK: - AsyncSequence

    public func makeAsyncIterator() -> Iterator { Iterator(monitor: self) }

    /// Iterates a ``SocketMonitor``; `next()` returns nil when the monitor has ended, or when the
    /// iterating task is cancelled.
    public struct Iterator: AsyncIteratorProtocol {
        let monitor: SocketMonitor

        public mutating func next() async -> SocketEvent? {
            while !Task.isCancelled {
                if let event = monitor.tryNext() { return event }
                guard await monitor.waitForEvent() else { return nil }
            }
            return nil
        }
    }

    /// Suspends until an event may be waiting; false when the monitor has ended with nothing queued.
    private func waitForEvent() async -> Bool {
        let id = lock.withLock { () -> UInt64 in
            nextWaiter &+= 1
            return nextWaiter
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let ready = lock.withLock { () -> Bool in
                    if !queue.isEmpty || finished || Task.isCancelled { return true }
                    waiters[id] = continuation
                    return false
                }
                if ready { continuation.resume() }
            }
            return lock.withLock { !queue.isEmpty || !finished }
        } onCancel: {
            let continuation = lock.withLock { waiters.removeValue(forKey: id) }
            continuation?.resume()
        }
    }
}
