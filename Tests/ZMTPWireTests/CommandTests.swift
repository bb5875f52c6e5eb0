import Testing
@testable import ZMTPWire

@Suite("Commands")
struct CommandTests {
    @Test("round-trips every command", arguments: [
        Command.ready(try! Metadata([("Socket-Type", bytes("PUB")), ("X-Zeek", [0, 1, 2])])),
        .error("invalid-socket-type"),
        .error(""),
        .error(reason: [0x98, 0x9A, 0x93, 0x91, 0x6F]),  // not UTF-8: kept as octets (a fuzzer find)
        .subscribe(topic: bytes("zeek.cluster.")),
        .subscribe(topic: []),
        .cancel(topic: [0, 0xFF]),
        .ping(ttlDeciseconds: 300, context: bytes("0123456789abcdef")),
        .ping(ttlDeciseconds: 0, context: []),
        .pong(context: bytes("ctx")),
        .other(name: "HELLO", data: [UInt8](repeating: 0, count: 194)),
    ])
    func roundTrips(command: Command) throws {
        let body = try command.encodedBody()
        #expect(try Command.decode(body) == command)
    }

    @Test("encodes SUBSCRIBE exactly as RFC 37 shows")
    func subscribeWireForm() throws {
        #expect(try Command.subscribe(topic: bytes("A")).encodedBody() == [9] + bytes("SUBSCRIBE") + bytes("A"))
        #expect(try Command.ping(ttlDeciseconds: 0x0102, context: [9]).encodedBody() == [4] + bytes("PING") + [1, 2, 9])
    }

    @Test("rejects a command name of zero length")
    func rejectsEmptyName() {
        expectError(.malformedCommand) { _ = try Command.decode([0, 1, 2]) }
        expectError(.malformedCommand) { _ = try Command.decode([]) }
    }

    @Test("rejects command names with characters other than letters (RFC 37: ALPHA)")
    func rejectsNonLetterNames() {
        expectError(.malformedCommand) { _ = try Command.decode([5] + bytes("READ1")) }
        expectError(.malformedCommand) { _ = try Command.decode([2] + bytes("X-")) }
    }

    @Test("rejects a name length that overruns the body")
    func rejectsOverrunningName() {
        expectError(.malformedCommand) { _ = try Command.decode([6] + bytes("READY")) }
    }

    @Test("rejects ERROR with trailing bytes or a short reason")
    func rejectsMalformedError() {
        expectError(.malformedCommand) { _ = try Command.decode([5] + bytes("ERROR") + [2] + bytes("abc")) }
        expectError(.malformedCommand) { _ = try Command.decode([5] + bytes("ERROR") + [4] + bytes("abc")) }
        expectError(.malformedCommand) { _ = try Command.decode([5] + bytes("ERROR")) }
    }

    @Test("rejects a PING without a full TTL or with more than 16 octets of context")
    func rejectsMalformedPing() {
        expectError(.malformedCommand) { _ = try Command.decode([4] + bytes("PING")) }
        expectError(.malformedCommand) { _ = try Command.decode([4] + bytes("PING") + [1]) }
        expectError(.malformedCommand) { _ = try Command.decode([4] + bytes("PING") + [0, 1] + [UInt8](repeating: 0, count: 17)) }
        expectError(.malformedCommand) { _ = try Command.decode([4] + bytes("PONG") + [UInt8](repeating: 0, count: 17)) }
    }

    @Test("refuses to encode values the grammar cannot carry")
    func refusesUnencodableValues() {
        let tooLong = String(repeating: "x", count: 256)
        let error = expectError(.invalidArgument) { _ = try Command.error(tooLong).encodedBody() }
        #expect(error?.blame == .local)
        expectError(.invalidArgument) { _ = try Command.pong(context: [UInt8](repeating: 0, count: 17)).encodedBody() }
        expectError(.invalidArgument) { _ = try Command.other(name: "", data: []).encodedBody() }
    }
}

@Suite("Metadata")
struct MetadataTests {
    @Test("encodes properties as RFC 37 lays them out")
    func wireLayout() throws {
        let metadata = try Metadata([("Socket-Type", bytes("PULL"))])
        var out: [UInt8] = []
        metadata.encode(into: &out)
        #expect(out == [11] + bytes("Socket-Type") + [0, 0, 0, 4] + bytes("PULL"))
        #expect(try Metadata.decode(out) == metadata)
        #expect(metadata.encodedLength == out.count)
    }

    @Test("looks names up case-insensitively")
    func caseInsensitiveLookup() throws {
        let metadata = try Metadata.decode([11] + bytes("socket-TYPE") + [0, 0, 0, 3] + bytes("SUB"))
        #expect(metadata.socketType == "SUB")
        #expect(metadata["SOCKET-type"] == bytes("SUB"))
    }

    @Test("accepts an empty list and empty values")
    func emptyListAndValues() throws {
        #expect(try Metadata.decode([]).properties.isEmpty)
        let metadata = try Metadata.decode([1] + bytes("A") + [0, 0, 0, 0])
        #expect(metadata["a"] == [])
    }

    @Test("rejects a value length that overruns the body")
    func rejectsOverrunningValue() {
        // libzmq accepts this when no value octets follow (libzmq-behaviours.md §10); we do not.
        expectError(.malformedMetadata) { _ = try Metadata.decode([1] + bytes("A") + [0, 0, 0, 1]) }
        expectError(.malformedMetadata) { _ = try Metadata.decode([1] + bytes("A") + [0xFF, 0xFF, 0xFF, 0xFF, 1]) }
        // RFC 37 caps values at 2^31-1 octets.
        let error = expectError(.malformedMetadata) { _ = try Metadata.decode([1] + bytes("A") + [0x80, 0, 0, 0]) }
        #expect(error?.reason.contains("2^31-1") == true)
    }

    @Test("rejects truncated headers, zero-length names and invalid name characters")
    func rejectsMalformedNames() {
        expectError(.malformedMetadata) { _ = try Metadata.decode([0, 0, 0, 0, 0]) }
        expectError(.malformedMetadata) { _ = try Metadata.decode([5] + bytes("AB")) }
        expectError(.malformedMetadata) { _ = try Metadata.decode([1] + bytes("A") + [0, 0]) }
        expectError(.malformedMetadata) { _ = try Metadata.decode([2] + bytes("A ") + [0, 0, 0, 0]) }
        expectError(.malformedMetadata) { _ = try Metadata.decode([2] + [0xC3, 0xA9] + [0, 0, 0, 0]) }
    }

    @Test("refuses to build invalid names locally")
    func refusesInvalidLocalNames() {
        let error = expectError(.invalidArgument) { _ = try Metadata([("bad name", [])]) }
        #expect(error?.blame == .local)
        expectError(.invalidArgument) { _ = try Metadata([(String(repeating: "a", count: 256), [])]) }
        #expect(throws: Never.self) { try Metadata([(String(repeating: "a", count: 255), [])]) }
    }
}
