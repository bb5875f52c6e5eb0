// `zmtp zeek-logger` receiving log batches from a libzmq node that sends them as Zeek does
// (Tests/InteropTests/zeek_node.py: PUSH with Zeek's options, 4-frame log-write messages,
// zeek-bin-serializer batches), written to per-path files in Zeek's ASCII format or as JSON.

import Foundation
import Testing
import ZMTPWire

#if canImport(Glibc)
import Glibc
#endif

@Suite("zmtp zeek-logger with a Zeek-like libzmq node", .serialized, .timeLimit(.minutes(2)))
struct ZeekLoggerTests {
    enum Setup: String, CaseIterable, CustomTestStringConvertible {
        case asciiNull, jsonCurve
        var testDescription: String { rawValue }
    }

    @Test("every record sent arrives once in its path's file; malformed messages are rejected without harm",
          arguments: Setup.allCases)
    func logsArrive(setup: Setup) throws {
        let directory = "/tmp/zmtp-zeek-logger-\(getpid())-\(setup.rawValue)"
        _ = try? FileManager.default.removeItem(atPath: directory)
        defer { _ = try? FileManager.default.removeItem(atPath: directory) }
        let port = UInt16(28_000 + Int(getpid() % 1_000) + Int.random(in: 0..<1_000))
        let server = CurveKeyPair.generate()
        let client = CurveKeyPair.generate()

        let logger = Process()
        logger.executableURL = ToolInteropTests.tool
        logger.arguments = ["zeek-logger", "--bind", "tcp://127.0.0.1:\(port)", "--dir", directory]
            + (setup == .jsonCurve ? ["--format", "json"] : [])
        if setup == .jsonCurve {
            logger.environment = [
                "ZEEK_CLUSTER_BACKEND_ZEROMQ_CURVE_SERVER_SECRETKEY": server.secretKey.z85,
                "ZEEK_CLUSTER_BACKEND_ZEROMQ_CURVE_CLIENT_PUBLICKEY": client.publicKey.z85,
            ]
        }
        let errors = Pipe()
        logger.standardError = errors
        try logger.run()
        defer { if logger.isRunning { kill(logger.processIdentifier, SIGKILL) } }
        var said = ""
        while !said.contains("\n") {
            let chunk = errors.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            said += String(decoding: chunk, as: UTF8.self)
        }
        #expect(said.contains("listening on tcp://127.0.0.1:\(port)"))

        // The broker endpoints lead nowhere: a logger does not need pub/sub.
        let keys = setup == .jsonCurve ? [server.publicKey.z85, client.publicKey.z85, client.secretKey.z85] : []
        let node = try PythonPeer(
            ["--log", "tcp://127.0.0.1:\(port)", "worker-1", "worker", "tcp://127.0.0.1:1", "tcp://127.0.0.1:2"] + keys,
            script: "zeek_node.py")
        node.send("log conn 2500 1000")
        #expect(try node.readLine(until: { $0.hasPrefix("LOGGED") }) == "LOGGED 2500")
        node.send("garbage")
        #expect(try node.readLine(until: { $0.hasPrefix("GARBAGE") }) == "GARBAGE 5")
        node.send("log-dns 150")
        #expect(try node.readLine(until: { $0.hasPrefix("LOGGED") }) == "LOGGED 150")
        node.send("quit")
        #expect(node.waitStatus() == 0)

        // Wait until the logger has written everything (its files grow as batches arrive), then stop it.
        let deadline = Date().addingTimeInterval(10)
        func dataLines(_ name: String) -> [String] {
            let text = (try? String(contentsOfFile: "\(directory)/\(name)", encoding: .utf8)) ?? ""
            return text.split(separator: "\n").map(String.init).filter { !$0.hasPrefix("#") }
        }
        while (dataLines("conn.log").count < 2500 || dataLines("dns.log").count < 150) && Date() < deadline { usleep(20_000) }
        kill(logger.processIdentifier, SIGTERM)
        let rest = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        logger.waitUntilExit()
        #expect(logger.terminationStatus == 0)
        #expect(rest.contains("stopped; 2650 records in 5 batches, 5 messages rejected"), "\(rest)")
        #expect(!FileManager.default.fileExists(atPath: "/tmp/escape.log") && !FileManager.default.fileExists(atPath: "\(directory)/../escape.log"))

        let conn = dataLines("conn.log")
        let dns = dataLines("dns.log")
        #expect(conn.count == 2500)
        #expect(dns.count == 150)
        switch setup {
        case .asciiNull:
            let text = try String(contentsOfFile: "\(directory)/conn.log", encoding: .utf8)
            let lines = text.split(separator: "\n").map(String.init)
            #expect(lines.first == "#separator \\x09")
            #expect(lines.contains("#fields\tts\tuid\tid.orig_h\tid.orig_p\tproto\tservice\ttags\tn"))
            #expect(lines.contains("#types\ttime\tstring\taddr\tport\tenum\tstring\tset[string]\tcount"))
            #expect(lines.last?.hasPrefix("#close\t") == true)
            #expect(conn[0] == "1700000000.000000\tCworker-10\t10.0.0.0\t1024\ttcp\thttp\ta,b\t0")
            #expect(conn[1] == "1700000000.500000\tCworker-11\t10.0.0.1\t1025\ttcp\t-\t(empty)\t1")
            let uids = conn.map { $0.split(separator: "\t")[1] }
            #expect(Set(uids).count == 2500, "each record exactly once")
            #expect(dns[7] == "1700000007.000000\tq7.worker-1.example\t10.1.0.7")
        case .jsonCurve:
            var uids = Set<String>()
            for line in conn {
                let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
                uids.insert(object["uid"] as? String ?? "")
                let n = object["n"] as? Int ?? -1
                #expect((object["service"] == nil) == (n % 2 == 1), "unset fields are left out")
            }
            #expect(uids.count == 2500, "each record exactly once")
            #expect(conn[0] == #"{"ts":1700000000.0,"uid":"Cworker-10","id.orig_h":"10.0.0.0","id.orig_p":1024,"proto":"tcp","service":"http","tags":["a","b"],"n":0}"#)
        }
    }
}

extension ZeekLoggerTests {
    /// Starts `zmtp zeek-logger` writing ASCII logs into `directory`; returns once it listens.
    static func startLogger(port: UInt16, directory: String) throws -> (Process, Pipe) {
        let logger = Process()
        logger.executableURL = ToolInteropTests.tool
        logger.arguments = ["zeek-logger", "--bind", "tcp://127.0.0.1:\(port)", "--dir", directory]
        let errors = Pipe()
        logger.standardError = errors
        try logger.run()
        var said = ""
        while !said.contains("\n") {
            let chunk = errors.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            said += String(decoding: chunk, as: UTF8.self)
        }
        guard said.contains("listening on") else { throw InteropFailure("zmtp zeek-logger said: \(said)") }
        return (logger, errors)
    }

    static func dataLines(_ path: String) -> [String] {
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").map(String.init).filter { !$0.hasPrefix("#") }
    }

    static func waitFor(_ count: Int, linesIn path: String) -> Bool {
        let deadline = Date().addingTimeInterval(10)
        while dataLines(path).count < count && Date() < deadline { usleep(20_000) }
        return dataLines(path).count == count
    }

    @Test("a restarted logger gets what the node queued while it was down, and what it wrote before stays")
    func loggerRestart() throws {
        let directory = "/tmp/zmtp-zeek-logger-restart-\(getpid())"
        _ = try? FileManager.default.removeItem(atPath: directory)
        defer { _ = try? FileManager.default.removeItem(atPath: directory) }
        let port = UInt16(29_000 + Int(getpid() % 500) + Int.random(in: 0..<500))
        var (logger, _) = try Self.startLogger(port: port, directory: directory)
        let node = try PythonPeer(
            ["--log", "tcp://127.0.0.1:\(port)", "worker-1", "worker", "tcp://127.0.0.1:1", "tcp://127.0.0.1:2"],
            script: "zeek_node.py")
        node.send("log conn 1000 500")
        #expect(try node.readLine(until: { $0.hasPrefix("LOGGED") }) == "LOGGED 1000")
        #expect(Self.waitFor(1000, linesIn: "\(directory)/conn.log"))
        kill(logger.processIdentifier, SIGTERM)
        logger.waitUntilExit()
        #expect(logger.terminationStatus == 0)

        // While no logger listens, the node's PUSH keeps the batches (IMMEDIATE off, as Zeek sets it).
        node.send("log-dns 300")
        #expect(try node.readLine(until: { $0.hasPrefix("LOGGED") }) == "LOGGED 300")
        (logger, _) = try Self.startLogger(port: port, directory: directory)
        defer { if logger.isRunning { kill(logger.processIdentifier, SIGKILL) } }
        #expect(Self.waitFor(300, linesIn: "\(directory)/dns.log"), "queued during the restart, delivered after it")
        node.send("quit")
        _ = node.waitStatus()
        kill(logger.processIdentifier, SIGTERM)
        logger.waitUntilExit()
        #expect(Self.dataLines("\(directory)/conn.log").count == 1000)
        #expect(Set(Self.dataLines("\(directory)/dns.log")).count == 300, "each record once")
    }
}
