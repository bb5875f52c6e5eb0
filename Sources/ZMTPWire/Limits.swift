/// Named limits of the wire core, each with where it comes from.
public enum Limits {
    /// Length of the ZMTP 3.x greeting (RFC 37 §Formal Grammar: signature 10, version 2, mechanism 20,
    /// as-server 1, filler 31).
    public static let greetingLength = 64
    /// The part of the greeting we need before sending the rest of ours: signature plus major version.
    public static let greetingVersionPrefix = 11
    /// Mechanism names are 20 octets, null-padded (RFC 37 §Authentication and Confidentiality).
    public static let mechanismNameLength = 20
    /// Command frames are capped at 1 MiB. Commands carry handshake metadata, subscriptions and
    /// heartbeats; none needs more, and libzmq has no cap at all, which lets a peer make it allocate
    /// whatever it announces. Data frames are limited by ``ConnectionConfiguration/maxMessageSize``.
    public static let maxCommandSize = 1 << 20
    /// Command names are 1..255 octets (RFC 37 §Formal Grammar: `1*255command-name-char`).
    public static let maxCommandNameLength = 255
    /// Metadata property names are 1..255 octets (RFC 37 §The NULL Security Mechanism grammar).
    public static let maxPropertyNameLength = 255
    /// PING context is at most 16 octets (RFC 37 §Connection Heartbeating).
    public static let maxPingContextLength = 16
    /// The largest TTL a PING can carry: 16 bits of deciseconds (RFC 37), about 109 minutes.
    public static let maxPingTTLDeciseconds = 0xFFFF
    /// The largest size an 8-octet frame length may carry: the top bit must be clear (RFC 23 says
    /// the size is a 64-bit unsigned integer, but no real message can come close, and Swift's `Int`
    /// is signed). Larger values are malformed.
    public static let maxEncodableFrameSize = UInt64(Int64.max)
    /// Routing ids (the Identity property) are 0..255 octets (RFC 37 §The Identity Property).
    public static let maxIdentityLength = 255
    /// ERROR reasons are 0..255 octets (one length octet; RFC 37 §The NULL Security Mechanism grammar).
    public static let maxErrorReasonLength = 255
    /// Metadata values are 0..2^31-1 octets (RFC 37 §The NULL Security Mechanism).
    public static let maxPropertyValueLength = UInt32(Int32.max)
    /// Incremental buffer growth for a frame body whose bytes have not arrived yet: the decoder never
    /// reserves more than this beyond what it has received, whatever size the frame announces.
    public static let speculativeBodyReservation = 1 << 18
}
