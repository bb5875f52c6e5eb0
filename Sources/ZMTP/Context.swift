@_exported import ZMTPWire
import ZMTPEngine

/// Owns the I/O threads that sockets run on (libzmq's context).
///
/// Create one per process, make sockets from it, and ``shutdown()`` when done: it closes the sockets
/// still open (each waiting up to its linger period, as libzmq's `zmq_ctx_term` does) and stops the
/// threads.
public final class Context: Sendable {
    let loops: [EventLoop]
    private let nextLoop = AtomicCounter()
    private let sockets = LockedBox<[WeakSocket]>([])

    /// - Parameters:
    ///   - ioThreads: I/O threads to start (`ZMQ_IO_THREADS`, default 1). A socket spreads its
    ///     connections over all of them.
    ///   - idleSpin: how long an I/O thread polls for work before sleeping (no libzmq equivalent).
    ///     The default, 10 µs, saves a thread wake-up per message in request/reply exchanges; pass
    ///     `.zero` where no CPU at all may be spent waiting.
    public init(ioThreads: Int = 1, idleSpin: Duration = .microseconds(10)) throws {
        var loops: [EventLoop] = []
        for index in 0..<max(1, ioThreads) {
            loops.append(try EventLoop(name: "zmtp-io-\(index)", idleSpin: idleSpin))
        }
        self.loops = loops
    }

    /// A new socket of `type`: PUSH, PULL, PUB, SUB, XPUB or XSUB.
    public func socket(_ type: SocketType, options: SocketOptions = SocketOptions()) throws -> Socket {
        guard [.push, .pull, .pub, .sub, .xpub, .xsub].contains(type) else {
            throw SocketError.unsupported("\(type) sockets are not implemented (PUSH, PULL, PUB, SUB, XPUB and XSUB are)")
        }
        // Each socket starts its round robin over the I/O threads at a different one.
        guard loops[0].isRunning else { throw SocketError.closed }
        let first = nextLoop.next() % loops.count
        let rotated = Array(loops[first...] + loops[..<first])
        let socket = Socket(type: type, options: options, loops: rotated)
        sockets.withLock { list in
            list.removeAll { $0.socket == nil }
            list.append(WeakSocket(socket: socket))
        }
        return socket
    }

    /// Closes every socket still open, each honouring its linger period (so this returns within the
    /// longest linger), then stops the I/O threads. Sockets closed afterwards close at once; calling
    /// it again does nothing.
    public func shutdown() {
        let open = sockets.withLock { list -> [Socket] in
            defer { list.removeAll() }
            return list.compactMap(\.socket)
        }
        for socket in open { socket.close() }
        for loop in loops { loop.shutdown() }
    }
}

struct WeakSocket {
    weak var socket: Socket?
}

/// A counter shared across threads.
final class AtomicCounter: @unchecked Sendable {
    // @unchecked: guarded by `lock`.
    private let lock = ConditionLockHandle()
    private var value = 0
    func next() -> Int { lock.withLock { defer { value += 1 }; return value } }
}

/// Why a socket call failed.
public enum SocketError: Error, Equatable, CustomStringConvertible, Sendable {
    /// The send or receive timeout passed (libzmq's EAGAIN).
    case timedOut
    /// The socket is closed.
    case closed
    /// The operation is not valid for this socket type (e.g. receive on PUSH).
    case notSupported(String)
    /// Not implemented yet.
    case unsupported(String)
    /// An endpoint could not be parsed, bound or connected.
    case endpoint(String)

    public var description: String {
        switch self {
        case .timedOut: return "timed out"
        case .closed: return "socket is closed"
        case .notSupported(let what), .unsupported(let what), .endpoint(let what): return what
        }
    }
}
