// The wire core against libzmq 4.3.5 (pyzmq), before any engine exists: a plain loopback TCP
// connection driven by ZMTPWire.Connection. These run in CI; pyzmq missing is a failure, not a skip.

import Foundation
import Testing
import ZMTPWire

@Suite("libzmq interop (pyzmq)", .serialized, .timeLimit(.minutes(1)))
struct LibzmqInteropTests {
    @Test("our PUSH connection delivers multipart messages to a libzmq PULL")
    func pushToLibzmqPull() throws {
        let peer = try PythonPeer(["pull-bind"])
        let socket = try LoopbackSocket.connect(port: try peer.boundPort())
        var connection = try Connection(configuration: ConnectionConfiguration(socketType: .push), now: now())
        let events = try pump(&connection, over: socket) { $0.contains { if case .handshakeCompleted = $0 { true } else { false } } }
        guard case .handshakeCompleted(let info) = events.first else { throw InteropFailure("no handshake") }
        #expect(info.socketType == .pull)
        #expect(info.version == .zmtp31)
        for message in expectedMessages { try connection.send(message) }
        try socket.sendAll(connection.takeOutbound())
        for message in expectedMessages {
            #expect(try peer.received() == Array(message.frames))
        }
        #expect(peer.waitStatus() == 0)
    }

    @Test("a libzmq PUSH delivers multipart messages to our PULL listener")
    func libzmqPushToOurPull() throws {
        let listener = try LoopbackListener()
        let peer = try PythonPeer(["push-connect", "tcp://127.0.0.1:\(listener.port)"])
        let socket = try listener.accept()
        var connection = try Connection(
            configuration: ConnectionConfiguration(socketType: .pull), mechanism: NullMechanism(role: .server), now: now())
        let events = try pump(&connection, over: socket) { events in
            events.filter { if case .message = $0 { true } else { false } }.count == expectedMessages.count
        }
        guard case .handshakeCompleted(let info) = events.first else { throw InteropFailure("no handshake") }
        #expect(info.socketType == .push)
        let messages = events.compactMap { if case .message(let m) = $0 { m } else { nil } }
        #expect(messages == expectedMessages)
        #expect(peer.waitStatus() == 0)
    }

    @Test("our SUB's SUBSCRIBE and CANCEL commands reach a libzmq XPUB, and it filters for us")
    func subscribeToLibzmqXPub() throws {
        let peer = try PythonPeer(["xpub-bind"])
        let socket = try LoopbackSocket.connect(port: try peer.boundPort())
        var connection = try Connection(configuration: ConnectionConfiguration(socketType: .sub), now: now())
        _ = try pump(&connection, over: socket) { !$0.isEmpty }
        try connection.subscribe(Array("zeek.".utf8))
        try socket.sendAll(connection.takeOutbound())
        #expect(try peer.received() == [[1] + Array("zeek.".utf8)])
        let events = try pump(&connection, over: socket) { !$0.isEmpty }
        // "other.topic" does not match and must have been filtered by libzmq.
        #expect(events == [.message(Message(Array("zeek.event".utf8), Array("yes".utf8)))])
        try connection.cancel(Array("zeek.".utf8))
        try socket.sendAll(connection.takeOutbound())
        #expect(try peer.received() == [[0] + Array("zeek.".utf8)])
        #expect(peer.waitStatus() == 0)
    }

    @Test("a libzmq SUB's subscription reaches our PUB listener, which then publishes to it")
    func libzmqSubToOurPub() throws {
        let listener = try LoopbackListener()
        let peer = try PythonPeer(["pub-connect", "tcp://127.0.0.1:\(listener.port)"])
        let socket = try listener.accept()
        var connection = try Connection(
            configuration: ConnectionConfiguration(socketType: .pub), mechanism: NullMechanism(role: .server), now: now())
        let events = try pump(&connection, over: socket) { $0.count >= 2 }
        #expect(events.dropFirst().first == .subscribe(topic: Array("zeek.".utf8)))
        try connection.send(Message(Array("zeek.event".utf8), Array("payload".utf8)))
        try socket.sendAll(connection.takeOutbound())
        #expect(try peer.received() == [Array("zeek.event".utf8), Array("payload".utf8)])
        #expect(peer.waitStatus() == 0)
    }

    @Test("a libzmq PUB connecting to our PULL gets ERROR, fails the handshake and does not reconnect")
    func incompatibleLibzmqPeerIsRefused() throws {
        let listener = try LoopbackListener()
        let peer = try PythonPeer(["pub-connect-monitored", "tcp://127.0.0.1:\(listener.port)"])
        let socket = try listener.accept()
        var connection = try Connection(
            configuration: ConnectionConfiguration(socketType: .pull), mechanism: NullMechanism(role: .server), now: now())
        do {
            _ = try pump(&connection, over: socket) { _ in false }
            Issue.record("handshake with a PUB should have failed")
        } catch let error as ZMTPError {
            #expect(error.code == .incompatibleSocketType)
            #expect(connection.isClosed)
        }
        // Flush the ERROR we owe the peer, then close, as an engine would.
        try socket.sendAll(connection.takeOutbound())
        socket.shutdownBoth()
        var events: [Int] = []
        while true {
            let line = try peer.readLine()
            if line == "DONE" { break }
            events.append(Int(line.dropFirst(6)) ?? -1)
        }
        let handshakeSucceeded = 0x1000, connected = 1, disconnected = 0x200
        #expect(events.contains(connected) && events.last == disconnected, "libzmq events: \(events)")
        #expect(!events.contains(handshakeSucceeded))
        // RFC 37: an ERROR is fatal and the peer must not reconnect (libzmq would after a plain close,
        // about 100 ms later: libzmq-behaviours.md §11). So no second connection arrives.
        #expect(throws: InteropFailure.self) { try listener.accept(timeoutMs: 1_000) }
        #expect(peer.waitStatus() == 0)
    }
}
