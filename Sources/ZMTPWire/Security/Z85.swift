/// Z85, ZeroMQ's base-85 text encoding for binary keys (RFC 32).
///
/// Every 4 octets (a big-endian 32-bit value) become 5 characters from an 85-character alphabet, most
/// significant digit first. So binary input must be a multiple of 4 octets and text a multiple of 5
/// characters. A 32-octet CURVE key is 40 characters.
///
/// Decoding rejects characters outside the alphabet and 5-character groups whose value exceeds
/// 2^32 - 1 (85^5 > 2^32, so such groups exist; RFC 32's reference code silently wraps them).
public enum Z85 {
    /// The alphabet of RFC 32, digit value = index.
    static let alphabet: [UInt8] = Array(
        "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#".utf8)

    /// Character (ASCII) to digit value, 0xFF for characters outside the alphabet.
    static let decodeTable: [UInt8] = {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (value, character) in alphabet.enumerated() { table[Int(character)] = UInt8(value) }
        return table
    }()

    /// Encodes `bytes`, whose count must be a multiple of 4.
    /// - Throws: `invalidZ85` (blame `.local`) for any other length.
    public static func encode(_ bytes: some Collection<UInt8>) throws(ZMTPError) -> String {
        guard bytes.count % 4 == 0 else {
            throw .local(.invalidZ85, "Z85 encodes a multiple of 4 octets; got \(bytes.count)")
        }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count / 4 * 5)
        var iterator = bytes.makeIterator()
        while let a = iterator.next(), let b = iterator.next(), let c = iterator.next(), let d = iterator.next() {
            var value = UInt32(a) << 24 | UInt32(b) << 16 | UInt32(c) << 8 | UInt32(d)
            var group = [UInt8](repeating: 0, count: 5)
            for index in stride(from: 4, through: 0, by: -1) {
                group[index] = alphabet[Int(value % 85)]
                value /= 85
            }
            out.append(contentsOf: group)
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Decodes Z85 `text`, whose length must be a multiple of 5.
    /// - Throws: `invalidZ85` (blame `.local`) for a bad length, a character outside the alphabet, or
    ///   a group above 2^32 - 1.
    public static func decode(_ text: some StringProtocol) throws(ZMTPError) -> [UInt8] {
        let characters = Array(text.utf8)
        guard characters.count % 5 == 0 else {
            throw .local(.invalidZ85, "Z85 text must be a multiple of 5 characters; got \(characters.count)")
        }
        var out: [UInt8] = []
        out.reserveCapacity(characters.count / 5 * 4)
        var index = 0
        while index < characters.count {
            var value: UInt64 = 0
            for offset in 0..<5 {
                let character = characters[index + offset]
                let digit = decodeTable[Int(character)]
                guard digit != 0xFF else {
                    throw .local(.invalidZ85, "character \(describe(character)) at offset \(index + offset) is not in the Z85 alphabet")
                }
                value = value * 85 + UInt64(digit)
            }
            guard value <= UInt64(UInt32.max) else {
                throw .local(.invalidZ85, "Z85 group at offset \(index) exceeds 2^32 - 1")
            }
            out.append(UInt8(truncatingIfNeeded: value >> 24))
            out.append(UInt8(truncatingIfNeeded: value >> 16))
            out.append(UInt8(truncatingIfNeeded: value >> 8))
            out.append(UInt8(truncatingIfNeeded: value))
            index += 5
        }
        return out
    }

    private static func describe(_ character: UInt8) -> String {
        (0x21..<0x7F).contains(character) ? "'\(UnicodeScalar(character))'" : "0x\(String(character, radix: 16))"
    }
}
