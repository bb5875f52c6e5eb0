import ZMTPEngine

#if canImport(Glibc)
import Glibc
#endif

/// A ZeroMQ socket. PUSH and PULL so far (RFC 30, libzmq 4.3 semantics):
///
/// - PUSH round-robins whole messages over the peers whose queue is below the send high-water mark;
///   when none has room (or none is connected) ``send(_:)`` blocks up to the send timeout.
/// - PULL fair-queues: it takes one message from each peer with messages waiting in turn, so one fast
///   sender cannot starve the others.
/// - Multipart messages are atomic: queued, written and delivered whole.
///
/// Thread safety: the socket is `Sendable`; calls from several threads are serialized by its lock.
/// The connections themselves live on the context's I/O thread.
public final class Socket: @unchecked Sendable {
    // @unchecked: every mutable field is guarded by `lock` (or touched only on `loop`'s thread, as
    // noted).
    public let type: SocketType
    public let options: SocketOptions
    let loop: EventLoop
    let lock = ConditionLockHandle()
    private var pipes: [Pipe] = []
    private var nextOutbound = 0
    private var nextInbound = 0
    private var closed = false
    /// Loop thread only.
    private var listeners: [(endpoint: String, listener: Listener)] = []
    private var connectors: [(endpoint: String, connector: Connector)] = []
    private lazy var bridge = SocketBridge(socket: self)

    init(type: SocketType, options: SocketOptions, loop: EventLoop) {
        self.type = type
        self.options = options
        self.loop = loop
    }

    // MARK: - Endpoints

    /// Binds to `endpoint` and starts accepting; returns the endpoint actually bound (with the
    /// ephemeral port filled in for `tcp://host:*` or `:0`).
    @discardableResult
    public func bind(_ endpoint: String) throws -> String {
        let parsed = try parse(endpoint)
        let listener: Listener
        do {
            listener = try Listener(endpoint: parsed, options: transportOptions, loop: loop, factory: bridge)
        } catch {
            throw SocketError.endpoint(error.message)
        }
        try runOnLoop { () throws(EngineError) in
            try listener.start()
            self.listeners.append((endpoint, listener))
        }
        return listener.boundEndpoint.description
    }

    /// Connects to `endpoint`; the connection is made (and remade) in the background.
    public func connect(_ endpoint: String) throws {
        let parsed = try parse(endpoint)
        let connector = Connector(endpoint: parsed, options: transportOptions, loop: loop, factory: bridge)
        try runOnLoop { () throws(EngineError) in
            self.connectors.append((endpoint, connector))
            connector.start()
        }
    }

    /// Stops listening on an endpoint given to ``bind(_:)`` (as given, or as returned). Connections
    /// already accepted stay open.
    /// - Throws: ``SocketError/endpoint(_:)`` when nothing is bound there.
    public func unbind(_ endpoint: String) throws {
        try runOnLoop { () throws(EngineError) in
            let matches = self.listeners.filter { $0.endpoint == endpoint || $0.listener.boundEndpoint.description == endpoint }
            guard !matches.isEmpty else { throw EngineError("not bound to \(endpoint)") }
            for match in matches { match.listener.stop() }
            self.listeners.removeAll { entry in matches.contains { $0.listener === entry.listener } }
        }
    }

    /// Stops connecting to an endpoint given to ``connect(_:)`` and closes that connection; messages
    /// still queued for it are dropped.
    /// - Throws: ``SocketError/endpoint(_:)`` when there is no such connection.
    public func disconnect(_ endpoint: String) throws {
        try runOnLoop { () throws(EngineError) in
            let matches = self.connectors.filter { $0.endpoint == endpoint || $0.connector.endpoint.description == endpoint }
            guard !matches.isEmpty else { throw EngineError("not connected to \(endpoint)") }
            for match in matches { match.connector.stop() }
            self.connectors.removeAll { entry in matches.contains { $0.connector === entry.connector } }
        }
    }

    private func parse(_ endpoint: String) throws -> Endpoint {
        guard !lock.withLock({ closed }) else { throw SocketError.closed }
        do {
            return try Endpoint(endpoint)
        } catch {
            throw SocketError.endpoint(error.message)
        }
    }

    private var transportOptions: TransportOptions {
        var transport = TransportOptions()
        transport.sendBufferSize = options.sendBufferSize
        transport.receiveBufferSize = options.receiveBufferSize
        transport.ipv6 = options.ipv6
        transport.reconnectInterval = options.reconnectInterval
        transport.reconnectIntervalMax = options.reconnectIntervalMax
        transport.tcpKeepalive = options.tcpKeepalive
        return transport
    }

    /// Runs `body` on the loop thread and waits for it.
    private func runOnLoop(_ body: @escaping @Sendable () throws(EngineError) -> Void) throws {
        let done = ConditionLockHandle()
        let box = ResultBox()
        loop.execute {
            let outcome: EngineError?
            do throws(EngineError) { try body(); outcome = nil } catch { outcome = error }
            done.withLock { box.finished = true; box.error = outcome }
            done.broadcast()
        }
        done.withLock { while !box.finished { _ = done.wait(until: nil) } }
        if let error = box.error { throw SocketError.endpoint(error.message) }
    }

    /// Peers whose handshake completed and whose connection is still open.
    public var connectedPeers: Int { lock.withLock { pipes.filter { !$0.isClosed }.count } }

    /// Waits until at least `count` peers are connected, up to `timeout`; returns whether they are.
    public func waitForPeers(_ count: Int, timeout: Duration) -> Bool {
        let deadline = EventLoop.now() + timeout
        return lock.withLock {
            while pipes.filter({ !$0.isClosed }).count < count {
                if closed || deadline <= EventLoop.now() { return false }
                _ = lock.wait(until: deadline.nanoseconds)
            }
            return true
        }
    }

    /// Waits until no peer is connected (after at least one was), up to `timeout`.
    public func waitUntilDisconnected(timeout: Duration) {
        let deadline = EventLoop.now() + timeout
        lock.withLock {
            while pipes.contains(where: { !$0.isClosed }) {
                if closed || deadline <= EventLoop.now() { return }
                _ = lock.wait(until: deadline.nanoseconds)
            }
        }
    }

    // MARK: - Sending (PUSH)

    /// Sends a message, blocking while no peer has room, up to the send timeout.
    /// - Throws: ``SocketError/timedOut`` when the timeout passes, ``SocketError/closed``.
    public func send(_ message: Message) throws {
        guard type == .push else { throw SocketError.notSupported("\(type) sockets cannot send") }
        guard !message.frames.isEmpty else { throw SocketError.notSupported("a message needs at least one frame") }
        let deadline = options.sendTimeout.map { EventLoop.now() + $0 }
        try lock.withLock {
            while true {
                if closed { throw SocketError.closed }
                if let pipe = nextPipeWithRoom() {
                    pipe.enqueue(message)
                    return
                }
                if let deadline, deadline <= EventLoop.now() { throw SocketError.timedOut }
                _ = lock.wait(until: deadline?.nanoseconds)
            }
        }
    }

    /// Sends without blocking; returns false when no peer has room (libzmq's EAGAIN with DONTWAIT).
    public func trySend(_ message: Message) throws -> Bool {
        guard type == .push else { throw SocketError.notSupported("\(type) sockets cannot send") }
        return try lock.withLock {
            if closed { throw SocketError.closed }
            guard let pipe = nextPipeWithRoom() else { return false }
            pipe.enqueue(message)
            return true
        }
    }

    /// Round robin over active pipes with room (lock held).
    private func nextPipeWithRoom() -> Pipe? {
        guard !pipes.isEmpty else { return nil }
        for offset in 0..<pipes.count {
            let index = (nextOutbound + offset) % pipes.count
            if pipes[index].canSend {
                nextOutbound = (index + 1) % pipes.count
                return pipes[index]
            }
        }
        return nil
    }

    // MARK: - Receiving (PULL)

    /// Receives the next message, fair-queued across peers, blocking up to the receive timeout.
    /// - Throws: ``SocketError/timedOut``, ``SocketError/closed``.
    public func receive() throws -> Message {
        guard type == .pull else { throw SocketError.notSupported("\(type) sockets cannot receive") }
        let deadline = options.receiveTimeout.map { EventLoop.now() + $0 }
        return try lock.withLock {
            while true {
                if let message = nextInboundMessage() { return message }
                if closed { throw SocketError.closed }
                if let deadline, deadline <= EventLoop.now() { throw SocketError.timedOut }
                _ = lock.wait(until: deadline?.nanoseconds)
            }
        }
    }

    /// Receives without blocking; nil when no message is waiting.
    public func tryReceive() throws -> Message? {
        guard type == .pull else { throw SocketError.notSupported("\(type) sockets cannot receive") }
        return lock.withLock { nextInboundMessage() }
    }

    /// Fair queue: the next pipe in turn that has a message (lock held). A closed pipe is kept until
    /// its last received message was taken, so nothing read before a disconnect is lost.
    private func nextInboundMessage() -> Message? {
        guard !pipes.isEmpty else { return nil }
        for offset in 0..<pipes.count {
            let index = (nextInbound + offset) % pipes.count
            let pipe = pipes[index]
            if let message = pipe.dequeue() {
                nextInbound = (index + 1) % pipes.count
                if pipe.isClosed && pipe.pendingInbound == 0 { remove(pipe) }  // its last message
                return message
            }
        }
        return nil
    }

    /// Drops a pipe and keeps the round-robin cursors in range (lock held).
    private func remove(_ pipe: Pipe) {
        pipes.removeAll { $0 === pipe }
        if nextOutbound >= pipes.count { nextOutbound = 0 }
        if nextInbound >= pipes.count { nextInbound = 0 }
    }

    // MARK: - Closing

    /// Stops accepting and connecting, waits up to the linger period for queued messages to leave,
    /// then closes every connection.
    public func close() {
        let alreadyClosed = lock.withLock { () -> Bool in
            defer { closed = true }
            return closed
        }
        if alreadyClosed { return }
        lock.broadcast()
        try? runOnLoop {
            for entry in self.listeners { entry.listener.stop() }
            for entry in self.connectors { entry.connector.stop(closingConnection: false) }  // linger first
            self.listeners.removeAll()
            self.connectors.removeAll()
        }
        // Linger: wait while queued messages remain on live pipes.
        let deadline = options.linger.map { EventLoop.now() + $0 }
        lock.withLock {
            while pipes.contains(where: { !$0.isClosed && $0.pendingOutbound > 0 }) {
                if let deadline, deadline <= EventLoop.now() { break }
                _ = lock.wait(until: deadline?.nanoseconds ?? (EventLoop.now() + .milliseconds(50)).nanoseconds)
            }
        }
        let open = lock.withLock { pipes }
        try? runOnLoop {
            for pipe in open { pipe.closeSession() }
        }
    }

    // MARK: - Engine callbacks (loop thread)

    func makeConnection(role: MechanismRole, peerAddress: String) throws(ZMTPError) -> (ConnectionConfiguration, any SecurityMechanism) {
        var configuration = ConnectionConfiguration(
            socketType: type, identity: options.routingID, maxMessageSize: options.maxMessageSize,
            handshakeTimeout: options.handshakeTimeout, peerAddress: peerAddress)
        configuration.properties = Metadata()
        let mechanism: any SecurityMechanism
        switch options.curve {
        case .server(let keyPair)?:
            mechanism = CurveServerMechanism(keyPair: keyPair, authenticates: options.zapHandler != nil, zapDomain: options.zapDomain)
        case .client(let serverKey, let keyPair)?:
            mechanism = CurveClientMechanism(serverPublicKey: serverKey, keyPair: keyPair)
        case nil:
            mechanism = NullMechanism(role: role, zapDomain: options.zapHandler == nil ? nil : options.zapDomain)
        }
        return (configuration, mechanism)
    }

    func makePipe(loop: EventLoop) -> Pipe {
        Pipe(
            lock: lock, loop: loop, sendHighWaterMark: options.sendHighWaterMark,
            receiveHighWaterMark: options.receiveHighWaterMark, discardsInbound: type == .push)
    }

    func authenticate(_ request: ZAPRequest) -> ZAPReply {
        options.zapHandler?.authenticate(request)
            ?? ZAPReply(requestID: request.requestID, status: .success, statusText: "OK")
    }

    func pipeActivated(_ pipe: Pipe) {
        lock.withLock {
            if closed {
                return
            }
            pipes.append(pipe)
        }
        lock.broadcast()
    }

    func pipeClosed(_ pipe: Pipe, error: String?) {
        lock.withLock {
            // A closed pipe with unread messages stays listed until they are taken
            // (nextInboundMessage removes it then), so nothing received before a disconnect is lost.
            if pipe.pendingInbound == 0 { remove(pipe) }
        }
        lock.broadcast()
    }

    func pipeChanged(_ pipe: Pipe) {
        lock.broadcast()
    }
}

/// Adapts a socket to the engine's factory and owner protocols without exposing them publicly.
final class SocketBridge: ConnectionFactory, PipeOwner, @unchecked Sendable {
    unowned let socket: Socket
    init(socket: Socket) { self.socket = socket }

    func makeConnection(role: MechanismRole, peerAddress: String) throws(ZMTPError) -> (ConnectionConfiguration, any SecurityMechanism) {
        try socket.makeConnection(role: role, peerAddress: peerAddress)
    }
    func makePipe(loop: EventLoop) -> Pipe { socket.makePipe(loop: loop) }
    var pipeOwner: any PipeOwner { self }
    func authenticate(_ request: ZAPRequest) -> ZAPReply { socket.authenticate(request) }
    func pipeActivated(_ pipe: Pipe) { socket.pipeActivated(pipe) }
    func pipeClosed(_ pipe: Pipe, error: String?) { socket.pipeClosed(pipe, error: error) }
    func pipeChanged(_ pipe: Pipe) { socket.pipeChanged(pipe) }
}

final class ResultBox: @unchecked Sendable {
    var finished = false
    var error: EngineError?
}
