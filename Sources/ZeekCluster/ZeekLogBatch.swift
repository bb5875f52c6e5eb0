/// A batch of Zeek log records as Zeek nodes send it to loggers: the `zeek-bin-serializer` format
/// (zeek-wire.md §5 and §7.2). Every batch carries its header (stream, writer, filter, path and the
/// field list), so each batch can be decoded on its own and schemas may change between batches.
///
/// Decoding is strict where Zeek's reader is lax (trailing bytes are an error) and bounded: no count or
/// length read from the input allocates before it is checked against the octets that remain.
public struct ZeekLogBatch: Sendable, Equatable {
    public var stream: String
    public var writer: String
    public var filter: String
    public var path: String
    public var fields: [Field]
    /// One array of values per record, in field order; nil is an unset `&optional` field.
    public var records: [[ZeekValue?]]

    public init(stream: String, writer: String, filter: String, path: String, fields: [Field], records: [[ZeekValue?]]) {
        self.stream = stream
        self.writer = writer
        self.filter = filter
        self.path = path
        self.fields = fields
        self.records = records
    }

    /// One log column.
    public struct Field: Sendable, Equatable {
        /// The flattened record path, e.g. `id.orig_h`.
        public var name: String
        public var type: ZeekType
        public var optional: Bool
        public init(name: String, type: ZeekType, optional: Bool = false) {
            self.name = name
            self.type = type
            self.optional = optional
        }
    }

    /// The serializer name in frame 3 of a log-write message.
    public static let serializerName = "zeek-bin-serializer"
    /// Containers nested deeper than this are refused (Zeek's logs have sets and vectors of
    /// scalars; this only bounds the decoder's recursion).
    public static let maxNesting = 8
}

/// A Zeek type, as log fields carry it (`TypeTag` and, for containers, the element's tag).
public indirect enum ZeekType: Sendable, Equatable, CustomStringConvertible {
    case bool, int, count, double, time, interval, string, enumeration, port, addr, subnet, function, file
    case set(ZeekType)
    case vector(ZeekType)

    /// The name Zeek writes in a log's `#types` line.
    public var description: String {
        switch self {
        case .bool: "bool"
        case .int: "int"
        case .count: "count"
        case .double: "double"
        case .time: "time"
        case .interval: "interval"
        case .string: "string"
        case .enumeration: "enum"
        case .port: "port"
        case .addr: "addr"
        case .subnet: "subnet"
        case .function: "func"
        case .file: "file"
        case .set(let element): "set[\(element)]"
        case .vector(let element): "vector[\(element)]"
        }
    }

    /// Zeek's `TypeTag` number.
    var tag: Int32 {
        switch self {
        case .bool: 1
        case .int: 2
        case .count: 3
        case .double: 4
        case .time: 5
        case .interval: 6
        case .string: 7
        case .enumeration: 9
        case .port: 10
        case .addr: 11
        case .subnet: 12
        case .set: 14
        case .function: 17
        case .file: 18
        case .vector: 19
        }
    }

    static func scalar(tag: Int32) -> ZeekType? {
        switch tag {
        case 1: .bool
        case 2: .int
        case 3: .count
        case 4: .double
        case 5: .time
        case 6: .interval
        case 7: .string
        case 9: .enumeration
        case 10: .port
        case 11: .addr
        case 12: .subnet
        case 17: .function
        case 18: .file
        default: nil
        }
    }
}

/// An IPv4 or IPv6 address (network order octets: 4 or 16).
public struct ZeekAddress: Sendable, Equatable, CustomStringConvertible {
    public var octets: [UInt8]
    public init(octets: [UInt8]) { self.octets = octets }

    /// Dotted quad, or RFC 5952 text (lowercase, the longest run of zero groups as `::`).
    public var description: String {
        if octets.count == 4 { return octets.map(String.init).joined(separator: ".") }
        var groups: [UInt16] = []
        for index in stride(from: 0, to: 16, by: 2) { groups.append(UInt16(octets[index]) << 8 | UInt16(octets[index + 1])) }
        // The longest run of two or more zero groups, first one on a tie.
        var best: (start: Int, length: Int) = (-1, 0)
        var index = 0
        while index < 8 {
            if groups[index] == 0 {
                var end = index
                while end < 8 && groups[end] == 0 { end += 1 }
                if end - index > best.length && end - index >= 2 { best = (index, end - index) }
                index = end
            } else {
                index += 1
            }
        }
        func hex(_ slice: ArraySlice<UInt16>) -> String { slice.map { String($0, radix: 16) }.joined(separator: ":") }
        if best.start < 0 { return hex(groups[...]) }
        return hex(groups[..<best.start]) + "::" + hex(groups[(best.start + best.length)...])
    }
}

/// A Zeek value in a log record.
public indirect enum ZeekValue: Sendable, Equatable {
    case bool(Bool)
    case int(Int64)
    case count(UInt64)
    case double(Double)
    /// Seconds since the epoch.
    case time(Double)
    /// Seconds.
    case interval(Double)
    case string([UInt8])
    /// The value's name, e.g. `tcp` or `Notice::ACTION_LOG`.
    case enumeration([UInt8])
    case port(UInt64, ZeekTransport)
    case addr(ZeekAddress)
    /// Network address and prefix length (for IPv4 the length counts IPv4 bits, 0–32).
    case subnet(ZeekAddress, prefixLength: Int)
    case function([UInt8])
    case file([UInt8])
    /// Elements may be unset (nil), as Zeek's `Value` allows.
    case set([ZeekValue?])
    case vector([ZeekValue?])
}

/// A port's transport protocol.
public enum ZeekTransport: Int32, Sendable, Equatable {
    case unknown = 0, tcp = 1, udp = 2, icmp = 3
    public var name: String {
        switch self {
        case .unknown: "unknown"
        case .tcp: "tcp"
        case .udp: "udp"
        case .icmp: "icmp"
        }
    }
}

/// A batch that does not follow the `zeek-bin-serializer` format; ``offset`` is where decoding stopped.
public struct ZeekFormatError: Error, Equatable, CustomStringConvertible {
    public var message: String
    public var offset: Int
    public init(_ message: String, offset: Int) {
        self.message = message
        self.offset = offset
    }
    public var description: String { "\(message) (at octet \(offset))" }
}

// MARK: - Decoding

extension ZeekLogBatch {
    /// Decodes one batch (frame 4 of a `log-write` message).
    /// - Throws: ``ZeekFormatError`` for truncated, lying or unknown content, and for trailing octets.
    public static func decode(_ bytes: [UInt8]) throws(ZeekFormatError) -> ZeekLogBatch {
        var reader = OctetReader(bytes: bytes)
        let stream = try reader.string("stream name")
        let writer = try reader.string("writer name")
        let filter = try reader.string("filter name")
        let path = try reader.string("path")
        // A field takes at least 14 octets: flag, name length, type, subtype, optional.
        let fieldCount = try reader.count("field count", minimumOctetsEach: 14)
        var fields: [Field] = []
        fields.reserveCapacity(fieldCount)
        for _ in 0..<fieldCount {
            if try reader.bool() { _ = try reader.string("secondary name") }
            let name = try reader.string("field name")
            let tag = try reader.int32()
            let subtag = try reader.int32()
            let optional = try reader.bool()
            fields.append(Field(name: name, type: try reader.type(tag: tag, subtag: subtag, field: name), optional: optional))
        }
        // A value takes at least 9 octets: type, subtype, present.
        let recordCount = try reader.count("record count", minimumOctetsEach: max(1, fieldCount) * 9)
        if fieldCount == 0 && recordCount > 0 {
            throw ZeekFormatError("\(recordCount) records without fields", offset: reader.offset)
        }
        var records: [[ZeekValue?]] = []
        records.reserveCapacity(recordCount)
        for _ in 0..<recordCount {
            var record: [ZeekValue?] = []
            record.reserveCapacity(fieldCount)
            for field in fields { record.append(try reader.value(expected: field.type, field: field.name, depth: 0)) }
            records.append(record)
        }
        guard reader.offset == bytes.count else {
            throw ZeekFormatError("\(bytes.count - reader.offset) octets after the last record", offset: reader.offset)
        }
        return ZeekLogBatch(stream: stream, writer: writer, filter: filter, path: path, fields: fields, records: records)
    }
}

/// A bounds-checked big-endian reader, shared by both Zeek formats (the zeek-bin-serializer parts are
/// here, broker-bin-v1's in BrokerEvent.swift).
struct OctetReader {
    let bytes: [UInt8]
    var offset = 0

    var remaining: Int { bytes.count - offset }

    mutating func take(_ count: Int, _ what: String) throws(ZeekFormatError) -> ArraySlice<UInt8> {
        guard count >= 0, count <= remaining else {
            throw ZeekFormatError("truncated: \(what) needs \(count) octets, \(remaining) left", offset: offset)
        }
        defer { offset += count }
        return bytes[offset..<(offset + count)]
    }

    mutating func uint32(_ what: String = "u32") throws(ZeekFormatError) -> UInt32 {
        try take(4, what).reduce(0) { $0 << 8 | UInt32($1) }
    }

    mutating func int32() throws(ZeekFormatError) -> Int32 { Int32(bitPattern: try uint32("i32")) }

    mutating func uint64(_ what: String = "u64") throws(ZeekFormatError) -> UInt64 {
        try take(8, what).reduce(0) { $0 << 8 | UInt64($1) }
    }

    /// Zeek reads only 0x01 as true.
    mutating func bool() throws(ZeekFormatError) -> Bool { try take(1, "bool").first == 1 }

    mutating func octets(_ what: String) throws(ZeekFormatError) -> [UInt8] {
        let length = Int32(bitPattern: try uint32("\(what) length"))
        guard length >= 0 else { throw ZeekFormatError("negative \(what) length \(length)", offset: offset - 4) }
        return Array(try take(Int(length), what))
    }

    mutating func string(_ what: String) throws(ZeekFormatError) -> String {
        String(decoding: try octets(what), as: UTF8.self)
    }

    /// A u32 count of items of at least `minimumOctetsEach` octets, checked against what is left.
    mutating func count(_ what: String, minimumOctetsEach: Int) throws(ZeekFormatError) -> Int {
        let start = offset
        let value = Int(try uint32(what))
        guard value <= remaining / minimumOctetsEach else {
            throw ZeekFormatError("\(what) \(value) cannot fit in the \(remaining) octets left", offset: start)
        }
        return value
    }

    mutating func type(tag: Int32, subtag: Int32, field: String) throws(ZeekFormatError) -> ZeekType {
        if tag == 14 || tag == 19 {
            guard let element = ZeekType.scalar(tag: subtag) else {
                throw ZeekFormatError("field \(field): container of unsupported type \(subtag)", offset: offset)
            }
            return tag == 14 ? .set(element) : .vector(element)
        }
        guard let type = ZeekType.scalar(tag: tag) else {
            throw ZeekFormatError("field \(field): unsupported type \(tag)", offset: offset)
        }
        return type
    }

    /// One Value; its tag must match `expected` (the field's type, or a container's element type).
    mutating func value(expected: ZeekType, field: String, depth: Int) throws(ZeekFormatError) -> ZeekValue? {
        let start = offset
        let tag = try int32()
        _ = try int32()  // subtype: 0 in values the logging framework makes, containers included
        guard tag == expected.tag else {
            throw ZeekFormatError("field \(field): value of type \(tag) where \(expected) was declared", offset: start)
        }
        guard try bool() else { return nil }
        switch expected {
        case .bool: return .bool(Int64(bitPattern: try uint64("bool")) != 0)
        case .int: return .int(Int64(bitPattern: try uint64("int")))
        case .count: return .count(try uint64("count"))
        case .double: return .double(Double(bitPattern: try uint64("double")))
        case .time: return .time(Double(bitPattern: try uint64("time")))
        case .interval: return .interval(Double(bitPattern: try uint64("interval")))
        case .string: return .string(try octets("string"))
        case .enumeration: return .enumeration(try octets("enum"))
        case .function: return .function(try octets("func"))
        case .file: return .file(try octets("file"))
        case .port:
            let number = try uint64("port")
            let protocolOffset = offset
            guard let transport = ZeekTransport(rawValue: try int32()) else {
                throw ZeekFormatError("field \(field): unknown port protocol", offset: protocolOffset)
            }
            return .port(number, transport)
        case .addr:
            return .addr(try address(field: field))
        case .subnet:
            let lengthOffset = offset
            let length = Int(try take(1, "subnet length")[lengthOffset])
            let address = try address(field: field)
            // Zeek counts an IPv4 prefix from 96 (relative to IPv6).
            let prefix = address.octets.count == 4 ? length - 96 : length
            guard prefix >= 0, prefix <= address.octets.count * 8 else {
                throw ZeekFormatError("field \(field): subnet prefix \(length) out of range", offset: lengthOffset)
            }
            return .subnet(address, prefixLength: prefix)
        case .set(let element), .vector(let element):
            guard depth < ZeekLogBatch.maxNesting else {
                throw ZeekFormatError("field \(field): containers nested too deeply", offset: start)
            }
            let countOffset = offset
            let count = Int64(bitPattern: try uint64("element count"))
            guard count >= 0, count <= Int64(remaining / 9) else {
                throw ZeekFormatError("field \(field): \(count) elements cannot fit in the \(remaining) octets left", offset: countOffset)
            }
            var elements: [ZeekValue?] = []
            elements.reserveCapacity(Int(count))
            for _ in 0..<count { elements.append(try value(expected: element, field: field, depth: depth + 1)) }
            if case .set = expected { return .set(elements) }
            return .vector(elements)
        }
    }

    mutating func address(field: String) throws(ZeekFormatError) -> ZeekAddress {
        let familyOffset = offset
        switch try take(1, "address family")[familyOffset] {
        case 4: return ZeekAddress(octets: Array(try take(4, "IPv4 address")))
        case 6: return ZeekAddress(octets: Array(try take(16, "IPv6 address")))
        case let family: throw ZeekFormatError("field \(field): address family \(family)", offset: familyOffset)
        }
    }
}

// MARK: - Encoding

extension ZeekLogBatch {
    /// The batch in `zeek-bin-serializer` form, as a Zeek node writes it (for tests, and for programs
    /// that feed a logger as Zeek would).
    public func encoded() -> [UInt8] {
        var out: [UInt8] = []
        func u32(_ value: UInt32) { out += [UInt8(value >> 24), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)] }
        func u64(_ value: UInt64) {
            u32(UInt32(value >> 32))
            u32(UInt32(value & 0xFFFF_FFFF))
        }
        func octets(_ bytes: [UInt8]) {
            u32(UInt32(bytes.count))
            out += bytes
        }
        func subtag(_ type: ZeekType) -> Int32 {
            switch type {
            case .set(let element), .vector(let element): element.tag
            default: 0
            }
        }
        func value(_ item: ZeekValue?, _ type: ZeekType) {
            u32(UInt32(bitPattern: type.tag))
            u32(0)
            guard let item else {
                out.append(0)
                return
            }
            out.append(1)
            switch item {
            case .bool(let flag): u64(flag ? 1 : 0)
            case .int(let number): u64(UInt64(bitPattern: number))
            case .count(let number): u64(number)
            case .double(let number), .time(let number), .interval(let number): u64(number.bitPattern)
            case .string(let bytes), .enumeration(let bytes), .function(let bytes), .file(let bytes): octets(bytes)
            case .port(let number, let transport):
                u64(number)
                u32(UInt32(bitPattern: transport.rawValue))
            case .addr(let address):
                out.append(address.octets.count == 4 ? 4 : 6)
                out += address.octets
            case .subnet(let address, let prefix):
                out.append(UInt8(clamping: address.octets.count == 4 ? prefix + 96 : prefix))
                out.append(address.octets.count == 4 ? 4 : 6)
                out += address.octets
            case .set(let elements), .vector(let elements):
                let element: ZeekType
                switch type {
                case .set(let inner), .vector(let inner): element = inner
                default: element = type
                }
                u64(UInt64(elements.count))
                for item in elements { value(item, element) }
            }
        }
        for text in [stream, writer, filter, path] { octets(Array(text.utf8)) }
        u32(UInt32(fields.count))
        for field in fields {
            out.append(0)
            octets(Array(field.name.utf8))
            u32(UInt32(bitPattern: field.type.tag))
            u32(UInt32(bitPattern: subtag(field.type)))
            out.append(field.optional ? 1 : 0)
        }
        u32(UInt32(records.count))
        for record in records {
            for (item, field) in zip(record, fields) { value(item, field.type) }
        }
        return out
    }
}
