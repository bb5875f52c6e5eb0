#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import ZMTPEngine
import ZMTPWire

@Suite("Endpoints")
struct EndpointTests {
    @Test("parses tcp, IPv6, wildcard, ephemeral and ipc endpoints")
    func parses() throws {
        #expect(try Endpoint("tcp://127.0.0.1:5555") == .tcp(host: "127.0.0.1", port: 5555))
        #expect(try Endpoint("tcp://[::1]:5556") == .tcp(host: "::1", port: 5556))
        #expect(try Endpoint("tcp://*:*") == .tcp(host: "*", port: 0))
        #expect(try Endpoint("tcp://localhost:0") == .tcp(host: "localhost", port: 0))
        #expect(try Endpoint("ipc:///tmp/x.sock") == .ipc(path: "/tmp/x.sock"))
        #expect(Endpoint.tcp(host: "::1", port: 1).description == "tcp://[::1]:1")
    }

    @Test("rejects malformed endpoints with a message", arguments: [
        "tcp://127.0.0.1", "tcp://:5555", "tcp://host:65536", "tcp://host:abc", "udp://x:1", "ipc://",
        "ipc:///" + String(repeating: "p", count: 200),
    ])
    func rejects(text: String) {
        #expect(throws: EngineError.self) { try Endpoint(text) }
    }

    @Test("an unresolvable host is a clear error, not a crash")
    func unresolvable() {
        #expect(throws: EngineError.self) {
            try SocketAddress.resolve(host: "no-such-host.invalid", port: 1, ipv6: false, passive: false)
        }
    }
}

@Suite("Timer queue and ring queue")
struct QueueTests {
    @Test("timers fire in deadline order, cancelled ones never, and the timeout rounds up")
    func timers() {
        var queue = TimerQueue()
        nonisolated(unsafe) var fired: [Int] = []
        let base = MonotonicInstant(nanoseconds: 1_000_000_000)
        _ = queue.insert(base + .milliseconds(30)) { fired.append(3) }
        let cancelled = queue.insert(base + .milliseconds(10)) { fired.append(1) }
        _ = queue.insert(base + .milliseconds(20)) { fired.append(2) }
        queue.cancel(cancelled)
        #expect(queue.millisecondsUntilNext(now: base) == 20)
        #expect(queue.millisecondsUntilNext(now: base + .microseconds(19_500)) == 1)
        for task in queue.takeDue(now: base + .milliseconds(25)) { task() }
        #expect(fired == [2])
        for task in queue.takeDue(now: base + .seconds(1)) { task() }
        #expect(fired == [2, 3])
        #expect(queue.millisecondsUntilNext(now: base) == -1)
    }

    @Test("the ring queue keeps FIFO order across growth and wrap-around")
    func ring() {
        var queue = RingQueue<Int>()
        var expected: [Int] = []
        var next = 0
        for round in 0..<50 {
            for _ in 0..<(round % 7 + 1) { queue.push(next); expected.append(next); next += 1 }
            for _ in 0..<(round % 5) { #expect(queue.pop() == (expected.isEmpty ? nil : expected.removeFirst())) }
        }
        while let value = queue.pop() { #expect(value == expected.removeFirst()) }
        #expect(expected.isEmpty && queue.isEmpty)
    }
}

@Suite("Descriptor limit")
struct DescriptorLimitTests {
    // Lowering the limit here would starve tests running in parallel in this process; the tool test
    // "with a soft limit of 30 and a hard limit of 40 …" checks the raise from below.
    @Test("raiseSoftLimit leaves the soft limit at the hard limit")
    func raises() throws {
        let raised = DescriptorLimit.raiseSoftLimit()
        let now = DescriptorLimit.current
        #expect(raised == now.soft)
        if let hard = now.hard { #expect(now.soft == hard || now.soft == nil) }
    }
}
