import Foundation
import Testing

/// Runs the built `zmtp` executable (it sits next to the test bundle in the build folder).
struct ToolRun {
    var status: Int32
    var standardOutput: String
    var standardError: String

    static var executable: URL {
        let testBinary = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        return testBinary.deletingLastPathComponent().appendingPathComponent("zmtp")
    }

    init(_ arguments: String...) throws { try self.init(arguments: arguments) }

    init(arguments: [String]) throws {
        let process = Process()
        process.executableURL = Self.executable
        process.arguments = arguments
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        status = process.terminationStatus
        standardOutput = String(decoding: outData, as: UTF8.self)
        standardError = String(decoding: errData, as: UTF8.self)
    }
}

@Suite("zmtp command line")
struct ToolTests {
    @Test("z85 encode prints RFC 32's test vector")
    func encodeVector() throws {
        let run = try ToolRun("z85", "encode", "864fd26fb559f75b")
        #expect(run.status == 0)
        #expect(run.standardOutput == "HelloWorld\n")
    }

    @Test("z85 decode prints lowercase hex")
    func decodeVector() throws {
        let run = try ToolRun("z85", "decode", "HelloWorld")
        #expect(run.status == 0)
        #expect(run.standardOutput == "864fd26fb559f75b\n")
    }

    @Test("invalid input is a one-line error on stderr with exit status 1", arguments: [
        ["z85", "decode", "Hell"], ["z85", "decode", "%nSc1"], ["z85", "decode", "Hello Worl"], ["z85", "encode", "864fd26f00"], ["z85", "encode", "zz"],
    ])
    func invalidInput(arguments: [String]) throws {
        let process = try ToolRun(arguments: arguments)
        #expect(process.status == 1)
        #expect(process.standardOutput.isEmpty)
        #expect(process.standardError.hasPrefix("zmtp: error: "))
        #expect(process.standardError.filter { $0 == "\n" }.count == 1, "\(process.standardError)")
    }

    @Test("bad usage exits with status 2", arguments: [[], ["z85"], ["z85", "encode"], ["frobnicate"], ["z85", "decode", "a", "b"]])
    func badUsage(arguments: [String]) throws {
        let process = try ToolRun(arguments: arguments)
        #expect(process.status == 2, "\(arguments): \(process.standardError)")
        #expect(process.standardError.contains("zmtp: error:"))
    }

    @Test("keygen prints one JSON line with two 40-character Z85 keys that belong together")
    func keygen() throws {
        let run = try ToolRun("keygen")
        #expect(run.status == 0)
        let line = run.standardOutput
        #expect(line.hasPrefix("{\"public\":\"") && line.hasSuffix("\"}\n"))
        #expect(line.filter { $0 == "\n" }.count == 1)
        let parts = line.split(separator: "\"")
        // {"public":"<p>","secret":"<s>"}  ->  { public : <p> , secret : <s> }
        #expect(parts.count == 9)
        let publicKey = String(parts[3])
        let secretKey = String(parts[7])
        #expect(publicKey.count == 40 && secretKey.count == 40)
        let derived = try ToolRun("keygen", "--public-of=\(secretKey)")  // "=": a Z85 key may start with "-"
        #expect(derived.status == 0)
        #expect(derived.standardOutput == publicKey + "\n")
        #expect(try ToolRun("keygen").standardOutput != line, "two runs give two different pairs")
    }

    @Test("keygen --public-of matches libzmq's documented test pair, and rejects a bad key with status 1")
    func keygenPublicOf() throws {
        let run = try ToolRun("keygen", "--public-of", "D:)Q[IlAW!ahhC2ac:9*A}h:p?([4%wOTJ%JR%cs")
        #expect(run.standardOutput == "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID\n")
        let bad = try ToolRun("keygen", "--public-of", "short")
        #expect(bad.status == 1 && bad.standardError.hasPrefix("zmtp: error: --public-of"))
    }

    @Test("version names the protocol and libsodium")
    func version() throws {
        let run = try ToolRun("version")
        #expect(run.status == 0)
        #expect(run.standardOutput.hasPrefix("zmtp "))
        #expect(run.standardOutput.contains("libsodium 1."))
    }
}
