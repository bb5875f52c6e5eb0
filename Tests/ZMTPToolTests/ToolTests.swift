import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

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

/// `zmtp proxy` out of file descriptors: it must say so on stderr and serve again once descriptors are
/// free, not spin or fail silently.
@Suite("zmtp proxy at the open-file limit")
struct DescriptorLimitToolTests {
    /// Collects a child's stderr as it arrives.
    final class Output: @unchecked Sendable {
        private let lock = NSLock()
        private var text = ""
        func append(_ data: Data) { lock.withLock { text += String(decoding: data, as: UTF8.self) } }
        var value: String { lock.withLock { text } }
        func waitFor(_ needle: String, seconds: Double) -> Bool {
            let deadline = Date().addingTimeInterval(seconds)
            while Date() < deadline {
                if value.contains(needle) { return true }
                usleep(20_000)
            }
            return value.contains(needle)
        }
    }

    static func connect(port: UInt16) -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        return fd
    }

    @Test("with a soft limit of 30 and a hard limit of 40 the proxy raises to 40, reports the accept failure, then serves again when peers leave")
    func reportsAndRecovers() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        // zmtp raises the soft limit to the hard one at start; the report names the limit in force.
        process.arguments = ["-c", "ulimit -S -n 30 && ulimit -H -n 40 && exec \"$0\" proxy --xpub tcp://127.0.0.1:* --xsub tcp://127.0.0.1:* --io-threads 1", ToolRun.executable.path]
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        let output = Output()
        errors.fileHandleForReading.readabilityHandler = { handle in output.append(handle.availableData) }
        try process.run()
        defer {
            if process.isRunning { process.terminate() }
            errors.fileHandleForReading.readabilityHandler = nil
        }
        #expect(output.waitFor("xsub listening on", seconds: 10), "\(output.value)")
        // "zmtp proxy: xpub listening on tcp://127.0.0.1:PORT, xsub listening on …"
        let port = try #require(output.value.split(separator: ",").first?.split(separator: ":").last.flatMap { UInt16($0) })
        var clients = (0..<60).map { _ in Self.connect(port: port) }
        #expect(output.waitFor("cannot accept connections", seconds: 10), "\(output.value)")
        #expect(output.value.contains("Too many open files"))
        #expect(output.value.contains("open-file limit 40"))
        #expect(output.value.components(separatedBy: "cannot accept").count == 2, "reported once, not per retry")
        // Free descriptors: the proxy sees those peers leave and accepts the ones still waiting; a
        // new peer then gets the proxy's greeting.
        for fd in clients.prefix(50) { close(fd) }
        clients.removeFirst(50)
        usleep(500_000)
        let fresh = Self.connect(port: port)
        clients.append(fresh)
        var greeting = [UInt8](repeating: 0, count: 64)
        greeting[0] = 0xFF
        greeting[9] = 0x7F
        greeting[10] = 3
        greeting[12] = UInt8(ascii: "N"); greeting[13] = UInt8(ascii: "U"); greeting[14] = UInt8(ascii: "L"); greeting[15] = UInt8(ascii: "L")
        _ = greeting.withUnsafeBytes { send(fresh, $0.baseAddress, 64, Int32(MSG_NOSIGNAL)) }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fresh, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var reply = [UInt8](repeating: 0, count: 10)
        let got = reply.withUnsafeMutableBytes { recv(fresh, $0.baseAddress, 10, Int32(MSG_WAITALL)) }
        #expect(got == 10 && reply[0] == 0xFF && reply[9] == 0x7F, "the proxy answers a new peer's greeting")
        for fd in clients { close(fd) }
        process.interrupt()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
    }
}
