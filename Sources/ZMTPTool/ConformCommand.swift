import ArgumentParser
import ZMTPConformance
import ZMTPEngine
import ZMTPWire

#if canImport(Glibc)
import Glibc
#endif

/// `zmtp conform`: plays a scripted peer against any ZMTP endpoint and reports, case by case, what
/// the peer does on the wire against what the RFCs require (spec-notes/conformance.md).
struct Conform: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "conform",
        abstract: "Check a ZMTP peer on the wire against the RFCs (greeting, framing, metadata, heartbeats, pub/sub and pipeline rules, CurveZMQ).",
        discussion: """
            Each case prints PASS, FAIL, DEVIATION (allowed by the RFC but not what it recommends) or SKIP, \
            with what was seen. Exit status 0 when no MUST-level case failed and the peer survived every \
            bad-input case, 1 otherwise, 2 on bad usage. Cases that send malformed input are followed by a \
            fresh handshake to check that the peer still serves.
            """)

    @Argument(help: "The peer's endpoint: tcp://HOST:PORT or ipc:///PATH (in --mode listen, where we listen).")
    var endpoint: String?
    @Option(name: .customLong("socket-type"), help: ArgumentHelp("The peer's socket type: PUB, SUB, XPUB, XSUB, PUSH or PULL.", valueName: "type"))
    var socketType: String?
    @Option(name: .customLong("mode"), help: "connect: the peer listens and we connect (default); listen: we listen and the peer connects (and reconnects).")
    var mode: String = "connect"
    @Option(name: .customLong("case"), help: ArgumentHelp("Run only the cases matching this glob (repeatable): 'greeting.*', 'heartbeat.ttl'.", valueName: "glob"))
    var cases: [String] = []
    @Flag(name: .customLong("list"), help: "Describe every case with its RFC reference and exit.")
    var list = false
    @Flag(name: .customLong("json"), help: "One JSON object per case, then a summary object, instead of the table.")
    var json = false
    @Option(name: .customLong("wait"), help: ArgumentHelp("Milliseconds to watch for a reaction (cases wait a small multiple of it).", valueName: "ms"))
    var wait = 1000
    @Option(name: .customLong("topic"), help: "The topic prefix a publisher under test publishes on (pub/sub cases subscribe to it).")
    var topic = "conform"
    @Option(name: .customLong("curve-serverkey"), help: ArgumentHelp("The peer is a CURVE server with this public key (Z85); we are its client.", valueName: "z85"))
    var curveServerKey: String?
    @Option(name: .customLong("curve-secret"), help: ArgumentHelp("Our CURVE secret key (Z85): the client's with --curve-serverkey (a fresh one without), the server's with --curve-server.", valueName: "z85"))
    var curveSecret: String?
    @Flag(name: .customLong("curve-server"), help: "In --mode listen, be a CURVE server (needs --curve-secret; the peer must know its public key).")
    var curveServer = false

    func validate() throws {
        if list { return }
        guard endpoint != nil else { throw ValidationError("missing ENDPOINT") }
        guard let socketType, SocketType(rawValue: socketType.uppercased()) != nil else {
            throw ValidationError("--socket-type must be one of PUB, SUB, XPUB, XSUB, PUSH, PULL")
        }
        guard ConformanceTarget.Mode(rawValue: mode) != nil else { throw ValidationError("--mode must be connect or listen") }
        if wait < 10 || wait > 60_000 { throw ValidationError("--wait must be between 10 and 60000 ms") }
        if curveServer && (curveSecret == nil || mode != "listen") { throw ValidationError("--curve-server needs --curve-secret and --mode listen") }
        if curveServerKey != nil && mode != "connect" { throw ValidationError("--curve-serverkey is for --mode connect") }
        if !cases.isEmpty && ConformanceRunner.select(cases).isEmpty { throw ValidationError("no case matches \(cases.joined(separator: ", ")) (see --list)") }
    }

    func run() throws {
        if list {
            for testCase in ConformanceCase.all {
                print("\(testCase.name)  [\(testCase.level.rawValue)\(testCase.badInput ? ", bad input" : "")]  \(testCase.reference)")
                print("    \(testCase.summary)")
            }
            return
        }
        guard let endpoint, let socketType, let type = SocketType(rawValue: socketType.uppercased()),
            let mode = ConformanceTarget.Mode(rawValue: mode)
        else { throw ToolError("bad arguments") }
        let parsed: Endpoint
        do throws(EngineError) { parsed = try Endpoint(endpoint) } catch { throw ToolError(error.message) }
        var target = ConformanceTarget(endpoint: parsed, socketType: type, mode: mode, wait: .milliseconds(wait), topic: Array(topic.utf8))
        do throws(ZMTPError) {
            if let curveServerKey { target.curveServerKey = try CurvePublicKey(z85: curveServerKey) }
            if let curveSecret { target.curveKeyPair = CurveKeyPair(secretKey: try CurveSecretKey(z85: curveSecret)) }
            if curveServer == false && mode == .listen { target.curveKeyPair = nil }
        } catch {
            throw ToolError("CURVE key: \(error.reason)")
        }
        let runner = ConformanceRunner(target: target)
        let selected = ConformanceRunner.select(cases)
        if !json {
            ToolOutput.standardError(
                "zmtp conform: \(selected.count) cases against \(type) at \(endpoint) (\(mode.rawValue) mode, \(target.usesCurve ? "CURVE" : "NULL"))")
        }
        let results: [ConformanceResult]
        do throws(EngineError) {
            results = try runner.run(selected) { result in
                if json { ToolOutput.standardOutputLine(result.json) }
            }
        } catch {
            throw ToolError(error.message)
        }
        let summary = ConformanceSummary(results)
        if json {
            ToolOutput.standardOutputLine("{\"summary\":\(summary.json)}")
        } else {
            print(conformanceTable(results))
            print(summary.description)
        }
        if summary.fatal > 0 { throw ExitCode(1) }
    }
}
