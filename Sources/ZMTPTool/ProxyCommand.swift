import ArgumentParser
import ZMTP
import ZMTPMetrics
import ZMTPProxy
import ZeekCluster

#if canImport(Glibc)
import Glibc
#endif

/// `zmtp proxy`: an XSUB→XPUB forwarder with Zeek's central broker's defaults, so that it can stand
/// in for the broker a Zeek manager would run (zeek-wire.md §1.2, §4).
struct ProxyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "proxy",
        abstract: "Run an XSUB→XPUB forwarder: a stand-in for Zeek's central ZeroMQ broker.",
        discussion: """
            Defaults are Zeek's: XPUB bound on tcp://127.0.0.1:5555 first (verboser, no-drop), then XSUB on \
            tcp://127.0.0.1:5556, two I/O threads. Both sockets are CURVE servers when --curve-secret is given, \
            or when Zeek's ZEEK_CLUSTER_BACKEND_ZEROMQ_CURVE_* environment variables enable the server side \
            (server secret and client public key); mixing the two is Zeek's fatal error. Stops on SIGINT/SIGTERM \
            and prints its statistics (frames and bytes each way).
            """)

    @Option(name: .customLong("xpub"), help: ArgumentHelp("Where subscribers connect (Zeek's listen_xpub_endpoint).", valueName: "endpoint"))
    var xpubEndpoint = "tcp://127.0.0.1:5555"
    @Option(name: .customLong("xsub"), help: ArgumentHelp("Where publishers connect (Zeek's listen_xsub_endpoint).", valueName: "endpoint"))
    var xsubEndpoint = "tcp://127.0.0.1:5556"
    @Flag(name: .customLong("xpub-nodrop"), inversion: .prefixedNo, help: "Make the XPUB wait for a full subscriber instead of dropping (Zeek's listen_xpub_nodrop).")
    var xpubNoDrop = true
    @Option(name: .customLong("xpub-sndhwm"), help: "XPUB send high-water mark per subscriber, 0 = unlimited.")
    var xpubSendHighWaterMark = 1000
    @Option(name: .customLong("xpub-rcvhwm"), help: "XPUB receive high-water mark per subscriber, 0 = unlimited.")
    var xpubReceiveHighWaterMark = 1000
    @Option(name: .customLong("xsub-sndhwm"), help: "XSUB send high-water mark per publisher, 0 = unlimited.")
    var xsubSendHighWaterMark = 1000
    @Option(name: .customLong("xsub-rcvhwm"), help: "XSUB receive high-water mark per publisher, 0 = unlimited.")
    var xsubReceiveHighWaterMark = 1000
    @Option(name: .customLong("xpub-sndbuf"), help: "XPUB kernel send buffer in bytes, 0 or -1 = OS default.")
    var xpubSendBuffer = 0
    @Option(name: .customLong("xpub-rcvbuf"), help: "XPUB kernel receive buffer in bytes, 0 or -1 = OS default.")
    var xpubReceiveBuffer = 0
    @Option(name: .customLong("xsub-sndbuf"), help: "XSUB kernel send buffer in bytes, 0 or -1 = OS default.")
    var xsubSendBuffer = 0
    @Option(name: .customLong("xsub-rcvbuf"), help: "XSUB kernel receive buffer in bytes, 0 or -1 = OS default.")
    var xsubReceiveBuffer = 0
    @Option(name: .customLong("io-threads"), help: "I/O threads (Zeek's proxy_io_threads).")
    var ioThreads = 2
    @Flag(name: .customLong("ipv6"), help: "Allow IPv6 endpoints (Zeek's ipv6).")
    var ipv6 = false
    @Option(name: .customLong("linger"), help: "Milliseconds to wait for unsent messages at exit, -1 = forever (ZMQ_LINGER).")
    var linger = 0
    @Option(name: .customLong("curve-secret"), help: ArgumentHelp("Be a CURVE server with this secret key (Z85).", valueName: "z85"))
    var curveSecret: String?
    @Option(name: .customLong("curve-allow"), help: ArgumentHelp("Admit this client public key (Z85; repeatable). Without it every client is admitted.", valueName: "z85"))
    var curveAllow: [String] = []
    @Option(name: .customLong("metrics"), help: ArgumentHelp("Serve Prometheus metrics at http://HOST:PORT/metrics (Zeek's proxy counter names).", valueName: "host:port"))
    var metrics: String?
    @Option(name: .customLong("debug"), help: ArgumentHelp("Comma-separated: 'events' logs both sockets' monitor events (connections, handshake failures); 'subscriptions' logs every subscribe and unsubscribe passed up to the publishers.", valueName: "flags"))
    var debug: String?

    func validate() throws {
        if ioThreads < 1 { throw ValidationError("--io-threads must be at least 1") }
        if !curveAllow.isEmpty && curveSecret == nil { throw ValidationError("--curve-allow needs --curve-secret") }
        let unknown = debugFlags.subtracting(["events", "subscriptions"])
        if !unknown.isEmpty { throw ValidationError("unknown --debug flag: \(unknown.sorted().joined(separator: ","))") }
    }

    private var debugFlags: Set<String> {
        Set((debug ?? "").split(separator: ",").map { String($0).trimmingCharacters(in: " ") }.filter { !$0.isEmpty })
    }

    func run() throws {
        Interrupt.install()
        let curve = try CurveServerSettings(secret: curveSecret, allowed: curveAllow).resolve(environment: currentEnvironment())
        // swift-metrics must point at the server's registry before any metric exists.
        let metricsServer = try metrics.map { try MetricsServer(listen: $0) }
        let context = try Context(ioThreads: ioThreads)
        defer { context.shutdown() }

        func options(sendHWM: Int, receiveHWM: Int, sendBuffer: Int, receiveBuffer: Int) -> SocketOptions {
            var options = SocketOptions()
            options.sendHighWaterMark = max(0, sendHWM)
            options.receiveHighWaterMark = max(0, receiveHWM)
            options.sendBufferSize = max(0, sendBuffer)
            options.receiveBufferSize = max(0, receiveBuffer)
            options.ipv6 = ipv6
            options.linger = linger < 0 ? nil : .milliseconds(linger)
            if let (keyPair, zap) = curve {
                options.curve = .server(keyPair)
                options.zapHandler = zap
            }
            return options
        }
        var xpubOptions = options(
            sendHWM: xpubSendHighWaterMark, receiveHWM: xpubReceiveHighWaterMark, sendBuffer: xpubSendBuffer,
            receiveBuffer: xpubReceiveBuffer)
        xpubOptions.xpubVerboser = true
        xpubOptions.xpubNoDrop = xpubNoDrop
        let xsubOptions = options(
            sendHWM: xsubSendHighWaterMark, receiveHWM: xsubReceiveHighWaterMark, sendBuffer: xsubSendBuffer,
            receiveBuffer: xsubReceiveBuffer)
        let xpub = try context.socket(.xpub, options: xpubOptions)
        let xsub = try context.socket(.xsub, options: xsubOptions)
        let printers = debugFlags.contains("events")
            ? [EventPrinter(xpub.monitor(), label: "xpub"), EventPrinter(xsub.monitor(), label: "xsub")] : []
        if printers.isEmpty {
            _ = AcceptFailureReporter(xpub, program: "zmtp proxy", label: "xpub")
            _ = AcceptFailureReporter(xsub, program: "zmtp proxy", label: "xsub")
        }
        defer {
            xpub.close()
            xsub.close()
            for printer in printers { printer.waitUntilStopped() }
        }
        do {
            // Zeek binds the XPUB first.
            let boundXPub = try xpub.bind(xpubEndpoint)
            let boundXSub = try xsub.bind(xsubEndpoint)
            ToolOutput.standardError(
                "zmtp proxy: xpub listening on \(boundXPub), xsub listening on \(boundXSub)"
                    + (curve == nil ? "" : " (CURVE server\(curve?.1 == nil ? ", every client admitted" : ", ZAP allow-list"))"))
        } catch let error as SocketError {
            throw ToolError(error.description)
        }
        let proxy = Proxy(frontend: xsub, backend: xpub, tap: debugFlags.contains("subscriptions") ? Self.logSubscription : nil)
        if let server = metricsServer {
            let reporters = (ProxyMetrics(proxy: proxy), SocketMetrics(socket: xpub, name: "xpub"), SocketMetrics(socket: xsub, name: "xsub"))
            server.refresh = {
                reporters.0.update()
                reporters.1.update()
                reporters.2.update()
            }
            try server.waitUntilListening()
            ToolOutput.standardError("zmtp proxy: metrics on http://\(server.address)/metrics")
        }
        defer { metricsServer?.stop() }
        Thread.detach {
            Interrupt.wait()
            proxy.terminate()
        }
        try proxy.run()
        let statistics = proxy.statistics
        ToolOutput.standardError(
            "zmtp proxy: stopped; frontend (xsub) received \(statistics.frontendMessagesReceived) frames / "
                + "\(statistics.frontendBytesReceived) bytes, sent \(statistics.frontendMessagesSent) / \(statistics.frontendBytesSent); "
                + "backend (xpub) received \(statistics.backendMessagesReceived) / \(statistics.backendBytesReceived), "
                + "sent \(statistics.backendMessagesSent) / \(statistics.backendBytesSent)")
    }
}

extension ProxyCommand {
    /// `--debug subscriptions`: one stderr line per subscribe or unsubscribe going up to the
    /// publishers (what Zeek nodes do when they join and leave).
    @Sendable static func logSubscription(_ message: Message, _ direction: ProxyDirection) {
        guard direction == .backendToFrontend, let first = message.frames.first, let flag = first.first, flag <= 1 else { return }
        ToolOutput.standardError("zmtp proxy: \(flag == 1 ? "subscribe" : "unsubscribe") \(printableTopic(first.dropFirst()))")
    }

    /// A topic as text when it is printable UTF-8 (Zeek's are), as hex otherwise.
    static func printableTopic(_ topic: ArraySlice<UInt8>) -> String {
        if let text = String(validating: topic, as: UTF8.self), text.unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.value != 0x7F }) {
            return "\"\(text)\""
        }
        return "0x" + Hex.encode(Array(topic))
    }
}

/// The process environment as a dictionary (no Foundation).
func currentEnvironment() -> [String: String] {
    var result: [String: String] = [:]
    var pointer = environ
    while let entry = pointer.pointee {
        let text = String(cString: entry)
        if let equals = text.firstIndex(of: "=") {
            result[String(text[..<equals])] = String(text[text.index(after: equals)...])
        }
        pointer += 1
    }
    return result
}
