import Testing
import ZeekCluster

@Suite("Zeek events (broker-bin-v1)")
struct BrokerEventTests {
    static func string(_ text: String) -> [UInt8] { [5, UInt8(text.utf8.count)] + Array(text.utf8) }

    /// zeek-wire.md §7.1's worked example: hello("worker-1", "zeromq_worker-1_host_4242_NabC").
    static let hello: [UInt8] = [0x0E, 3] + [2, 0, 0, 0, 0, 0, 0, 0, 1] + [2, 0, 0, 0, 0, 0, 0, 0, 1] + [0x0E, 2]
        + string("Cluster::Backend::ZeroMQ::hello") + [0x0E, 2] + string("worker-1") + string("zeromq_worker-1_host_4242_NabC")

    @Test("the worked example decodes, re-encodes byte for byte, and prints as JSON")
    func workedExample() throws {
        let event = try ZeekEvent.decode(Self.hello)
        #expect(event.name == "Cluster::Backend::ZeroMQ::hello")
        #expect(event.arguments == [.string(Array("worker-1".utf8)), .string(Array("zeromq_worker-1_host_4242_NabC".utf8))])
        #expect(event.metadata.isEmpty)
        #expect(event.encoded() == Self.hello)
        #expect(event.json(topic: Array("zeek.cluster.nodeid.X.".utf8), sender: Array("zeromq_worker-1".utf8))
            == #"{"topic":"zeek.cluster.nodeid.X.","sender":"zeromq_worker-1","event":"Cluster::Backend::ZeroMQ::hello","args":["worker-1","zeromq_worker-1_host_4242_NabC"]}"#)
    }

    @Test("metadata: absent (8.0.1+), an empty vector (8.0.0), and a network timestamp (7.x)")
    func metadata() throws {
        var empty = Self.hello
        empty[21] = 3  // the content vector gets a third element...
        empty += [0x0E, 0]  // ...an empty vector
        #expect(try ZeekEvent.decode(empty).metadata.isEmpty)
        var stamped = Self.hello
        stamped[21] = 3
        stamped += [0x0E, 1, 0x0E, 2, 2, 0, 0, 0, 0, 0, 0, 0, 1, 9, 0, 0, 0, 0, 0x3B, 0x9A, 0xCA, 0x00]
        let event = try ZeekEvent.decode(stamped)
        #expect(event.metadata.map(\.id) == [1])
        #expect(event.metadata.first?.value == .timestamp(1_000_000_000))
        #expect(event.json(topic: [], sender: []).hasSuffix(#""metadata":[[1,1.0]]}"#))
    }

    @Test("every broker type round-trips; addresses, subnets and ports print as Zeek writes them")
    func types() throws {
        let mapped: [UInt8] = [UInt8](repeating: 0, count: 10) + [0xFF, 0xFF, 10, 0, 0, 1]
        let arguments: [BrokerValue] = [
            .none, .boolean(true), .count(7), .integer(-3), .real(0.5), .address(mapped),
            .subnet([UInt8](repeating: 0, count: 10) + [0xFF, 0xFF, 10, 0, 0, 0], length: 104), .port(443, .tcp),
            .timestamp(1_500_000_000), .timespan(-2_000_000_000), .enumValue(Array("Conn::LOG".utf8)),
            .set([.count(1)]), .table([(.string(Array("k".utf8)), .count(2))]), .vector([.vector([])]),
            .string(Array(repeating: UInt8(ascii: "x"), count: 300)),
        ]
        let event = ZeekEvent(name: "e", arguments: arguments)
        #expect(try ZeekEvent.decode(event.encoded()) == event)
        let json = event.json(topic: [], sender: [])
        #expect(json.contains(#"[null,true,7,-3,0.5,"10.0.0.1","10.0.0.0/8","443/tcp",1.5,-2.0,"Conn::LOG",[1],[["k",2]],[[]],"#))
    }

    @Test("malformed payloads are typed errors: truncation, trailing octets, other message types, deep nesting, long varbytes")
    func malformed() {
        for length in 0..<Self.hello.count {
            #expect(throws: ZeekFormatError.self) { try ZeekEvent.decode(Array(Self.hello[..<length])) }
        }
        #expect(throws: ZeekFormatError.self) { try ZeekEvent.decode(Self.hello + [0]) }
        var logWrite = Self.hello
        logWrite[19] = 3  // message type LogWrite
        #expect(throws: ZeekFormatError.self) { try ZeekEvent.decode(logWrite) }
        var deep: [UInt8] = []
        for _ in 0..<100 { deep += [0x0E, 1] }
        deep.append(0)
        #expect(throws: ZeekFormatError.self) { try ZeekEvent.decode(deep) }
        #expect(throws: ZeekFormatError.self) { try ZeekEvent.decode([5, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F]) }
        #expect(throws: ZeekFormatError.self) { try ZeekEvent.decode([0x0E, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F]) }
    }
}
