import Testing
import ZeekCluster

@Suite("Zeek log batches (zeek-bin-serializer) and log formats")
struct ZeekLogBatchTests {
    /// zeek-wire.md §7.2's worked example (Zeek's own doctest vector).
    static let example = ZeekLogBatch(
        stream: "Test::LOG", writer: "Log::WRITER_ASCII", filter: "default", path: "test",
        fields: [
            .init(name: "ts", type: .time), .init(name: "uid", type: .string), .init(name: "id.orig_h", type: .addr),
            .init(name: "id.orig_p", type: .port), .init(name: "ok", type: .bool),
            .init(name: "n", type: .count, optional: true), .init(name: "tags", type: .set(.string)),
        ],
        records: [[
            .time(1.5), .string(Array("C1".utf8)), .addr(ZeekAddress(octets: [10, 0, 0, 1])), .port(80, .tcp), .bool(true),
            nil, .set([.string(Array("a".utf8))]),
        ]])

    static func hex(_ text: String) -> [UInt8] {
        let digits = Array(text.filter { !$0.isWhitespace })
        return stride(from: 0, to: digits.count, by: 2).map { UInt8(String(digits[$0...$0 + 1]), radix: 16) ?? 0 }
    }

    @Test("the worked example encodes to the documented 313 octets and decodes back")
    func workedExample() throws {
        let bytes = Self.example.encoded()
        #expect(bytes.count == 313)
        #expect(Array(bytes[0x00..<0x0D]) == Self.hex("00000009 54657374 3a3a4c4f 47"))
        #expect(Array(bytes[0x35..<0x39]) == [0, 0, 0, 7], "num_fields")
        #expect(Array(bytes[0x98..<0xA7]) == Self.hex("00 00000001 6e 00000003 00000000 01"), "n: COUNT, optional")
        #expect(Array(bytes[0xA7..<0xB9]) == Self.hex("00 00000004 74616773 0000000e 00000007 00"), "tags: set of string")
        #expect(Array(bytes[0xB9..<0xBD]) == [0, 0, 0, 1], "num_records")
        #expect(Array(bytes[0xBD..<0xCE]) == Self.hex("00000005 00000000 01 3ff8000000000000"), "ts = 1.5")
        #expect(Array(bytes[0xDD..<0xEB]) == Self.hex("0000000b 00000000 01 04 0a000001"), "10.0.0.1")
        #expect(Array(bytes[0xEB..<0x100]) == Self.hex("0000000a 00000000 01 0000000000000050 00000001"), "80/tcp")
        #expect(Array(bytes[0x111..<0x11A]) == Self.hex("00000003 00000000 00"), "n unset: nothing follows")
        #expect(Array(bytes[0x11A...]) == Self.hex("0000000e 00000000 01 0000000000000001 00000007 00000000 01 00000001 61"))
        #expect(try ZeekLogBatch.decode(bytes) == Self.example)
    }

    @Test("ASCII: Zeek's header, types and value rendering, so zeek-cut reads it")
    func ascii() {
        let header = ZeekASCIIFormat.header(path: "test", fields: Self.example.fields, openTime: "2026-11-26-12-00-00")
        #expect(header.split(separator: "\n").map(String.init) == [
            "#separator \\x09", "#set_separator\t,", "#empty_field\t(empty)", "#unset_field\t-", "#path\ttest",
            "#open\t2026-11-26-12-00-00", "#fields\tts\tuid\tid.orig_h\tid.orig_p\tok\tn\ttags",
            "#types\ttime\tstring\taddr\tport\tbool\tcount\tset[string]",
        ])
        #expect(String(decoding: ZeekASCIIFormat.line(Self.example.records[0]), as: UTF8.self) == "1.500000\tC1\t10.0.0.1\t80\tT\t-\ta\n")
        let tricky: [ZeekValue?] = [
            .string(Array("-".utf8)), .string([]), .string(Array("a\tb\\c\u{1}é".utf8)), .set([]),
            .vector([.string(Array("x,y".utf8)), nil]), .double(2), .double(0.1234567), .interval(-0.5),
            .subnet(ZeekAddress(octets: [192, 168, 0, 0]), prefixLength: 16),
            .addr(ZeekAddress(octets: [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1])), .string([0xFF]),
        ]
        #expect(String(decoding: ZeekASCIIFormat.line(tricky), as: UTF8.self)
            == "\\x2d\t(empty)\ta\\x09b\\\\c\\x01é\t(empty)\tx\\x2cy,-\t2.0\t0.123457\t-0.500000\t192.168.0.0/16\t2001:db8::1\t\\xff\n")
    }

    @Test("JSON: one object per record, unset fields left out")
    func json() {
        let line = ZeekJSONFormat.line(Self.example.records[0], fields: Self.example.fields)
        #expect(String(decoding: line, as: UTF8.self)
            == #"{"ts":1.5,"uid":"C1","id.orig_h":"10.0.0.1","id.orig_p":80,"ok":true,"tags":["a"]}"# + "\n")
        let escaped = ZeekJSONFormat.line([.string(Array("q\"\\\n".utf8) + [0xFF])], fields: [.init(name: "s", type: .string)])
        #expect(String(decoding: escaped, as: UTF8.self) == #"{"s":"q\"\\\n\\xff"}"# + "\n")
    }

    @Test("IPv4 subnets carry 96 + prefix on the wire; IPv6 addresses are written in RFC 5952 form")
    func addresses() throws {
        let batch = ZeekLogBatch(
            stream: "S", writer: "W", filter: "f", path: "p",
            fields: [.init(name: "net", type: .subnet), .init(name: "a", type: .addr), .init(name: "v", type: .vector(.count))],
            records: [[
                .subnet(ZeekAddress(octets: [10, 0, 0, 0]), prefixLength: 8),
                .addr(ZeekAddress(octets: [0xfe, 0x80] + [UInt8](repeating: 0, count: 13) + [1])),
                .vector([.count(1), nil, .count(3)]),
            ]])
        let bytes = batch.encoded()
        #expect(try ZeekLogBatch.decode(bytes) == batch)
        #expect(String(decoding: ZeekASCIIFormat.line(batch.records[0]), as: UTF8.self) == "10.0.0.0/8\tfe80::1\t1,-,3\n")
    }

    @Test("truncated, lying and padded batches are typed errors; no prefix of a valid batch decodes")
    func malformed() {
        let bytes = Self.example.encoded()
        for length in 0..<bytes.count {
            #expect(throws: ZeekFormatError.self) { try ZeekLogBatch.decode(Array(bytes[..<length])) }
        }
        #expect(throws: ZeekFormatError.self) { try ZeekLogBatch.decode(bytes + [0]) }
        // A field count of 2^32-1 is refused before anything is allocated for it.
        var lying = bytes
        lying.replaceSubrange(0x35..<0x39, with: [0xFF, 0xFF, 0xFF, 0xFF])
        #expect(throws: ZeekFormatError.self) { try ZeekLogBatch.decode(lying) }
        // A negative string length, and a value whose type contradicts its field.
        var negative = bytes
        negative.replaceSubrange(0..<4, with: [0x80, 0, 0, 0])
        #expect(throws: ZeekFormatError.self) { try ZeekLogBatch.decode(negative) }
        var mistyped = bytes
        mistyped[0xC0] = 0x07  // ts declared time, value says string
        #expect(throws: ZeekFormatError.self) { try ZeekLogBatch.decode(mistyped) }
    }

    @Test("random corruption of a valid batch never crashes the decoder")
    func corruption() {
        let bytes = Self.example.encoded()
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        var decoded = 0
        for _ in 0..<20_000 {
            var mutated = bytes
            for _ in 0..<(1 + next() % 4) { mutated[Int(next() % UInt64(mutated.count))] = UInt8(truncatingIfNeeded: next()) }
            if (try? ZeekLogBatch.decode(mutated)) != nil { decoded += 1 }
        }
        #expect(decoded < 20_000, "some corruptions must be caught")
    }
}
