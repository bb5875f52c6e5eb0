// The `zmtp` tool's socket commands against libzmq (pyzmq).

import Foundation
import Testing
import ZMTPWire

@Suite("zmtp push/pull with libzmq", .serialized, .timeLimit(.minutes(1)))
struct ToolInteropTests {
    static var tool: URL {
        URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent().appendingPathComponent("zmtp")
    }

    /// Starts `zmtp` with `arguments`; returns the process, its stdout pipe and the endpoint it reported
    /// binding on stderr.
    static func start(_ arguments: [String], stdin: Pipe? = nil) throws -> (Process, Pipe, String) {
        let started = try startReadingErrors(arguments, stdin: stdin)
        return (started.process, started.output, started.endpoint)
    }

    /// As ``start(_:stdin:)``, also returning stderr and what was read from it so far.
    static func startReadingErrors(
        _ arguments: [String], stdin: Pipe? = nil
    ) throws -> (process: Process, output: Pipe, errors: Pipe, endpoint: String, errorText: String) {
        let process = Process()
        process.executableURL = tool
        process.arguments = arguments
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        if let stdin { process.standardInput = stdin }
        try process.run()
        var text = ""
        let handle = errors.fileHandleForReading
        while !(text.range(of: "listening on ").map { text[$0.upperBound...].contains("\n") } ?? false) {
            let chunk = handle.availableData
            if chunk.isEmpty { break }
            text += String(decoding: chunk, as: UTF8.self)
        }
        guard let range = text.range(of: "listening on ") else { throw InteropFailure("zmtp said: \(text)") }
        let endpoint = text[range.upperBound...].prefix { $0 != "\n" }
        return (process, output, errors, String(endpoint), text)
    }

    @Test("`zmtp pull --bind ... --count 3` prints three lines sent by a libzmq PUSH, in both formats")
    func pullPrintsLibzmqMessages() throws {
        let (process, output, endpoint) = try Self.start(["pull", "--bind", "tcp://127.0.0.1:*", "--count", "4"])
        let peer = try PythonPeer(["push-connect", endpoint])
        // Read stdout to its end first: a 1.2 MB line does not fit in a pipe.
        let lines = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            .split(separator: "\n", omittingEmptySubsequences: false)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        #expect(try peer.readLine() == "SENT")
        // expected_messages(): a 3-frame message, an empty frame, 1.2 MB of "x", "last".
        #expect(lines.count == 5)
        #expect(lines[0] == "log-write\tconn\t\u{0}\u{1}\u{2}")
        #expect(lines[1] == "")
        #expect(lines[2].count == 1_200_000)
        #expect(lines[3] == "last")
        _ = peer.waitStatus()

        let (hexProcess, hexOutput, hexEndpoint) = try Self.start(["pull", "--bind", "tcp://127.0.0.1:*", "--count", "2", "--format", "hex"])
        let hexPeer = try PythonPeer(["push-connect", hexEndpoint])
        let hexLines = String(decoding: hexOutput.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).split(separator: "\n")
        hexProcess.waitUntilExit()
        #expect(hexLines.first == "[\"6c6f672d7772697465\",\"636f6e6e\",\"000102\"]")
        #expect(hexLines.dropFirst().first == "[\"\"]", "an empty frame survives the hex format")
        hexPeer.process.terminate()
    }

    @Test("`zmtp push` sends each stdin line to a libzmq PULL")
    func pushFromStdin() throws {
        let peer = try PythonPeer(["pull-bind"])
        let port = try peer.boundPort()
        let process = Process()
        process.executableURL = Self.tool
        process.arguments = ["push", "--connect", "tcp://127.0.0.1:\(port)", "--format", "hex"]
        let input = Pipe()
        process.standardInput = input
        try process.run()
        var lines = "[\"6c6f672d7772697465\",\"636f6e6e\",\"000102\"]\n[\"\"]\n"
        lines += "[\"" + String(repeating: "78", count: 1_200_000) + "\"]\n[\"6c617374\"]\n"
        input.fileHandleForWriting.write(Data(lines.utf8))
        try input.fileHandleForWriting.close()
        for message in expectedMessages { #expect(try peer.received() == Array(message.frames)) }
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        #expect(peer.waitStatus() == 0)
    }

    @Test("`zmtp pull` stops cleanly on SIGTERM and SIGINT")
    func stopsOnSignal() throws {
        for signal in [SIGTERM, SIGINT] {
            let (process, _, _) = try Self.start(["pull", "--bind", "tcp://127.0.0.1:*"])
            kill(process.processIdentifier, signal)
            let start = Date()
            while process.isRunning && Date().timeIntervalSince(start) < 5 { usleep(10_000) }
            if process.isRunning {
                kill(process.processIdentifier, SIGKILL)  // never hang the suite
                Issue.record("zmtp pull ignored signal \(signal)")
            }
            process.waitUntilExit()
            #expect(process.terminationStatus == 0)
            #expect(Date().timeIntervalSince(start) < 2)
        }
    }

    @Test("out of file descriptors, `zmtp pull` neither crashes nor spins, and serves again when they free up")
    func descriptorExhaustion() throws {
        // A shell lowers the descriptor limit for zmtp alone (the test process keeps its own).
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", "ulimit -n 24 && exec \"$0\" pull --bind tcp://127.0.0.1:* --count 1", Self.tool.path]
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        var text = ""
        while !text.contains("\n") {
            let chunk = errors.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            text += String(decoding: chunk, as: UTF8.self)
        }
        guard let range = text.range(of: "listening on tcp://127.0.0.1:") else { throw InteropFailure("zmtp said: \(text)") }
        let port = UInt16(text[range.upperBound...].prefix { $0.isNumber }) ?? 0

        // More idle connections than the limit allows: accept4 hits EMFILE.
        var idle: [LoopbackSocket] = []
        for _ in 0..<40 { idle.append(try LoopbackSocket.connect(port: port)) }
        let before = try Self.cpuTicks(of: process.processIdentifier)
        usleep(1_000_000)
        let used = try Self.cpuTicks(of: process.processIdentifier) - before
        #expect(process.isRunning, "zmtp pull survived descriptor exhaustion")
        #expect(used < 30, "\(used) CPU ticks in one second while out of descriptors: it is spinning")

        idle.removeAll()  // closes them; descriptors free up
        let peer = try PythonPeer(["push-connect", "tcp://127.0.0.1:\(port)"])
        _ = try? peer.readLine()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        let printed = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(printed.hasPrefix("log-write\tconn\t"), "a message arrived after the exhaustion: \(printed)")
    }

    /// User plus system CPU ticks (1/100 s) a process has used, from /proc.
    static func cpuTicks(of pid: Int32) throws -> Int {
        let stat = try String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)
        guard let close = stat.lastIndex(of: ")") else { throw InteropFailure("unreadable /proc/\(pid)/stat") }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 13, let user = Int(fields[11]), let system = Int(fields[12]) else {
            throw InteropFailure("unreadable /proc/\(pid)/stat")
        }
        return user + system
    }

    @Test("`zmtp xpub` prints a libzmq SUB's subscription and its cancellation, and publishes stdin to it")
    func xpubCommand() throws {
        let input = Pipe()
        let (process, output, endpoint) = try Self.start(["xpub", "--bind", "tcp://127.0.0.1:*", "--format", "hex", "--count", "2"], stdin: input)
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        let peer = try PythonPeer(["pub-connect", endpoint])
        let reader = LineReader(output.fileHandleForReading)
        #expect(reader.next() == "[\"017a65656b2e\"]", "0x01 + \"zeek.\"")
        input.fileHandleForWriting.write(Data("[\"7a65656b2e6869\"]\n".utf8))
        #expect(try peer.received() == [Array("zeek.hi".utf8)])
        #expect(peer.waitStatus() == 0)
        #expect(reader.next() == "[\"007a65656b2e\"]", "the SUB left: 0x00 + \"zeek.\"")
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
    }

    @Test("`zmtp pull --events` with CURVE: a libzmq client with an unknown key is refused, both sides report AUTH 400")
    func eventsFlag() throws {
        let server = CurveKeyPair.generate()
        let stranger = CurveKeyPair.generate()
        let started = try Self.startReadingErrors([
            "pull", "--bind", "tcp://127.0.0.1:*", "--events", "--curve-server", "--curve-secret=\(server.secretKey.z85)",
            "--curve-allow=\(CurveKeyPair.generate().publicKey.z85)",
        ])
        defer { if started.process.isRunning { kill(started.process.processIdentifier, SIGKILL) } }
        let peer = try PythonPeer([
            "curve-client-monitored", "PUSH", started.endpoint, server.publicKey.z85, stranger.publicKey.z85,
            stranger.secretKey.z85,
        ])
        var libzmqEvents: [String] = []
        while let line = try? peer.readLine(timeout: 5) { libzmqEvents.append(line) }
        #expect(libzmqEvents.last == "EVENT 16384 400")
        kill(started.process.processIdentifier, SIGTERM)
        let rest = String(decoding: started.errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        started.process.waitUntilExit()
        #expect(started.process.terminationStatus == 0)
        let lines = (started.errorText + rest).split(separator: "\n").map(String.init)
        #expect(lines.contains { $0.hasPrefix("zmtp: event LISTENING value=") })
        #expect(lines.contains { $0.hasPrefix("zmtp: event ACCEPTED value=") && $0.hasSuffix("endpoint=\(started.endpoint)") })
        #expect(lines.contains { $0.hasPrefix("zmtp: event HANDSHAKE_FAILED_AUTH value=400 endpoint=\(started.endpoint)") })
        #expect(lines.last == "zmtp: event MONITOR_STOPPED value=0 endpoint=", "the last event is printed before exit")
        _ = peer.waitStatus()
    }

    @Test("`zmtp sub --subscribe` prints only the matching messages of a libzmq XPUB")
    func subCommand() throws {
        let peer = try PythonPeer(["xpub-bind"])
        let port = try peer.boundPort()
        let (process, output) = try Self.startWithoutBind(["sub", "--connect", "tcp://127.0.0.1:\(port)", "--subscribe", "zeek.", "--count", "1"])
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        #expect(try peer.received() == [[1] + Array("zeek.".utf8)])
        let reader = LineReader(output.fileHandleForReading)
        #expect(reader.next() == "zeek.event\tyes", "other.topic was not for us")
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        _ = peer.waitStatus()
    }

    /// Starts `zmtp` with `arguments` that bind nothing.
    static func startWithoutBind(_ arguments: [String]) throws -> (Process, Pipe) {
        let process = Process()
        process.executableURL = tool
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        return (process, output)
    }
}

/// Reads a pipe line by line (blocking), for tools that print as they go.
final class LineReader {
    let handle: FileHandle
    var buffer = ""
    init(_ handle: FileHandle) { self.handle = handle }

    func next() -> String? {
        while !buffer.contains("\n") {
            let chunk = handle.availableData
            if chunk.isEmpty { return buffer.isEmpty ? nil : buffer }
            buffer += String(decoding: chunk, as: UTF8.self)
        }
        let line = buffer.prefix { $0 != "\n" }
        buffer.removeFirst(line.count + 1)
        return String(line)
    }
}
