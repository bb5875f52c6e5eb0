// `zmtp conform` against libzmq (pyzmq targets, Tests/InteropTests/conform_target.py) and against
// swift-zmtp's own sockets: libzmq's known departures from the RFCs (libzmq-behaviours.md) must show up
// as such, and swift-zmtp must pass every MUST-level case.

import Foundation
import Synchronization
import Testing
import ZMTP
import ZMTPTestSupport

#if canImport(Glibc)
import Glibc
#endif

@Suite("zmtp conform against libzmq and swift-zmtp", .timeLimit(.minutes(3)))
struct ConformanceTests {
    struct Report {
        var verdicts: [String: String] = [:]
        var observed: [String: String] = [:]
        var notSurvived: [String] = []
        var status: Int32 = -1

        func verdict(_ name: String) -> String { verdicts[name] ?? "missing" }
        var failures: [String] { verdicts.filter { $0.value == "FAIL" }.map { "\($0.key): \(observed[$0.key] ?? "")" }.sorted() }
        var deviations: Set<String> { Set(verdicts.filter { $0.value == "DEVIATION" }.keys) }
    }

    /// Runs `zmtp conform --json` with `arguments` and parses its lines. A run takes tens of seconds, so
    /// the waiting happens on a thread of its own, not on one of the few threads every test shares.
    static func conform(_ arguments: [String]) async throws -> Report {
        let process = Process()
        process.executableURL = ToolInteropTests.tool
        process.arguments = ["conform"] + arguments + ["--wait", "300", "--json"]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let (text, status) = await withCheckedContinuation { (continuation: CheckedContinuation<(String, Int32), Never>) in
            Thread.detachNewThread {
                let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
                process.waitUntilExit()
                continuation.resume(returning: (text, process.terminationStatus))
            }
        }
        var report = Report(status: status)
        for line in text.split(separator: "\n") {
            guard let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                let name = object["case"] as? String, let verdict = object["verdict"] as? String
            else { continue }
            report.verdicts[name] = verdict
            report.observed[name] = object["observed"] as? String
            if object["survived"] as? Bool == false { report.notSurvived.append(name) }
        }
        #expect(report.verdicts.count >= (arguments.contains("--case") ? 1 : 42), "every case reported: \(text.prefix(400))")
        return report
    }

    /// Deviations libzmq 4.3.5 shows whatever the socket type (libzmq-behaviours.md §7-§10).
    static let libzmqNullDeviations: Set<String> = [
        "greeting.unprompted",  // §8: sends 10 octets, then waits
        "greeting.not-zmtp",  // §9: an HTTP request is taken for ZMTP 1.0 and kept open
        "metadata.socket-type-mismatch",  // §10: closes without ERROR
        "metadata.socket-type-missing",  // §10: accepted
        "metadata.name-case-mismatch",  // §10: names compared case-sensitively
        "metadata.overrun",  // §10: an overrunning last value is accepted
        "heartbeat.ttl-long",  // §7: TTL kept in 16-bit milliseconds
    ]

    @Test("libzmq targets (NULL): its documented departures show up as deviations, the PING without TTL as a failure", arguments: ["PUB", "XPUB", "SUB", "XSUB", "PUSH", "PULL"])
    func libzmq(type: String) async throws {
        let target = try PythonPeer([type], script: "conform_target.py")
        defer { target.closeInput() }
        let port = try target.boundPort()
        let report = try await Self.conform(["tcp://127.0.0.1:\(port)", "--socket-type", type])
        #expect(report.notSurvived.isEmpty, "libzmq survives every bad input: \(report.notSurvived)")
        #expect(report.verdict("handshake.ready") == "PASS")
        #expect(report.verdict("heartbeat.ping-pong") == "PASS")
        // §8: a ZMTP 2.0 peer is downgraded to on NULL sockets.
        #expect(report.observed["version.zmtp-2.0"]?.hasPrefix("downgraded") == true, "\(report.observed["version.zmtp-2.0"] ?? "")")
        // §7: a PING without TTL is answered with 16 octets of stale memory.
        #expect(report.verdict("heartbeat.ping-without-ttl") == "FAIL")
        #expect(report.observed["heartbeat.ping-without-ttl"]?.contains("never sent") == true)
        #expect(report.status == 1, "a MUST-level failure makes the run fail")
        var expected = Self.libzmqNullDeviations
        switch type {
        case "PUB", "XPUB":
            #expect(report.verdict("pubsub.no-subscription-no-data") == "PASS")
            #expect(report.verdict("pubsub.filtering") == "PASS")
            #expect(report.verdict("pubsub.cancel") == "PASS")
            // §6: duplicate subscriptions collapse, against RFC 37's SHALL.
            #expect(report.verdict("pubsub.subscriptions-add-up") == "FAIL")
        case "SUB":
            #expect(report.verdict("pubsub.subscription-form") == "PASS")
            #expect(report.verdict("pubsub.subscriber-sends-no-data") == "PASS")
        case "XSUB":
            expected.insert("pubsub.subscription-form")  // §6: 0x01 messages on 3.1 connections
        case "PUSH":
            #expect(report.verdict("pipeline.round-robin") == "PASS")
        default:
            #expect(report.verdict("pipeline.pull-sends-nothing") == "PASS")
        }
        #expect(report.deviations == expected)
        #expect(report.failures.count == (type.hasSuffix("PUB") ? 2 : 1), "\(report.failures)")
    }

    @Test("a libzmq CURVE server (PUB): data in message frames and as-server 0 are deviations, a vouch for another server is accepted; bad boxes, replays and bad HELLOs are refused")
    func libzmqCurve() async throws {
        let server = CurveKeyPair.generate()
        let target = try PythonPeer(["PUB", server.secretKey.z85], script: "conform_target.py")
        defer { target.closeInput() }
        let port = try target.boundPort()
        let report = try await Self.conform(["tcp://127.0.0.1:\(port)", "--socket-type", "PUB", "--curve-serverkey=\(server.publicKey.z85)"])
        #expect(report.notSurvived.isEmpty)
        for name in ["handshake.ready", "version.zmtp-2.0", "curve.corrupt-box", "curve.replayed-message", "curve.hello-corrupt", "curve.hello-short", "pubsub.filtering"] {
            #expect(report.verdict(name) == "PASS", "\(name): \(report.observed[name] ?? "")")
        }
        #expect(report.deviations == ["greeting.unprompted", "greeting.as-server", "curve.message-frame"])
        // §6 again, and §3: the vouch's server-key half is not checked.
        #expect(report.failures.count == 2, "\(report.failures)")
        #expect(report.verdict("pubsub.subscriptions-add-up") == "FAIL")
        #expect(report.verdict("curve.vouch-wrong-server") == "FAIL")
        #expect(report.status == 1)
    }

    /// A swift-zmtp socket of `type` bound on loopback and kept busy as the pyzmq targets are.
    final class SwiftTarget: @unchecked Sendable {
        let context: Context
        let socket: Socket
        let endpoint: String
        private let stop = Atomic<Bool>(false)
        private let done = DispatchSemaphore(value: 0)

        init(_ type: SocketType, curve: CurveKeyPair? = nil, countsRepeatedSubscriptions: Bool = true) throws {
            context = try Context()
            var options = testSocketOptions { $0.sendHighWaterMark = 100 }
            options.countsRepeatedSubscriptions = countsRepeatedSubscriptions
            if let curve { options.curve = .server(curve) }
            socket = try context.socket(type, options: options)
            if type == .sub { try socket.subscribe(Array("conform.".utf8)) }
            endpoint = try socket.bind("tcp://127.0.0.1:*")
            let socket = socket
            Thread.detachNewThread { [self] in
                var n = 0
                while !stop.load(ordering: .relaxed) {
                    n += 1
                    switch type {
                    case .pub, .xpub:
                        for topic in ["conform.A.", "conform.B.", "other."] { _ = try? socket.trySend(Message(single: Array("\(topic)\(n)".utf8))) }
                    case .push:
                        _ = try? socket.trySend(Message(single: Array("conform.\(n)".utf8)))
                    case .xsub where n % 25 == 0:
                        _ = try? socket.trySend(Message(single: [1] + Array("conform.".utf8)))
                    default:
                        break
                    }
                    if type != .pub && type != .push { while (try? socket.tryReceive()) ?? nil != nil {} }
                    usleep(2_000)
                }
                done.signal()
            }
        }

        /// Stops the traffic thread and closes the socket.
        func finish() {
            stop.store(true, ordering: .relaxed)
            done.wait()
            socket.close()
            context.shutdown()
        }
    }

    @Test("swift-zmtp's sockets (NULL, publishers counting repeated subscriptions) pass every case that applies: no failure, no deviation", arguments: [SocketType.pub, .xpub, .sub, .xsub, .push, .pull])
    func swift(type: SocketType) async throws {
        let target = try SwiftTarget(type)
        defer { target.finish() }
        let report = try await Self.conform([target.endpoint, "--socket-type", type.rawValue])
        #expect(report.status == 0)
        #expect(report.failures.isEmpty, "\(report.failures)")
        #expect(report.deviations.isEmpty, "\(report.deviations.sorted())")
        #expect(report.notSurvived.isEmpty)
        #expect(report.verdict("handshake.ready") == "PASS")
        switch type {
        case .pub, .xpub: #expect(report.verdict("pubsub.subscriptions-add-up") == "PASS")
        case .sub, .xsub: #expect(report.verdict("pubsub.subscription-form") == "PASS")
        case .push: #expect(report.verdict("pipeline.round-robin") == "PASS")
        default: #expect(report.verdict("pipeline.pull-sends-nothing") == "PASS")
        }
    }

    @Test("a swift-zmtp CURVE server (PUB): every MUST case passes; data in message frames is our one deviation (for libzmq's sake)")
    func swiftCurve() async throws {
        let server = CurveKeyPair.generate()
        let target = try SwiftTarget(.pub, curve: server)
        defer { target.finish() }
        let report = try await Self.conform([target.endpoint, "--socket-type", "PUB", "--curve-serverkey=\(server.publicKey.z85)"])
        #expect(report.status == 0)
        #expect(report.failures.isEmpty, "\(report.failures)")
        #expect(report.notSurvived.isEmpty)
        for name in ["handshake.ready", "greeting.as-server", "curve.corrupt-box", "curve.replayed-message", "curve.vouch-wrong-server", "curve.hello-corrupt", "curve.hello-short"] {
            #expect(report.verdict(name) == "PASS", "\(name): \(report.observed[name] ?? "")")
        }
        #expect(report.deviations == ["curve.message-frame"])
    }

    @Test("a swift-zmtp publisher with libzmq's default (repeated subscriptions collapse) fails exactly that MUST case")
    func swiftLibzmqCounting() async throws {
        let target = try SwiftTarget(.xpub, countsRepeatedSubscriptions: false)
        defer { target.finish() }
        let report = try await Self.conform([target.endpoint, "--socket-type", "XPUB", "--case", "pubsub.*"])
        #expect(report.verdicts.count == 6)
        #expect(report.verdict("pubsub.subscriptions-add-up") == "FAIL")
        #expect(report.failures.count == 1)
        #expect(report.status == 1)
    }
}
