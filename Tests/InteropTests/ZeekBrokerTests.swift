// `zmtp proxy` as the central broker of a Zeek cluster whose nodes are libzmq (pyzmq programs that
// behave like Zeek on the wire: Tests/InteropTests/zeek_node.py, zeek-wire.md §1-§4 and §6).

import Foundation
import Testing
import ZMTPWire

#if canImport(Glibc)
import Glibc
#endif

@Suite("zmtp proxy as Zeek's central broker (libzmq nodes)", .serialized, .timeLimit(.minutes(2)))
struct ZeekBrokerTests {
    /// A running `zmtp proxy`.
    final class Broker {
        let process = Process()
        let errors = Pipe()
        let xpub: String
        let xsub: String

        /// Starts the broker on `ports` (XPUB, XSUB) with `arguments` and `environment` added.
        init(ports: (UInt16, UInt16), arguments: [String] = [], environment: [String: String] = [:]) throws {
            xpub = "tcp://127.0.0.1:\(ports.0)"
            xsub = "tcp://127.0.0.1:\(ports.1)"
            process.executableURL = ToolInteropTests.tool
            process.arguments = ["proxy", "--xpub", xpub, "--xsub", xsub] + arguments
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
            process.standardError = errors
            process.standardOutput = FileHandle.nullDevice
            try process.run()
            var text = ""
            while !text.contains("\n") {
                let chunk = errors.fileHandleForReading.availableData
                if chunk.isEmpty { break }
                text += String(decoding: chunk, as: UTF8.self)
            }
            guard text.contains("xpub listening on \(xpub), xsub listening on \(xsub)") else {
                throw InteropFailure("zmtp proxy said: \(text)")
            }
        }

        /// SIGTERM, then the rest of stderr (the statistics line).
        func stop() -> String {
            kill(process.processIdentifier, SIGTERM)
            let rest = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            return rest
        }

        deinit { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
    }

    /// GET http://127.0.0.1:`port`/metrics, with Python's urllib (no HTTP client in the test's
    /// dependencies).
    static func scrape(port: UInt16) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [
            PythonPeer.interpreter, "-c",
            "import urllib.request,sys; sys.stdout.write(urllib.request.urlopen('http://127.0.0.1:\(port)/metrics', timeout=5).read().decode())",
        ]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw InteropFailure("scraping /metrics failed") }
        return text
    }

    /// The value of the sample `name` (with its labels exactly as written) in Prometheus text.
    static func sample(_ name: String, in text: String) -> Double? {
        for line in text.split(separator: "\n") where line.hasPrefix(name + " ") {
            return Double(line.dropFirst(name.count + 1))
        }
        return nil
    }

    static func freePorts() -> (UInt16, UInt16) {
        let base = UInt16(26_000 + Int(getpid() % 1_000) * 2 + Int.random(in: 0..<1_000) * 2)
        return (base, base + 1)
    }

    static func node(_ name: String, _ role: String, _ broker: Broker, keys: [String] = []) throws -> PythonPeer {
        try PythonPeer([name, role, broker.xpub, broker.xsub] + keys, script: "zeek_node.py")
    }

    /// Reads a node's lines until it has said each of `expected`, in any order (READY and NODE_UP race).
    static func expect(_ node: PythonPeer, toSay expected: Set<String>) throws {
        var missing = expected
        while !missing.isEmpty {
            let line = try node.readLine()
            #expect(!line.hasPrefix("FATAL"), "\(line)")
            missing.remove(line)
        }
    }

    @Test("nodes come up through the broker, events reach their topic only, a node's exit is node_down; /metrics counts it; --debug subscriptions logs joins and leaves")
    func nullCluster() throws {
        let ports = Self.freePorts()
        let metricsPort = ports.1 + 1
        let broker = try Broker(ports: ports, arguments: ["--metrics", "127.0.0.1:\(metricsPort)", "--debug", "subscriptions"])
        // A person debugging the cluster: `zmtp sub --zeek` through the broker, for worker-1's topic.
        let (sniffer, snifferOutput) = try ToolInteropTests.startWithoutBind([
            "sub", "--connect", broker.xpub, "--subscribe", "zeek.cluster.node.worker-1.", "--zeek", "--count", "1",
        ])
        defer { if sniffer.isRunning { kill(sniffer.processIdentifier, SIGKILL) } }
        let manager = try Self.node("manager", "manager", broker)
        let worker = try Self.node("worker-1", "worker", broker)
        // READY: the ready-to-publish round trip (a node's own subscription comes back to it).
        // NODE_UP: the hello exchange, driven by each node's id-topic subscription.
        try Self.expect(manager, toSay: ["READY", "NODE_UP worker-1"])
        try Self.expect(worker, toSay: ["READY", "NODE_UP manager"])
        // Trailing dots: worker-10's topic does not reach worker-1.
        manager.send("publish zeek.cluster.node.worker-10. not-for-you")
        manager.send("publish zeek.cluster.node.worker-1. for-you")
        #expect(try worker.readLine() == "EVENT zeek.cluster.node.worker-1. manager for-you")
        let decoded = LineReader(snifferOutput.fileHandleForReading).next() ?? ""
        #expect(decoded.hasPrefix(#"{"topic":"zeek.cluster.node.worker-1.","sender":"zeromq_manager_"#), "\(decoded)")
        #expect(decoded.hasSuffix(#""event":"Test::event","args":["manager","for-you"]}"#), "\(decoded)")
        sniffer.waitUntilExit()
        #expect(sniffer.terminationStatus == 0)
        worker.send("publish zeek.cluster.manager to-the-manager")
        #expect(try manager.readLine() == "EVENT zeek.cluster.manager worker-1 to-the-manager")
        // Zeek's proxy counters (frames, as libzmq 4.3.5 counts them: every event is 4) and ours.
        let metrics = try Self.scrape(port: metricsPort)
        let forwarded = try #require(Self.sample("zeek_cluster_zeromq_proxy_frontend_messages_received_total", in: metrics))
        #expect(forwarded >= 12 && forwarded.truncatingRemainder(dividingBy: 4) == 0, "two hellos and two events at least")
        #expect(Self.sample("zeek_cluster_zeromq_proxy_backend_messages_sent_total", in: metrics) == forwarded)
        #expect(Self.sample("zmtp_connected_peers{socket=\"xpub\"}", in: metrics) == 2)
        #expect(Self.sample("zmtp_connected_peers{socket=\"xsub\"}", in: metrics) == 2)
        // The worker leaves: the broker's XPUB turns its disconnect into cancellations (verboser),
        // which the manager's XPUB sees as node_down.
        worker.send("quit")
        #expect(worker.waitStatus() == 0)
        #expect(try manager.readLine() == "NODE_DOWN worker-1")
        manager.send("quit")
        #expect(manager.waitStatus() == 0)
        let statistics = broker.stop()
        #expect(broker.process.terminationStatus == 0)
        #expect(statistics.contains("zmtp proxy: stopped; frontend (xsub) received"))
        // --debug subscriptions: the worker's node topic, subscribed when it joined and cancelled
        // (by the broker's XPUB, on its disconnect) when it left.
        #expect(statistics.contains("zmtp proxy: subscribe \"zeek.cluster.node.worker-1.\"\n"), "\(statistics)")
        #expect(statistics.contains("zmtp proxy: unsubscribe \"zeek.cluster.node.worker-1.\"\n"), "\(statistics)")
    }

    @Test("CURVE from Zeek's environment variables: nodes with the client key join, one with another key is refused (0x4000, 400)")
    func curveCluster() throws {
        let server = CurveKeyPair.generate()
        let client = CurveKeyPair.generate()
        let ports = Self.freePorts()
        let broker = try Broker(ports: ports, arguments: ["--metrics", "127.0.0.1:\(ports.1 + 1)"], environment: [
            "ZEEK_CLUSTER_BACKEND_ZEROMQ_CURVE_SERVER_SECRETKEY": server.secretKey.z85,
            "ZEEK_CLUSTER_BACKEND_ZEROMQ_CURVE_CLIENT_PUBLICKEY": client.publicKey.z85,
        ])
        let keys = [server.publicKey.z85, client.publicKey.z85, client.secretKey.z85]
        let manager = try Self.node("manager", "manager", broker, keys: keys)
        let worker = try Self.node("worker-1", "worker", broker, keys: keys)
        try Self.expect(manager, toSay: ["READY", "NODE_UP worker-1"])
        try Self.expect(worker, toSay: ["READY", "NODE_UP manager"])
        manager.send("publish zeek.cluster.worker encrypted")
        #expect(try worker.readLine(until: { $0.hasPrefix("EVENT") }) == "EVENT zeek.cluster.worker manager encrypted")

        let stranger = CurveKeyPair.generate()
        let intruder = try Self.node(
            "worker-2", "worker", broker, keys: [server.publicKey.z85, stranger.publicKey.z85, stranger.secretKey.z85])
        #expect(try intruder.readLine() == "FATAL event=0x4000 value=400", "what makes Zeek exit")
        #expect(intruder.waitStatus() == 1)
        let metrics = try Self.scrape(port: ports.1 + 1)
        let refusals = metrics.split(separator: "\n").filter {
            $0.hasPrefix("zmtp_handshake_failures_total{") && $0.contains("reason=\"HANDSHAKE_FAILED_AUTH\"")
                && $0.contains("value=\"400\"")
        }
        #expect(!refusals.isEmpty, "the refusal is counted by reason: \(metrics)")
        manager.send("quit")
        worker.send("quit")
        _ = manager.waitStatus()
        _ = worker.waitStatus()
        _ = broker.stop()
    }

    @Test("keys from flags and from Zeek's environment at once: Zeek's fatal error, exit status 1")
    func mixedConfiguration() throws {
        let process = Process()
        process.executableURL = ToolInteropTests.tool
        process.arguments = ["proxy", "--curve-secret=\(CurveKeyPair.generate().secretKey.z85)"]
        process.environment = ["ZEEK_CLUSTER_BACKEND_ZEROMQ_CURVE_SERVER_SECRETKEY": CurveKeyPair.generate().secretKey.z85]
        let errors = Pipe()
        process.standardError = errors
        try process.run()
        let text = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 1)
        #expect(text.contains("ZeroMQ CURVE configured via script variable redefinitions and environment variables at the same time."))
    }

    @Test("a restarted broker is rejoined: subscriptions are restored and events flow again")
    func brokerRestart() throws {
        let ports = Self.freePorts()
        var broker = try Broker(ports: ports)
        let manager = try Self.node("manager", "manager", broker)
        let worker = try Self.node("worker-1", "worker", broker)
        try Self.expect(manager, toSay: ["READY", "NODE_UP worker-1"])
        try Self.expect(worker, toSay: ["READY", "NODE_UP manager"])
        _ = broker.stop()
        broker = try Broker(ports: ports)
        // libzmq reconnects every 100 ms; each node's XSUB re-sends its subscriptions, our XPUB hands
        // them to the proxy, and our XSUB replays them to each node's XPUB when it reconnects.
        let deadline = Date().addingTimeInterval(10)
        var delivered = false
        var round = 0
        while !delivered && Date() < deadline {
            round += 1
            manager.send("publish zeek.cluster.node.worker-1. after-restart-\(round)")
            if let line = try? worker.readLine(until: { $0.hasPrefix("EVENT") }, timeout: 0.5) {
                delivered = line.hasPrefix("EVENT zeek.cluster.node.worker-1. manager after-restart-")
            }
        }
        #expect(delivered, "events flow through the restarted broker")
        manager.send("quit")
        worker.send("quit")
        _ = manager.waitStatus()
        _ = worker.waitStatus()
        _ = broker.stop()
    }
}
