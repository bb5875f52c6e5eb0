import Foundation
import Testing
import ZMTP
import ZMTPTestSupport
import ZMTPProxy

@Suite("Proxy", .serialized, .timeLimit(.minutes(1)))
struct ProxyTests {
    static func options(_ adjust: (inout SocketOptions) -> Void = { _ in }) -> SocketOptions {
        testSocketOptions(adjust)
    }

    static func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    /// A broker as Zeek runs it: XSUB frontend, verboser no-drop XPUB backend, forwarding on a thread.
    struct Broker {
        let xsub: Socket
        let xpub: Socket
        let proxy: Proxy
        let frontend: String
        let backend: String
        let done = DispatchSemaphore(value: 0)

        init(_ context: Context, capture: Socket? = nil) throws {
            xsub = try context.socket(.xsub, options: ProxyTests.options())
            xpub = try context.socket(.xpub, options: ProxyTests.options { $0.xpubVerboser = true; $0.xpubNoDrop = true })
            backend = try xpub.bind("tcp://127.0.0.1:*")
            frontend = try xsub.bind("tcp://127.0.0.1:*")
            proxy = Proxy(frontend: xsub, backend: xpub, capture: capture)
            let (proxy, done) = (self.proxy, self.done)
            Thread.detachNewThread {
                try? proxy.run()
                done.signal()
            }
        }

        func stop() -> Bool {
            proxy.terminate()
            return done.wait(timeout: .now() + 5) == .success
        }
    }

    @Test("subscriptions go up to publishers, data comes down whole, and the statistics count frames and bytes")
    func forwarding() throws {
        let context = try Context()
        defer { context.shutdown() }
        let broker = try Broker(context)
        let publisher = try context.socket(.xpub, options: Self.options())
        try publisher.connect(broker.frontend)
        let subscriber = try context.socket(.sub, options: Self.options())
        try subscriber.subscribe(Self.bytes("zeek."))
        try subscriber.connect(broker.backend)
        // The subscription travels subscriber -> broker XPUB -> proxy -> broker XSUB -> publisher.
        #expect(try publisher.receive() == Message(single: [1] + Self.bytes("zeek.")))
        let event = Message(Self.bytes("zeek.cluster"), Self.bytes("node-1"), Self.bytes("broker-bin-v1"), [0, 1, 2])
        try publisher.send(Message(Self.bytes("other"), Self.bytes("x")))
        try publisher.send(event)
        #expect(try subscriber.receive() == event, "multipart and unchanged")
        #expect(broker.stop(), "terminate() makes run() return")

        let statistics = broker.proxy.statistics
        // Frames, as libzmq 4.3.5 counts: the event's 4 in and out ("other" never left the publisher,
        // which filters by the broker's subscription); one subscription up.
        #expect(statistics.frontendMessagesReceived == 4)
        #expect(statistics.backendMessagesSent == 4)
        #expect(statistics.frontendBytesReceived == UInt64(12 + 6 + 13 + 3))
        #expect(statistics.backendBytesSent == statistics.frontendBytesReceived)
        #expect(statistics.backendMessagesReceived == 1)
        #expect(statistics.frontendMessagesSent == 1)
        #expect(statistics.backendBytesReceived == 6)
    }

    @Test("PAUSE holds messages in the queues; RESUME delivers them; the capture socket sees both directions")
    func pauseResumeCapture() throws {
        let context = try Context()
        defer { context.shutdown() }
        let capture = try context.socket(.push, options: Self.options())
        let captured = try context.socket(.pull, options: Self.options())
        try capture.connect(try captured.bind("tcp://127.0.0.1:*"))
        let broker = try Broker(context, capture: capture)
        let publisher = try context.socket(.xpub, options: Self.options())
        try publisher.connect(broker.frontend)
        let subscriber = try context.socket(.sub, options: Self.options { $0.receiveTimeout = .milliseconds(300) })
        try subscriber.subscribe([])
        try subscriber.connect(broker.backend)
        #expect(try publisher.receive() == Message(single: [1]))
        #expect(try captured.receive() == Message(single: [1]), "the subscription, captured on its way up")

        broker.proxy.pause()
        usleep(50_000)
        try publisher.send(Message(single: Self.bytes("held")))
        #expect(throws: SocketError.timedOut) { _ = try subscriber.receive() }
        broker.proxy.resume()
        #expect(try subscriber.receive() == Message(single: Self.bytes("held")))
        #expect(try captured.receive() == Message(single: Self.bytes("held")))
        #expect(broker.stop())
    }

    @Test("a no-drop XPUB backend with a stalled subscriber holds the data back, without losing any of it")
    func backPressure() throws {
        let context = try Context()
        defer { context.shutdown() }
        let broker = try Broker(context)
        let publisher = try context.socket(.xpub, options: Self.options { $0.xpubNoDrop = true; $0.sendHighWaterMark = 10 })
        try publisher.connect(broker.frontend)
        let subscriber = try context.socket(.sub, options: Self.options { $0.receiveHighWaterMark = 10 })
        try subscriber.subscribe([])
        try subscriber.connect(broker.backend)
        #expect(try publisher.receive() == Message(single: [1]))
        // Far more than every queue on the way holds, sent from a thread while nobody reads.
        let total = 20_000
        let sender = Thread {
            for index in 0..<total { try? publisher.send(Message(single: Array(String(index).utf8))) }
        }
        sender.start()
        usleep(200_000)
        for index in 0..<total {
            let message = try subscriber.receive()
            #expect(message == Message(single: Array(String(index).utf8)), "message \(index) in order")
            if message != Message(single: Array(String(index).utf8)) { break }
        }
        #expect(broker.xpub.droppedMessages == 0)
        #expect(broker.stop())
    }
}
