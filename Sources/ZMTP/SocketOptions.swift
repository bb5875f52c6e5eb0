/// Socket options. Each documents the libzmq option it corresponds to and its default.
public struct SocketOptions: Sendable {
    /// Messages queued per peer before sending blocks (`ZMQ_SNDHWM`, default 1000; 0 = unlimited).
    public var sendHighWaterMark = 1000
    /// Messages received and not yet taken per peer before reading from it stops (`ZMQ_RCVHWM`,
    /// default 1000; 0 = unlimited).
    public var receiveHighWaterMark = 1000
    /// How long ``Socket/close()`` waits for queued messages to be written (`ZMQ_LINGER`); nil waits
    /// forever (libzmq's -1), `.zero` discards them.
    public var linger: Duration? = nil
    /// How long a blocking send waits for room (`ZMQ_SNDTIMEO`); nil blocks forever.
    public var sendTimeout: Duration? = nil
    /// How long a blocking receive waits for a message (`ZMQ_RCVTIMEO`); nil blocks forever.
    public var receiveTimeout: Duration? = nil
    /// Largest inbound frame in bytes (`ZMQ_MAXMSGSIZE`); nil = unlimited.
    public var maxMessageSize: Int? = nil
    /// Kernel buffer sizes in bytes; 0 keeps the kernel default (`ZMQ_SNDBUF`, `ZMQ_RCVBUF`).
    public var sendBufferSize = 0
    public var receiveBufferSize = 0
    /// Queue messages only to peers whose handshake has completed (`ZMQ_IMMEDIATE`, default off).
    /// Off, as in libzmq, a connecting socket has a queue for its peer from ``Socket/connect(_:)`` on:
    /// messages wait there while the connection is being made or remade. On, a PUSH with no
    /// connected peer blocks instead, and nothing is queued for a peer that is down.
    public var immediate = false
    /// XPUB: pass every subscription to the application, repeats included (`ZMQ_XPUB_VERBOSE`);
    /// by default only a topic's first subscription.
    public var xpubVerbose = false
    /// XPUB: pass every subscription and every cancellation, including those a disconnect implies
    /// (`ZMQ_XPUB_VERBOSER`; Zeek's broker sets it); by default only a topic's last cancellation.
    public var xpubVerboser = false
    /// XPUB: when a matching subscriber's queue is full, make the send report "would block"
    /// (``Socket/trySend(_:)`` returns false) instead of dropping the message for that subscriber
    /// (`ZMQ_XPUB_NODROP`).
    public var xpubNoDrop = false
    /// PUB/XPUB: count a peer's repeated subscriptions to one topic, so that each needs its own CANCEL,
    /// as RFC 37 says ("Subscriptions SHALL be additive and SHALL NOT be idempotent"). Off by default:
    /// libzmq's publishers keep a set, and its SUB and XSUB sockets rely on that. They send a SUBSCRIBE
    /// for every subscribe but a CANCEL only for the last unsubscribe of a topic, so a counting
    /// publisher would keep sending a libzmq subscriber a topic it dropped. Turn it on only when the
    /// subscribers follow the RFC's model, a CANCEL for every SUBSCRIBE: swift-zmtp's own SUB and XSUB
    /// behave as libzmq's (spec-notes/rfc29-pubsub.md).
    public var countsRepeatedSubscriptions = false
    /// PUB/XPUB: subscriptions one peer may hold; more are ignored (no libzmq equivalent: a bound on
    /// what a subscription flood costs).
    public var maxSubscriptionsPerPeer = 100_000
    /// PUB/XPUB: longest topic accepted from a peer, in octets; longer subscriptions are ignored.
    public var maxTopicLength = 64 * 1024
    /// Allow IPv6 endpoints (`ZMQ_IPV6`, default off).
    public var ipv6 = false
    /// Reconnect delay and its backoff cap (`ZMQ_RECONNECT_IVL` 100 ms, `ZMQ_RECONNECT_IVL_MAX` 0 = none).
    public var reconnectInterval: Duration = .milliseconds(100)
    public var reconnectIntervalMax: Duration = .zero
    /// Handshake deadline (`ZMQ_HANDSHAKE_IVL`, default 30 s).
    public var handshakeTimeout: Duration? = .seconds(30)
    /// Send a PING this often to each ZMTP 3.1 peer (`ZMQ_HEARTBEAT_IVL`); nil (the default) sends
    /// none.
    public var heartbeatInterval: Duration? = nil
    /// How long the peer may wait for traffic from us before closing, announced in our PINGs
    /// (`ZMQ_HEARTBEAT_TTL`; up to 109 minutes, where libzmq's 16-bit field wraps).
    public var heartbeatTTL: Duration? = nil
    /// Close a connection when nothing arrives this long after a PING (`ZMQ_HEARTBEAT_TIMEOUT`;
    /// default: the interval).
    public var heartbeatTimeout: Duration? = nil
    /// Our routing id, sent as Identity (`ZMQ_ROUTING_ID`).
    public var routingID: [UInt8] = []
    /// `SO_KEEPALIVE` (`ZMQ_TCP_KEEPALIVE`).
    public var tcpKeepalive = false
    /// CURVE security; nil for NULL.
    public var curve: CurveOptions? = nil
    /// Decides ZAP requests (CURVE servers, NULL servers with a ZAP domain); nil admits everyone, as
    /// libzmq does when no handler is bound.
    public var zapHandler: (any ZAPHandler)? = nil
    /// `ZMQ_ZAP_DOMAIN`.
    public var zapDomain: String? = nil

    public init() {}
}

/// CURVE settings of a socket (`ZMQ_CURVE_SERVER`, `ZMQ_CURVE_SECRETKEY`, `ZMQ_CURVE_PUBLICKEY`,
/// `ZMQ_CURVE_SERVERKEY`).
public enum CurveOptions: Sendable {
    /// Act as CURVE server with this long-term key pair.
    case server(CurveKeyPair)
    /// Act as CURVE client with our key pair, talking to the server with this public key.
    case client(serverPublicKey: CurvePublicKey, keyPair: CurveKeyPair)
}
