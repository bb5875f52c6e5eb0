/// A ZMTP security mechanism (RFC 37 §Authentication and Confidentiality), pluggable into ``Connection``.
///
/// The connection owns the greeting and the framing; a mechanism owns what comes after the greeting
/// until both sides are ready (the handshake commands), and may transform frames afterwards (CURVE
/// boxes every frame into a MESSAGE; NULL passes them through). A mechanism does no I/O and reads no
/// clock: it receives command bodies and returns the commands to send.
///
/// ERROR commands are handled by the connection at every stage, so mechanisms never see them.
public protocol SecurityMechanism: Sendable {
    /// The name this mechanism announces in the greeting.
    var name: MechanismName { get }
    /// The as-server octet to send.
    var asServer: Bool { get }
    /// Whether frames after the handshake go through ``encode(frame:more:isCommand:into:)`` and
    /// ``decode(_:)``. When false the connection frames data itself (the fast path NULL takes).
    var transformsFrames: Bool { get }

    /// Checks the peer's greeting (its as-server octet, chiefly) once all 64 octets arrived.
    func validate(peerGreeting: Greeting) throws(ZMTPError)
    /// Called once, right after the peer's greeting: returns the first commands to send.
    mutating func start(_ context: HandshakeContext) throws(ZMTPError) -> HandshakeStep
    /// Handles one handshake command (a command frame's body); returns what to send and whether the
    /// handshake is complete.
    mutating func receive(command body: [UInt8], _ context: HandshakeContext) throws(ZMTPError) -> HandshakeStep

    /// Continues a handshake that paused for authentication (``HandshakeStep/authentication``) with
    /// the authenticator's reply.
    mutating func authenticated(_ reply: ZAPReply, _ context: HandshakeContext) throws(ZMTPError) -> HandshakeStep

    /// Encodes one outbound frame after the handshake (only when ``transformsFrames``).
    mutating func encode(frame body: [UInt8], more: Bool, isCommand: Bool, into out: inout OutboundBuffer) throws(ZMTPError)
    /// Encodes one outbound frame from octets read in place (a message's inline frame), with no array
    /// in between. By default it makes the array and calls ``encode(frame:more:isCommand:into:)``.
    mutating func encode(
        frameBytes body: UnsafeRawBufferPointer, more: Bool, isCommand: Bool, into out: inout OutboundBuffer
    ) throws(ZMTPError)
    /// Decodes one inbound frame after the handshake (only when ``transformsFrames``).
    mutating func decode(_ frame: consuming Frame) throws(ZMTPError) -> Frame
}

extension SecurityMechanism {
    public var transformsFrames: Bool { false }

    public mutating func authenticated(_ reply: ZAPReply, _ context: HandshakeContext) throws(ZMTPError) -> HandshakeStep {
        throw .local(.invalidState, "this mechanism never asks for authentication")
    }

    public mutating func encode(
        frame body: [UInt8], more: Bool, isCommand: Bool, into out: inout OutboundBuffer
    ) throws(ZMTPError) {
        out.appendFrame(body, more: more, command: isCommand)
    }

    public mutating func encode(
        frameBytes body: UnsafeRawBufferPointer, more: Bool, isCommand: Bool, into out: inout OutboundBuffer
    ) throws(ZMTPError) {
        try encode(frame: Array(body), more: more, isCommand: isCommand, into: &out)
    }

    public mutating func decode(_ frame: consuming Frame) throws(ZMTPError) -> Frame { frame }
}

/// Which side of a mechanism's handshake we play (RFC 37 §Topology). Usually the side that binds is
/// the server, but either may be; for NULL the accepting side is the server.
public enum MechanismRole: Hashable, Sendable {
    case client
    case server
}

/// What a mechanism knows about the connection it runs on.
public struct HandshakeContext: Sendable {
    /// Our socket type.
    public var socketType: SocketType
    /// Our metadata for READY/INITIATE: Socket-Type, Identity when set, and application properties.
    public var localMetadata: Metadata
    /// The revision negotiated in the greeting.
    public var version: ProtocolVersion
    /// The peer's address as the engine reports it (for ZAP requests).
    public var peerAddress: String

    public init(socketType: SocketType, localMetadata: Metadata, version: ProtocolVersion, peerAddress: String = "") {
        self.socketType = socketType
        self.localMetadata = localMetadata
        self.version = version
        self.peerAddress = peerAddress
    }

    /// The peer's routing id for a ZAP request: its Identity when its socket type may announce one
    /// (and so was validated), otherwise empty.
    public func routingID(of peerMetadata: Metadata, _ peerType: SocketType) -> [UInt8] {
        [.req, .dealer, .router].contains(peerType) ? peerMetadata.identity ?? [] : []
    }

    /// The checks every mechanism applies to the peer's metadata (RFC 37 §The Socket-Type Property,
    /// §The Identity Property): a Socket-Type that exists and is compatible with ours, and, from the
    /// socket types that may announce one (REQ, DEALER, ROUTER), an Identity that does not start with
    /// a zero octet and has at most 255 octets. Other types' Identity is ignored, as RFC 37 says.
    /// - Throws: `incompatibleSocketType` with an ERROR reply, or `malformedMetadata`.
    public func validate(peerMetadata: Metadata) throws(ZMTPError) -> SocketType {
        guard let raw = peerMetadata[Metadata.Name.socketType] else {
            throw ZMTPError(
                .incompatibleSocketType, blame: .peer, "peer metadata has no Socket-Type",
                errorCommandReason: "missing-socket-type")
        }
        guard let peerType = SocketType(wireName: raw), socketType.isCompatible(with: peerType) else {
            throw ZMTPError(
                .incompatibleSocketType, blame: .peer,
                "peer Socket-Type '\(String(decoding: raw, as: UTF8.self))' cannot talk to \(socketType)",
                errorCommandReason: "invalid-socket-type")
        }
        if [.req, .dealer, .router].contains(peerType), let identity = peerMetadata.identity {
            if identity.count > Limits.maxIdentityLength {
                throw .peer(.malformedMetadata, "peer Identity of \(identity.count) octets exceeds 255")
            }
            if identity.first == 0 {
                throw .peer(.malformedMetadata, "peer Identity starts with a zero octet, which RFC 37 reserves")
            }
        }
        return peerType
    }
}

/// The result of one handshake step.
public struct HandshakeStep: Sendable {
    /// Command bodies (name and data) to send, in order, as command frames.
    public var commands: [[UInt8]]
    /// Set when the handshake is complete: the peer's validated metadata and socket type.
    public var completion: (metadata: Metadata, socketType: SocketType)?
    /// Set when the handshake must pause for an authenticator's decision; the connection reports it
    /// and resumes with ``SecurityMechanism/authenticated(_:_:)``.
    public var authentication: ZAPRequest?

    public init(
        commands: [[UInt8]] = [], completion: (metadata: Metadata, socketType: SocketType)? = nil,
        authentication: ZAPRequest? = nil
    ) {
        self.commands = commands
        self.completion = completion
        self.authentication = authentication
    }
}
