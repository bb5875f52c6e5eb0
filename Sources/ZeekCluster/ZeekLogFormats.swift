/// Zeek's ASCII (TSV) log format, as its ASCII writer writes it with the default separators, so that
/// `zeek-cut` and every tool that reads Zeek logs read ours (zeek-wire.md §5; Zeek's
/// `threading/formatters/Ascii.cc`):
///
/// - header lines `#separator \x09`, `#set_separator ,`, `#empty_field (empty)`, `#unset_field -`,
///   `#path`, `#open`, `#fields`, `#types`; `#close` when the file is closed;
/// - `-` for an unset field, `(empty)` for an empty string, set or vector; a string that is exactly
///   `-` or `(empty)` has its first character escaped (`\x2d`);
/// - time and interval with 6 decimals; double with up to 6 (trailing zeros dropped, `.0` when whole);
///   a port as its number; set and vector elements separated by `,`;
/// - the separator, the set separator inside containers, backslashes, control characters and octets
///   that are not UTF-8 escaped as `\xNN` (backslash as `\\`).
public enum ZeekASCIIFormat {
    /// The header block for a log of `path` with `fields`, opened at `openTime`
    /// (Zeek writes `%Y-%m-%d-%H-%M-%S`).
    public static func header(path: String, fields: [ZeekLogBatch.Field], openTime: String) -> String {
        [
            "#separator \\x09",
            "#set_separator\t,",
            "#empty_field\t(empty)",
            "#unset_field\t-",
            "#path\t\(path)",
            "#open\t\(openTime)",
            "#fields\t" + fields.map(\.name).joined(separator: "\t"),
            "#types\t" + fields.map { $0.type.description }.joined(separator: "\t"),
        ].joined(separator: "\n") + "\n"
    }

    /// The line that closes a log.
    public static func close(time: String) -> String { "#close\t\(time)\n" }

    /// One record as a line (with its newline).
    public static func line(_ record: [ZeekValue?]) -> [UInt8] {
        var out: [UInt8] = []
        for (index, value) in record.enumerated() {
            if index > 0 { out.append(0x09) }
            render(value, into: &out, inContainer: false)
        }
        out.append(0x0A)
        return out
    }

    static func render(_ value: ZeekValue?, into out: inout [UInt8], inContainer: Bool) {
        guard let value else {
            out.append(UInt8(ascii: "-"))
            return
        }
        switch value {
        case .bool(let flag): out.append(flag ? UInt8(ascii: "T") : UInt8(ascii: "F"))
        case .int(let number): out += Array(String(number).utf8)
        case .count(let number): out += Array(String(number).utf8)
        case .port(let number, _): out += Array(String(number).utf8)
        case .double(let number): out += Array(ZeekNumberFormat.double(number).utf8)
        case .time(let seconds), .interval(let seconds): out += Array(ZeekNumberFormat.fixed6(seconds).utf8)
        case .addr(let address): out += Array(address.description.utf8)
        case .subnet(let address, let prefix): out += Array("\(address)/\(prefix)".utf8)
        case .string(let bytes), .enumeration(let bytes), .function(let bytes), .file(let bytes):
            if bytes.isEmpty {
                out += Array("(empty)".utf8)
            } else if bytes == Array("-".utf8) || bytes == Array("(empty)".utf8) {
                out += Array("\\x".utf8) + hex(bytes[0])
                escape(bytes.dropFirst(), into: &out, inContainer: inContainer)
            } else {
                escape(bytes[...], into: &out, inContainer: inContainer)
            }
        case .set(let elements), .vector(let elements):
            if elements.isEmpty {
                out += Array("(empty)".utf8)
                return
            }
            for (index, element) in elements.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                render(element, into: &out, inContainer: true)
            }
        }
    }

    static func hex(_ byte: UInt8) -> [UInt8] {
        let digits = Array("0123456789abcdef".utf8)
        return [digits[Int(byte >> 4)], digits[Int(byte & 0x0F)]]
    }

    /// Copies `bytes`, escaping what would break the line or the columns.
    static func escape(_ bytes: ArraySlice<UInt8>, into out: inout [UInt8], inContainer: Bool) {
        var index = bytes.startIndex
        while index < bytes.endIndex {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\\") {
                out += [UInt8(ascii: "\\"), UInt8(ascii: "\\")]
                index += 1
            } else if byte < 0x20 || byte == 0x7F || (inContainer && byte == UInt8(ascii: ",")) {
                out += Array("\\x".utf8) + hex(byte)
                index += 1
            } else if byte < 0x80 {
                out.append(byte)
                index += 1
            } else if let length = UTF8Validation.sequenceLength(bytes, at: index) {
                out += bytes[index..<(index + length)]
                index += length
            } else {
                out += Array("\\x".utf8) + hex(byte)
                index += 1
            }
        }
    }
}

/// Zeek's JSON log format (its JSON writer with epoch timestamps): one object per record, fields by
/// name (dotted, as flattened), unset fields left out, ports as numbers, addresses and subnets as
/// strings, sets and vectors as arrays; octets that are not UTF-8 appear as `\\xNN` inside strings.
public enum ZeekJSONFormat {
    /// One record as a line (with its newline).
    public static func line(_ record: [ZeekValue?], fields: [ZeekLogBatch.Field]) -> [UInt8] {
        var out: [UInt8] = [UInt8(ascii: "{")]
        var first = true
        for (value, field) in zip(record, fields) {
            guard let value else { continue }
            if !first { out.append(UInt8(ascii: ",")) }
            first = false
            string(Array(field.name.utf8)[...], into: &out)
            out.append(UInt8(ascii: ":"))
            render(value, into: &out)
        }
        out += [UInt8(ascii: "}"), 0x0A]
        return out
    }

    static func render(_ value: ZeekValue?, into out: inout [UInt8]) {
        guard let value else {
            out += Array("null".utf8)
            return
        }
        switch value {
        case .bool(let flag): out += Array((flag ? "true" : "false").utf8)
        case .int(let number): out += Array(String(number).utf8)
        case .count(let number): out += Array(String(number).utf8)
        case .port(let number, _): out += Array(String(number).utf8)
        case .double(let number), .time(let number), .interval(let number):
            out += Array((number.isFinite ? String(number) : "null").utf8)
        case .addr(let address): string(Array(address.description.utf8)[...], into: &out)
        case .subnet(let address, let prefix): string(Array("\(address)/\(prefix)".utf8)[...], into: &out)
        case .string(let bytes), .enumeration(let bytes), .function(let bytes), .file(let bytes):
            string(bytes[...], into: &out)
        case .set(let elements), .vector(let elements):
            out.append(UInt8(ascii: "["))
            for (index, element) in elements.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                render(element, into: &out)
            }
            out.append(UInt8(ascii: "]"))
        }
    }

    static func string(_ bytes: ArraySlice<UInt8>, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        var index = bytes.startIndex
        while index < bytes.endIndex {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "\""): out += Array("\\\"".utf8)
            case UInt8(ascii: "\\"): out += Array("\\\\".utf8)
            case 0x0A: out += Array("\\n".utf8)
            case 0x0D: out += Array("\\r".utf8)
            case 0x09: out += Array("\\t".utf8)
            case 0..<0x20, 0x7F: out += Array("\\u00".utf8) + ZeekASCIIFormat.hex(byte)
            case 0x20..<0x80: out.append(byte)
            default:
                if let length = UTF8Validation.sequenceLength(bytes, at: index) {
                    out += bytes[index..<(index + length)]
                    index += length
                    continue
                }
                out += Array("\\\\x".utf8) + ZeekASCIIFormat.hex(byte)
            }
            index += 1
        }
        out.append(UInt8(ascii: "\""))
    }
}

/// Number rendering as Zeek's formatters do it, without Foundation.
enum ZeekNumberFormat {
    /// `%.6f`.
    static func fixed6(_ value: Double) -> String {
        guard value.isFinite else { return value.isNaN ? "nan" : (value < 0 ? "-inf" : "inf") }
        let scaled = (abs(value) * 1_000_000).rounded()
        guard scaled < 9.0e18 else { return String(value) }  // beyond Int64: rare, and Zeek's own output is no better
        let micros = Int64(scaled)
        var fraction = String(micros % 1_000_000)
        while fraction.count < 6 { fraction = "0" + fraction }
        return (value < 0 && micros != 0 ? "-" : "") + String(micros / 1_000_000) + "." + fraction
    }

    /// Up to 6 decimals, trailing zeros dropped, `.0` for a whole number (Zeek's `ODesc::Add(double)`).
    static func double(_ value: Double) -> String {
        var text = fixed6(value)
        guard text.contains(".") else { return text }
        while text.hasSuffix("0") { text.removeLast() }
        if text.hasSuffix(".") { text += "0" }
        return text
    }
}

enum UTF8Validation {
    /// The length of the well-formed UTF-8 sequence that starts at `index` (a lead octet ≥ 0x80), or
    /// nil when it is not one.
    static func sequenceLength(_ bytes: ArraySlice<UInt8>, at index: Int) -> Int? {
        let lead = bytes[index]
        let length: Int
        let minimum: UInt32
        switch lead {
        case 0xC2...0xDF: (length, minimum) = (2, 0x80)
        case 0xE0...0xEF: (length, minimum) = (3, 0x800)
        case 0xF0...0xF4: (length, minimum) = (4, 0x10000)
        default: return nil
        }
        guard index + length <= bytes.endIndex else { return nil }
        var scalar = UInt32(lead) & (0xFF >> (length + 1))
        for offset in 1..<length {
            let continuation = bytes[index + offset]
            guard continuation & 0xC0 == 0x80 else { return nil }
            scalar = scalar << 6 | UInt32(continuation & 0x3F)
        }
        guard scalar >= minimum, scalar <= 0x10FFFF, !(0xD800...0xDFFF).contains(scalar) else { return nil }
        return length
    }
}
