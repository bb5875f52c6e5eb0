/// A Zeek event as Zeek's ZeroMQ backend publishes it: frame 4 of a 4-frame pub/sub message, a broker
/// value in the `broker-bin-v1` encoding (zeek-wire.md §2.1 and §7.1):
/// `[count 1 (protocol), count 1 (event), [name, [args…] (, [[id, value]…] metadata)]]`.
public struct ZeekEvent: Sendable, Equatable {
    public var name: String
    public var arguments: [BrokerValue]
    /// Metadata entries (`[count id, value]`); id 1 is the network timestamp. Empty when absent.
    public var metadata: [(id: UInt64, value: BrokerValue)]

    public init(name: String, arguments: [BrokerValue], metadata: [(id: UInt64, value: BrokerValue)] = []) {
        self.name = name
        self.arguments = arguments
        self.metadata = metadata
    }

    public static func == (lhs: ZeekEvent, rhs: ZeekEvent) -> Bool {
        lhs.name == rhs.name && lhs.arguments == rhs.arguments
            && lhs.metadata.map(\.id) == rhs.metadata.map(\.id) && lhs.metadata.map(\.value) == rhs.metadata.map(\.value)
    }

    /// The serializer name in frame 3.
    public static let serializerName = "broker-bin-v1"

    /// Decodes an event; the payload must be consumed exactly, as broker requires.
    /// - Throws: ``ZeekFormatError`` for anything else: another message type, truncation, trailing
    ///   octets, nesting deeper than ``BrokerValue/maxNesting``.
    public static func decode(_ bytes: [UInt8]) throws(ZeekFormatError) -> ZeekEvent {
        var reader = OctetReader(bytes: bytes)
        let value = try reader.brokerValue(depth: 0)
        guard reader.offset == bytes.count else {
            throw ZeekFormatError("\(bytes.count - reader.offset) octets after the event", offset: reader.offset)
        }
        guard case .vector(let outer) = value, outer.count == 3,
            case .count(1) = outer[0], case .vector(let content) = outer[2], content.count == 2 || content.count == 3,
            case .string(let name) = content[0], case .vector(let arguments) = content[1]
        else {
            throw ZeekFormatError("not a broker-bin-v1 event: [1, 1, [name, args(, metadata)]]", offset: 0)
        }
        guard case .count(1) = outer[1] else {
            throw ZeekFormatError("broker message type \(outer[1]) is not an event (1)", offset: 0)
        }
        var metadata: [(id: UInt64, value: BrokerValue)] = []
        if content.count == 3 {
            guard case .vector(let entries) = content[2] else { throw ZeekFormatError("metadata is not a vector", offset: 0) }
            for entry in entries {
                guard case .vector(let pair) = entry, pair.count == 2, case .count(let id) = pair[0] else {
                    throw ZeekFormatError("metadata entry is not [count, value]", offset: 0)
                }
                metadata.append((id, pair[1]))
            }
        }
        return ZeekEvent(name: String(decoding: name, as: UTF8.self), arguments: arguments, metadata: metadata)
    }

    /// The event in `broker-bin-v1` form (no metadata: the 2-element content of Zeek 8.0.1 and later).
    public func encoded() -> [UInt8] {
        var content: [BrokerValue] = [.string(Array(name.utf8)), .vector(arguments)]
        if !metadata.isEmpty { content.append(.vector(metadata.map { .vector([.count($0.id), $0.value]) })) }
        var out: [UInt8] = []
        BrokerValue.vector([.count(1), .count(1), .vector(content)]).encode(into: &out)
        return out
    }
}

/// A broker data value (broker's binary v1 format).
public indirect enum BrokerValue: Sendable, Equatable {
    case none
    case boolean(Bool)
    case count(UInt64)
    case integer(Int64)
    case real(Double)
    case string([UInt8])
    /// 16 octets; IPv4 as `::ffff:a.b.c.d`.
    case address([UInt8])
    /// 16-octet network and a length relative to IPv6 (IPv4: 96 + prefix).
    case subnet([UInt8], length: UInt8)
    case port(UInt16, ZeekTransport)
    /// Nanoseconds since the epoch.
    case timestamp(Int64)
    /// Nanoseconds.
    case timespan(Int64)
    case enumValue([UInt8])
    case set([BrokerValue])
    case table([(key: BrokerValue, value: BrokerValue)])
    case vector([BrokerValue])

    /// Containers nested deeper than this are refused (Zeek records become nested vectors; this bounds
    /// the decoder's recursion).
    public static let maxNesting = 32

    public static func == (lhs: BrokerValue, rhs: BrokerValue) -> Bool {
        switch (lhs, rhs) {
        case (.none, .none): true
        case (.boolean(let a), .boolean(let b)): a == b
        case (.count(let a), .count(let b)): a == b
        case (.integer(let a), .integer(let b)): a == b
        case (.real(let a), .real(let b)): a.bitPattern == b.bitPattern
        case (.string(let a), .string(let b)), (.enumValue(let a), .enumValue(let b)), (.address(let a), .address(let b)): a == b
        case (.subnet(let a, let x), .subnet(let b, let y)): a == b && x == y
        case (.port(let a, let x), .port(let b, let y)): a == b && x == y
        case (.timestamp(let a), .timestamp(let b)), (.timespan(let a), .timespan(let b)): a == b
        case (.set(let a), .set(let b)), (.vector(let a), .vector(let b)): a == b
        case (.table(let a), .table(let b)): a.map(\.key) == b.map(\.key) && a.map(\.value) == b.map(\.value)
        default: false
        }
    }

    func encode(into out: inout [UInt8]) {
        func varbyte(_ value: Int) {
            var rest = UInt32(truncatingIfNeeded: value)
            repeat {
                var byte = UInt8(rest & 0x7F)
                rest >>= 7
                if rest != 0 { byte |= 0x80 }
                out.append(byte)
            } while rest != 0
        }
        func u64(_ value: UInt64) { for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: value >> UInt64(shift))) } }
        switch self {
        case .none: out.append(0)
        case .boolean(let flag): out += [1, flag ? 1 : 0]
        case .count(let value): out.append(2); u64(value)
        case .integer(let value): out.append(3); u64(UInt64(bitPattern: value))
        case .real(let value): out.append(4); u64(value.bitPattern)
        case .string(let bytes): out.append(5); varbyte(bytes.count); out += bytes
        case .address(let octets): out.append(6); out += octets
        case .subnet(let octets, let length): out.append(7); out += octets; out.append(length)
        case .port(let number, let transport): out += [8, UInt8(number >> 8), UInt8(number & 0xFF), UInt8(transport.rawValue)]
        case .timestamp(let value): out.append(9); u64(UInt64(bitPattern: value))
        case .timespan(let value): out.append(10); u64(UInt64(bitPattern: value))
        case .enumValue(let bytes): out.append(11); varbyte(bytes.count); out += bytes
        case .set(let elements):
            out.append(12); varbyte(elements.count)
            for element in elements { element.encode(into: &out) }
        case .table(let pairs):
            out.append(13); varbyte(pairs.count)
            for pair in pairs {
                pair.key.encode(into: &out)
                pair.value.encode(into: &out)
            }
        case .vector(let elements):
            out.append(14); varbyte(elements.count)
            for element in elements { element.encode(into: &out) }
        }
    }
}

/// broker-bin-v1's parts of the shared reader.
extension OctetReader {
    /// A varbyte (7 bits per octet, least significant first), at most 5 octets (a uint32).
    mutating func varbyte(_ what: String) throws(ZeekFormatError) -> Int {
        var value: UInt64 = 0
        for index in 0..<5 {
            let start = offset
            let byte = try take(1, what)[start]
            value |= UInt64(byte & 0x7F) << UInt64(7 * index)
            if byte & 0x80 == 0 {
                guard value <= UInt64(UInt32.max) else { break }
                return Int(value)
            }
        }
        throw ZeekFormatError("\(what): varbyte longer than 32 bits", offset: offset)
    }

    /// A varbyte element count, each element taking at least `minimumOctetsEach` octets.
    mutating func varbyteCount(_ what: String, minimumOctetsEach: Int) throws(ZeekFormatError) -> Int {
        let start = offset
        let value = try varbyte(what)
        guard value <= remaining / minimumOctetsEach else {
            throw ZeekFormatError("\(what) \(value) cannot fit in the \(remaining) octets left", offset: start)
        }
        return value
    }

    mutating func brokerValue(depth: Int) throws(ZeekFormatError) -> BrokerValue {
        let start = offset
        let tag = try take(1, "tag")[start]
        switch tag {
        case 0: return .none
        case 1: return .boolean(try take(1, "boolean")[offset - 1] != 0)
        case 2: return .count(try uint64("count"))
        case 3: return .integer(Int64(bitPattern: try uint64("integer")))
        case 4: return .real(Double(bitPattern: try uint64("real")))
        case 5: return .string(Array(try take(try varbyte("string length"), "string")))
        case 6: return .address(Array(try take(16, "address")))
        case 7:
            let network = Array(try take(16, "subnet"))
            let length = try take(1, "subnet length")[offset - 1]
            guard length <= 128 else { throw ZeekFormatError("subnet length \(length)", offset: offset - 1) }
            return .subnet(network, length: length)
        case 8:
            let octets = try take(3, "port")
            guard let transport = ZeekTransport(rawValue: Int32(octets[octets.startIndex + 2])) else {
                throw ZeekFormatError("unknown port protocol", offset: offset - 1)
            }
            return .port(UInt16(octets[octets.startIndex]) << 8 | UInt16(octets[octets.startIndex + 1]), transport)
        case 9: return .timestamp(Int64(bitPattern: try uint64("timestamp")))
        case 10: return .timespan(Int64(bitPattern: try uint64("timespan")))
        case 11: return .enumValue(Array(try take(try varbyte("enum length"), "enum")))
        case 12, 13, 14:
            guard depth < BrokerValue.maxNesting else { throw ZeekFormatError("containers nested too deeply", offset: start) }
            let elementsEach = tag == 13 ? 2 : 1
            let count = try varbyteCount("container size", minimumOctetsEach: elementsEach)
            if tag == 13 {
                var pairs: [(key: BrokerValue, value: BrokerValue)] = []
                pairs.reserveCapacity(count)
                for _ in 0..<count { pairs.append((try brokerValue(depth: depth + 1), try brokerValue(depth: depth + 1))) }
                return .table(pairs)
            }
            var elements: [BrokerValue] = []
            elements.reserveCapacity(count)
            for _ in 0..<count { elements.append(try brokerValue(depth: depth + 1)) }
            return tag == 12 ? .set(elements) : .vector(elements)
        default:
            throw ZeekFormatError("unknown broker data tag \(tag)", offset: start)
        }
    }
}

// MARK: - JSON

extension ZeekEvent {
    /// One JSON object for people debugging a cluster:
    /// `{"topic":…,"sender":…,"event":…,"args":[…],"metadata":[[id,value]…]}`.
    public func json(topic: [UInt8], sender: [UInt8]) -> String {
        var out: [UInt8] = Array("{\"topic\":".utf8)
        ZeekJSONFormat.string(topic[...], into: &out)
        out += Array(",\"sender\":".utf8)
        ZeekJSONFormat.string(sender[...], into: &out)
        out += Array(",\"event\":".utf8)
        ZeekJSONFormat.string(Array(name.utf8)[...], into: &out)
        out += Array(",\"args\":".utf8)
        BrokerValue.vector(arguments).json(into: &out)
        if !metadata.isEmpty {
            out += Array(",\"metadata\":".utf8)
            BrokerValue.vector(metadata.map { .vector([.count($0.id), $0.value]) }).json(into: &out)
        }
        out.append(UInt8(ascii: "}"))
        return String(decoding: out, as: UTF8.self)
    }
}

extension BrokerValue {
    /// JSON: addresses, subnets and ports as Zeek writes them (`10.0.0.1`, `10.0.0.0/8`, `80/tcp`),
    /// times and intervals in seconds, tables as arrays of `[key, value]`.
    func json(into out: inout [UInt8]) {
        func text(_ string: String) { ZeekJSONFormat.string(Array(string.utf8)[...], into: &out) }
        func address(_ octets: [UInt8]) -> ZeekAddress {
            let mapped = octets.count == 16 && octets[0..<10].allSatisfy { $0 == 0 } && octets[10] == 0xFF && octets[11] == 0xFF
            return ZeekAddress(octets: mapped ? Array(octets[12...]) : octets)
        }
        func seconds(_ nanoseconds: Int64) -> String { String(Double(nanoseconds) / 1e9) }
        switch self {
        case .none: out += Array("null".utf8)
        case .boolean(let flag): out += Array((flag ? "true" : "false").utf8)
        case .count(let value): out += Array(String(value).utf8)
        case .integer(let value): out += Array(String(value).utf8)
        case .real(let value): out += Array((value.isFinite ? String(value) : "null").utf8)
        case .string(let bytes), .enumValue(let bytes): ZeekJSONFormat.string(bytes[...], into: &out)
        case .address(let octets): text(address(octets).description)
        case .subnet(let octets, let length):
            let network = address(octets)
            text("\(network)/\(network.octets.count == 4 ? Int(length) - 96 : Int(length))")
        case .port(let number, let transport): text("\(number)/\(transport.name)")
        case .timestamp(let value), .timespan(let value): out += Array(seconds(value).utf8)
        case .set(let elements), .vector(let elements):
            out.append(UInt8(ascii: "["))
            for (index, element) in elements.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                element.json(into: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .table(let pairs):
            out.append(UInt8(ascii: "["))
            for (index, pair) in pairs.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                BrokerValue.vector([pair.key, pair.value]).json(into: &out)
            }
            out.append(UInt8(ascii: "]"))
        }
    }
}
