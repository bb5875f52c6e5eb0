import Testing
import ZMTPEngine
import ZMTPWire

#if canImport(Glibc)
import Glibc
#endif

@Suite("Raw streams (the conformance tester's transport)")
struct RawStreamTests {
    static func deadline(_ milliseconds: Int) -> MonotonicInstant { EventLoop.now() + .milliseconds(milliseconds) }

    @Test("connect, write and read both ways; a read with nothing to read times out; a close reads as closed", arguments: ["tcp://127.0.0.1:*", "ipc:///tmp/zmtp-raw-\(getpid()).sock"])
    func roundTrip(endpoint: String) throws {
        let listener = try RawListener(try Endpoint(endpoint))
        if case .tcp(_, let port) = listener.endpoint { #expect(port != 0, "the ephemeral port is resolved") }
        let client = try RawStream.connect(listener.endpoint, timeout: .seconds(2))
        let server = try #require(listener.accept(until: Self.deadline(2000)))
        #expect(client.write([1, 2, 3], until: Self.deadline(1000)))
        #expect(server.read(until: Self.deadline(1000)) == .data([1, 2, 3]))
        #expect(server.write(Array(repeating: 7, count: 100_000), until: Self.deadline(2000)))
        var received = 0
        while received < 100_000, case .data(let bytes) = client.read(until: Self.deadline(1000)) { received += bytes.count }
        #expect(received == 100_000)
        let start = EventLoop.now()
        #expect(client.read(until: Self.deadline(100)) == .timedOut)
        #expect(EventLoop.now() >= start + .milliseconds(90), "waited until the deadline")
        server.close()
        #expect(client.read(until: Self.deadline(1000)) == .closed)
        #expect(listener.accept(until: Self.deadline(50)) == nil, "no second connection came")
    }

    @Test("connecting where nobody listens fails with a message, within the timeout")
    func refused() throws {
        let listener = try RawListener(try Endpoint("tcp://127.0.0.1:*"))
        let endpoint = listener.endpoint
        withExtendedLifetime(listener) {}
        _ = consume listener
        #expect(throws: EngineError.self) { _ = try RawStream.connect(endpoint, timeout: .milliseconds(500)) }
    }
}
