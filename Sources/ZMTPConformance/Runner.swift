import ZMTPEngine
import ZMTPWire

#if canImport(Glibc)
import Glibc
#endif

/// One case's result.
public struct ConformanceResult: Sendable {
    public var name: String
    public var level: ConformanceLevel
    public var reference: String
    public var verdict: ConformanceVerdict
    /// What the peer did, in words.
    public var observed: String
    /// For bad-input cases: whether the peer still completed a handshake on a fresh connection
    /// afterwards (nil: not checked, or not a bad-input case).
    public var survived: Bool?

    /// A failure that makes the run fail: a MUST-level case failed, or the peer stopped serving.
    public var failsRun: Bool { (verdict == .fail && level == .must) || survived == false }
}

/// Runs cases of the battery against one peer.
public struct ConformanceRunner {
    public let target: ConformanceTarget

    public init(target: ConformanceTarget) {
        self.target = target
    }

    /// The cases whose names match any of `patterns` (shell globs: `greeting.*`, `*.ttl*`), in
    /// battery order; every case when `patterns` is empty.
    public static func select(_ patterns: [String]) -> [ConformanceCase] {
        guard !patterns.isEmpty else { return ConformanceCase.all }
        return ConformanceCase.all.filter { testCase in patterns.contains { fnmatch($0, testCase.name, 0) == 0 } }
    }

    /// Runs `cases` one after another, each on fresh connections, calling `progress` after each.
    /// - Throws: ``EngineError`` when the listening endpoint (listen mode) cannot be bound.
    public func run(
        _ cases: [ConformanceCase], progress: (ConformanceResult) -> Void = { _ in }
    ) throws(EngineError) -> [ConformanceResult] {
        let factory = try ProbeFactory(target: target)
        var results: [ConformanceResult] = []
        // In listen mode the peer must reconnect for every case, and libzmq stops reconnecting after a
        // protocol error (libzmq-behaviours.md §11): the well-formed cases go first.
        let ordered = target.mode == .listen ? cases.filter { !$0.badInput } + cases.filter(\.badInput) : cases
        var peerGone: String?
        var everConnected = false
        for testCase in ordered {
            var result = ConformanceResult(
                name: testCase.name, level: testCase.level, reference: testCase.reference, verdict: .skipped, observed: "")
            if let reason = testCase.applicability(target) {
                result.observed = "not applicable: \(reason)"
            } else if let peerGone {
                result.observed = "the peer stopped connecting after \(peerGone)"
            } else {
                do throws(ProbeFailure) {
                    let outcome = try testCase.body(factory)
                    result.verdict = outcome.verdict
                    result.observed = outcome.observed
                    everConnected = true
                } catch where error.noConnection {
                    result.observed = error.observed
                    if everConnected {
                        // libzmq stops reconnecting after a protocol error (behaviours §11): policy, not
                        // a crash we could tell apart from it.
                        peerGone = results.last { $0.verdict != .skipped }?.name ?? "the start"
                    } else {
                        // Nothing was ever tested: that must not pass.
                        result.verdict = .fail
                        result.survived = false
                        result.observed = "the peer never connected (\(error.observed))"
                        peerGone = "never connecting"
                    }
                } catch {
                    result.verdict = .fail
                    result.observed = error.observed
                    everConnected = true
                }
                if testCase.badInput && target.mode == .connect {
                    result.survived = survives(factory)
                    if result.survived == false { result.observed += "; afterwards the peer no longer completes a handshake" }
                }
            }
            progress(result)
            results.append(result)
        }
        return results
    }

    /// Whether a fresh connection still completes a handshake (tried twice: a peer may need a moment to
    /// drop what the case left behind).
    private func survives(_ factory: ProbeFactory) -> Bool {
        for attempt in 0..<2 {
            if attempt > 0 { usleep(200_000) }
            if let probe = try? factory.open(), (try? probe.handshake()) != nil { return true }
        }
        return false
    }
}

// MARK: - Reports

extension ConformanceResult {
    /// One JSON object (keys in a fixed order).
    public var json: String {
        var fields = [
            "\"case\":\(jsonString(name))", "\"level\":\"\(level.rawValue)\"", "\"reference\":\(jsonString(reference))",
            "\"verdict\":\"\(verdict.rawValue)\"", "\"observed\":\(jsonString(observed))",
        ]
        if let survived { fields.append("\"survived\":\(survived)") }
        return "{" + fields.joined(separator: ",") + "}"
    }
}

/// The summary line counts: cases, and how many ended each way.
public struct ConformanceSummary: Sendable, Equatable {
    public var cases = 0, passed = 0, failed = 0, deviations = 0, skipped = 0
    /// MUST-level failures and peers that stopped serving.
    public var fatal = 0

    public init(_ results: [ConformanceResult]) {
        cases = results.count
        for result in results {
            switch result.verdict {
            case .pass: passed += 1
            case .fail: failed += 1
            case .deviation: deviations += 1
            case .skipped: skipped += 1
            }
            if result.failsRun { fatal += 1 }
        }
    }

    public var description: String {
        "\(cases) cases: \(passed) passed, \(failed) failed (\(fatal) at MUST level or fatal), \(deviations) deviations, \(skipped) skipped"
    }

    public var json: String {
        "{\"cases\":\(cases),\"passed\":\(passed),\"failed\":\(failed),\"fatal\":\(fatal),\"deviations\":\(deviations),\"skipped\":\(skipped)}"
    }
}

/// A table for people: case, level, verdict, what was seen.
public func conformanceTable(_ results: [ConformanceResult]) -> String {
    let nameWidth = max(4, results.map(\.name.count).max() ?? 0)
    func pad(_ text: String, _ width: Int) -> String { text + String(repeating: " ", count: max(0, width - text.count)) }
    var lines = [pad("CASE", nameWidth) + "  LEVEL   VERDICT    OBSERVED"]
    for result in results {
        var observed = result.observed
        if let survived = result.survived { observed += survived ? " [survived]" : " [DID NOT SURVIVE]" }
        lines.append(pad(result.name, nameWidth) + "  " + pad(result.level.rawValue, 6) + "  " + pad(result.verdict.rawValue, 9) + "  " + observed)
    }
    return lines.joined(separator: "\n")
}

func jsonString(_ text: String) -> String {
    var out = "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\t": out += "\\t"
        case "\r": out += "\\r"
        default:
            if scalar.value < 0x20 {
                let digits = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - digits.count) + digits
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
    }
    return out + "\""
}
