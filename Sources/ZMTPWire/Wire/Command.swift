/// ZMTP commands (RFC 37 §Commands and the grammars of §The NULL Security Mechanism,
/// §The Publish-Subscribe Pattern and §Connection Heartbeating).
///
/// A command frame's body is `name-length (1 octet, 1..255) name data`, the name letters only. The commands ZMTP itself
/// defines are parsed into their own cases; any other command (a mechanism's HELLO, WELCOME, INITIATE,
/// or one we do not know) is kept as ``other(name:data:)`` for the mechanism or to be ignored.
///
/// Grammars enforced when decoding (a violation is `malformedCommand`):
/// - READY: the data is a metadata property list (``Metadata``).
/// - ERROR: one reason-length octet, then exactly that many octets of reason.
/// - SUBSCRIBE / CANCEL: the data is the topic (may be empty).
/// - PING: a 2-octet TTL in deciseconds, then 0..16 octets of context.
/// - PONG: 0..16 octets of context (the PING's, echoed).
public enum Command: Hashable, Sendable {
    case ready(Metadata)
    /// The reason is kept as the octets that arrived: RFC 37 makes it printable ASCII, but a peer may
    /// send anything, and decoding must not change what re-encoding produces. See ``reasonText``.
    case error(reason: [UInt8])
    case subscribe(topic: [UInt8])
    case cancel(topic: [UInt8])
    case ping(ttlDeciseconds: UInt16, context: [UInt8])
    case pong(context: [UInt8])
    case other(name: String, data: [UInt8])

    /// An ERROR with a textual reason.
    public static func error(_ text: String) -> Command { .error(reason: Array(text.utf8)) }

    /// The ERROR reason as text (invalid UTF-8 repaired), or nil for other commands.
    public var reasonText: String? {
        if case .error(let reason) = self { return String(decoding: reason, as: UTF8.self) }
        return nil
    }

    /// Command names as sent on the wire.
    public enum Name {
        public static let ready = "READY"
        public static let error = "ERROR"
        public static let subscribe = "SUBSCRIBE"
        public static let cancel = "CANCEL"
        public static let ping = "PING"
        public static let pong = "PONG"
    }

    /// The command's name.
    public var name: String {
        switch self {
        case .ready: return Name.ready
        case .error: return Name.error
        case .subscribe: return Name.subscribe
        case .cancel: return Name.cancel
        case .ping: return Name.ping
        case .pong: return Name.pong
        case .other(let name, _): return name
        }
    }

    // MARK: - Encoding

    /// Appends the command body (name and data, without the frame header).
    /// - Throws: `invalidArgument` (blame `.local`) for values the grammar cannot carry: an ERROR
    ///   reason over 255 octets, a PING or PONG context over 16 octets, a name of 0 or >255 octets.
    public func encodeBody(into out: inout [UInt8]) throws(ZMTPError) {
        let nameBytes = Array(name.utf8)
        guard (1...Limits.maxCommandNameLength).contains(nameBytes.count), nameBytes.allSatisfy(Self.isLetter) else {
            throw .local(.invalidArgument, "command name must be 1...255 ASCII letters")
        }
        out.append(UInt8(nameBytes.count))
        out.append(contentsOf: nameBytes)
        switch self {
        case .ready(let metadata):
            metadata.encode(into: &out)
        case .error(let reason):
            guard reason.count <= Limits.maxErrorReasonLength else {
                throw .local(.invalidArgument, "ERROR reason must be at most 255 octets")
            }
            out.append(UInt8(reason.count))
            out.append(contentsOf: reason)
        case .subscribe(let topic), .cancel(let topic):
            out.append(contentsOf: topic)
        case .ping(let ttl, let context):
            guard context.count <= Limits.maxPingContextLength else {
                throw .local(.invalidArgument, "PING context must be at most 16 octets")
            }
            withUnsafeBytes(of: ttl.bigEndian) { out.append(contentsOf: $0) }
            out.append(contentsOf: context)
        case .pong(let context):
            guard context.count <= Limits.maxPingContextLength else {
                throw .local(.invalidArgument, "PONG context must be at most 16 octets")
            }
            out.append(contentsOf: context)
        case .other(_, let data):
            out.append(contentsOf: data)
        }
    }

    /// The command body as a new array.
    public func encodedBody() throws(ZMTPError) -> [UInt8] {
        var out: [UInt8] = []
        try encodeBody(into: &out)
        return out
    }

    // MARK: - Decoding

    /// Parses a command frame's body.
    /// - Throws: `malformedCommand` or `malformedMetadata` (blame `.peer`).
    public static func decode(_ body: UnsafeRawBufferPointer) throws(ZMTPError) -> Command {
        var reader = ByteReader(body, code: .malformedCommand, context: "command")
        let nameLength = Int(try reader.readUInt8("command name length"))
        guard nameLength > 0 else { throw .peer(.malformedCommand, "command name of zero length") }
        let nameBytes = try reader.readBytes(nameLength, "command name")
        guard nameBytes.allSatisfy(isLetter) else {
            throw .peer(.malformedCommand, "command name has characters other than ASCII letters")
        }
        let name = String(decoding: nameBytes, as: UTF8.self)
        switch nameBytes {
        case Self.readyName:
            return .ready(try Metadata.decode(reader.bytes))
        case Self.errorName:
            var errorReader = ByteReader(reader.bytes, code: .malformedCommand, context: "ERROR")
            let length = Int(try errorReader.readUInt8("reason length"))
            let reason = try errorReader.readBytes(length, "reason")
            try errorReader.expectEnd()
            return .error(reason: reason)
        case Self.subscribeName:
            return .subscribe(topic: reader.readRest())
        case Self.cancelName:
            return .cancel(topic: reader.readRest())
        case Self.pingName:
            var pingReader = ByteReader(reader.bytes, code: .malformedCommand, context: "PING")
            let ttl = try pingReader.readUInt16("TTL")
            guard pingReader.remaining <= Limits.maxPingContextLength else {
                throw .peer(.malformedCommand, "PING context of \(pingReader.remaining) octets exceeds 16")
            }
            return .ping(ttlDeciseconds: ttl, context: pingReader.readRest())
        case Self.pongName:
            guard reader.remaining <= Limits.maxPingContextLength else {
                throw .peer(.malformedCommand, "PONG context of \(reader.remaining) octets exceeds 16")
            }
            return .pong(context: reader.readRest())
        default:
            return .other(name: name, data: reader.readRest())
        }
    }

    /// Parses a command body held in an array.
    public static func decode(_ body: [UInt8]) throws(ZMTPError) -> Command {
        try body.withRawBytes { (raw: UnsafeRawBufferPointer) throws(ZMTPError) -> Command in
            try decode(raw)
        }
    }

    /// RFC 37: `command-name-char = ALPHA`.
    static func isLetter(_ octet: UInt8) -> Bool {
        (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(octet) || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(octet)
    }

    static let readyName = Array(Name.ready.utf8)
    static let errorName = Array(Name.error.utf8)
    static let subscribeName = Array(Name.subscribe.utf8)
    static let cancelName = Array(Name.cancel.utf8)
    static let pingName = Array(Name.ping.utf8)
    static let pongName = Array(Name.pong.utf8)
}
