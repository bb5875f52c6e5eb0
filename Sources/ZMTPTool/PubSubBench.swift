import ArgumentParser
import ZMTP

#if canImport(Glibc)
import Glibc
#endif

// Publish/subscribe benchmark roles, mirrored by bench/pubsub.c (libzmq) with the same arguments and
// RESULT lines; bench/run-pubsub.sh runs both interleaved and BENCHMARKS.md describes the method.

/// What every subscriber of these benchmarks subscribes: N-1 fillers `B.000000`…, then `B` (last,
/// so a publisher that has seen `B` from everyone knows every filler is installed). Messages are
/// `B.` then `x`: they walk the fillers' common prefix and match only `B`.
enum PubSubBenchTopics {
    static func fillers(_ count: Int) -> [[UInt8]] {
        (0..<max(0, count)).map { index in
            var digits = String(index)
            while digits.count < 6 { digits = "0" + digits }
            return Array("B.\(digits)".utf8)
        }
    }

    static func payload(size: Int) -> Message {
        var bytes = [UInt8](repeating: UInt8(ascii: "x"), count: size)
        if size > 0 { bytes[0] = UInt8(ascii: "B") }
        if size > 1 { bytes[1] = UInt8(ascii: ".") }
        return Message(bytes)
    }

    static let subscribeB = Message(single: [1, UInt8(ascii: "B")])
    static let cancelB = Message(single: [0, UInt8(ascii: "B")])

    /// The publishing side of a role: a verbose XPUB bound on `endpoint`.
    static func boundXPub(_ context: Context, _ endpoint: String, flags: BenchFlags, noDrop: Bool) throws -> Socket {
        var options = try flags.options(server: true)
        options.xpubVerbose = true
        options.xpubNoDrop = noDrop
        options.linger = .zero
        let xpub = try context.socket(.xpub, options: options)
        try xpub.bind(endpoint)
        return xpub
    }
}

struct PubSubPub: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ps-pub",
        abstract: "Bind XPUB (verbose, no-drop); once SUBSCRIBERS subscribed, publish COUNT messages.")
    @Argument var endpoint: String
    @Argument var size: Int
    @Argument var count: Int
    @Argument var subscribers: Int
    @Option(help: "Topics each subscriber subscribes (N-1 fillers and the one that matches).") var topics = 1
    @OptionGroup var flags: BenchFlags

    func run() throws {
        flags.armWatchdog()
        let context = try Context()
        let xpub = try PubSubBenchTopics.boundXPub(context, endpoint, flags: flags, noDrop: true)
        var ready = 0
        while ready < subscribers {
            if try xpub.receive() == PubSubBenchTopics.subscribeB { ready += 1 }
        }
        let message = PubSubBenchTopics.payload(size: size)
        let count = self.count
        for _ in 0..<count { try xpub.send(message) }
        // Stay until every subscriber has gone: "B" is cancelled when the last one leaves.
        while try xpub.receive() != PubSubBenchTopics.cancelB {}
        xpub.close()
        context.shutdown()
    }
}

struct PubSubSub: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ps-sub",
        abstract: "Connect SUBSCRIBERS SUB sockets; time until each has COUNT messages.")
    @Argument var endpoint: String
    @Argument var size: Int
    @Argument var count: Int
    @Argument var subscribers: Int
    @Option(help: "Topics each subscriber subscribes (N-1 fillers and the one that matches).") var topics = 1
    @OptionGroup var flags: BenchFlags

    func validate() throws {
        if count < 2 || size < 2 || subscribers < 1 || topics < 1 {
            throw ValidationError("SIZE >= 2, COUNT >= 2, SUBSCRIBERS >= 1, --topics >= 1")
        }
    }

    func run() throws {
        flags.armWatchdog()
        let context = try Context()
        var options = try flags.options(server: false)
        options.linger = .zero
        let fillers = PubSubBenchTopics.fillers(topics - 1)
        let poller = Poller()
        var sockets: [Socket] = []
        for _ in 0..<subscribers {
            let sub = try context.socket(.sub, options: options)
            try sub.connect(endpoint)
            for topic in fillers { try sub.subscribe(topic) }
            try sub.subscribe(Array("B".utf8))
            poller.add(sub)
            sockets.append(sub)
        }
        let (size, count) = (self.size, self.count)
        var received = [Int](repeating: 0, count: subscribers)
        var index: [ObjectIdentifier: Int] = [:]
        for (position, socket) in sockets.enumerated() { index[ObjectIdentifier(socket)] = position }
        var done = 0
        var start = 0.0
        while done < subscribers {
            for (socket, _) in poller.poll(timeout: nil) {
                guard let position = index[ObjectIdentifier(socket)] else { continue }
                while received[position] < count, let message = try socket.tryReceive() {
                    try checkOneFrame(message, size: size)
                    if start == 0 { start = monotonicSeconds() }
                    received[position] += 1
                    if received[position] == count {
                        done += 1
                        poller.remove(socket)
                    }
                }
            }
        }
        let elapsed = monotonicSeconds() - start
        let rate = Double(count - 1) / elapsed
        let fields: [String] = [
            "RESULT test=pubsub", "impl=\(Bench.implementation)", "transport=\(transportName(endpoint))",
            "mech=\(flags.mech)", "size=\(size)", "count=\(count)", "subscribers=\(subscribers)",
            "topics=\(topics * subscribers)", "elapsed_s=" + fixed(elapsed, 6), "msgs_per_s=\(Int(rate.rounded()))",
            "deliveries_per_s=\(Int((rate * Double(subscribers)).rounded()))",
        ]
        print(fields.joined(separator: " "))
        fflush(nil)
        for socket in sockets { socket.close() }
        context.shutdown()
    }
}

struct PubSubMatch: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ps-match",
        abstract: "Time COUNT publishes that match none of TOPICS installed subscriptions (filtering cost).")
    @Argument var endpoint: String
    @Argument var size: Int
    @Argument var count: Int
    @Argument var topics: Int
    @OptionGroup var flags: BenchFlags

    func run() throws {
        flags.armWatchdog()
        let context = try Context()
        let xpub = try PubSubBenchTopics.boundXPub(context, endpoint, flags: flags, noDrop: false)
        var subscriberOptions = try flags.options(server: false)
        subscriberOptions.linger = .zero
        let sub = try context.socket(.sub, options: subscriberOptions)
        try sub.connect(endpoint)
        for topic in PubSubBenchTopics.fillers(topics) { try sub.subscribe(topic) }
        var seen = 0
        while seen < topics {
            if try xpub.receive().frames[0].first == 1 { seen += 1 }
        }
        let message = PubSubBenchTopics.payload(size: size)
        let count = self.count
        let start = monotonicSeconds()
        for _ in 0..<count { try xpub.send(message) }
        let elapsed = monotonicSeconds() - start
        let fields: [String] = [
            "RESULT test=match", "impl=\(Bench.implementation)", "transport=\(transportName(endpoint))",
            "mech=\(flags.mech)", "size=\(size)", "count=\(count)", "topics=\(topics)",
            "elapsed_s=" + fixed(elapsed, 6), "msgs_per_s=\(Int((Double(count) / elapsed).rounded()))",
            "ns_per_msg=" + fixed(elapsed * 1e9 / Double(count), 1),
        ]
        print(fields.joined(separator: " "))
        fflush(nil)
        sub.close()
        xpub.close()
        context.shutdown()
    }
}
