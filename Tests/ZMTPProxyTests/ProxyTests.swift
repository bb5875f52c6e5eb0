import Foundation
import Synchronization
import Testing
import ZMTP
import ZMTPTestSupport
@testable import ZMTPProxy

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

        init(_ context: Context, capture: Socket? = nil, ioThreadRounds: Int = 16) throws {
            xsub = try context.socket(.xsub, options: ProxyTests.options())
            xpub = try context.socket(.xpub, options: ProxyTests.options { $0.xpubVerboser = true; $0.xpubNoDrop = true })
            backend = try xpub.bind("tcp://127.0.0.1:*")
            frontend = try xsub.bind("tcp://127.0.0.1:*")
            proxy = Proxy(frontend: xsub, backend: xpub, capture: capture, ioThreadRounds: ioThreadRounds)
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

    @Test("two I/O threads, three publishers, a stream long enough to be handed to run()'s thread: all of it arrives, in order per publisher", arguments: [1, 16])
    func streams(ioThreadRounds: Int) throws {
        let context = try Context(ioThreads: 2)
        defer { context.shutdown() }
        let broker = try Broker(context, ioThreadRounds: ioThreadRounds)
        let subscriber = try context.socket(.sub, options: Self.options())
        try subscriber.subscribe([])
        try subscriber.connect(broker.backend)
        let perPublisher = 20_000
        var publishers: [Socket] = []
        for _ in 0..<3 {
            let publisher = try context.socket(.xpub, options: Self.options { $0.xpubNoDrop = true })
            try publisher.connect(broker.frontend)
            #expect(try publisher.receive() == Message(single: [1]))
            publishers.append(publisher)
        }
        let senders = publishers.enumerated().map { id, publisher in
            Thread {
                for index in 0..<perPublisher {
                    try? publisher.send(Message(single: [UInt8(id)] + withUnsafeBytes(of: UInt32(index).bigEndian, Array.init)))
                }
            }
        }
        for sender in senders { sender.start() }
        var next = [Int](repeating: 0, count: publishers.count)
        for _ in 0..<(perPublisher * publishers.count) {
            let frame = try subscriber.receive().frames[0]
            let id = Int(frame[0])
            let index = frame[1...].reduce(0) { $0 << 8 | Int($1) }
            #expect(index == next[id], "publisher \(id): message \(next[id]) expected, \(index) came")
            if index != next[id] { break }
            next[id] += 1
        }
        #expect(next == [Int](repeating: perPublisher, count: publishers.count))
        let statistics = broker.proxy.statistics
        #expect(statistics.frontendMessagesReceived == UInt64(perPublisher * publishers.count))
        #expect(statistics.backendMessagesSent == statistics.frontendMessagesReceived)
        if ioThreadRounds == 1 {
            #expect(broker.proxy.handOffs > 0, "with one round per I/O thread, run()'s thread must have taken over")
        }
        #expect(broker.stop())
    }

    @Test("TERMINATE in the middle of a stream: run() returns at once")
    func terminateWhileStreaming() throws {
        let context = try Context()
        defer { context.shutdown() }
        let broker = try Broker(context)
        let subscriber = try context.socket(.sub, options: Self.options())
        try subscriber.subscribe([])
        try subscriber.connect(broker.backend)
        let publisher = try context.socket(.xpub, options: Self.options { $0.xpubNoDrop = true; $0.sendTimeout = .milliseconds(200) })
        try publisher.connect(broker.frontend)
        #expect(try publisher.receive() == Message(single: [1]))
        let stop = Atomic<Bool>(false)
        let sender = Thread {
            while !stop.load(ordering: .relaxed) { _ = try? publisher.send(Message(single: [1, 2, 3])) }
        }
        sender.start()
        _ = try subscriber.receive()
        #expect(broker.stop(), "run() returned within 5 s")
        stop.store(true, ordering: .relaxed)
        let frozen = broker.proxy.statistics
        usleep(100_000)
        #expect(broker.proxy.statistics == frozen, "nothing is forwarded after TERMINATE")
    }

    @Test("nodes come and go under load: the steady subscriber gets every message of the steady publisher in order, nothing is dropped, and newcomers are served after")
    func churnUnderLoad() throws {
        let context = try Context(ioThreads: 2)
        defer { context.shutdown() }
        let broker = try Broker(context)
        let steady = try context.socket(.sub, options: Self.options())
        try steady.subscribe(Self.bytes("data."))
        try steady.connect(broker.backend)
        let publisher = try context.socket(.xpub, options: Self.options { $0.xpubNoDrop = true; $0.sendTimeout = .seconds(20) })
        try publisher.connect(broker.frontend)
        #expect(try publisher.receive() == Message(single: [1] + Self.bytes("data.")))

        let total = 30_000
        let sent = Atomic<Int>(0)
        let sender = Thread {
            for index in 0..<total {
                guard (try? publisher.send(Message(Self.bytes("data."), withUnsafeBytes(of: UInt32(index).bigEndian, Array.init)))) != nil else { return }
                sent.add(1, ordering: .relaxed)
            }
        }
        // Subscribers that join and leave (some reading, some never reading: a no-drop broker waits
        // for those, then goes on when they leave), and publishers that join, send and leave.
        let churned = DispatchSemaphore(value: 0)
        let churn = Thread {
            defer { churned.signal() }
            for round in 0..<20 {
                if let subscriber = try? context.socket(.sub, options: Self.options { $0.receiveTimeout = .milliseconds(50) }) {
                    try? subscriber.subscribe(Self.bytes(round.isMultiple(of: 2) ? "data." : "other."))
                    try? subscriber.connect(broker.backend)
                    usleep(10_000)
                    if round.isMultiple(of: 3) { _ = try? subscriber.receive() }
                    subscriber.close()
                }
                if let other = try? context.socket(.xpub, options: Self.options { $0.sendTimeout = .milliseconds(100) }) {
                    try? other.connect(broker.frontend)
                    usleep(5_000)
                    for _ in 0..<10 { _ = try? other.trySend(Message(Self.bytes("other."), [UInt8(round)])) }
                    other.close()
                }
            }
        }
        sender.start()
        churn.start()
        for index in 0..<total {
            let message = try steady.receive()
            let expected = Message(Self.bytes("data."), withUnsafeBytes(of: UInt32(index).bigEndian, Array.init))
            #expect(message == expected, "message \(index) of \(total), in order")
            if message != expected { break }
        }
        #expect(churned.wait(timeout: .now() + 20) == .success)
        #expect(sent.load(ordering: .relaxed) == total)
        #expect(broker.xpub.droppedMessages == 0)

        // The survivors are not wedged: a newcomer pair talks through the broker.
        let newcomer = try context.socket(.sub, options: Self.options())
        try newcomer.subscribe(Self.bytes("late."))
        try newcomer.connect(broker.backend)
        let latePublisher = try context.socket(.xpub, options: Self.options())
        try latePublisher.connect(broker.frontend)
        while try latePublisher.receive() != Message(single: [1] + Self.bytes("late.")) {}
        try latePublisher.send(Message(single: Self.bytes("late.hello")))
        #expect(try newcomer.receive() == Message(single: Self.bytes("late.hello")))
        #expect(broker.stop())
    }

    @Test("closing the frontend ends run() even while a message is held for a full backend, and while paused")
    func closeWhileHeldOrPaused() throws {
        for paused in [false, true] {
            let context = try Context()
            defer { context.shutdown() }
            let broker = try Broker(context)
            let subscriber = try context.socket(.sub, options: Self.options { $0.receiveHighWaterMark = 5 })
            try subscriber.subscribe([])
            try subscriber.connect(broker.backend)
            let publisher = try context.socket(.xpub, options: Self.options { $0.xpubNoDrop = true; $0.sendTimeout = .milliseconds(100) })
            try publisher.connect(broker.frontend)
            #expect(try publisher.receive() == Message(single: [1]))
            if paused { broker.proxy.pause() }
            // Nobody reads: every queue fills and the proxy holds a message for the stalled backend.
            for index in 0..<5_000 { _ = try? publisher.send(Message(single: Array(String(index).utf8))) }
            broker.xsub.close()
            #expect(broker.done.wait(timeout: .now() + 5) == .success, "run() returned (paused: \(paused))")
        }
    }
}
