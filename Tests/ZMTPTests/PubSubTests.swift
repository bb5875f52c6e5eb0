import Foundation
import Testing
import ZMTP
import ZMTPTestSupport

@Suite("PUB/SUB/XPUB/XSUB sockets", .serialized, .timeLimit(.minutes(1)))
struct PubSubTests {
    static func options(_ adjust: (inout SocketOptions) -> Void = { _ in }) -> SocketOptions {
        testSocketOptions(adjust)
    }

    static func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    /// Publishes `probe` until `sub` receives it: subscriptions travel asynchronously, so a test
    /// first waits until the publisher has them.
    static func waitUntilSubscribed(_ pub: Socket, _ sub: Socket, probe: String) throws {
        let deadline = Date().addingTimeInterval(5)
        while Date() < deadline {
            _ = try pub.trySend(Message(single: bytes(probe)))
            if let message = try sub.tryReceive(), message.frames[0] == bytes(probe) { return }
            usleep(5_000)
        }
        throw SocketError.timedOut
    }

    /// Drains what a socket has received so far.
    static func drain(_ socket: Socket) throws -> [Message] {
        var messages: [Message] = []
        usleep(50_000)
        while let message = try socket.tryReceive() { messages.append(message) }
        return messages
    }

    @Test("PUB sends each subscriber only what its subscriptions prefix, multipart whole")
    func prefixFiltering() throws {
        let context = try Context()
        defer { context.shutdown() }
        let pub = try context.socket(.pub, options: Self.options())
        let endpoint = try pub.bind("tcp://127.0.0.1:*")
        let apples = try context.socket(.sub, options: Self.options())
        let everything = try context.socket(.sub, options: Self.options())
        try apples.subscribe(Self.bytes("apple"))
        try everything.subscribe([])
        try apples.connect(endpoint)
        try everything.connect(endpoint)
        try Self.waitUntilSubscribed(pub, apples, probe: "apple.probe")
        try Self.waitUntilSubscribed(pub, everything, probe: "probe")
        _ = try Self.drain(apples)
        _ = try Self.drain(everything)

        try pub.send(Message(Self.bytes("banana"), Self.bytes("1")))
        try pub.send(Message(Self.bytes("apple.pie"), Self.bytes("2")))
        #expect(try apples.receive() == Message(Self.bytes("apple.pie"), Self.bytes("2")))
        #expect(try Self.drain(apples).isEmpty)
        #expect(try everything.receive() == Message(Self.bytes("banana"), Self.bytes("1")))
        #expect(try everything.receive() == Message(Self.bytes("apple.pie"), Self.bytes("2")))
        for socket in [pub, apples, everything] { socket.close() }
    }

    @Test("XPUB's application sees first subscriptions and last cancellations, a disconnect's included; verbose sees repeats")
    func xpubNotifications() throws {
        let context = try Context()
        defer { context.shutdown() }
        let xpub = try context.socket(.xpub, options: Self.options())
        let endpoint = try xpub.bind("tcp://127.0.0.1:*")
        let first = try context.socket(.sub, options: Self.options())
        let second = try context.socket(.sub, options: Self.options())
        try first.connect(endpoint)
        try first.subscribe(Self.bytes("zeek."))
        #expect(try xpub.receive() == Message(single: [1] + Self.bytes("zeek.")))
        try second.connect(endpoint)
        try second.subscribe(Self.bytes("zeek."))
        try Self.waitUntilSubscribed(xpub, second, probe: "zeek.probe")
        #expect(try Self.drain(xpub).isEmpty, "a second subscriber to the same topic is not news")
        second.close()
        usleep(100_000)
        #expect(try Self.drain(xpub).isEmpty, "the topic still has a subscriber")
        first.close()
        #expect(try xpub.receive() == Message(single: [0] + Self.bytes("zeek.")), "the last one went, by disconnect")

        let verbose = try context.socket(.xpub, options: Self.options { $0.xpubVerboser = true })
        let verboseEndpoint = try verbose.bind("tcp://127.0.0.1:*")
        let a = try context.socket(.sub, options: Self.options())
        let b = try context.socket(.sub, options: Self.options())
        for sub in [a, b] {
            try sub.connect(verboseEndpoint)
            try sub.subscribe(Self.bytes("t"))
            #expect(try verbose.receive() == Message(single: [1] + Self.bytes("t")), "verbose: every subscribe")
        }
        try a.unsubscribe(Self.bytes("t"))
        #expect(try verbose.receive() == Message(single: [0] + Self.bytes("t")), "verboser: every cancel")
        for socket in [xpub, verbose, a, b] { socket.close() }
    }

    @Test("XSUB subscribes by sending 0x01+topic through an XPUB, which forwards its messages back")
    func xsubThroughXpub() throws {
        let context = try Context()
        defer { context.shutdown() }
        let xpub = try context.socket(.xpub, options: Self.options())
        let xsub = try context.socket(.xsub, options: Self.options())
        try xsub.connect(try xpub.bind("tcp://127.0.0.1:*"))
        try xsub.send(Message(single: [1] + Self.bytes("a")))
        #expect(try xpub.receive() == Message(single: [1] + Self.bytes("a")))
        try xpub.send(Message(single: Self.bytes("b.no")))
        try xpub.send(Message(single: Self.bytes("a.yes")))
        #expect(try xsub.receive() == Message(single: Self.bytes("a.yes")))
        try xsub.send(Message(single: Self.bytes("upstream")))
        #expect(try xpub.receive() == Message(single: Self.bytes("upstream")), "XPUB reads what subscribers send")
        try xsub.send(Message(single: [0] + Self.bytes("a")))
        #expect(try xpub.receive() == Message(single: [0] + Self.bytes("a")))
        for socket in [xpub, xsub] { socket.close() }
    }

    @Test("a subscriber that joins before the publisher binds, and a publisher that restarts, both get the subscriptions")
    func lateJoinAndRestart() throws {
        let context = try Context()
        defer { context.shutdown() }
        let endpoint = "ipc:///tmp/zmtp-pubsub-\(getpid()).sock"
        let sub = try context.socket(.sub, options: Self.options())
        try sub.subscribe(Self.bytes("news"))
        try sub.connect(endpoint)
        let first = try context.socket(.pub, options: Self.options())
        try first.bind(endpoint)
        try Self.waitUntilSubscribed(first, sub, probe: "news.1")
        first.close()
        sub.waitUntilDisconnected(timeout: .seconds(5))
        let second = try context.socket(.pub, options: Self.options())
        try second.bind(endpoint)
        try Self.waitUntilSubscribed(second, sub, probe: "news.2")  // the new publisher was told again
        for socket in [sub, second] { socket.close() }
    }

    @Test("a subscriber that stops reading costs the publisher at most its high-water mark; XPUB_NODROP reports would-block instead")
    func slowSubscriber() throws {
        let context = try Context()
        defer { context.shutdown() }
        for noDrop in [false, true] {
            let xpub = try context.socket(.xpub, options: Self.options { $0.sendHighWaterMark = 10; $0.xpubNoDrop = noDrop })
            let sub = try context.socket(.sub, options: Self.options { $0.receiveHighWaterMark = 10 })
            try sub.subscribe([])
            try sub.connect(try xpub.bind("tcp://127.0.0.1:*"))
            #expect(try xpub.receive() == Message(single: [1]))
            try Self.waitUntilSubscribed(xpub, sub, probe: "probe")
            let payload = [UInt8](repeating: 0, count: 1024)
            var accepted = 0
            var refused = 0
            for _ in 0..<50_000 { if try xpub.trySend(Message(single: payload)) { accepted += 1 } else { refused += 1 } }
            if noDrop {
                #expect(refused > 0, "NODROP: the send reports would-block")
                #expect(xpub.droppedMessages == 0)
            } else {
                #expect(refused == 0, "a PUB/XPUB never blocks")
                #expect(xpub.droppedMessages > 0, "the full subscriber missed messages")
            }
            for socket in [xpub, sub] { socket.close() }
        }
    }

    @Test("a subscription flood from one peer is cut at maxSubscriptionsPerPeer")
    func subscriptionFlood() throws {
        let context = try Context()
        defer { context.shutdown() }
        let xpub = try context.socket(.xpub, options: Self.options { $0.maxSubscriptionsPerPeer = 10; $0.receiveTimeout = .milliseconds(300) })
        let xsub = try context.socket(.xsub, options: Self.options())
        try xsub.connect(try xpub.bind("tcp://127.0.0.1:*"))
        for index in 0..<20 { try xsub.send(Message(single: [1] + Self.bytes("topic-\(index)"))) }
        var seen = 0
        while (try? xpub.receive()) != nil { seen += 1 }
        #expect(seen == 10)
        for socket in [xpub, xsub] { socket.close() }
    }

    @Test("heartbeats close a connection to a peer that went silent, and its subscriptions go with it")
    func heartbeatsDetectSilentPeer() throws {
        let context = try Context()
        defer { context.shutdown() }
        let xpub = try context.socket(.xpub, options: Self.options {
            $0.heartbeatInterval = .milliseconds(50)
            $0.heartbeatTimeout = .milliseconds(200)
        })
        let endpoint = try xpub.bind("tcp://127.0.0.1:*")
        guard let port = UInt16(endpoint.split(separator: ":").last ?? "") else { throw SocketError.endpoint(endpoint) }
        // A raw peer that completes a NULL handshake as SUB, subscribes, then never answers a PING.
        let silent = try RawPeer.connectTCP(port: port)
        var hello: [UInt8] = []
        FrameEncoder.appendFrame(try Command.ready(Metadata([("Socket-Type", Self.bytes("SUB"))])).encodedBody(), command: true, to: &hello)
        FrameEncoder.appendFrame(try Command.subscribe(topic: Self.bytes("quiet")).encodedBody(), command: true, to: &hello)
        silent.write(Greeting(mechanism: .null, asServer: false).encoded + hello)
        #expect(try xpub.receive() == Message(single: [1] + Self.bytes("quiet")))
        let start = Date()
        #expect(try xpub.receive() == Message(single: [0] + Self.bytes("quiet")), "dropped for silence")
        #expect(Date().timeIntervalSince(start) < 2)
        #expect(xpub.connectedPeers == 0)
        xpub.close()
    }
}
