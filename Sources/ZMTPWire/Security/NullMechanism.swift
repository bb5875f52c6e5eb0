/// The NULL mechanism (RFC 23 and RFC 37, §The NULL Security Mechanism).
///
/// ```
/// client (the side that connected):  send READY at once; awaitingReady --READY--> done
/// server (the side that accepted):   awaitingReady --READY, valid--> send READY, done
///                                                  --READY, invalid--> send ERROR, close
/// ```
/// RFC 37 has the client send READY first and the server answer with READY or ERROR, so a refused
/// client sees exactly one of them. (libzmq sends READY on both sides at once and validates after,
/// libzmq-behaviours.md §10; both orders interoperate with it.) The as-server octet MUST be zero with
/// NULL (RFC 37); we reject a peer that sets it.
public struct NullMechanism: SecurityMechanism {
    public let role: MechanismRole
    /// When set and non-empty (server role), each handshake pauses for a ZAP decision
    /// (`ZMQ_ZAP_DOMAIN`; libzmq, too, asks about NULL peers only when a domain is set).
    public let zapDomain: String?
    public var name: MechanismName { .null }
    public var asServer: Bool { false }

    private var sentReady = false
    private var pending: (metadata: Metadata, socketType: SocketType)?

    /// - Parameters:
    ///   - role: `.server` for a connection we accepted, `.client` for one we made.
    ///   - zapDomain: for a server, ask the authenticator about every peer, in this ZAP domain.
    public init(role: MechanismRole = .client, zapDomain: String? = nil) {
        self.role = role
        self.zapDomain = zapDomain
    }

    public func validate(peerGreeting: Greeting) throws(ZMTPError) {
        if peerGreeting.asServer {
            throw .peer(.invalidAsServer, "NULL mechanism requires as-server to be zero")
        }
    }

    public mutating func start(_ context: HandshakeContext) throws(ZMTPError) -> HandshakeStep {
        guard role == .client else { return HandshakeStep() }
        sentReady = true
        return HandshakeStep(commands: [try Command.ready(context.localMetadata).encodedBody()])
    }

    public mutating func receive(command body: [UInt8], _ context: HandshakeContext) throws(ZMTPError) -> HandshakeStep {
        let command = try Command.decode(body)
        guard case .ready(let metadata) = command else {
            throw .peer(.unexpectedCommand, "NULL handshake expected READY, got \(command.name)")
        }
        let peerType = try context.validate(peerMetadata: metadata)
        if role == .server, let zapDomain, !zapDomain.isEmpty {
            pending = (metadata, peerType)
            return HandshakeStep(authentication: ZAPRequest(
                domain: zapDomain, address: context.peerAddress, identity: context.routingID(of: metadata, peerType),
                mechanism: "NULL", credentials: []))
        }
        return try complete(metadata: metadata, socketType: peerType, context)
    }

    public mutating func authenticated(_ reply: ZAPReply, _ context: HandshakeContext) throws(ZMTPError) -> HandshakeStep {
        guard let (metadata, socketType) = pending else { throw .local(.invalidState, "no authentication is pending") }
        pending = nil
        var admitted = metadata
        try ZAPOutcome.apply(reply, to: &admitted)
        return try complete(metadata: admitted, socketType: socketType, context)
    }

    private mutating func complete(metadata: Metadata, socketType: SocketType, _ context: HandshakeContext) throws(ZMTPError) -> HandshakeStep {
        var step = HandshakeStep(completion: (metadata, socketType))
        if !sentReady {
            sentReady = true
            step.commands.append(try Command.ready(context.localMetadata).encodedBody())
        }
        return step
    }
}
