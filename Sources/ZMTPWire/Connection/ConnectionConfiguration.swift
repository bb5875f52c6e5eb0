/// Settings of one ``Connection``. Names follow Swift conventions; each documents the libzmq option
/// it corresponds to.
public struct ConnectionConfiguration: Sendable {
    /// Our socket type, announced as Socket-Type and checked against the peer's.
    public var socketType: SocketType
    /// Our routing id, sent as the Identity property when non-empty (`ZMQ_ROUTING_ID`), 0..255 octets.
    public var identity: [UInt8]
    /// Extra metadata sent in READY/INITIATE, e.g. application `X-` properties (`ZMQ_METADATA`).
    public var properties: Metadata
    /// Largest inbound data frame in octets; `nil` for no limit (`ZMQ_MAXMSGSIZE`, default -1).
    public var maxMessageSize: Int?
    /// Time allowed from connection start to a completed handshake; `nil` for none
    /// (`ZMQ_HANDSHAKE_IVL`, default 30 s).
    public var handshakeTimeout: Duration?
    /// Send a PING this often once the handshake is done (ZMTP 3.1 peers only); `nil` disables
    /// heartbeats (`ZMQ_HEARTBEAT_IVL`, default 0 = off).
    public var heartbeatInterval: Duration?
    /// TTL we announce in our PINGs: the peer may close us after this much silence
    /// (`ZMQ_HEARTBEAT_TTL`). Sent in deciseconds, clamped to 0xFFFF (about 109 minutes).
    public var heartbeatTTL: Duration?
    /// Close when nothing arrives this long after we sent a PING (`ZMQ_HEARTBEAT_TIMEOUT`, default:
    /// the heartbeat interval).
    public var heartbeatTimeout: Duration?
    /// The peer's address as the transport knows it (e.g. `127.0.0.1`), passed to ZAP requests.
    public var peerAddress: String

    public init(
        socketType: SocketType,
        identity: [UInt8] = [],
        properties: Metadata = Metadata(),
        maxMessageSize: Int? = nil,
        handshakeTimeout: Duration? = .seconds(30),
        heartbeatInterval: Duration? = nil,
        heartbeatTTL: Duration? = nil,
        heartbeatTimeout: Duration? = nil,
        peerAddress: String = ""
    ) {
        self.peerAddress = peerAddress
        self.socketType = socketType
        self.identity = identity
        self.properties = properties
        self.maxMessageSize = maxMessageSize
        self.handshakeTimeout = handshakeTimeout
        self.heartbeatInterval = heartbeatInterval
        self.heartbeatTTL = heartbeatTTL
        self.heartbeatTimeout = heartbeatTimeout
    }

    /// Socket-Type, then Identity (if set), then the application's properties.
    func localMetadata() throws(ZMTPError) -> Metadata {
        guard identity.count <= Limits.maxIdentityLength else {
            throw .local(.invalidArgument, "identity of \(identity.count) octets exceeds 255")
        }
        guard identity.first != 0 else {
            throw .local(.invalidArgument, "identities starting with a zero octet are reserved (RFC 37)")
        }
        var metadata = Metadata()
        try metadata.set(Metadata.Name.socketType, Array(socketType.rawValue.utf8))
        if !identity.isEmpty { try metadata.set(Metadata.Name.identity, identity) }
        for property in properties { try metadata.set(property.name, property.value) }
        return metadata
    }
}
