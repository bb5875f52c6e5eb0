// CURVE against libzmq 4.3.5 (pyzmq) over loopback TCP, in both roles, with ZAP on both sides.

import Foundation
import Testing
import ZMTPWire

@Suite("libzmq CURVE interop (pyzmq)", .serialized, .timeLimit(.minutes(1)))
struct CurveInteropTests {
    static let server = CurveKeyPair.generate()
    static let client = CurveKeyPair.generate()

    func curveClient(_ type: SocketType, keys: CurveKeyPair = Self.client) throws -> Connection {
        try Connection(
            configuration: ConnectionConfiguration(socketType: type),
            mechanism: CurveClientMechanism(serverPublicKey: Self.server.publicKey, keyPair: keys), now: now())
    }

    func curveServer(_ type: SocketType) throws -> Connection {
        try Connection(
            configuration: ConnectionConfiguration(socketType: type, peerAddress: "127.0.0.1"),
            mechanism: CurveServerMechanism(secretKey: Self.server.secretKey), now: now())
    }

    static let allowClient = AllowListZAPHandler(allowedClientKeys: [client.publicKey])

    static func isHandshake(_ events: [ConnectionEvent]) -> Bool {
        events.contains { if case .handshakeCompleted = $0 { true } else { false } }
    }

    @Test("our CURVE client pushes multipart messages to a libzmq CURVE server that authenticates it")
    func clientToLibzmqServer() throws {
        let peer = try PythonPeer(["curve-pull-bind", Self.server.secretKey.z85, Self.client.publicKey.z85, "\(expectedMessages.count)"])
        let socket = try LoopbackSocket.connect(port: try peer.boundPort())
        var connection = try curveClient(.push)
        _ = try pump(&connection, over: socket, until: Self.isHandshake)
        #expect(connection.peer?.socketType == .pull)
        for message in expectedMessages { try connection.send(message) }
        try socket.sendAll(connection.takeOutbound())
        for message in expectedMessages { #expect(try peer.received() == Array(message.frames)) }
        #expect(peer.waitStatus() == 0)
    }

    @Test("our CURVE SUB subscribes (encrypted command) to a libzmq CURVE XPUB and receives what it publishes")
    func subscriberToLibzmqXPub() throws {
        let peer = try PythonPeer(["curve-xpub-bind", Self.server.secretKey.z85, Self.client.publicKey.z85])
        let socket = try LoopbackSocket.connect(port: try peer.boundPort())
        var connection = try curveClient(.sub)
        _ = try pump(&connection, over: socket, until: Self.isHandshake)
        try connection.subscribe(Array("zeek.".utf8))
        try socket.sendAll(connection.takeOutbound())
        #expect(try peer.received() == [[1] + Array("zeek.".utf8)])
        let events = try pump(&connection, over: socket) { !$0.isEmpty }
        #expect(events == [.message(Message(Array("zeek.event".utf8), Array("yes".utf8)))])
        try connection.cancel(Array("zeek.".utf8))
        try socket.sendAll(connection.takeOutbound())
        #expect(try peer.received() == [[0] + Array("zeek.".utf8)])
        #expect(peer.waitStatus() == 0)
    }

    @Test("a libzmq CURVE client pushes to our CURVE server, admitted by our ZAP allow-list")
    func libzmqClientToOurServer() throws {
        let listener = try LoopbackListener()
        let peer = try PythonPeer([
            "curve-push-connect", "tcp://127.0.0.1:\(listener.port)", Self.server.publicKey.z85,
            Self.client.publicKey.z85, Self.client.secretKey.z85,
        ])
        let socket = try listener.accept()
        var connection = try curveServer(.pull)
        let events = try pump(&connection, over: socket, authenticator: Self.allowClient) { events in
            events.filter { if case .message = $0 { true } else { false } }.count == expectedMessages.count
        }
        #expect(connection.peer?.socketType == .push)
        #expect(connection.peer?.metadata["User-Id"] == Array("0".utf8))
        #expect(events.compactMap { if case .message(let m) = $0 { m } else { nil } } == expectedMessages)
        var lines: [String] = []
        while let line = try? peer.readLine(timeout: 5), line != "SENT" { lines.append(line) }
        #expect(lines.contains { $0.hasPrefix("EVENT \(0x1000) ") }, "HANDSHAKE_SUCCEEDED in \(lines)")
        #expect(peer.waitStatus() == 0)
    }

    @Test("our CURVE publisher serves a libzmq CURVE SUB: its subscription arrives, our message reaches it")
    func libzmqSubscriberToOurPublisher() throws {
        let listener = try LoopbackListener()
        let peer = try PythonPeer([
            "curve-sub-connect", "tcp://127.0.0.1:\(listener.port)", Self.server.publicKey.z85,
            Self.client.publicKey.z85, Self.client.secretKey.z85,
        ])
        let socket = try listener.accept()
        var connection = try curveServer(.pub)
        let events = try pump(&connection, over: socket, authenticator: Self.allowClient) { events in
            events.contains { if case .subscribe = $0 { true } else { false } }
        }
        #expect(events.last == .subscribe(topic: Array("zeek.".utf8)))
        try connection.send(Message(Array("zeek.event".utf8), Array("payload".utf8)))
        try socket.sendAll(connection.takeOutbound())
        #expect(try peer.received() == [Array("zeek.event".utf8), Array("payload".utf8)])
        #expect(peer.waitStatus() == 0)
    }

    @Test("libzmq's ZAP refuses our unknown client key: we see ERROR 400 and a failed handshake")
    func libzmqRefusesUnknownKey() throws {
        let peer = try PythonPeer(["curve-pull-bind", Self.server.secretKey.z85, Self.client.publicKey.z85, "0"])
        defer { peer.closeInput() }
        let socket = try LoopbackSocket.connect(port: try peer.boundPort())
        var connection = try curveClient(.push, keys: CurveKeyPair.generate())
        do {
            _ = try pump(&connection, over: socket) { _ in false }
            Issue.record("an unknown key must not complete the handshake")
        } catch let error as ZMTPError {
            #expect(error.code == .peerError)
            #expect(error.reason.hasSuffix("400"))
            #expect(!connection.isHandshakeComplete)
        }
    }

    @Test("our ZAP refuses libzmq's unknown client key: libzmq reports HANDSHAKE_FAILED_AUTH with 400")
    func weRefuseUnknownKey() throws {
        let listener = try LoopbackListener()
        let stranger = CurveKeyPair.generate()
        let peer = try PythonPeer([
            "curve-push-connect", "tcp://127.0.0.1:\(listener.port)", Self.server.publicKey.z85,
            stranger.publicKey.z85, stranger.secretKey.z85,
        ])
        let socket = try listener.accept()
        var connection = try curveServer(.pull)
        do {
            _ = try pump(&connection, over: socket, authenticator: Self.allowClient) { _ in false }
            Issue.record("an unknown key must not be admitted")
        } catch let error as ZMTPError {
            #expect(error.code == .authenticationFailed)
        }
        var lines: [String] = []
        while let line = try? peer.readLine(timeout: 5) { lines.append(line) }
        // HANDSHAKE_FAILED_AUTH (0x4000) with the status code as its value: what Zeek treats as fatal.
        #expect(lines.contains("EVENT \(0x4000) 400"), "libzmq events: \(lines)")
        #expect(peer.waitStatus() == 0)
    }

    @Test("`zmtp keygen` output is accepted by libzmq: its public key of our secret is our public key")
    func keygenAcceptedByLibzmq() throws {
        let tool = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
            .deletingLastPathComponent().appendingPathComponent("zmtp")
        let process = Process()
        process.executableURL = tool
        process.arguments = ["keygen"]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let line = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        let parts = line.split(separator: "\"").map(String.init)
        try #require(parts.count == 9, "keygen printed \(line)")
        let peer = try PythonPeer(["curve-public", parts[7]])
        #expect(try peer.readLine() == parts[3])
        #expect(peer.waitStatus() == 0)
    }

    @Test("a libzmq NULL client is refused by our CURVE server (mechanism mismatch on both sides)")
    func nullClientRefused() throws {
        let listener = try LoopbackListener()
        let peer = try PythonPeer(["null-push-connect-monitored", "tcp://127.0.0.1:\(listener.port)"])
        let socket = try listener.accept()
        var connection = try curveServer(.pull)
        do {
            _ = try pump(&connection, over: socket) { _ in false }
            Issue.record("a NULL peer must be refused")
        } catch let error as ZMTPError {
            #expect(error.code == .mechanismMismatch)
        }
        socket.shutdownBoth()
        var lines: [String] = []
        while let line = try? peer.readLine(timeout: 5) { lines.append(line) }
        // HANDSHAKE_FAILED_PROTOCOL with ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH (0x11000002): libzmq saw
        // our full CURVE greeting, which we send before closing (RFC 37: whoever read a full greeting
        // sends its own), and is told exactly why, as Zeek expects (zeek-wire.md §6.1).
        #expect(lines.contains("EVENT \(0x2000) \(0x1100_0002)"), "libzmq events: \(lines)")
        #expect(peer.waitStatus() == 0)
    }
}
