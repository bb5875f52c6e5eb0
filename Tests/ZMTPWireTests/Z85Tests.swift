import Testing
import ZMTPFuzzing
@testable import ZMTPWire

@Suite("Z85")
struct Z85Tests {
    @Test("matches RFC 32's test vector")
    func rfcVector() throws {
        let data: [UInt8] = [0x86, 0x4F, 0xD2, 0x6F, 0xB5, 0x59, 0xF7, 0x5B]
        #expect(try Z85.encode(data) == "HelloWorld")
        #expect(try Z85.decode("HelloWorld") == data)
    }

    @Test("round-trips random 32-octet keys as 40 characters")
    func roundTripsKeys() throws {
        var generator = SplitMix64(seed: 99)
        for _ in 0..<200 {
            let key = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let text = try Z85.encode(key)
            #expect(text.utf8.count == 40)
            #expect(try Z85.decode(text) == key)
        }
        #expect(try Z85.encode([0, 0, 0, 0]) == "00000")
        #expect(try Z85.encode([0xFF, 0xFF, 0xFF, 0xFF]) == "%nSc0")
    }

    @Test("rejects lengths that are not multiples of 4 (encode) or 5 (decode)")
    func rejectsBadLengths() {
        expectError(.invalidZ85) { _ = try Z85.encode([1, 2, 3]) }
        expectError(.invalidZ85) { _ = try Z85.decode("Hello1") }
    }

    @Test("rejects characters outside the alphabet", arguments: ["Hello Worl", "Hell\"World", "HelloWorl~", "HelloWörl"])
    func rejectsBadCharacters(text: String) {
        expectError(.invalidZ85) { _ = try Z85.decode(text) }
    }

    @Test("rejects a group whose value exceeds 2^32 - 1")
    func rejectsOverflowingGroup() throws {
        // "%nSc0" is 0xFFFFFFFF; "%nSc1" is one more.
        #expect(try Z85.decode("%nSc0") == [0xFF, 0xFF, 0xFF, 0xFF])
        expectError(.invalidZ85) { _ = try Z85.decode("%nSc1") }
        expectError(.invalidZ85) { _ = try Z85.decode("#####") }
    }
}
