/// The NULL mechanism (RFC 23 §"The NULL Security Mechanism", RFC 37).
///
/// ```
/// both sides:  send READY(metadata) right after the greeting
///              awaitingReady --READY(valid metadata)--> done
/// ```
/// There are no roles: both peers send READY without waiting, then check the other's. The as-server
/// octet is not used by NULL and must be zero; we reject a peer that sets it.
public struct NullMechanism: SecurityMechanism {
    public var name: MechanismName { .null }
    public var asServer: Bool { false }

    private var sentReady = false

    public init() {}

    public func validate(peerGreeting: Greeting) throws(ZMTPError) {
        if peerGreeting.asServer {
            throw .peer(.invalidAsServer, "NULL mechanism requires as-server to be zero")
        }
    }

    public mutating func start(_ context: HandshakeContext) throws(ZMTPError) -> HandshakeStep {
        sentReady = true
        return HandshakeStep(commands: [try Command.ready(context.localMetadata).encodedBody()])
    }

    public mutating func receive(command body: [UInt8], _ context: HandshakeContext) throws(ZMTPError) -> HandshakeStep {
        let command = try Command.decode(body)
        guard case .ready(let metadata) = command, sentReady else {
            throw .peer(.unexpectedCommand, "NULL handshake expected READY, got \(command.name)")
        }
        let peerType = try context.validate(peerMetadata: metadata)
        return HandshakeStep(completion: (metadata, peerType))
    }
}
