import Testing
@testable import ZMTPWire

@Suite("Greeting")
struct GreetingTests {
    @Test("encodes the 64-octet layout of RFC 23 with version 3.1")
    func layout() {
        let greeting = Greeting(mechanism: .null, asServer: false).encoded
        #expect(greeting.count == 64)
        #expect(Array(greeting[0..<12]) == [0xFF, 0, 0, 0, 0, 0, 0, 0, 0, 0x7F, 3, 1])
        #expect(Array(greeting[12..<16]) == bytes("NULL"))
        #expect(greeting[16..<64].allSatisfy { $0 == 0 })
        #expect(Greeting(mechanism: .curve, asServer: true).encoded[32] == 1)
    }

    @Test("decodes libzmq's greeting, whose padding octets are not zero")
    func decodesLibzmqGreeting() throws {
        // libzmq pads the signature with 00..01 (libzmq-behaviours.md §8).
        var wire: [UInt8] = [0xFF, 0, 0, 0, 0, 0, 0, 0, 1, 0x7F, 3, 1] + bytes("NULL")
        wire += [UInt8](repeating: 0, count: 64 - wire.count)
        let greeting = try Greeting.decode(wire)
        #expect(greeting.mechanism == .null)
        #expect(greeting.negotiatedVersion == .zmtp31)
        #expect(!greeting.asServer)
    }

    @Test("negotiates 3.0 only for a 3.0 peer; later versions speak 3.1")
    func versionNegotiation() {
        #expect(Greeting(major: 3, minor: 0, mechanism: .null, asServer: false).negotiatedVersion == .zmtp30)
        #expect(Greeting(major: 3, minor: 255, mechanism: .null, asServer: false).negotiatedVersion == .zmtp31)
        #expect(Greeting(major: 4, minor: 0, mechanism: .null, asServer: false).negotiatedVersion == .zmtp31)
    }

    @Test("rejects a first octet other than 0xFF as soon as it arrives")
    func rejectsBadSignature() {
        expectError(.invalidSignature) { try Greeting.validatePrefix(bytes("G")) }
    }

    @Test("rejects ZMTP 1.0 and 2.0 peers", arguments: [
        [0xFF, 0, 0, 0, 0, 0, 0, 0, 1, 0x7E] as [UInt8],  // 1.0: bit 0 of octet 9 clear
        [0xFF, 0, 0, 0, 0, 0, 0, 0, 1, 0x7F, 1],  // 2.0 (revision 1)
        [0xFF, 0, 0, 0, 0, 0, 0, 0, 1, 0x7F, 2],
        [0xFF, 0, 0, 0, 0, 0, 0, 0, 1, 0x7F, 0],
    ])
    func rejectsOldVersions(prefix: [UInt8]) {
        expectError(.unsupportedVersion) { try Greeting.validatePrefix(prefix) }
    }

    @Test("rejects an as-server octet other than 0 or 1")
    func rejectsBadAsServer() {
        var wire = Greeting(mechanism: .null, asServer: false).encoded
        wire[32] = 2
        expectError(.invalidAsServer) { _ = try Greeting.decode(wire) }
    }
}
