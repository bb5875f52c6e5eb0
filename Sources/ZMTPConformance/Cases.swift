import ZMTPEngine
import ZMTPWire

/// How strongly the RFC words what a case checks.
public enum ConformanceLevel: String, Sendable, Codable, CaseIterable {
    /// MUST, SHALL, REQUIRED: a failure makes `zmtp conform` exit 1.
    case must = "MUST"
    /// SHOULD, RECOMMENDED: not doing it is a deviation, allowed but reported.
    case should = "SHOULD"
    /// The RFC leaves it open (MAY, or silent): what the peer did is reported, and only a peer that
    /// no longer serves afterwards fails.
    case info = "INFO"
}

/// The outcome of one case.
public enum ConformanceVerdict: String, Sendable, Codable {
    case pass = "PASS"
    case fail = "FAIL"
    /// Allowed by the RFC, but not what it recommends (or a known, documented departure).
    case deviation = "DEVIATION"
    /// Not applicable to this peer, or nothing to judge (the peer sent nothing to look at).
    case skipped = "SKIP"
}

/// What a case concluded and what it saw.
struct Outcome {
    var verdict: ConformanceVerdict
    var observed: String

    static func pass(_ observed: String) -> Outcome { Outcome(verdict: .pass, observed: observed) }
    static func fail(_ observed: String) -> Outcome { Outcome(verdict: .fail, observed: observed) }
    static func deviation(_ observed: String) -> Outcome { Outcome(verdict: .deviation, observed: observed) }
    static func skip(_ observed: String) -> Outcome { Outcome(verdict: .skipped, observed: observed) }
}

/// One check of the battery, tied to the RFC clause it checks.
public struct ConformanceCase: Sendable {
    /// Dotted name, `area.what` (select with globs: `greeting.*`).
    public let name: String
    public let level: ConformanceLevel
    /// The RFC and section.
    public let reference: String
    /// What the case does and what it expects.
    public let summary: String
    /// Whether the case sends something malformed or hostile: afterwards the tester checks that the
    /// peer still completes a handshake on a fresh connection.
    public let badInput: Bool
    /// Why the case does not apply to a target (nil: it applies).
    let applicability: @Sendable (ConformanceTarget) -> String?
    let body: @Sendable (ProbeFactory) throws(ProbeFailure) -> Outcome
}

// MARK: - Applicability

private let nullOnly: @Sendable (ConformanceTarget) -> String? = { $0.usesCurve ? "NULL peers only (crafted handshake)" : nil }
private let always: @Sendable (ConformanceTarget) -> String? = { _ in nil }
private func types(_ allowed: Set<SocketType>, _ what: String) -> @Sendable (ConformanceTarget) -> String? {
    { allowed.contains($0.socketType) ? nil : "\(what) only" }
}
private let curveClient: @Sendable (ConformanceTarget) -> String? = {
    $0.mode == .connect && $0.curveServerKey != nil ? nil : "CURVE servers only (give --curve-serverkey)"
}

// MARK: - Helpers shared by the cases

/// Sends `greeting` (and `ready`, when given) by hand and reports what came back: the peer's greeting
/// and its READY's metadata if it sent them, and whether it closed.
private func manualHandshake(
    _ probe: Probe, greeting: [UInt8], ready: [UInt8]?, within: Duration
) -> (peerGreeting: [UInt8]?, peerReady: Metadata?, reaction: Reaction) {
    probe.send(greeting)
    if let ready { probe.send(ready) }
    let start = Probe.now()
    probe.collect(until: start + within) { _ in
        probe.rawFrames.contains { $0.isCommand && (try? Command.decode($0.body)).map(isReady) == true }
    }
    // Watch a little longer for a close that follows (a peer that answers READY and then validates).
    let reaction = probe.reaction(within: within)
    let greetingBytes = probe.received.count >= Probe.greetingLength ? Array(probe.received[0..<Probe.greetingLength]) : nil
    var metadata: Metadata?
    for frame in probe.rawFrames where frame.isCommand {
        if case .ready(let properties)? = try? Command.decode(frame.body) { metadata = properties }
    }
    return (greetingBytes, metadata, reaction)
}

private func isReady(_ command: Command) -> Bool {
    if case .ready = command { return true }
    return false
}

private func readyFor(_ type: SocketType) -> [UInt8] {
    Probe.ready(properties: [("Socket-Type", Array(type.rawValue.utf8))])
}

private func hex(_ bytes: some Collection<UInt8>) -> String {
    bytes.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
}

/// Opens a connection and completes a correct handshake.
private func connected(_ factory: ProbeFactory) throws(ProbeFailure) -> Probe {
    let probe = try factory.open()
    try probe.handshake()
    return probe
}

/// After `bytes`, what the peer did: closed (with or without ERROR), or still answering a PING.
private func reactionToBadInput(_ probe: Probe, _ bytes: [UInt8]) -> String {
    probe.send(bytes)
    let reaction = probe.reaction(within: probe.target.wait)
    if case .closed = reaction { return reaction.description }
    return probe.answersPing(within: probe.target.wait) ? "ignored (the connection stays up and answers PING)" : "no reaction (open, but no PONG: hung?)"
}

// MARK: - The battery

extension ConformanceCase {
    /// Every case, in the order they run.
    public static let all: [ConformanceCase] = greeting + version + handshake + framing + heartbeat + patterns + curve

    static let greeting: [ConformanceCase] = [
        ConformanceCase(
            name: "greeting.signature", level: .must, reference: "RFC 23/37 §Formal Grammar (signature)",
            summary: "The peer's greeting starts with 0xFF, 8 padding octets, 0x7F.", badInput: false,
            applicability: always
        ) { factory throws(ProbeFailure) in
            let probe = try factory.open()
            probe.send(Probe.greeting(mechanism: factory.target.usesCurve ? "CURVE" : "NULL"))
            guard probe.receive(atLeast: 10, within: factory.target.wait) else {
                return .fail("only \(probe.received.count) octets within \(factory.target.wait)\(probe.closedByPeer ? ", then closed" : " (hung)")")
            }
            let signature = probe.received[0..<10]
            return signature.first == 0xFF && signature.last == 0x7F
                ? .pass("signature \(hex(signature))") : .fail("signature \(hex(signature))")
        },
        ConformanceCase(
            name: "greeting.unprompted", level: .must, reference: "RFC 37 §Version Negotiation",
            summary: "Without waiting for us, the peer sends the first 11 octets (signature and major version) or its whole 64-octet greeting. Sending only the 10-octet signature is a deviation: a peer that waits for 11 octets deadlocks with it.",
            badInput: false, applicability: always
        ) { factory throws(ProbeFailure) in
            let probe = try factory.open()
            probe.collect(until: Probe.now() + factory.target.wait)
            let count = probe.received.count
            switch count {
            case 0: return .fail("sent nothing until we spoke (waited \(factory.target.wait))")
            case 10: return .deviation("sent only the 10-octet signature, then waited for ours")
            case 11, 64: return .pass("sent \(count) octets unprompted")
            default: return count > 11 ? .pass("sent \(count) octets unprompted") : .fail("sent \(count) octets, then waited")
            }
        },
        ConformanceCase(
            name: "greeting.fields", level: .must, reference: "RFC 23/37 §Formal Grammar (greeting)",
            summary: "The whole greeting: major version 3, a mechanism name of A-Z 0-9 - _ . + padded with zeros (ours: NULL or CURVE), 31 zero octets of filler.",
            badInput: false, applicability: always
        ) { factory throws(ProbeFailure) in
            let probe = try factory.open()
            let mechanism = factory.target.usesCurve ? "CURVE" : "NULL"
            probe.send(Probe.greeting(mechanism: mechanism, asServer: factory.target.mode == .listen && factory.target.usesCurve))
            guard probe.receive(atLeast: 64, within: factory.target.wait * 2) else {
                return .fail("greeting incomplete: \(probe.received.count) octets")
            }
            let greeting = Array(probe.received[0..<64])
            var problems: [String] = []
            if greeting[10] < 3 { problems.append("major version \(greeting[10])") }
            let name = greeting[12..<32]
            let text = String(decoding: name.prefix { $0 != 0 }, as: UTF8.self)
            if text != mechanism { problems.append("mechanism '\(text)' (we greeted with \(mechanism))") }
            if name.drop(while: { $0 != 0 }).contains(where: { $0 != 0 }) { problems.append("mechanism padding not zero") }
            if greeting[33..<64].contains(where: { $0 != 0 }) { problems.append("filler not zero: \(hex(greeting[33..<64]))") }
            return problems.isEmpty
                ? .pass("version \(greeting[10]).\(greeting[11]), mechanism \(text), filler zero")
                : .fail(problems.joined(separator: "; "))
        },
        ConformanceCase(
            name: "greeting.as-server", level: .should, reference: "RFC 37 §Topology; RFC 25 §Mechanism",
            summary: "as-server is 0 with NULL (no roles); a CURVE server greets with as-server 1.",
            badInput: false, applicability: { $0.mode == .connect ? nil : "connect mode only (the peer is the server)" }
        ) { factory throws(ProbeFailure) in
            let probe = try factory.open()
            let curve = factory.target.usesCurve
            probe.send(Probe.greeting(mechanism: curve ? "CURVE" : "NULL"))
            guard probe.receive(atLeast: 64, within: factory.target.wait * 2) else {
                return .fail("greeting incomplete: \(probe.received.count) octets")
            }
            let asServer = probe.received[32]
            let expected: UInt8 = curve ? 1 : 0
            if asServer == expected { return .pass("as-server \(asServer)") }
            return .deviation("as-server \(asServer) (expected \(expected)\(curve ? "; the role comes from configuration instead" : ""))")
        },
        ConformanceCase(
            name: "greeting.mechanism-mismatch", level: .must, reference: "RFC 37 §Authentication and Confidentiality",
            summary: "A greeting with another mechanism (PLAIN, or NULL to a CURVE peer): the peer MUST close the connection.",
            badInput: true, applicability: always
        ) { factory throws(ProbeFailure) in
            let probe = try factory.open()
            probe.send(Probe.greeting(mechanism: factory.target.usesCurve ? "NULL" : "PLAIN"))
            let reaction = probe.reaction(within: factory.target.wait * 2)
            switch reaction {
            case .closed: return .pass(reaction.description)
            case .open: return .fail("connection still open after \(factory.target.wait * 2)")
            }
        },
        ConformanceCase(
            name: "greeting.not-zmtp", level: .should, reference: "RFC 37 §Version Negotiation; RFC 23 §Backwards Interoperability",
            summary: "An HTTP request instead of a greeting: the peer should close (it is no ZMTP version). A peer that takes it for ZMTP 1.0 and keeps it open forever is a deviation (resources held by a stranger).",
            badInput: true, applicability: always
        ) { factory throws(ProbeFailure) in
            let probe = try factory.open()
            probe.send(Array("GET / HTTP/1.1\r\nHost: conform\r\n\r\n".utf8))
            let reaction = probe.reaction(within: factory.target.wait * 2)
            if case .closed = reaction { return .pass(reaction.description) }
            return .deviation("still open after \(factory.target.wait * 2) (taken for an older ZMTP peer?)")
        },
        ConformanceCase(
            name: "greeting.truncated", level: .info, reference: "RFC 37 §Version Negotiation",
            summary: "Five octets of a greeting, then we close: the peer must simply drop the connection.",
            badInput: true, applicability: always
        ) { factory throws(ProbeFailure) in
            let probe = try factory.open()
            probe.send([0xFF, 0, 0, 0, 0])
            probe.stream.close()
            return .pass("sent 5 octets and closed")
        },
    ]

    static let version: [ConformanceCase] = [
        higherVersionCase("version.higher-minor", major: 3, minor: 7),
        higherVersionCase("version.higher-major", major: 4, minor: 0),
        ConformanceCase(
            name: "version.zmtp-2.0", level: .must, reference: "RFC 37 §Backwards Interoperability, §Security Considerations",
            summary: "We greet as ZMTP 2.0. With NULL the peer may downgrade or else MUST close; with any other mechanism it MUST close: a 2.0 peer can only ask for NULL, and answering it would be a downgrade.",
            badInput: true, applicability: always
        ) { factory throws(ProbeFailure) in
            try zmtp20(factory)
        },
        ConformanceCase(
            name: "version.zmtp-3.0", level: .info, reference: "RFC 37 §Version Negotiation (a peer MAY downgrade)",
            summary: "We greet as ZMTP 3.0: the peer may downgrade (READY follows) or, if it cannot, MUST close.",
            badInput: false, applicability: nullOnly
        ) { factory throws(ProbeFailure) in
            let probe = try factory.open()
            let result = manualHandshake(
                probe, greeting: Probe.greeting(major: 3, minor: 0), ready: readyFor(factory.target.counterpart),
                within: factory.target.wait)
            if result.peerReady != nil, case .open = result.reaction { return .pass("downgraded: READY, connection up") }
            if case .closed = result.reaction { return .pass("does not downgrade: \(result.reaction.description)") }
            return .fail("no READY and no close: hung")
        },
    ]

    /// Subscribes to the target topic `subscriptions` times, waits for a message, cancels once, lets
    /// 300 ms pass, and counts the messages of the next ``ConformanceTarget/wait``; nil if nothing was
    /// published before the cancel.
    static func messagesAfterCancel(_ factory: ProbeFactory, subscriptions: Int) throws(ProbeFailure) -> Int? {
        let probe = try connected(factory)
        let prefix = factory.target.topic
        for _ in 0..<subscriptions { probe.subscribe(prefix) }
        probe.pump(until: Probe.now() + factory.target.wait * 2) { events in events.contains { if case .message = $0 { true } else { false } } }
        guard !probe.messages.isEmpty else { return nil }
        probe.subscribe(prefix, false)
        probe.pump(until: Probe.now() + .milliseconds(300))
        let settled = probe.messages.count
        probe.pump(until: Probe.now() + factory.target.wait)
        return probe.messages.count - settled
    }

    /// ZMTP 2.0's socket type octets (RFC 15, as libzmq numbers them).
    static func zmtp20TypeOctet(_ type: SocketType) -> UInt8 {
        switch type {
        case .pair: return 0
        case .pub: return 1
        case .sub: return 2
        case .req: return 3
        case .rep: return 4
        case .dealer: return 5
        case .router: return 6
        case .pull: return 7
        case .push: return 8
        case .xpub: return 9
        case .xsub: return 10
        }
    }

    static func zmtp20(_ factory: ProbeFactory) throws(ProbeFailure) -> Outcome {
        let probe = try factory.open()
        // Signature (the padding's last bit says "2.0 or later"), revision 1, socket type, empty identity.
        probe.send([0xFF, 0, 0, 0, 0, 0, 0, 0, 1, 0x7F, 0x01, zmtp20TypeOctet(factory.target.counterpart), 0x00, 0x00])
        let reaction = probe.reaction(within: factory.target.wait * 2)
        // A 3.x peer goes on with its minor version and an upper-case mechanism name (octet 12 on); one
        // that downgrades answers ZMTP 2.0's way: a socket type octet, then an identity frame whose
        // flags octet is 0x00 or 0x01.
        let received = probe.received
        let downgraded = received.count >= 13 && !(0x41...0x5A).contains(received[12])
        if factory.target.usesCurve {
            if downgraded { return .fail("answered as ZMTP 2.0 on a CURVE connection (a downgrade)") }
            if case .closed = reaction { return .pass("refused: \(reaction.description)") }
            return .fail("a ZMTP 2.0 greeting on a CURVE connection was left open")
        }
        if downgraded { return .pass("downgraded: answered with ZMTP 2.0's socket type \(received[11]) and an identity (\(hex(received.prefix(16))))") }
        let sent = "after \(received.count) octets (\(hex(received.prefix(16)))\(received.count > 16 ? "…" : ""))"
        if reaction == .open { return .fail("neither downgraded nor closed: connection left open \(sent)") }
        return .pass("does not downgrade: \(reaction.description) \(sent)")
    }

    /// "A ZMTP peer MUST accept protocol versions greater or equal to 3.1": we greet as `major.minor`.
    static func higherVersionCase(_ name: String, major: UInt8, minor: UInt8) -> ConformanceCase {
        ConformanceCase(
            name: name, level: .must, reference: "RFC 37 §Version Negotiation",
            summary: "We greet as ZMTP \(major).\(minor): a peer MUST accept versions ≥ 3.1 and answer with its own (READY follows).",
            badInput: false, applicability: nullOnly
        ) { factory throws(ProbeFailure) in
            try higherVersion(factory, major: major, minor: minor)
        }
    }

    static func higherVersion(_ factory: ProbeFactory, major: UInt8, minor: UInt8) throws(ProbeFailure) -> Outcome {
        let probe = try factory.open()
        let result = manualHandshake(
            probe, greeting: Probe.greeting(major: major, minor: minor), ready: readyFor(factory.target.counterpart),
            within: factory.target.wait)
        guard let greeting = result.peerGreeting else { return .fail("no greeting: \(result.reaction.description)") }
        if result.peerReady == nil { return .fail("no READY after our \(major).\(minor) greeting: \(result.reaction.description)") }
        if case .closed = result.reaction { return .fail("READY, then \(result.reaction.description)") }
        return .pass("answered as \(greeting[10]).\(greeting[11]) with READY; connection up")
    }

    static let handshake: [ConformanceCase] = [
        ConformanceCase(
            name: "handshake.ready", level: .must, reference: "RFC 37 §The NULL Security Mechanism; RFC 25/26 (CURVE)",
            summary: "A correct handshake completes, and the peer's Socket-Type is the one it was said to be.",
            badInput: false, applicability: always
        ) { factory throws(ProbeFailure) in
            let probe = try factory.open()
            let peer = try probe.handshake()
            guard peer.socketType == factory.target.socketType else {
                return .fail("the peer says Socket-Type \(peer.socketType), not \(factory.target.socketType)")
            }
            let names = peer.metadata.map(\.name).joined(separator: ", ")
            return .pass("ZMTP \(peer.version), properties: \(names)")
        },
        ConformanceCase(
            name: "metadata.socket-type-mismatch", level: .must, reference: "RFC 23/37 §The Socket-Type Property",
            summary: "READY claiming an incompatible socket type: the peer must not accept the connection (close); it SHOULD send an ERROR first (no ERROR is a deviation).",
            badInput: true, applicability: nullOnly
        ) { factory throws(ProbeFailure) in
            let probe = try factory.open()
            let bad = factory.target.incompatibleType
            let result = manualHandshake(probe, greeting: Probe.greeting(), ready: readyFor(bad), within: factory.target.wait)
            switch result.reaction {
            case .closed(_, let error?): return .pass("claimed \(bad): ERROR \"\(error)\", closed")
            case .closed: return .deviation("claimed \(bad): \(result.reaction.description)")
            case .open: return .fail("claimed \(bad): connection accepted and left open")
            }
        },
        ConformanceCase(
            name: "metadata.socket-type-missing", level: .should, reference: "RFC 23/37 §Connection Metadata, §The Socket-Type Property",
            summary: "READY without Socket-Type: the peer cannot check compatibility and should refuse; accepting is a deviation.",
            badInput: true, applicability: nullOnly
        ) { factory throws(ProbeFailure) in
            let probe = try factory.open()
            let result = manualHandshake(
                probe, greeting: Probe.greeting(), ready: Probe.ready(properties: [("X-Conform", [1])]), within: factory.target.wait)
            if case .closed = result.reaction { return .pass(result.reaction.description) }
            return .deviation("accepted a READY without Socket-Type")
        },
        ConformanceCase(
            name: "metadata.name-case", level: .must, reference: "RFC 23 §Connection Metadata (names are case-insensitive)",
            summary: "READY with `socket-type` in lower case and a compatible type: the peer must accept it.",
            badInput: false, applicability: nullOnly
        ) { factory throws(ProbeFailure) in
            let probe = try factory.open()
            let result = manualHandshake(
                probe, greeting: Probe.greeting(),
                ready: Probe.ready(properties: [("socket-type", Array(factory.target.counterpart.rawValue.utf8))]),
                within: factory.target.wait)
            if result.peerReady != nil, case .open = result.reaction { return .pass("accepted") }
            return .fail(result.reaction.description)
        },
        ConformanceCase(
            name: "metadata.name-case-mismatch", level: .should, reference: "RFC 23 §Connection Metadata, §The Socket-Type Property",
            summary: "READY with `socket-type` in lower case and an incompatible type: the peer should refuse it as it refuses `Socket-Type`; accepting it means the name is compared case-sensitively.",
            badInput: true, applicability: nullOnly
        ) { factory throws(ProbeFailure) in
            let probe = try factory.open()
            let bad = factory.target.incompatibleType
            let result = manualHandshake(
                probe, greeting: Probe.greeting(), ready: Probe.ready(properties: [("socket-type", Array(bad.rawValue.utf8))]),
                within: factory.target.wait)
            if case .closed = result.reaction { return .pass("claimed \(bad): \(result.reaction.description)") }
            return .deviation("claimed \(bad) as `socket-type`: accepted (names compared case-sensitively)")
        },
        ConformanceCase(
            name: "metadata.overrun", level: .should, reference: "RFC 23/37 §Connection Metadata (grammar)",
            summary: "READY whose last value length runs past the command: malformed, the peer should close.",
            badInput: true, applicability: nullOnly
        ) { factory throws(ProbeFailure) in
            let probe = try factory.open()
            let type = Array(factory.target.counterpart.rawValue.utf8)
            var data: [UInt8] = [11] + Array("Socket-Type".utf8) + withUnsafeBytes(of: UInt32(type.count).bigEndian, Array.init) + type
            // The last value announces 1000 octets and none follow.
            data += [5] + Array("X-Bad".utf8) + withUnsafeBytes(of: UInt32(1000).bigEndian, Array.init)
            let result = manualHandshake(
                probe, greeting: Probe.greeting(), ready: Probe.frame(commandNamed: "READY", data: data), within: factory.target.wait)
            if case .closed = result.reaction { return .pass(result.reaction.description) }
            return .deviation("accepted a READY whose last value overruns it")
        },
    ]

    static let framing: [ConformanceCase] = [
        ConformanceCase(
            name: "framing.long-size-short-body", level: .must, reference: "RFC 23/37 §Framing (long-size = 0 to 2^63-1)",
            summary: "A 5-octet message in a long frame (8-octet size): valid, the connection must stay up.",
            badInput: false, applicability: { t in nullOnly(t) ?? (t.counterpart.sendsData ? nil : "peers that receive data only") }
        ) { factory throws(ProbeFailure) in
            let probe = try connected(factory)
            probe.send(Probe.frame(flags: 0x02, body: Array("hello".utf8)))
            let observed = reactionToBadInput(probe, [])
            return observed.hasPrefix("ignored") ? .pass("accepted; the connection answers PING") : .fail(observed)
        },
        ConformanceCase(
            name: "framing.reserved-flags", level: .info, reference: "RFC 23/37 §Framing (bits 7-3 MUST be zero)",
            summary: "A frame with reserved flag bits set: the RFC binds the sender only; closing or ignoring are both reported.",
            badInput: true, applicability: nullOnly
        ) { factory throws(ProbeFailure) in
            let probe = try connected(factory)
            return .pass(reactionToBadInput(probe, Probe.frame(flags: 0x80, body: Array("x".utf8))))
        },
        ConformanceCase(
            name: "framing.more-on-command", level: .info, reference: "RFC 37 §Framing (MORE SHALL be zero on commands)",
            summary: "A PING command frame with the MORE bit set: what the peer does is reported.",
            badInput: true, applicability: nullOnly
        ) { factory throws(ProbeFailure) in
            let probe = try connected(factory)
            let body = (try? Command.ping(ttlDeciseconds: 0, context: []).encodedBody()) ?? []
            return .pass(reactionToBadInput(probe, Probe.frame(flags: 0x05, body: body)))
        },
        ConformanceCase(
            name: "framing.huge-size", level: .info, reference: "RFC 23/37 §Framing; robustness",
            summary: "A long frame announcing 2^62 octets, then silence: the peer must neither crash nor allocate it; closing at once is best.",
            badInput: true, applicability: nullOnly
        ) { factory throws(ProbeFailure) in
            let probe = try connected(factory)
            probe.send(Probe.frame(flags: 0x02, body: [], longSize: 1 << 62))
            let reaction = probe.reaction(within: factory.target.wait)
            return .pass(reaction == .open ? "waits for the body (connection open)" : reaction.description)
        },
        ConformanceCase(
            name: "framing.truncated-at-close", level: .info, reference: "RFC 37 §Messages (delivered atomically)",
            summary: "Half a multipart message, then we close: nothing to see on the wire except that the peer survives.",
            badInput: true, applicability: nullOnly
        ) { factory throws(ProbeFailure) in
            let probe = try connected(factory)
            probe.send(Probe.frame(flags: 0x01, body: Array("part-1".utf8)) + [0x00, 200, 1, 2, 3])
            probe.stream.close()
            return .pass("sent one frame of two and half of the second, then closed")
        },
        ConformanceCase(
            name: "command.unknown", level: .info, reference: "RFC 37 §Commands",
            summary: "An unknown command after the handshake: ignoring it keeps the protocol extensible; what the peer does is reported.",
            badInput: true, applicability: nullOnly
        ) { factory throws(ProbeFailure) in
            let probe = try connected(factory)
            return .pass(reactionToBadInput(probe, Probe.frame(commandNamed: "CONFORM", data: [1, 2, 3])))
        },
        ConformanceCase(
            name: "connection.churn", level: .info, reference: "robustness",
            summary: "100 connections opened and dropped at once (half after a partial greeting): the peer must survive them.",
            badInput: true, applicability: { $0.mode == .connect ? nil : "connect mode only" }
        ) { factory throws(ProbeFailure) in
            for index in 0..<100 {
                let probe: Probe
                do throws(ProbeFailure) {
                    probe = try factory.open()
                } catch {
                    // A full accept queue delays connects; the survival check judges what matters.
                    return .pass("\(index) connections opened and closed, then: \(error.observed)")
                }
                if index.isMultiple(of: 2) { probe.send([0xFF, 0, 0, 0]) }
                probe.stream.close()
            }
            return .pass("100 connections opened and closed")
        },
    ]

    static let heartbeat: [ConformanceCase] = [
        ConformanceCase(
            name: "heartbeat.ping-pong", level: .must, reference: "RFC 37 §Connection Heartbeating",
            summary: "PING with a context: the peer answers PONG with the same context.",
            badInput: false, applicability: always
        ) { factory throws(ProbeFailure) in
            let probe = try connected(factory)
            if probe.connection?.peer?.version == .zmtp30 { return .skip("a ZMTP 3.0 peer has no PING") }
            return probe.answersPing(within: factory.target.wait) ? .pass("PONG with our context") : .fail("no PONG within \(factory.target.wait)")
        },
        ConformanceCase(
            name: "heartbeat.ping-without-ttl", level: .must, reference: "RFC 37 §Connection Heartbeating (PONG context = PING context)",
            summary: "A PING of 0 octets (no TTL, malformed): closing or ignoring are fine, and a PONG may only echo what we sent (nothing); octets we never sent are a failure (an out-of-bounds read).",
            badInput: true, applicability: nullOnly
        ) { factory throws(ProbeFailure) in
            let probe = try connected(factory)
            let before = probe.rawFrames.count
            probe.send(Probe.frame(commandNamed: "PING", data: []))
            let reaction = probe.reaction(within: factory.target.wait)
            for frame in probe.rawFrames.dropFirst(before) where frame.isCommand {
                if case .pong(let context)? = try? Command.decode(frame.body) {
                    return context.isEmpty ? .pass("PONG with an empty context") : .fail("PONG carrying \(context.count) octets we never sent: \(hex(context))")
                }
            }
            return .pass(reaction == .open ? "ignored" : reaction.description)
        },
        ConformanceCase(
            name: "heartbeat.ttl", level: .should, reference: "RFC 37 §Connection Heartbeating (TTL)",
            summary: "PING with TTL 1 s, then silence: the peer should close after about 1 s (not much sooner).",
            badInput: false, applicability: nullOnly
        ) { factory throws(ProbeFailure) in
            let probe = try connected(factory)
            probe.send(Probe.frame(command: .ping(ttlDeciseconds: 10, context: [])))
            let reaction = probe.reaction(within: .seconds(4))
            switch reaction {
            case .closed(let milliseconds, _) where milliseconds >= 700: return .pass("closed after \(milliseconds) ms")
            case .closed(let milliseconds, _): return .fail("closed after \(milliseconds) ms, before the TTL")
            case .open: return .deviation("still open 4 s after a 1 s TTL")
            }
        },
        ConformanceCase(
            name: "heartbeat.ttl-long", level: .should, reference: "RFC 37 §Connection Heartbeating (TTL up to 6553.5 s)",
            summary: "PING with TTL 65.6 s (656 deciseconds): the peer must not close within 2 s. Closing at once means the TTL overflowed (libzmq keeps milliseconds in 16 bits).",
            badInput: false, applicability: nullOnly
        ) { factory throws(ProbeFailure) in
            let probe = try connected(factory)
            probe.send(Probe.frame(command: .ping(ttlDeciseconds: 656, context: [])))
            let reaction = probe.reaction(within: .seconds(2))
            if case .closed = reaction { return .deviation("TTL 65.6 s: \(reaction.description)") }
            return .pass("still open after 2 s")
        },
    ]

    static let patterns: [ConformanceCase] = [
        ConformanceCase(
            name: "pubsub.no-subscription-no-data", level: .must, reference: "RFC 29 §The PUB Socket Type (filtering at the publisher)",
            summary: "A subscriber that subscribed to nothing receives nothing.", badInput: false,
            applicability: types([.pub, .xpub], "PUB and XPUB peers")
        ) { factory throws(ProbeFailure) in
            let probe = try connected(factory)
            probe.pump(until: Probe.now() + factory.target.wait)
            let count = probe.messages.count
            return count == 0 ? .pass("no message in \(factory.target.wait)") : .fail("\(count) messages without a subscription")
        },
        ConformanceCase(
            name: "pubsub.filtering", level: .must, reference: "RFC 29 §The PUB Socket Type",
            summary: "After SUBSCRIBE to the target topic + \".A\", every message received starts with it (skipped if the peer publishes nothing there).",
            badInput: false, applicability: types([.pub, .xpub], "PUB and XPUB peers")
        ) { factory throws(ProbeFailure) in
            let probe = try connected(factory)
            let prefix = factory.target.topic + Array(".A".utf8)
            probe.subscribe(prefix)
            probe.pump(until: Probe.now() + factory.target.wait * 2) { $0.count >= 20 }
            let messages = probe.messages
            if messages.isEmpty { return .skip("nothing published under \(String(decoding: prefix, as: UTF8.self)) within \(factory.target.wait * 2)") }
            let stray = messages.filter { !($0.frames.first ?? []).starts(with: prefix) }
            return stray.isEmpty ? .pass("\(messages.count) messages, all matching") : .fail("\(stray.count) of \(messages.count) messages do not match the subscription")
        },
        ConformanceCase(
            name: "pubsub.cancel", level: .must, reference: "RFC 29 §The PUB Socket Type; RFC 37 §The Publish-Subscribe Pattern",
            summary: "SUBSCRIBE, a message arrives, CANCEL: after a moment nothing more arrives.",
            badInput: false, applicability: types([.pub, .xpub], "PUB and XPUB peers")
        ) { factory throws(ProbeFailure) in
            guard let late = try messagesAfterCancel(factory, subscriptions: 1) else { return .skip("nothing published under the topic") }
            return late == 0 ? .pass("nothing after CANCEL") : .fail("\(late) messages more than 300 ms after CANCEL")
        },
        ConformanceCase(
            name: "pubsub.subscriptions-add-up", level: .must, reference: "RFC 37 §The Publish-Subscribe Pattern (SHALL be additive, SHALL NOT be idempotent)",
            summary: "SUBSCRIBE twice to one topic, CANCEL once: the publisher keeps sending it. A publisher that stops has collapsed the two subscriptions (libzmq does, and its subscribers rely on it: they send one CANCEL for repeated subscribes).",
            badInput: false, applicability: types([.pub, .xpub], "PUB and XPUB peers")
        ) { factory throws(ProbeFailure) in
            guard let late = try messagesAfterCancel(factory, subscriptions: 2) else { return .skip("nothing published under the topic") }
            return late > 0
                ? .pass("still receiving after one CANCEL of two") : .fail("stopped after one CANCEL of two SUBSCRIBEs (subscriptions collapsed)")
        },
        ConformanceCase(
            name: "pubsub.subscription-form", level: .should, reference: "RFC 37 §The Publish-Subscribe Pattern",
            summary: "A 3.1 subscriber sends subscriptions as SUBSCRIBE/CANCEL commands. ZMTP 3.0's 0x01/0x00 messages on a 3.1 connection are a deviation (skipped if it subscribes to nothing).",
            badInput: false, applicability: { t in nullOnly(t) ?? types([.sub, .xsub], "SUB and XSUB peers")(t) }
        ) { factory throws(ProbeFailure) in
            let probe = try connected(factory)
            probe.pump(until: Probe.now() + factory.target.wait * 2)
            var commands = 0, legacy = 0
            for frame in probe.rawFrames {
                if frame.isCommand {
                    switch try? Command.decode(frame.body) {
                    case .subscribe?, .cancel?: commands += 1
                    default: break
                    }
                } else if let flag = frame.body.first, flag <= 1 {
                    legacy += 1
                }
            }
            if commands + legacy == 0 { return .skip("no subscription within \(factory.target.wait * 2)") }
            if legacy > 0 { return .deviation("\(legacy) subscriptions as 0x01/0x00 messages, \(commands) as commands") }
            return .pass("\(commands) subscriptions as commands")
        },
        ConformanceCase(
            name: "pubsub.subscriber-sends-no-data", level: .must, reference: "RFC 29 §The SUB Socket Type",
            summary: "A SUB sends nothing but subscriptions: no data message arrives from it (the XSUB may send any message).",
            badInput: false, applicability: types([.sub], "SUB peers")
        ) { factory throws(ProbeFailure) in
            let probe = try connected(factory)
            probe.sendMessage(Message(single: factory.target.topic + Array(".conform".utf8)))
            probe.pump(until: Probe.now() + factory.target.wait)
            let data = probe.rawFrames.filter { !$0.isCommand && ($0.body.first.map { $0 > 1 } ?? true) }
            return data.isEmpty ? .pass("no data frames") : .fail("\(data.count) data frames from a SUB")
        },
        ConformanceCase(
            name: "pipeline.pull-sends-nothing", level: .must, reference: "RFC 30 §The PULL Socket Type",
            summary: "A PULL never sends a message: after we send 10, nothing but commands comes back.",
            badInput: false, applicability: types([.pull], "PULL peers")
        ) { factory throws(ProbeFailure) in
            let probe = try connected(factory)
            for index in 0..<10 { probe.sendMessage(Message(single: Array("conform-\(index)".utf8))) }
            probe.pump(until: Probe.now() + factory.target.wait)
            let count = probe.messages.count
            if probe.closedByPeer { return .fail("closed the connection after our messages") }
            return count == 0 ? .pass("no message back") : .fail("\(count) messages from a PULL")
        },
        ConformanceCase(
            name: "pipeline.round-robin", level: .must, reference: "RFC 30 §The PUSH Socket Type (round robin)",
            summary: "Two PULL connections to a PUSH that sends: both receive messages (skipped if it sends nothing).",
            badInput: false,
            applicability: { t in t.mode == .connect ? types([.push], "PUSH peers")(t) : "connect mode only (a peer connects once)" }
        ) { factory throws(ProbeFailure) in
            let first = try connected(factory)
            let second = try connected(factory)
            let deadline = Probe.now() + factory.target.wait * 3
            while Probe.now() < deadline && (first.messages.isEmpty || second.messages.isEmpty)
                && !(first.closedByPeer && second.closedByPeer)
            {
                first.pump(until: Probe.now() + .milliseconds(50))
                second.pump(until: Probe.now() + .milliseconds(50))
            }
            let counts = (first.messages.count, second.messages.count)
            if counts.0 + counts.1 == 0 { return .skip("the peer sent nothing within \(factory.target.wait * 3)") }
            return counts.0 > 0 && counts.1 > 0
                ? .pass("\(counts.0) and \(counts.1) messages") : .fail("\(counts.0) and \(counts.1) messages: one connection got nothing")
        },
    ]

    static let curve: [ConformanceCase] = [
        ConformanceCase(
            name: "curve.message-frame", level: .should, reference: "RFC 37 §Wire Analysis of the Connection; RFC 26 §MESSAGE",
            summary: "Data from the peer comes as MESSAGE commands (command frames). MESSAGE in plain message frames is a deviation (skipped if the peer sends no data).",
            badInput: false, applicability: { t in curveClient(t) ?? types([.pub, .xpub, .push], "peers that send data")(t) }
        ) { factory throws(ProbeFailure) in
            let probe = try connected(factory)
            if factory.target.socketType == .pub || factory.target.socketType == .xpub { probe.subscribe([]) }
            probe.pump(until: Probe.now() + factory.target.wait * 2) { events in events.contains { if case .message = $0 { true } else { false } } }
            let messages = probe.rawFrames.filter { $0.body.starts(with: [7] + Array("MESSAGE".utf8)) }
            if messages.isEmpty { return .skip("no data within \(factory.target.wait * 2)") }
            let plain = messages.filter { !$0.isCommand }.count
            return plain == 0 ? .pass("\(messages.count) MESSAGE commands") : .deviation("\(plain) of \(messages.count) MESSAGEs in message frames")
        },
        ConformanceCase(
            name: "curve.corrupt-box", level: .must, reference: "RFC 26 §MESSAGE (the box must open)",
            summary: "A MESSAGE whose box fails authentication: the peer MUST close the connection.",
            badInput: true, applicability: curveClient
        ) { factory throws(ProbeFailure) in
            let probe = try connected(factory)
            var bytes = probe.encodeWithoutSending(Message(single: Array("conform".utf8)))
            guard bytes.count > 20 else { return .skip("could not build a MESSAGE") }
            bytes[bytes.count - 1] ^= 0x01
            probe.send(bytes)
            let reaction = probe.reaction(within: factory.target.wait * 2)
            if case .closed = reaction { return .pass(reaction.description) }
            return .fail("a corrupt MESSAGE was accepted (connection open)")
        },
        ConformanceCase(
            name: "curve.replayed-message", level: .must, reference: "RFC 26 §MESSAGE (nonces strictly increase)",
            summary: "The same MESSAGE twice: the replay MUST close the connection.",
            badInput: true, applicability: curveClient
        ) { factory throws(ProbeFailure) in
            let probe = try connected(factory)
            let bytes = probe.encodeWithoutSending(Message(single: Array("conform".utf8)))
            guard !bytes.isEmpty else { return .skip("could not build a MESSAGE") }
            probe.send(bytes)
            probe.send(bytes)
            let reaction = probe.reaction(within: factory.target.wait * 2)
            if case .closed = reaction { return .pass(reaction.description) }
            return .fail("a replayed MESSAGE was accepted (connection open)")
        },
        ConformanceCase(
            name: "curve.vouch-wrong-server", level: .must, reference: "RFC 26 §INITIATE (the vouch names S')",
            summary: "An INITIATE whose vouch box is valid but names another server key than S': the server SHALL reject it (close, or ERROR) and not answer READY.",
            badInput: true, applicability: curveClient
        ) { factory throws(ProbeFailure) in
            let probe = try factory.open()
            do throws(ProbeFailure) {
                try probe.handshake(crypto: VouchTampering())
            } catch {
                return .pass("refused: \(error.observed)")
            }
            return .fail("completed the handshake (READY) with a vouch for another server key")
        },
        ConformanceCase(
            name: "curve.hello-corrupt", level: .must, reference: "RFC 26 §HELLO (the signature box must open)",
            summary: "A HELLO whose signature box fails: the server MUST NOT answer WELCOME; it closes.",
            badInput: true, applicability: curveClient
        ) { factory throws(ProbeFailure) in
            try corruptHello(factory) { hello in hello[hello.count - 1] ^= 0x01 }
        },
        ConformanceCase(
            name: "curve.hello-short", level: .must, reference: "RFC 26 §HELLO (200 octets)",
            summary: "A HELLO cut to 100 octets: the server MUST NOT answer WELCOME; it closes.",
            badInput: true, applicability: curveClient
        ) { factory throws(ProbeFailure) in
            try corruptHello(factory) { hello in
                // Keep the frame well formed: a short command of 100 octets.
                hello = [0x04, 100] + Array(hello[2..<102])
            }
        },
    ]

    /// Runs our CURVE handshake up to HELLO, changes HELLO with `edit`, and watches for WELCOME.
    static func corruptHello(_ factory: ProbeFactory, _ edit: (inout [UInt8]) -> Void) throws(ProbeFailure) -> Outcome {
        guard let serverKey = factory.target.curveServerKey else { return .skip("no server key") }
        let probe = try factory.open()
        var machine: Connection
        do throws(ZMTPError) {
            machine = try Connection(
                configuration: ConnectionConfiguration(socketType: factory.target.counterpart, handshakeTimeout: nil),
                mechanism: CurveClientMechanism(serverPublicKey: serverKey, keyPair: CurveKeyPair.generate()), now: Probe.now())
        } catch {
            throw ProbeFailure("cannot start a handshake: \(error)")
        }
        probe.send(machine.takeOutbound())
        guard probe.receive(atLeast: Probe.greetingLength, within: factory.target.wait * 2) else {
            return .fail("no greeting: \(probe.received.count) octets")
        }
        do throws(ZMTPError) {
            _ = try machine.receive(Array(probe.received[0..<Probe.greetingLength]), now: Probe.now())
        } catch {
            return .fail("greeting refused: \(error)")
        }
        var bytes = machine.takeOutbound()
        // What follows our greeting's first 11 octets: the other 53, then HELLO.
        let rest = 53
        guard bytes.count >= rest + 102 else { return .skip("no HELLO produced") }
        var hello = Array(bytes[rest...])
        edit(&hello)
        bytes = Array(bytes[0..<rest]) + hello
        probe.send(bytes)
        let reaction = probe.reaction(within: factory.target.wait * 2)
        let welcome = probe.rawFrames.contains { $0.body.starts(with: [7] + Array("WELCOME".utf8)) }
        if welcome { return .fail("answered WELCOME to a bad HELLO") }
        if case .closed = reaction { return .pass("no WELCOME; \(reaction.description)") }
        return .deviation("no WELCOME, but the connection is left open")
    }
}

extension SocketType {
    /// Whether this type sends data messages (so a peer of it receives them).
    var sendsData: Bool { [.pub, .xpub, .push, .pair, .req, .rep, .dealer, .router, .xsub].contains(self) }
}

/// Real cryptography, except that the vouch (Box[C',S](C->S'), sealed under the "VOUCH---" nonce
/// prefix) names a random server key instead of S': the box opens, but vouches for the wrong server.
struct VouchTampering: CurveCrypto {
    private let base = SodiumCurveCrypto()
    private static let vouchPrefix = Array("VOUCH---".utf8)

    func randomBytes(_ count: Int) -> [UInt8] { base.randomBytes(count) }
    func generateKeyPair() -> CurveKeyPair { base.generateKeyPair() }
    func publicKey(for secretKey: CurveSecretKey) -> CurvePublicKey { base.publicKey(for: secretKey) }
    func sharedKey(publicKey: CurvePublicKey, secretKey: CurveSecretKey) -> SecretBytes { base.sharedKey(publicKey: publicKey, secretKey: secretKey) }
    func open(_ box: UnsafeRawBufferPointer, nonce: [UInt8], key: SecretBytes) -> [UInt8]? { base.open(box, nonce: nonce, key: key) }
    func secretSeal(_ plaintext: UnsafeRawBufferPointer, nonce: [UInt8], key: SecretBytes, into out: inout [UInt8]) {
        base.secretSeal(plaintext, nonce: nonce, key: key, into: &out)
    }
    func secretOpen(_ box: UnsafeRawBufferPointer, nonce: [UInt8], key: SecretBytes) -> [UInt8]? { base.secretOpen(box, nonce: nonce, key: key) }

    func seal(_ plaintext: UnsafeRawBufferPointer, nonce: [UInt8], key: SecretBytes, into out: inout [UInt8]) {
        guard nonce.starts(with: Self.vouchPrefix), plaintext.count == 64 else {
            return base.seal(plaintext, nonce: nonce, key: key, into: &out)
        }
        let tampered = Array(plaintext.prefix(32)) + base.generateKeyPair().publicKey.bytes
        tampered.withUnsafeBytes { base.seal($0, nonce: nonce, key: key, into: &out) }
    }
}

