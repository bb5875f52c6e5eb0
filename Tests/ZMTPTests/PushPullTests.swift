import Foundation
import Testing
import ZMTP

@Suite("PUSH/PULL sockets over the engine", .serialized, .timeLimit(.minutes(1)))
struct PushPullTests {
    static func options(_ adjust: (inout SocketOptions) -> Void = { _ in }) -> SocketOptions {
        var options = SocketOptions()
        options.receiveTimeout = .seconds(10)
        options.sendTimeout = .seconds(10)
        adjust(&options)
        return options
    }

    @Test("a PUSH delivers multipart messages to a PULL over tcp, ipc and IPv6", arguments: [
        "tcp://127.0.0.1:*", "ipc:///tmp/zmtp-test-\(getpid()).sock", "tcp://[::1]:*",
    ])
    func pushToPull(endpoint: String) throws {
        let context = try Context()
        defer { context.shutdown() }
        let pull = try context.socket(.pull, options: Self.options { $0.ipv6 = true })
        let push = try context.socket(.push, options: Self.options { $0.ipv6 = true })
        let bound = try pull.bind(endpoint)
        try push.connect(bound)
        let big = [UInt8](repeating: 7, count: 1 << 20)
        let messages = [Message(Array("a".utf8), [], Array("c".utf8)), Message(big), Message([])]
        for message in messages { try push.send(message) }
        for message in messages { #expect(try pull.receive() == message) }
        push.close()
        pull.close()
    }

    @Test("connecting before the peer binds works: the connector retries")
    func connectBeforeBind() throws {
        let context = try Context()
        defer { context.shutdown() }
        let path = "ipc:///tmp/zmtp-late-\(getpid()).sock"
        let push = try context.socket(.push, options: Self.options())
        try push.connect(path)
        Thread.sleep(forTimeInterval: 0.3)
        let pull = try context.socket(.pull, options: Self.options())
        try pull.bind(path)
        try push.send(Message(Array("late".utf8)))
        #expect(try pull.receive() == Message(Array("late".utf8)))
        push.close()
        pull.close()
    }

    @Test("a PUSH round-robins over several PULLs, and a PULL fair-queues several PUSHes")
    func roundRobinAndFairQueue() throws {
        let context = try Context()
        defer { context.shutdown() }
        let pullA = try context.socket(.pull, options: Self.options())
        let pullB = try context.socket(.pull, options: Self.options())
        let push = try context.socket(.push, options: Self.options())
        try push.connect(try pullA.bind("tcp://127.0.0.1:*"))
        try push.connect(try pullB.bind("tcp://127.0.0.1:*"))
        // Round robin is over connected peers: wait for both.
        #expect(push.waitForPeers(2, timeout: .seconds(5)))
        try push.send(Message([0]))
        try push.send(Message([1]))
        let first = [try pullA.receive(), try pullB.receive()]
        #expect(Set(first.map { $0.frames[0][0] }) == [0, 1], "one each")
        for index in 2..<10 { try push.send(Message([UInt8(index)])) }
        var countA = 0
        var countB = 0
        for _ in 0..<4 { _ = try pullA.receive(); countA += 1 }
        for _ in 0..<4 { _ = try pullB.receive(); countB += 1 }
        #expect(countA == 4 && countB == 4)

        let sink = try context.socket(.pull, options: Self.options())
        let address = try sink.bind("tcp://127.0.0.1:*")
        let pushers = try (0..<3).map { _ in try context.socket(.push, options: Self.options()) }
        for pusher in pushers { try pusher.connect(address) }
        #expect(sink.waitForPeers(3, timeout: .seconds(5)))
        for (index, pusher) in pushers.enumerated() {
            for round in 0..<5 { try pusher.send(Message([UInt8(index), UInt8(round)])) }
        }
        var received: [[UInt8]] = []
        for _ in 0..<15 { received.append(try sink.receive().frames[0]) }
        for index in 0..<3 {
            #expect(received.filter { $0[0] == UInt8(index) }.map { $0[1] } == [0, 1, 2, 3, 4], "in order per peer")
        }
        for socket in pushers + [push, pullA, pullB, sink] { socket.close() }
    }

    @Test("send blocks and times out when no peer has room; trySend reports would-block as false")
    func highWaterMark() throws {
        let context = try Context()
        defer { context.shutdown() }
        let push = try context.socket(.push, options: Self.options { $0.sendTimeout = .milliseconds(200) })
        #expect(throws: SocketError.timedOut) { try push.send(Message([1])) }
        #expect(try push.trySend(Message([1])) == false)
        let pull = try context.socket(.pull, options: Self.options { $0.receiveHighWaterMark = 2; $0.receiveTimeout = .milliseconds(200) })
        #expect(throws: SocketError.timedOut) { _ = try pull.receive() }
        push.close()
        pull.close()
    }

    @Test("a stalled PULL bounds what a fast PUSH can queue, and nothing is lost when it resumes")
    func stalledConsumerBoundsMemory() throws {
        let context = try Context()
        defer { context.shutdown() }
        let pull = try context.socket(.pull, options: Self.options { $0.receiveHighWaterMark = 10 })
        let push = try context.socket(.push, options: Self.options { $0.sendHighWaterMark = 10 })
        try push.connect(try pull.bind("tcp://127.0.0.1:*"))
        #expect(push.waitForPeers(1, timeout: .seconds(5)))
        let payload = [UInt8](repeating: 1, count: 1024)
        var sent = 0
        var idle = 0
        // Send until the send side reports would-block for a while (the kernel buffers are full too).
        while idle < 50 && sent < 100_000 {
            if try push.trySend(Message(payload + withUnsafeBytes(of: UInt32(sent)) { Array($0) })) {
                sent += 1
                idle = 0
            } else {
                idle += 1
                usleep(2_000)
            }
        }
        #expect(sent < 20_000, "queues are bounded: \(sent) messages of 1 KiB were accepted")
        for index in 0..<sent {
            let message = try pull.receive()
            let tag = message.frames[0].suffix(4).withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) }
            #expect(tag == UInt32(index))
            if tag != UInt32(index) { break }
        }
        push.close()
        pull.close()
    }

    @Test("disconnect closes the connection and stops reconnecting; unbind stops accepting")
    func disconnectAndUnbind() throws {
        let context = try Context()
        defer { context.shutdown() }
        let pull = try context.socket(.pull, options: Self.options())
        let endpoint = try pull.bind("tcp://127.0.0.1:*")
        let push = try context.socket(.push, options: Self.options { $0.sendTimeout = .milliseconds(300) })
        try push.connect(endpoint)
        try push.send(Message([1]))
        #expect(try pull.receive() == Message([1]))
        try push.disconnect(endpoint)
        push.waitUntilDisconnected(timeout: .seconds(2))
        #expect(push.connectedPeers == 0)
        pull.waitUntilDisconnected(timeout: .seconds(2))
        #expect(pull.connectedPeers == 0, "the PULL side sees the connection go")
        #expect(throws: SocketError.timedOut) { try push.send(Message([2])) }
        #expect(throws: SocketError.self) { try push.disconnect(endpoint) }

        try pull.unbind(endpoint)
        let late = try context.socket(.push, options: Self.options())
        try late.connect(endpoint)
        #expect(!late.waitForPeers(1, timeout: .milliseconds(500)), "nothing accepts after unbind")
        #expect(throws: SocketError.self) { try pull.unbind(endpoint) }
        for socket in [push, pull, late] { socket.close() }
    }

    @Test("a bind to a taken port is a clear error")
    func bindTaken() throws {
        let context = try Context()
        defer { context.shutdown() }
        let first = try context.socket(.pull)
        let bound = try first.bind("tcp://127.0.0.1:*")
        let second = try context.socket(.pull)
        #expect(throws: SocketError.self) { try second.bind(bound) }
        #expect(throws: SocketError.self) { try second.bind("tcp://127.0.0.1") }
        first.close()
        second.close()
    }
}
