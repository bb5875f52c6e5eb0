import ZMTP

/// Reads a socket's monitor, for tests: waits for events by kind with a deadline, from a thread (a
/// test blocked in synchronous socket calls must not depend on a free task executor).
public final class EventRecorder: @unchecked Sendable {
    // @unchecked: `seen` is only touched by the test thread that owns the recorder.
    private let monitor: SocketMonitor
    private var seen: [SocketEvent] = []

    public init(_ socket: Socket, _ kinds: SocketEvent.Kind = .all) {
        monitor = socket.monitor(kinds)
    }

    /// Every event so far.
    public var all: [SocketEvent] {
        while let event = monitor.tryNext() { seen.append(event) }
        return seen
    }

    public var kinds: [SocketEvent.Kind] { all.map(\.kind) }

    /// The first event of `kind`, waiting up to `timeout` for it.
    public func first(_ kind: SocketEvent.Kind, timeout: Duration = .seconds(5)) -> SocketEvent? {
        let deadline = ContinuousClock.now + timeout
        while true {
            if let event = all.first(where: { $0.kind == kind }) { return event }
            let left = deadline - ContinuousClock.now
            guard left > .zero, let event = monitor.next(timeout: left) else { return nil }
            seen.append(event)
        }
    }

    /// Reads until the monitor has ended (after MONITOR_STOPPED), up to `timeout`.
    public func finished(timeout: Duration = .seconds(5)) {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline, let event = monitor.next(timeout: deadline - ContinuousClock.now) {
            seen.append(event)
        }
    }
}
