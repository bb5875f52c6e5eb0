import ArgumentParser
import ZMTP
import ZeekCluster

#if canImport(Glibc)
import Glibc
#endif

/// `--subscribe`, for the subscribing commands.
struct SubscribeFlags: ParsableArguments {
    @Option(name: .customLong("subscribe"), help: ArgumentHelp("Receive messages starting with this prefix (repeatable; none means everything).", valueName: "prefix"))
    var prefixes: [String] = []

    var topics: [[UInt8]] { prefixes.isEmpty ? [[]] : prefixes.map { Array($0.utf8) } }
}

/// The body of `sub` and `xsub`: subscribe (SUB by option, XSUB by sending 0x01+topic), then print.
func subscribeAndPrint(
    _ type: SocketType, endpoints: EndpointFlags, flags: SocketFlags, topics: [[UInt8]], format: MessageFormat, count: Int?,
    render: ((Message) -> String)? = nil
) throws {
    try withSocket(type, endpoints: endpoints, flags: flags, adjust: { $0.receiveTimeout = .milliseconds(100) }) { socket in
        for topic in topics {
            if type == .xsub { try socket.send(Message(single: [1] + topic)) } else { try socket.subscribe(topic) }
        }
        try printMessages(from: socket, format: format, count: count, render: render)
    }
}

/// `--zeek`: a Zeek event message (topic | sender node id | broker-bin-v1 | event) as one JSON object;
/// anything else as `{"error":…}` with the frames in hex, so nothing is silently skipped.
func zeekEventJSON(_ message: Message) -> String {
    let frames = message.frames
    func hexFrames() -> String { "[" + frames.map { "\"\(Hex.encode($0))\"" }.joined(separator: ",") + "]" }
    guard frames.count == 4 else { return "{\"error\":\"expected 4 frames, got \(frames.count)\",\"frames\":\(hexFrames())}" }
    guard frames[2] == Array(ZeekEvent.serializerName.utf8) else {
        return "{\"error\":\"serializer is not broker-bin-v1\",\"frames\":\(hexFrames())}"
    }
    do {
        return try ZeekEvent.decode(frames[3]).json(topic: frames[0], sender: frames[1])
    } catch {
        return "{\"error\":\"\(error.message) at octet \(error.offset)\",\"frames\":\(hexFrames())}"
    }
}

struct Pub: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Publish each line of standard input on a PUB socket.",
        discussion: "Subscribers get the lines whose first frame starts with one of their prefixes; one that is not keeping up misses messages.")

    @OptionGroup var endpoints: EndpointFlags
    @OptionGroup var socket: SocketFlags
    @Option(help: "Input format: text (frames TAB-separated) or hex (JSON array of hex frames).")
    var format: MessageFormat = .text

    func run() throws {
        try withSocket(.pub, endpoints: endpoints, flags: socket, adjust: { $0.sendTimeout = .milliseconds(100) }) { pub in
            try sendLines(to: pub, format: format)
        }
    }
}

struct Sub: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Subscribe on a SUB socket and print one line per message.",
        discussion: "Stops after --count messages if given, or on SIGINT/SIGTERM.")

    @OptionGroup var endpoints: EndpointFlags
    @OptionGroup var socket: SocketFlags
    @OptionGroup var subscription: SubscribeFlags
    @Option(help: "Stop after this many messages.") var count: Int?
    @Option(help: "Output format: text (frames TAB-separated) or hex (JSON array of hex frames).")
    var format: MessageFormat = .text
    @Flag(help: "Decode Zeek events (broker-bin-v1) and print each as JSON: topic, sender, event, args.")
    var zeek = false

    func run() throws {
        try subscribeAndPrint(
            .sub, endpoints: endpoints, flags: socket, topics: subscription.topics, format: format, count: count,
            render: zeek ? { zeekEventJSON($0) } : nil)
    }
}

struct XSub: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "xsub",
        abstract: "Subscribe on an XSUB socket (by sending 0x01+prefix) and print one line per message.",
        discussion: "Stops after --count messages if given, or on SIGINT/SIGTERM.")

    @OptionGroup var endpoints: EndpointFlags
    @OptionGroup var socket: SocketFlags
    @OptionGroup var subscription: SubscribeFlags
    @Option(help: "Stop after this many messages.") var count: Int?
    @Option(help: "Output format: text (frames TAB-separated) or hex (JSON array of hex frames).")
    var format: MessageFormat = .text

    func run() throws {
        try subscribeAndPrint(.xsub, endpoints: endpoints, flags: socket, topics: subscription.topics, format: format, count: count)
    }
}

struct XPub: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "xpub",
        abstract: "Publish standard input on an XPUB socket and print what subscribers send it.",
        discussion: "Subscriptions arrive as messages of 0x01 (subscribe) or 0x00 (cancel) and the topic; --format hex shows them exactly. Runs until --count messages were printed, or SIGINT/SIGTERM.")

    @OptionGroup var endpoints: EndpointFlags
    @OptionGroup var socket: SocketFlags
    @Flag(name: .customLong("xpub-nodrop"), help: "Wait (retry) instead of dropping for a full subscriber (ZMQ_XPUB_NODROP).")
    var noDrop = false
    @Flag(name: .customLong("xpub-verbose"), help: "Print every subscription, repeats included (ZMQ_XPUB_VERBOSE).")
    var verbose = false
    @Flag(name: .customLong("xpub-verboser"), help: "Print every subscription and every cancellation (ZMQ_XPUB_VERBOSER).")
    var verboser = false
    @Option(help: "Stop after printing this many messages.") var count: Int?
    @Option(help: "Input and output format: text (frames TAB-separated) or hex (JSON array of hex frames).")
    var format: MessageFormat = .text

    func run() throws {
        let (noDrop, verbose, verboser, format) = (self.noDrop, self.verbose, self.verboser, self.format)
        try withSocket(.xpub, endpoints: endpoints, flags: socket, adjust: { options in
            options.receiveTimeout = .milliseconds(100)
            options.sendTimeout = .milliseconds(100)
            options.xpubNoDrop = noDrop
            options.xpubVerbose = verbose
            options.xpubVerboser = verboser
        }) { xpub in
            // Standard input is published from another thread while this one prints.
            Thread.detach { try? sendLines(to: xpub, format: format) }
            try printMessages(from: xpub, format: format, count: count)
        }
    }
}
