import ArgumentParser
import ZMTPWire

/// `zmtp z85 encode HEX` and `zmtp z85 decode TEXT` (RFC 32).
struct Z85Command: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "z85",
        abstract: "Convert between hexadecimal and Z85 text (RFC 32), e.g. for CURVE keys.",
        subcommands: [Encode.self, Decode.self]
    )

    func run() throws {
        throw ValidationError("missing subcommand: encode or decode")
    }

    struct Encode: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Encode hexadecimal bytes (a multiple of 4 bytes) as Z85 text.",
            discussion: "Example: zmtp z85 encode 864fd26fb559f75b  prints  HelloWorld"
        )

        @Argument(help: "The bytes in hexadecimal, e.g. 864fd26fb559f75b.")
        var hex: String

        func run() throws {
            let data = try Hex.decode(hex)
            do {
                print(try Z85.encode(data))
            } catch {
                throw ToolError(error.reason)
            }
        }
    }

    struct Decode: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Decode Z85 text (a multiple of 5 characters) and print it as lowercase hexadecimal."
        )

        @Argument(help: "The Z85 text, e.g. HelloWorld.")
        var text: String

        func run() throws {
            do {
                print(Hex.encode(try Z85.decode(text)))
            } catch {
                throw ToolError(error.reason)
            }
        }
    }
}

/// Hexadecimal text, as the tool reads and prints it.
enum Hex {
    static func encode(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Parses hex digits (either case, optional `0x` prefix).
    static func decode(_ text: String) throws(ToolError) -> [UInt8] {
        var digits = Array(text.utf8)
        if digits.count >= 2, digits[0] == UInt8(ascii: "0"), digits[1] | 0x20 == UInt8(ascii: "x") {
            digits.removeFirst(2)
        }
        guard digits.count % 2 == 0 else { throw ToolError("hex input has an odd number of digits (\(digits.count))") }
        var out: [UInt8] = []
        out.reserveCapacity(digits.count / 2)
        var index = 0
        while index < digits.count {
            guard let high = value(digits[index]), let low = value(digits[index + 1]) else {
                throw ToolError("'\(text)' is not hexadecimal")
            }
            out.append(high << 4 | low)
            index += 2
        }
        return out
    }

    private static func value(_ digit: UInt8) -> UInt8? {
        switch digit {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return digit - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return digit - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return digit - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
