// Test-only plumbing for driving a ZMTPWire.Connection over a real loopback TCP socket against a
// libzmq peer (pyzmq). This is deliberately simple blocking code with poll() timeouts; the real
// engine (epoll, non-blocking, writev) is a later layer.

import Foundation
import Testing
import ZMTPWire

#if canImport(Glibc)
import Glibc
#endif

struct InteropFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A pyzmq process running Tests/InteropTests/peer.py in one mode.
final class PythonPeer {
    let process = Process()
    private let stdoutPipe = Pipe()
    private let stdinPipe = Pipe()
    private var buffered: [UInt8] = []

    /// The interpreter: $ZMTP_PYTHON, else `python3` on PATH. pyzmq must be importable; a missing
    /// pyzmq fails the test (interop tests never skip).
    static var interpreter: String { ProcessInfo.processInfo.environment["ZMTP_PYTHON"] ?? "python3" }

    static func scriptPath(_ name: String) -> String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent(name).path
    }

    /// Runs `script` (peer.py, or zeek_node.py for a simulated Zeek node) with `arguments`.
    init(_ arguments: [String], script: String = "peer.py") throws {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [Self.interpreter, Self.scriptPath(script)] + arguments
        process.standardOutput = stdoutPipe
        process.standardInput = stdinPipe
        try process.run()
    }

    deinit {
        if process.isRunning { process.terminate() }
    }

    /// Reads one line, waiting at most `timeout` seconds.
    func readLine(timeout: Double = 15) throws -> String {
        let fd = stdoutPipe.fileHandleForReading.fileDescriptor
        let deadline = Date().addingTimeInterval(timeout)
        var scanned = 0  // octets of `buffered` known to hold no newline (long lines arrive in many reads)
        while true {
            if let newline = buffered[scanned...].firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: buffered[..<newline], as: UTF8.self)
                buffered.removeFirst(newline + 1)
                return line
            }
            scanned = buffered.count
            let remaining = deadline.timeIntervalSinceNow
            guard remaining > 0 else { throw InteropFailure("python peer said nothing for \(timeout) s") }
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&pfd, 1, Int32(remaining * 1000)) > 0 else { continue }
            var chunk = [UInt8](repeating: 0, count: 1 << 20)
            let n = read(fd, &chunk, chunk.count)
            guard n > 0 else { throw InteropFailure("python peer exited (status \(waitStatus()))") }
            buffered += chunk[0..<n]
        }
    }

    /// The port a binding mode announced.
    func boundPort() throws -> UInt16 {
        let line = try readLine()
        guard line.hasPrefix("PORT "), let port = UInt16(line.dropFirst(5)) else {
            throw InteropFailure("expected 'PORT n' from python peer, got '\(line)' (is pyzmq installed for \(Self.interpreter)?)")
        }
        return port
    }

    /// Frames of the next "RECV" line.
    func received() throws -> [[UInt8]] {
        let line = try readLine()
        guard line.hasPrefix("RECV") else { throw InteropFailure("python peer: \(line)") }
        let body = line.dropFirst(4).trimmingCharacters(in: .whitespaces)
        return body.split(separator: ",", omittingEmptySubsequences: false).map { hexBytes(String($0)) }
    }

    func closeInput() { try? stdinPipe.fileHandleForWriting.close() }

    /// Writes one line to the peer's standard input.
    func send(_ line: String) { stdinPipe.fileHandleForWriting.write(Data((line + "\n").utf8)) }

    /// Reads lines until one satisfies `predicate` (returned), failing after `timeout` seconds.
    func readLine(until predicate: (String) -> Bool, timeout: Double = 15) throws -> String {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let line = try readLine(timeout: max(0.1, deadline.timeIntervalSinceNow))
            if predicate(line) { return line }
        }
    }

    func waitStatus() -> Int32 {
        process.waitUntilExit()
        return process.terminationStatus
    }
}

func hexBytes(_ text: String) -> [UInt8] {
    var out: [UInt8] = []
    var index = text.startIndex
    while index < text.endIndex, let next = text.index(index, offsetBy: 2, limitedBy: text.endIndex) {
        out.append(UInt8(text[index..<next], radix: 16) ?? 0)
        index = next
    }
    return out
}

/// A blocking loopback TCP socket with poll() timeouts.
final class LoopbackSocket {
    let fd: Int32

    init(fd: Int32) { self.fd = fd }

    deinit { close(fd) }

    static func connect(port: UInt16) throws -> LoopbackSocket {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw InteropFailure("socket: \(errno)") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard result == 0 else {
            close(fd)
            throw InteropFailure("connect to 127.0.0.1:\(port) failed: errno \(errno)")
        }
        return LoopbackSocket(fd: fd)
    }

    /// Shuts the connection down in both directions (the peer sees EOF).
    func shutdownBoth() { shutdown(fd, Int32(SHUT_RDWR)) }

    /// Sends everything, retrying partial writes.
    func sendAll(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw InteropFailure("send failed: errno \(errno)") }
            offset += n
        }
    }

    /// Waits up to `timeoutMs` for bytes; returns nil on timeout, [] on EOF.
    func receive(timeoutMs: Int32) throws -> [UInt8]? {
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&pfd, 1, timeoutMs) > 0 else { return nil }
        var chunk = [UInt8](repeating: 0, count: 65536)
        let n = recv(fd, &chunk, chunk.count, 0)
        guard n >= 0 else { throw InteropFailure("recv failed: errno \(errno)") }
        return Array(chunk[0..<n])
    }
}

/// A listening loopback TCP socket on an ephemeral port.
final class LoopbackListener {
    let fd: Int32
    let port: UInt16

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.fd = fd
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer -> Bool in
                bind(fd, pointer, length) == 0 && listen(fd, 8) == 0 && getsockname(fd, pointer, &length) == 0
            }
        }
        guard bound else { throw InteropFailure("bind/listen failed: errno \(errno)") }
        port = UInt16(bigEndian: address.sin_port)
    }

    deinit { close(fd) }

    func accept(timeoutMs: Int32 = 15_000) throws -> LoopbackSocket {
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&pfd, 1, timeoutMs) > 0 else { throw InteropFailure("no connection within \(timeoutMs) ms") }
        let client = Glibc.accept(fd, nil, nil)
        guard client >= 0 else { throw InteropFailure("accept failed: errno \(errno)") }
        return LoopbackSocket(fd: client)
    }
}

/// Drives `connection` over `socket`: flushes outbound bytes, feeds inbound bytes, collects events,
/// until `done` says so or `timeout` seconds pass.
/// Authentication requests are answered by `authenticator` when one is given.
func pump(
    _ connection: inout Connection, over socket: LoopbackSocket, timeout: Double = 15,
    authenticator: (any ZAPHandler)? = nil,
    until done: ([ConnectionEvent]) -> Bool
) throws -> [ConnectionEvent] {
    var events: [ConnectionEvent] = []
    let start = Date()
    while true {
        try socket.sendAll(connection.takeOutbound())
        if done(events) { return events }
        guard Date().timeIntervalSince(start) < timeout else {
            throw InteropFailure("timed out after \(timeout) s with events \(events)")
        }
        guard let bytes = try socket.receive(timeoutMs: 50) else { continue }
        guard !bytes.isEmpty else { throw InteropFailure("peer closed the connection; events so far \(events)") }
        var rest = bytes[...]
        while !rest.isEmpty {
            let consumed: Int
            do {
                consumed = try connection.receive(Array(rest), now: now())
            } catch {
                // As an engine does: flush what the connection still owes the peer (the rest of our
                // greeting, an ERROR), then give up.
                try? socket.sendAll(connection.takeOutbound())
                throw error
            }
            rest = rest.dropFirst(consumed)
            var resumed = false
            while let event = connection.nextEvent() {
                events.append(event)
                if case .authenticationRequested(let request) = event, let authenticator {
                    do {
                        try connection.completeAuthentication(authenticator.authenticate(request))
                        resumed = true
                    } catch {
                        try socket.sendAll(connection.takeOutbound())  // the ERROR we owe the peer
                        throw error
                    }
                }
            }
            if consumed == 0 && !resumed { throw InteropFailure("connection paused with no authenticator") }
        }
    }
}

/// CLOCK_MONOTONIC as the wire core's instant.
func now() -> MonotonicInstant {
    var spec = timespec()
    clock_gettime(CLOCK_MONOTONIC, &spec)
    return MonotonicInstant(nanoseconds: UInt64(spec.tv_sec) * 1_000_000_000 + UInt64(spec.tv_nsec))
}

/// The messages peer.py's `expected_messages()` exchanges.
let expectedMessages: [Message] = [
    Message(Array("log-write".utf8), Array("conn".utf8), [0, 1, 2]),
    Message([]),
    Message([UInt8](repeating: UInt8(ascii: "x"), count: 1_200_000)),  // over 1 MiB: a long frame spread over many reads
    Message(Array("last".utf8)),
]
