import ArgumentParser
import Synchronization
import ZMTP
import ZMTPEngine

#if canImport(Glibc)
import Glibc
#endif

/// `--bind` / `--connect`, the same in every subcommand that opens sockets.
struct EndpointFlags: ParsableArguments {
    @Option(name: .customLong("bind"), help: ArgumentHelp("Bind to this endpoint (repeatable).", valueName: "endpoint"))
    var bind: [String] = []

    @Option(name: .customLong("connect"), help: ArgumentHelp("Connect to this endpoint (repeatable).", valueName: "endpoint"))
    var connect: [String] = []

    func validate() throws {
        if bind.isEmpty && connect.isEmpty { throw ValidationError("give at least one --bind or --connect endpoint") }
    }

    /// Binds and connects `socket`, reporting each bound endpoint on stderr.
    func apply(to socket: Socket) throws {
        for endpoint in bind {
            let bound = try socket.bind(endpoint)
            ToolOutput.standardError("zmtp: listening on \(bound)")
        }
        for endpoint in connect { try socket.connect(endpoint) }
    }
}

/// Socket options as flags, named after libzmq's.
struct SocketFlags: ParsableArguments {
    @Option(name: .customLong("sndhwm"), help: "Send high-water mark in messages, 0 = unlimited (ZMQ_SNDHWM).")
    var sendHighWaterMark = 1000
    @Option(name: .customLong("rcvhwm"), help: "Receive high-water mark in messages, 0 = unlimited (ZMQ_RCVHWM).")
    var receiveHighWaterMark = 1000
    @Option(name: .customLong("sndbuf"), help: "Kernel send buffer in bytes, 0 = default (ZMQ_SNDBUF).")
    var sendBuffer = 0
    @Option(name: .customLong("rcvbuf"), help: "Kernel receive buffer in bytes, 0 = default (ZMQ_RCVBUF).")
    var receiveBuffer = 0
    @Option(name: .customLong("linger"), help: "Milliseconds to wait for unsent messages at exit, -1 = forever (ZMQ_LINGER).")
    var linger = 1000
    @Flag(name: .customLong("ipv6"), help: "Allow IPv6 endpoints (ZMQ_IPV6).")
    var ipv6 = false
    @Flag(name: .customLong("immediate"), help: "Queue messages only for connected peers (ZMQ_IMMEDIATE).")
    var immediate = false
    @Option(name: .customLong("maxmsgsize"), help: "Largest inbound frame in bytes, -1 = unlimited (ZMQ_MAXMSGSIZE).")
    var maxMessageSize = -1
    @Option(name: .customLong("heartbeat-ivl"), help: ArgumentHelp("Send a PING every MS milliseconds, 0 = off (ZMQ_HEARTBEAT_IVL).", valueName: "ms"))
    var heartbeatInterval = 0
    @Option(name: .customLong("heartbeat-ttl"), help: ArgumentHelp("TTL announced in PINGs in milliseconds, 0 = none (ZMQ_HEARTBEAT_TTL).", valueName: "ms"))
    var heartbeatTTL = 0
    @Option(name: .customLong("heartbeat-timeout"), help: ArgumentHelp("Close when a PING gets no traffic back within MS milliseconds, 0 = the interval (ZMQ_HEARTBEAT_TIMEOUT).", valueName: "ms"))
    var heartbeatTimeout = 0
    @Flag(name: .customLong("count-subscriptions"), help: "PUB/XPUB: each SUBSCRIBE needs its own CANCEL (RFC 37); by default repeats collapse, as libzmq's subscribers expect.")
    var countSubscriptions = false
    @Flag(name: .customLong("events"), help: "Print the socket's monitor events on stderr, one per line: 'zmtp: event NAME value=V endpoint=E' (libzmq's names and values).")
    var events = false

    @Flag(name: .customLong("curve-server"), help: "Act as CURVE server (needs --curve-secret).")
    var curveServer = false
    @Option(name: .customLong("curve-secret"), help: ArgumentHelp("Our CURVE secret key (Z85).", valueName: "z85"))
    var curveSecret: String?
    @Option(name: .customLong("curve-public"), help: ArgumentHelp("Our CURVE public key (Z85; client side).", valueName: "z85"))
    var curvePublic: String?
    @Option(name: .customLong("curve-serverkey"), help: ArgumentHelp("The server's CURVE public key (Z85; client side).", valueName: "z85"))
    var curveServerKey: String?
    @Option(name: .customLong("curve-allow"), help: ArgumentHelp("Admit this client public key (Z85; server side, repeatable). Without it every client is admitted.", valueName: "z85"))
    var curveAllow: [String] = []

    func validate() throws {
        if curveServer && curveSecret == nil { throw ValidationError("--curve-server needs --curve-secret") }
        if curveServerKey != nil && (curveSecret == nil || curvePublic == nil) {
            throw ValidationError("a CURVE client needs --curve-serverkey, --curve-public and --curve-secret")
        }
        if !curveAllow.isEmpty && !curveServer { throw ValidationError("--curve-allow needs --curve-server") }
    }

    func options() throws -> SocketOptions {
        var options = SocketOptions()
        options.sendHighWaterMark = max(0, sendHighWaterMark)
        options.receiveHighWaterMark = max(0, receiveHighWaterMark)
        options.sendBufferSize = max(0, sendBuffer)
        options.receiveBufferSize = max(0, receiveBuffer)
        options.linger = linger < 0 ? nil : .milliseconds(linger)
        options.ipv6 = ipv6
        options.immediate = immediate
        options.heartbeatInterval = heartbeatInterval > 0 ? .milliseconds(heartbeatInterval) : nil
        options.heartbeatTTL = heartbeatTTL > 0 ? .milliseconds(heartbeatTTL) : nil
        options.heartbeatTimeout = heartbeatTimeout > 0 ? .milliseconds(heartbeatTimeout) : nil
        options.maxMessageSize = maxMessageSize < 0 ? nil : maxMessageSize
        options.countsRepeatedSubscriptions = countSubscriptions
        do {
            if curveServer, let secret = curveSecret {
                options.curve = .server(CurveKeyPair(secretKey: try CurveSecretKey(z85: secret)))
                if !curveAllow.isEmpty {
                    options.zapHandler = AllowListZAPHandler(allowedClientKeys: Set(try curveAllow.map { try CurvePublicKey(z85: $0) }))
                }
            } else if let serverKey = curveServerKey, let secret = curveSecret, let publicKey = curvePublic {
                options.curve = .client(
                    serverPublicKey: try CurvePublicKey(z85: serverKey),
                    keyPair: CurveKeyPair(publicKey: try CurvePublicKey(z85: publicKey), secretKey: try CurveSecretKey(z85: secret)))
            }
        } catch let error as ZMTPError {
            throw ToolError("CURVE key: \(error.reason)")
        }
        return options
    }
}

/// How messages look on stdin/stdout.
enum MessageFormat: String, ExpressibleByArgument, CaseIterable {
    /// Frames as UTF-8 text separated by a TAB, one message per line.
    case text
    /// Each line a JSON array of lowercase hex strings, one per frame (empty and binary frames survive).
    case hex

    func render(_ message: Message) -> String {
        switch self {
        case .text:
            return message.frames.map { String(decoding: $0, as: UTF8.self) }.joined(separator: "\t")
        case .hex:
            return "[" + message.frames.map { "\"\(Hex.encode($0))\"" }.joined(separator: ",") + "]"
        }
    }

    func parse(_ line: String) throws -> Message {
        switch self {
        case .text:
            return Message(frames: line.split(separator: "\t", omittingEmptySubsequences: false).map { Array($0.utf8) })
        case .hex:
            let trimmed = line.trimmingCharacters(in: " ")
            guard trimmed.hasPrefix("["), trimmed.hasSuffix("]") else {
                throw ToolError("--format hex expects a JSON array of hex strings per line, got: \(line)")
            }
            let inner = trimmed.dropFirst().dropLast().trimmingCharacters(in: " ")
            if inner.isEmpty { throw ToolError("a message needs at least one frame") }
            return Message(frames: try inner.split(separator: ",").map { item in
                let text = item.trimmingCharacters(in: " ")
                guard text.hasPrefix("\""), text.hasSuffix("\""), text.count >= 2 else {
                    throw ToolError("--format hex: '\(text)' is not a quoted hex string")
                }
                return try Hex.decode(String(text.dropFirst().dropLast()))
            })
        }
    }
}

extension String {
    func trimmingCharacters(in set: Character) -> String {
        var text = Substring(self)
        while text.first == set { text = text.dropFirst() }
        while text.last == set { text = text.dropLast() }
        return String(text)
    }
}

extension Substring {
    func trimmingCharacters(in set: Character) -> String { String(self).trimmingCharacters(in: set) }
}

/// SIGINT/SIGTERM set a flag that long-running commands poll.
enum Interrupt {
    nonisolated(unsafe) static var requested: sig_atomic_t = 0
    /// A pipe the handler writes one octet into, so that ``wait()`` can sleep instead of polling
    /// the flag (`write(2)` is async-signal-safe). `-1` until ``install()``.
    nonisolated(unsafe) static var wakeRead: Int32 = -1
    nonisolated(unsafe) static var wakeWrite: Int32 = -1

    static func install() {
        if wakeRead < 0 {
            var ends: [Int32] = [-1, -1]
            if pipe(&ends) == 0 {
                wakeRead = ends[0]
                wakeWrite = ends[1]
            }
        }
        let handler: @convention(c) (Int32) -> Void = { _ in
            Interrupt.requested = 1
            if Interrupt.wakeWrite >= 0 {
                var octet: UInt8 = 1
                _ = write(Interrupt.wakeWrite, &octet, 1)
            }
        }
        signal(SIGINT, handler)
        signal(SIGTERM, handler)
        // A parent may have spawned us with these blocked (it happens under test runners and some
        // supervisors); a command that must stop on them unblocks them.
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGINT)
        sigaddset(&set, SIGTERM)
        sigprocmask(SIG_UNBLOCK, &set, nil)
    }

    /// Blocks the calling thread until SIGINT or SIGTERM arrives (after ``install()``), without
    /// waking in between.
    static func wait() {
        var octet: UInt8 = 0
        while requested == 0 {
            if wakeRead < 0 || read(wakeRead, &octet, 1) <= 0 && errno != EINTR { usleep(20_000) }
        }
    }

    static var isRequested: Bool { requested != 0 }
}

/// Runs `body` with a socket of `type` bound/connected per `endpoints`, stopping cleanly on
/// SIGINT/SIGTERM; the socket is closed (with its linger) and the context shut down afterwards.
func withSocket(
    _ type: SocketType, endpoints: EndpointFlags, flags: SocketFlags, adjust: (inout SocketOptions) -> Void,
    _ body: (Socket) throws -> Void
) throws {
    Interrupt.install()
    let context = try Context()
    defer { context.shutdown() }
    var options = try flags.options()
    adjust(&options)
    let socket = try context.socket(type, options: options)
    let printer = flags.events ? EventPrinter(socket.monitor()) : nil
    if !flags.events, !endpoints.bind.isEmpty { _ = AcceptFailureReporter(socket, program: "zmtp") }
    defer {
        socket.close()
        printer?.waitUntilStopped()
    }
    do { try endpoints.apply(to: socket) } catch let error as SocketError { throw ToolError(error.description) }
    try body(socket)
}

/// Prints a socket's monitor events on stderr from its own thread, until MONITOR_STOPPED.
final class EventPrinter: Sendable {
    private let stopped = Atomic<Bool>(false)

    /// - Parameter label: names the socket in each line (`zmtp: xpub event …`) when a command has several.
    init(_ monitor: SocketMonitor, label: String? = nil) {
        let prefix = label.map { "zmtp: \($0) event " } ?? "zmtp: event "
        Thread.detach { [self] in
            while let event = monitor.next(timeout: nil) { ToolOutput.standardError(prefix + "\(event)") }
            stopped.store(true, ordering: .releasing)
        }
    }

    /// Waits (up to a second) until the last event was printed; the socket must be closed.
    func waitUntilStopped() {
        for _ in 0..<1000 where !stopped.load(ordering: .acquiring) { usleep(1000) }
    }
}

/// Says on stderr, at most once every 5 seconds per socket, that a bound socket cannot accept
/// connections (out of file descriptors, usually), so an operator learns why peers hang instead of
/// finding out from them. The listener keeps the waiting connections in the kernel's backlog and
/// retries every 100 ms; nothing is lost while the condition lasts.
final class AcceptFailureReporter: Sendable {
    init(_ socket: Socket, program: String, label: String? = nil) {
        let monitor = socket.monitor(.acceptFailed, bufferLimit: 16)
        let name = label.map { "\(program): \($0)" } ?? program
        Thread.detach {
            var lastReport: ContinuousClock.Instant?
            while let event = monitor.next(timeout: nil) {
                guard event.kind == .acceptFailed else { continue }
                let now = ContinuousClock.now
                if let lastReport, now - lastReport < .seconds(5) { continue }
                lastReport = now
                let limit = DescriptorLimit.current.soft.map(String.init) ?? "unlimited"
                ToolOutput.standardError(
                    "\(name) cannot accept connections on \(event.endpoint): \(event.detail ?? "errno \(event.value)") "
                        + "(open-file limit \(limit)); waiting peers stay queued and are retried every 100 ms")
            }
        }
    }
}

struct Pull: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Receive messages on a PULL socket and print one line per message.",
        discussion: "Stops after --count messages if given, or on SIGINT/SIGTERM.")

    @OptionGroup var endpoints: EndpointFlags
    @OptionGroup var socket: SocketFlags
    @Option(help: "Stop after this many messages.") var count: Int?
    @Option(help: "Output format: text (frames TAB-separated) or hex (JSON array of hex frames).")
    var format: MessageFormat = .text

    func run() throws {
        // A short receive timeout so that a signal is noticed promptly.
        try withSocket(.pull, endpoints: endpoints, flags: socket, adjust: { $0.receiveTimeout = .milliseconds(100) }) { pull in
            try printMessages(from: pull, format: format, count: count)
        }
    }
}

/// Prints one line per message received until `count` messages or SIGINT/SIGTERM.
func printMessages(from socket: Socket, format: MessageFormat, count: Int?, render: ((Message) -> String)? = nil) throws {
    var received = 0
    while count.map({ received < $0 }) ?? true, !Interrupt.isRequested {
        do {
            let message = try socket.receive()
            ToolOutput.standardOutputLine(render?(message) ?? format.render(message))
            received += 1
        } catch SocketError.timedOut {
            continue
        }
    }
}

/// Sends each line of standard input as a message until EOF or SIGINT/SIGTERM.
func sendLines(to socket: Socket, format: MessageFormat) throws {
    while !Interrupt.isRequested, let line = readLine() {
        let message = try format.parse(line)
        while !Interrupt.isRequested {
            do {
                try socket.send(message)
                break
            } catch SocketError.timedOut {
                continue
            }
        }
    }
}

struct Push: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Send each line of standard input as a message on a PUSH socket.",
        discussion: "Waits up to --linger milliseconds at the end for messages still queued.")

    @OptionGroup var endpoints: EndpointFlags
    @OptionGroup var socket: SocketFlags
    @Option(help: "Input format: text (frames TAB-separated) or hex (JSON array of hex frames).")
    var format: MessageFormat = .text

    func run() throws {
        try withSocket(.push, endpoints: endpoints, flags: socket, adjust: { $0.sendTimeout = .milliseconds(100) }) { push in
            try sendLines(to: push, format: format)
        }
    }
}
