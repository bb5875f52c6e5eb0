import Foundation
import Testing
import ZMTPFuzzing

/// Replays every file in Fuzz/Corpus/<Target>/ and Fuzz/FailCases/<Target>/ through the same harness
/// the libFuzzer target runs. A crash the fuzzer found stays here as a regression test once fixed.
@Suite("Fuzz corpus and fail-case replay")
struct FuzzResultTests {
    static let fuzzDirectory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fuzz")

    static func inputs(for target: FuzzTarget) -> [(String, [UInt8])] {
        var found: [(String, [UInt8])] = []
        for folder in ["Corpus", "FailCases"] {
            let directory = fuzzDirectory.appendingPathComponent(folder).appendingPathComponent(target.rawValue)
            let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
            for name in names.sorted() where !name.hasPrefix(".") {
                if let data = FileManager.default.contents(atPath: directory.appendingPathComponent(name).path) {
                    found.append(("\(folder)/\(target.rawValue)/\(name)", Array(data)))
                }
            }
        }
        return found
    }

    @Test("every stored input satisfies its target's invariants", arguments: FuzzTarget.allCases)
    func replay(target: FuzzTarget) {
        let inputs = Self.inputs(for: target)
        #expect(!inputs.isEmpty, "no seed corpus for \(target.rawValue)")
        for (name, data) in inputs {
            #expect(target.run(data) == nil, "\(name)")
        }
    }
}
