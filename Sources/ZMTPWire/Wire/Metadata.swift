/// Connection metadata: the property list in READY (NULL, PLAIN) and INITIATE (CURVE).
///
/// Wire form (RFC 37 §The NULL Security Mechanism, §Connection Metadata), repeated until the body ends:
/// ```
/// name-length  1 octet, 1..255
/// name         ALPHA / DIGIT / "-" / "_" / "." / "+"
/// value-length 4 octets, network order, at most 2^31-1
/// value        any octets
/// ```
/// Names are case-insensitive (RFC 37); libzmq compares them case-sensitively
/// (libzmq-behaviours.md §10). Every length is checked against the octets that remain before anything
/// is allocated.
public struct Metadata: Hashable, Sendable, Sequence {
    /// One name/value pair.
    public struct Property: Hashable, Sendable {
        public var name: String
        public var value: [UInt8]
        public init(name: String, value: [UInt8]) {
            self.name = name
            self.value = value
        }
    }

    /// The well-known property names of RFC 37.
    public enum Name {
        public static let socketType = "Socket-Type"
        public static let identity = "Identity"
        public static let resource = "Resource"
        public static let userID = "User-Id"
    }

    /// Properties in wire order.
    public private(set) var properties: [Property] = []

    public init() {}

    /// Builds metadata, validating every name.
    /// - Throws: `invalidArgument` (blame `.local`) for an empty, too long or non-token name.
    public init(_ properties: [(String, [UInt8])]) throws(ZMTPError) {
        for (name, value) in properties { try set(name, value) }
    }

    public func makeIterator() -> IndexingIterator<[Property]> { properties.makeIterator() }

    /// The first value whose name matches `name` case-insensitively.
    public subscript(name: String) -> [UInt8]? {
        let wanted = Self.foldCase(name)
        return properties.first { Self.foldCase($0.name) == wanted }?.value
    }

    /// Sets (replaces or appends) a property.
    /// - Throws: `invalidArgument` for an empty, >255-octet or non-token name.
    public mutating func set(_ name: String, _ value: [UInt8]) throws(ZMTPError) {
        guard Self.isValidName(Array(name.utf8)) else {
            throw .local(.invalidArgument, "invalid metadata property name '\(name)'")
        }
        let wanted = Self.foldCase(name)
        if let index = properties.firstIndex(where: { Self.foldCase($0.name) == wanted }) {
            properties[index].value = value
        } else {
            properties.append(Property(name: name, value: value))
        }
    }

    /// The Socket-Type value as text, if present.
    public var socketType: String? { self[Name.socketType].map { String(decoding: $0, as: UTF8.self) } }
    /// The Identity value (a routing id), if present.
    public var identity: [UInt8]? { self[Name.identity] }

    // MARK: - Codec

    /// Octets ``encode(into:)`` appends.
    public var encodedLength: Int {
        properties.reduce(0) { $0 + 1 + $1.name.utf8.count + 4 + $1.value.count }
    }

    /// Appends the wire form.
    public func encode(into out: inout [UInt8]) {
        for property in properties {
            let name = Array(property.name.utf8)
            out.append(UInt8(truncatingIfNeeded: name.count))
            out.append(contentsOf: name)
            withUnsafeBytes(of: UInt32(truncatingIfNeeded: property.value.count).bigEndian) {
                out.append(contentsOf: $0)
            }
            out.append(contentsOf: property.value)
        }
    }

    /// Parses a whole property list; the body must end exactly after the last value.
    /// - Throws: `malformedMetadata` (blame `.peer`).
    public static func decode(_ bytes: UnsafeRawBufferPointer) throws(ZMTPError) -> Metadata {
        var reader = ByteReader(bytes, code: .malformedMetadata, context: "metadata")
        var metadata = Metadata()
        while !reader.isAtEnd {
            let nameLength = Int(try reader.readUInt8("property name length"))
            guard nameLength > 0 else {
                throw .peer(.malformedMetadata, "metadata: property name of zero length")
            }
            let name = try reader.readBytes(nameLength, "property name")
            guard isValidName(name) else {
                throw .peer(.malformedMetadata, "metadata: property name has characters outside RFC 37's set")
            }
            let valueLength = try reader.readUInt32("value length of '\(String(decoding: name, as: UTF8.self))'")
            guard valueLength <= Limits.maxPropertyValueLength else {
                throw .peer(.malformedMetadata, "metadata: value length \(valueLength) exceeds 2^31-1")
            }
            // Checked against what remains before the array is made.
            guard valueLength <= UInt32(reader.remaining) else {
                throw .peer(
                    .malformedMetadata,
                    "metadata: value of '\(String(decoding: name, as: UTF8.self))' claims \(valueLength) octets but \(reader.remaining) remain"
                )
            }
            let value = try reader.readBytes(Int(valueLength), "property value")
            metadata.properties.append(Property(name: String(decoding: name, as: UTF8.self), value: value))
        }
        return metadata
    }

    /// Parses a property list held in an array.
    public static func decode(_ bytes: [UInt8]) throws(ZMTPError) -> Metadata {
        try bytes.withRawBytes { (raw: UnsafeRawBufferPointer) throws(ZMTPError) -> Metadata in
            try decode(raw)
        }
    }

    /// RFC 37: name-char = ALPHA / DIGIT / "-" / "_" / "." / "+", 1..255 of them.
    static func isValidName(_ name: [UInt8]) -> Bool {
        guard (1...Limits.maxPropertyNameLength).contains(name.count) else { return false }
        return name.allSatisfy { octet in
            switch octet {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "+"):
                return true
            default:
                return false
            }
        }
    }

    /// ASCII case folding (names are ASCII by construction).
    static func foldCase(_ name: String) -> String {
        String(decoding: name.utf8.map { (65...90).contains($0) ? $0 + 32 : $0 }, as: UTF8.self)
    }
}
