/// ZeroMQ socket types as named in the Socket-Type property (RFC 37 §The Socket-Type Property).
public enum SocketType: String, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    case pair = "PAIR"
    case pub = "PUB"
    case sub = "SUB"
    case xpub = "XPUB"
    case xsub = "XSUB"
    case push = "PUSH"
    case pull = "PULL"
    case req = "REQ"
    case rep = "REP"
    case dealer = "DEALER"
    case router = "ROUTER"

    /// Parses a Socket-Type value. Names are upper case on the wire; we match them exactly.
    public init?(wireName: [UInt8]) {
        self.init(rawValue: String(decoding: wireName, as: UTF8.self))
    }

    public var description: String { rawValue }

    /// The peer types this type may talk to (RFC 37's table in §The Socket-Type Property).
    public var compatiblePeers: Set<SocketType> {
        switch self {
        case .pair: return [.pair]
        case .pub, .xpub: return [.sub, .xsub]
        case .sub, .xsub: return [.pub, .xpub]
        case .push: return [.pull]
        case .pull: return [.push]
        case .req: return [.rep, .router]
        case .rep: return [.req, .dealer]
        case .dealer: return [.rep, .dealer, .router]
        case .router: return [.req, .dealer, .router]
        }
    }

    public func isCompatible(with peer: SocketType) -> Bool { compatiblePeers.contains(peer) }

    /// Whether this side receives subscriptions (and so reads 0x01/0x00 messages as subscribe/cancel).
    public var receivesSubscriptions: Bool { self == .pub || self == .xpub }
}
