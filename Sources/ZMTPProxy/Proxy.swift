import Synchronization
import ZMTP

/// Forwards messages between two sockets in both directions (`zmq_proxy_steerable`): what the
/// frontend receives goes out on the backend, and what the backend receives goes out on the
/// frontend. For an XSUB frontend and an XPUB backend (a broker, Zeek's central one) that is data
/// from publishers to subscribers and subscriptions from subscribers to publishers.
///
/// - Messages stay whole (every frame of a multipart message is forwarded together) and are not
///   copied: the frames received are the frames sent.
/// - Back-pressure: when the receiving side cannot take a message (a no-drop XPUB with a full
///   subscriber, a PUSH with no room), the proxy holds it and stops reading from that direction's
///   source until there is room, as libzmq's proxy blocks in `zmq_msg_send`. The other direction
///   keeps flowing.
/// - A capture socket, if given, gets a copy of every message forwarded in either direction; it
///   never slows the proxy down (a full capture socket misses messages).
/// - Steering from any thread: ``pause()``, ``resume()``, ``terminate()`` and ``statistics``
///   (PAUSE, RESUME, TERMINATE and STATISTICS of libzmq's control socket).
///
/// The proxy does not own the sockets: ``run()`` returns after ``terminate()`` or when either
/// socket is closed, and closing them stays the caller's job.
public final class Proxy: Sendable {
    public let frontend: Socket
    public let backend: Socket
    public let capture: Socket?

    private let poller = Poller()
    private let control = Mutex(Control())
    private let counters = Counters()

    private struct Control {
        var paused = false
        var terminated = false
    }

    /// Messages forwarded per direction before the proxy polls again (so one busy direction cannot
    /// starve the other, nor the control commands).
    static let batch = 256

    public init(frontend: Socket, backend: Socket, capture: Socket? = nil) {
        self.frontend = frontend
        self.backend = backend
        self.capture = capture
    }

    // MARK: - Steering

    /// Stops forwarding until ``resume()`` (PAUSE). Messages wait in the sockets' queues meanwhile.
    public func pause() {
        control.withLock { $0.paused = true }
        poller.wake()
    }

    /// Forwards again after ``pause()`` (RESUME).
    public func resume() {
        control.withLock { $0.paused = false }
        poller.wake()
    }

    /// Makes ``run()`` return (TERMINATE). A message held back for want of room is dropped.
    public func terminate() {
        control.withLock { $0.terminated = true }
        poller.wake()
    }

    /// What has been forwarded so far (STATISTICS).
    public var statistics: ProxyStatistics { counters.snapshot() }

    // MARK: - Forwarding

    /// Forwards until ``terminate()`` is called or either socket is closed. Call it once, from the
    /// thread that is to do the forwarding.
    /// - Throws: ``SocketError`` other than ``SocketError/closed`` from either socket.
    public func run() throws {
        var toBackend: Message?
        var toFrontend: Message?
        var watching: (front: PollEvents, back: PollEvents)?
        defer {
            poller.remove(frontend)
            poller.remove(backend)
        }
        do {
            while true {
                let (paused, terminated) = control.withLock { ($0.paused, $0.terminated) }
                if terminated { return }
                // Read from a side only while nothing read from it waits to be sent; watch the
                // other side for room while something does.
                var wanted: (front: PollEvents, back: PollEvents) = ([], [])
                if !paused {
                    if toBackend == nil { wanted.front.insert(.readable) } else { wanted.back.insert(.writable) }
                    if toFrontend == nil { wanted.back.insert(.readable) } else { wanted.front.insert(.writable) }
                }
                if watching.map({ $0.front != wanted.front || $0.back != wanted.back }) ?? true {
                    poller.add(frontend, events: wanted.front)
                    poller.add(backend, events: wanted.back)
                    watching = wanted
                }
                _ = poller.poll(timeout: nil)
                if paused || control.withLock({ $0.paused || $0.terminated }) { continue }
                try forward(from: frontend, to: backend, held: &toBackend, frontToBack: true)
                try forward(from: backend, to: frontend, held: &toFrontend, frontToBack: false)
            }
        } catch SocketError.closed {
            return
        }
    }

    /// Moves up to ``batch`` messages from `source` to `destination`, starting with the one held
    /// back last time; keeps the first that does not fit.
    private func forward(from source: Socket, to destination: Socket, held: inout Message?, frontToBack: Bool) throws {
        if let message = held {
            guard try destination.trySend(message) else { return }
            held = nil
            sent(message, frontToBack: frontToBack)
        }
        for _ in 0..<Self.batch {
            guard let message = try source.tryReceive() else { return }
            counters.count(message, frontToBack ? .frontendReceived : .backendReceived)
            guard try destination.trySend(message) else {
                held = message
                return
            }
            sent(message, frontToBack: frontToBack)
        }
    }

    private func sent(_ message: Message, frontToBack: Bool) {
        counters.count(message, frontToBack ? .backendSent : .frontendSent)
        if let capture { _ = try? capture.trySend(message) }
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
    enum Slot { case frontendReceived, frontendSent, backendReceived, backendSent }
    private let frontendReceivedFrames = Atomic<UInt64>(0), frontendReceivedBytes = Atomic<UInt64>(0)
    private let frontendSentFrames = Atomic<UInt64>(0), frontendSentBytes = Atomic<UInt64>(0)
    private let backendReceivedFrames = Atomic<UInt64>(0), backendReceivedBytes = Atomic<UInt64>(0)
    private let backendSentFrames = Atomic<UInt64>(0), backendSentBytes = Atomic<UInt64>(0)

    func count(_ message: Message, _ slot: Slot) {
        let frames = UInt64(message.frames.count)
        let bytes = UInt64(message.byteCount)
        switch slot {
        case .frontendReceived:
            frontendReceivedFrames.add(frames, ordering: .relaxed)
            frontendReceivedBytes.add(bytes, ordering: .relaxed)
        case .frontendSent:
            frontendSentFrames.add(frames, ordering: .relaxed)
            frontendSentBytes.add(bytes, ordering: .relaxed)
        case .backendReceived:
            backendReceivedFrames.add(frames, ordering: .relaxed)
            backendReceivedBytes.add(bytes, ordering: .relaxed)
        case .backendSent:
            backendSentFrames.add(frames, ordering: .relaxed)
            backendSentBytes.add(bytes, ordering: .relaxed)
        }
    }

    func snapshot() -> ProxyStatistics {
        var statistics = ProxyStatistics()
        statistics.frontendMessagesReceived = frontendReceivedFrames.load(ordering: .relaxed)
        statistics.frontendBytesReceived = frontendReceivedBytes.load(ordering: .relaxed)
        statistics.frontendMessagesSent = frontendSentFrames.load(ordering: .relaxed)
        statistics.frontendBytesSent = frontendSentBytes.load(ordering: .relaxed)
        statistics.backendMessagesReceived = backendReceivedFrames.load(ordering: .relaxed)
        statistics.backendBytesReceived = backendReceivedBytes.load(ordering: .relaxed)
        statistics.backendMessagesSent = backendSentFrames.load(ordering: .relaxed)
        statistics.backendBytesSent = backendSentBytes.load(ordering: .relaxed)
        return statistics
    }
}
