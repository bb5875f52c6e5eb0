/// The 64-octet ZMTP 3.x greeting (RFC 23 §"Greeting", RFC 37).
///
/// ```
/// offset  0      0xFF                      signature, first octet
///         1...8  padding (any)             (ZMTP 1.0 put a length here)
///         9      0x7F                      signature, last octet (bit 0 set: not ZMTP 1.0)
///         10     major version (3)
///         11     minor version (1 for 3.1, 0 for 3.0)
///         12..31 mechanism name, null-padded to 20 octets
///         32     as-server (0 or 1)
///         33..63 filler (zeros)
/// ```
///
/// We send it in two parts: the first 11 octets (signature + major version) at once, the rest only after
/// the peer's first 11 octets arrived and were accepted. libzmq sends its first 10 octets and waits for
/// ours (libzmq-behaviours.md §8), so sending ours unprompted avoids a deadlock; holding the rest back
/// means a ZMTP 1.0/2.0 peer never receives a 3.x greeting it cannot parse.
public struct Greeting: Hashable, Sendable {
    public var major: UInt8
    public var minor: UInt8
    public var mechanism: MechanismName
    public var asServer: Bool

    public init(major: UInt8 = 3, minor: UInt8 = 1, mechanism: MechanismName, asServer: Bool) {
        self.major = major
        self.minor = minor
        self.mechanism = mechanism
        self.asServer = asServer
    }

    /// The 64 octets on the wire.
    public var encoded: [UInt8] {
        var out = [UInt8](repeating: 0, count: Limits.greetingLength)
        out[0] = 0xFF
        out[9] = 0x7F
        out[10] = major
        out[11] = minor
        for (index, octet) in mechanism.paddedBytes.enumerated() { out[12 + index] = octet }
        out[32] = asServer ? 1 : 0
        return out
    }

    /// Checks the first 11 octets of a peer's greeting (signature and major version).
    /// - Throws: `invalidSignature` if the first octet is not 0xFF; `unsupportedVersion` for a
    ///   ZMTP 1.0 signature (bit 0 of octet 9 clear) or a major version below 3.
    public static func validatePrefix(_ prefix: some Collection<UInt8>) throws(ZMTPError) {
        let octets = Array(prefix.prefix(Limits.greetingVersionPrefix))
        guard let first = octets.first else { return }
        guard first == 0xFF else {
            throw .peer(.invalidSignature, "greeting starts with 0x\(String(first, radix: 16)), not 0xFF")
        }
        if octets.count > 9, octets[9] & 0x01 == 0 {
            throw .peer(.unsupportedVersion, "peer speaks ZMTP 1.0 (signature octet 9 has bit 0 clear)")
        }
        if octets.count > 10, octets[10] < 3 {
            throw .peer(.unsupportedVersion, "peer speaks ZMTP major version \(octets[10]); 3 or later is required")
        }
    }

    /// Parses a complete 64-octet greeting (after ``validatePrefix(_:)``'s checks).
    public static func decode(_ bytes: [UInt8]) throws(ZMTPError) -> Greeting {
        guard bytes.count == Limits.greetingLength else {
            throw .peer(.invalidSignature, "greeting of \(bytes.count) octets, expected 64")
        }
        try validatePrefix(bytes)
        let asServerOctet = bytes[32]
        guard asServerOctet <= 1 else {
            throw .peer(.invalidAsServer, "as-server octet is \(asServerOctet), must be 0 or 1")
        }
        return Greeting(
            major: bytes[10], minor: bytes[11],
            mechanism: MechanismName(paddedBytes: Array(bytes[12..<32])),
            asServer: asServerOctet == 1
        )
    }

    /// The protocol revision both sides will speak: 3.0 if the peer says 3.0, else 3.1.
    public var negotiatedVersion: ProtocolVersion {
        major == 3 && minor == 0 ? .zmtp30 : .zmtp31
    }
}

/// The ZMTP revision in use on a connection.
public enum ProtocolVersion: Hashable, Sendable, CustomStringConvertible {
    /// ZMTP 3.0 (RFC 23): no PING/PONG; subscriptions travel as 0x01/0x00 messages.
    case zmtp30
    /// ZMTP 3.1 (RFC 37): SUBSCRIBE/CANCEL and PING/PONG commands.
    case zmtp31

    public var description: String { self == .zmtp30 ? "3.0" : "3.1" }
}

/// A security mechanism's name as carried in the greeting: up to 20 ASCII octets, null-padded.
public struct MechanismName: Hashable, Sendable, CustomStringConvertible {
    /// Exactly 20 octets.
    public let paddedBytes: [UInt8]

    /// - Precondition: `name` is at most 20 ASCII octets (a programming error otherwise).
    public init(_ name: StaticString) {
        let bytes = name.withUTF8Buffer { Array($0) }
        assert(bytes.count <= Limits.mechanismNameLength, "mechanism names are at most 20 octets")
        self.paddedBytes = Array((bytes + [UInt8](repeating: 0, count: Limits.mechanismNameLength)).prefix(Limits.mechanismNameLength))
    }

    init(paddedBytes: [UInt8]) { self.paddedBytes = paddedBytes }

    public static let null = MechanismName("NULL")
    public static let plain = MechanismName("PLAIN")
    public static let curve = MechanismName("CURVE")

    /// The name up to the first zero octet, with non-printable octets shown as `\xNN`.
    public var description: String {
        let name = paddedBytes.prefix { $0 != 0 }
        return name.map { (0x20..<0x7F).contains($0) ? String(UnicodeScalar($0)) : "\\x" + String($0, radix: 16) }
            .joined()
    }
}
