import CZMTPSystem
import ZMTPWire

#if canImport(Glibc)
import Glibc
#endif

/// What a socket asks of the engine for each new connection: the settings and mechanism of its
/// `Connection`, and a pipe for its messages.
public protocol ConnectionFactory: AnyObject, Sendable {
    /// A configuration and mechanism for a connection we accepted (`.server`) or made (`.client`).
    func makeConnection(role: MechanismRole, peerAddress: String) throws(ZMTPError) -> (ConnectionConfiguration, any SecurityMechanism)
    /// A fresh pipe bound to this socket's lock and high-water marks.
    func makePipe(loop: EventLoop) -> Pipe
    /// The I/O thread a newly accepted connection runs on (the socket spreads its connections over
    /// the context's threads).
    func loopForConnection() -> EventLoop
    /// The socket that owns the pipes.
    var pipeOwner: any PipeOwner { get }
    /// The ZAP decision for a handshake that asks for one.
    func authenticate(_ request: ZAPRequest) -> ZAPReply
}

/// Options the transports apply to every socket they create.
public struct TransportOptions: Sendable {
    /// `SO_SNDBUF` / `SO_RCVBUF` in bytes; 0 leaves the kernel default (`ZMQ_SNDBUF`, `ZMQ_RCVBUF`).
    public var sendBufferSize = 0
    public var receiveBufferSize = 0
    /// Allow IPv6 addresses (`ZMQ_IPV6`).
    public var ipv6 = false
    /// Reconnect delay after a failed or lost connection, doubling up to the maximum
    /// (`ZMQ_RECONNECT_IVL` 100 ms, `ZMQ_RECONNECT_IVL_MAX` 0 = no backoff).
    public var reconnectInterval: Duration = .milliseconds(100)
    public var reconnectIntervalMax: Duration = .zero
    /// `SO_KEEPALIVE` on TCP connections (`ZMQ_TCP_KEEPALIVE`).
    public var tcpKeepalive = false

    public init() {}
}

enum SocketSetup {
    static func stream(family: Int32, options: TransportOptions) throws(SystemError) -> FileDescriptor {
        let fd = FileDescriptor(try Syscall.socket(domain: family, type: Int32(SOCK_STREAM.rawValue)))
        if family != AF_UNIX {
            try Syscall.setOption(fd.raw, level: Int32(IPPROTO_TCP), name: TCP_NODELAY, value: 1)
            if options.tcpKeepalive { try Syscall.setOption(fd.raw, level: SOL_SOCKET, name: SO_KEEPALIVE, value: 1) }
        }
        if options.sendBufferSize > 0 {
            try Syscall.setOption(fd.raw, level: SOL_SOCKET, name: SO_SNDBUF, value: Int32(clamping: options.sendBufferSize))
        }
        if options.receiveBufferSize > 0 {
            try Syscall.setOption(fd.raw, level: SOL_SOCKET, name: SO_RCVBUF, value: Int32(clamping: options.receiveBufferSize))
        }
        return fd
    }

    /// Starts a session on an established stream socket (loop thread).
    /// Returns the session's pipe, or nil when no connection could be set up.
    @discardableResult
    static func startSession(
        fd: consuming FileDescriptor, endpoint: String, role: MechanismRole, loop: EventLoop,
        factory: any ConnectionFactory, pipe existing: Pipe? = nil, onClose: ((SessionEnd) -> Void)?
    ) -> Pipe? {
        let raw = fd.raw
        let address = SocketAddress.peer(of: raw)
        let peerAddress = address.map { $0.family == AF_UNIX ? "" : $0.host } ?? ""
        let connection: Connection
        do throws(ZMTPError) {
            let (configuration, mechanism) = try factory.makeConnection(role: role, peerAddress: peerAddress)
            connection = try Connection(configuration: configuration, mechanism: mechanism, now: EventLoop.now())
        } catch {
            factory.pipeOwner.socketEvent(SocketEvent(
                .disconnected, value: UInt32(clamping: raw), endpoint: endpoint, detail: error.description))
            onClose?(SessionEnd(reason: error.description, reconnect: true))
            return nil  // fd closes here
        }
        let pipe = existing ?? factory.makePipe(loop: loop)
        let session = StreamSession(
            loop: loop, fd: fd, endpoint: endpoint, connection: connection, pipe: pipe, owner: factory.pipeOwner)
        session.authenticate = { [weak factory] request in
            factory?.authenticate(request) ?? ZAPReply(requestID: request.requestID, status: .internalError, statusText: "socket closed")
        }
        session.onClose = onClose
        session.start()
        return pipe
    }
}

/// A bound, listening socket that accepts connections and starts a session for each (loop thread).
public final class Listener: EventHandler, @unchecked Sendable {
    // @unchecked: used only on its loop's thread after creation.
    public let loop: EventLoop
    private let descriptor: FileDescriptor
    private var token: UInt64 = 0
    private weak var factory: (any ConnectionFactory)?
    /// The endpoint actually bound (ephemeral port resolved).
    public let boundEndpoint: Endpoint
    private let ipcPath: String?

    /// Binds and listens. Call on any thread; accepting starts with ``start()`` on the loop.
    public init(endpoint: Endpoint, options: TransportOptions, loop: EventLoop, factory: any ConnectionFactory) throws(EngineError) {
        self.loop = loop
        self.factory = factory
        let address: SocketAddress
        switch endpoint {
        case .tcp(let host, let port):
            address = try SocketAddress.resolve(host: host, port: port, ipv6: options.ipv6, passive: true)[0]
            ipcPath = nil
        case .ipc(let path):
            address = SocketAddress.unix(path: path)
            ipcPath = path
            unlink(path)  // libzmq replaces a stale socket file too
        }
        let fd = try Self.bindAndListen(address, endpoint: endpoint, options: options)
        guard let local = SocketAddress.local(of: fd.raw) else { throw EngineError("getsockname failed for \(endpoint)") }
        switch endpoint {
        case .tcp(let host, _): boundEndpoint = .tcp(host: host == "*" ? host : local.host, port: local.port)
        case .ipc: boundEndpoint = endpoint
        }
        descriptor = fd
    }

    private static func bindAndListen(
        _ address: SocketAddress, endpoint: Endpoint, options: TransportOptions
    ) throws(EngineError) -> FileDescriptor {
        do throws(SystemError) {
            let fd = try SocketSetup.stream(family: address.family, options: options)
            if address.family != AF_UNIX {
                try Syscall.setOption(fd.raw, level: SOL_SOCKET, name: SO_REUSEADDR, value: 1)
            }
            if address.family == AF_INET6 {
                try Syscall.setOption(fd.raw, level: Int32(IPPROTO_IPV6), name: IPV6_V6ONLY, value: 0)
            }
            let raw = fd.raw
            _ = try Syscall.retrying("bind") { address.withSockaddr { bind(raw, $0, $1) } }
            _ = try Syscall.retrying("listen") { listen(raw, 256) }
            return fd
        } catch {
            throw EngineError(error, while: "binding \(endpoint)")
        }
    }

    /// How long accepting pauses after the process or system ran out of descriptors or memory.
    static let acceptRetryDelay: Duration = .milliseconds(100)
    private var paused = false
    private var stopped = false
    /// The last error that paused accepting (descriptor exhaustion), for diagnostics.
    public private(set) var lastAcceptError: SystemError?

    private func pauseAccepting() {
        paused = true
        loop.modify(token, readable: false, writable: false)
        loop.schedule(at: EventLoop.now() + Self.acceptRetryDelay) { [weak self] in
            guard let self, !self.stopped else { return }
            self.paused = false
            self.loop.modify(self.token, readable: true, writable: false)
        }
    }

    /// Registers for incoming connections (loop thread).
    public func start() throws(EngineError) {
        do throws(SystemError) {
            token = try loop.register(descriptor.raw, handler: self, readable: true, writable: false)
        } catch {
            throw EngineError(error, while: "listening on \(boundEndpoint)")
        }
        emit(.listening, value: UInt32(clamping: descriptor.raw))
    }

    private func emit(_ kind: SocketEvent.Kind, value: UInt32, detail: String? = nil) {
        factory?.pipeOwner.socketEvent(SocketEvent(kind, value: value, endpoint: boundEndpoint.description, detail: detail))
    }

    /// Stops accepting and closes the listening socket (loop thread).
    public func stop() {
        guard !stopped else { return }
        stopped = true
        loop.deregister(token)
        if let ipcPath { unlink(ipcPath) }
        emit(.closed, value: UInt32(clamping: descriptor.raw))
    }

    func handle(readable: Bool, writable: Bool, hangup: Bool) {
        guard readable, !paused, let factory else { return }
        while true {
            let result: IOResult<Int32>
            do throws(SystemError) {
                result = try Syscall.accept(descriptor.raw)
            } catch {
                switch error.errno {
                case ECONNABORTED, EPROTO, EPERM:
                    continue  // that one connection is gone; the others are still waiting
                default:
                    // EMFILE, ENFILE, ENOBUFS, ENOMEM: no room for another connection now. epoll is
                    // level-triggered and would report the waiting connection again at once, so stop
                    // listening for a while instead of spinning; connections wait in the backlog.
                    lastAcceptError = error
                    emit(.acceptFailed, value: UInt32(clamping: error.errno), detail: "\(error)")
                    pauseAccepting()
                    return
                }
            }
            guard case .processed(let raw) = result else { return }
            emit(.accepted, value: UInt32(clamping: raw))
            let target = factory.loopForConnection()
            let endpoint = boundEndpoint.description
            if target === loop {
                SocketSetup.startSession(
                    fd: FileDescriptor(raw), endpoint: endpoint, role: .server, loop: loop, factory: factory, onClose: nil)
            } else {
                // Hand the descriptor to the other I/O thread; it owns (and closes) it from there.
                target.execute { [weak factory] in
                    let fd = FileDescriptor(raw)
                    guard let factory else { return }
                    SocketSetup.startSession(
                        fd: fd, endpoint: endpoint, role: .server, loop: target, factory: factory, onClose: nil)
                }
            }
        }
    }
}

/// Connects to an endpoint and keeps a connection to it, reconnecting with backoff when it fails or
/// drops (loop thread after ``start()``).
public final class Connector: EventHandler, @unchecked Sendable {
    // @unchecked: used only on its loop's thread.
    public let loop: EventLoop
    public let endpoint: Endpoint
    private let options: TransportOptions
    private weak var factory: (any ConnectionFactory)?
    private var pending: FileDescriptor?
    private var token: UInt64 = 0
    private var delay: Duration
    private var stopped = false
    /// The pipe of the current connection, to close it on ``stop()``.
    private var current: Pipe?
    /// A pipe that outlives connections (`ZMQ_IMMEDIATE` off): every connection made uses it.
    private let persistentPipe: Pipe?
    /// Set when a protocol error ended connecting for good (the reason).
    public private(set) var failedPermanently: String?

    /// - Parameter pipe: a pipe (made with `survivesDisconnect`) for every connection to use, or nil
    ///   for a fresh pipe per connection, created when its handshake completes.
    public init(
        endpoint: Endpoint, options: TransportOptions, loop: EventLoop, factory: any ConnectionFactory,
        pipe: Pipe? = nil
    ) {
        self.loop = loop
        self.persistentPipe = pipe
        self.endpoint = endpoint
        self.options = options
        self.factory = factory
        self.delay = options.reconnectInterval
    }

    /// Starts connecting (loop thread).
    public func start() { attempt() }

    /// Stops reconnecting and closes the current connection and the persistent pipe, dropping what is
    /// still queued (loop thread).
    public func stop() {
        stopped = true
        if pending != nil { loop.deregister(token) }
        pending = nil
        if let persistentPipe, let factory {
            persistentPipe.terminate(owner: factory.pipeOwner)
        } else {
            current?.closeSession()
        }
        current = nil
    }

    private func attempt() {
        guard !stopped else { return }
        do throws(EngineError) {
            let address: SocketAddress
            switch endpoint {
            case .tcp(let host, let port):
                address = try SocketAddress.resolve(host: host, port: port, ipv6: options.ipv6, passive: false)[0]
            case .ipc(let path):
                address = SocketAddress.unix(path: path)
            }
            let fd = try openSocket(family: address.family)
            let raw = fd.raw
            let result: IOResult<Int32>
            do throws(SystemError) {
                result = try Syscall.nonBlocking("connect") { address.withSockaddr { connect(raw, $0, $1) } }
            } catch {
                var failure = EngineError(error, while: "connecting to \(endpoint)")
                failure.descriptor = raw  // closed when `fd` goes out of scope
                throw failure
            }
            switch result {
            case .processed:
                established(fd)
            case .wouldBlock:
                token = try registerPending(fd)
                emit(.connectDelayed, value: UInt32(EINPROGRESS))
                pending = consume fd
            }
        } catch {
            if let descriptor = error.descriptor { emit(.closed, value: UInt32(clamping: descriptor), detail: error.message) }
            retryLater()
        }
    }

    private func emit(_ kind: SocketEvent.Kind, value: UInt32, detail: String? = nil) {
        factory?.pipeOwner.socketEvent(SocketEvent(kind, value: value, endpoint: endpoint.description, detail: detail))
    }

    private func openSocket(family: Int32) throws(EngineError) -> FileDescriptor {
        do throws(SystemError) {
            return try SocketSetup.stream(family: family, options: options)
        } catch {
            throw EngineError(error, while: "connecting to \(endpoint)")
        }
    }

    private func registerPending(_ fd: borrowing FileDescriptor) throws(EngineError) -> UInt64 {
        do throws(SystemError) {
            return try loop.register(fd.raw, handler: self, readable: false, writable: true)
        } catch {
            throw EngineError(error, while: "connecting to \(endpoint)")
        }
    }

    func handle(readable: Bool, writable: Bool, hangup: Bool) {
        guard let fd = pending.take() else { return }
        loop.deregister(token)
        let error = (try? Syscall.option(fd.raw, level: SOL_SOCKET, name: SO_ERROR)) ?? EIO
        if error == 0 {
            established(fd)
        } else {
            emit(.closed, value: UInt32(clamping: fd.raw), detail: "connecting to \(endpoint): \(SystemError("connect", errno: error))")
            retryLater()
        }
    }

    private func established(_ fd: consuming FileDescriptor) {
        guard let factory else { return }
        delay = options.reconnectInterval
        emit(.connected, value: UInt32(clamping: fd.raw))
        current = SocketSetup.startSession(
            fd: fd, endpoint: endpoint.description, role: .client, loop: loop, factory: factory, pipe: persistentPipe
        ) { [weak self] end in
            guard let self else { return }
            self.current = nil
            if end.reconnect {
                self.retryLater()
            } else {
                // As libzmq: the peer refused us (ERROR) or broke the protocol; trying again would
                // fail the same way. The peer's queue goes too, so a PUSH stops choosing it.
                self.failedPermanently = end.reason
                self.stop()
            }
        }
    }

    private func retryLater() {
        guard !stopped else { return }
        let wait = delay
        if options.reconnectIntervalMax > .zero {
            delay = min(delay * 2, options.reconnectIntervalMax)
        }
        let (seconds, attoseconds) = wait.components
        emit(.connectRetried, value: UInt32(clamping: seconds * 1000 + attoseconds / 1_000_000_000_000_000))
        loop.schedule(at: EventLoop.now() + wait) { [weak self] in self?.attempt() }
    }
}
