// swift-zmtp's PUSH/PULL sockets (engine, epoll, pipes) against libzmq 4.3.5 (pyzmq).

import Foundation
import Testing
import ZMTP

@Suite("Socket interop with libzmq (pyzmq)", .serialized, .timeLimit(.minutes(1)))
struct SocketInteropTests {
    static func options() -> SocketOptions {
        var options = SocketOptions()
        options.receiveTimeout = .seconds(10)
        options.sendTimeout = .seconds(10)
        options.linger = .seconds(5)
        return options
    }

    @Test("our PUSH socket delivers to a libzmq PULL over tcp and ipc", arguments: ["tcp", "ipc"])
    func pushToLibzmq(transport: String) throws {
        let context = try Context()
        defer { context.shutdown() }
        let peer: PythonPeer
        let endpoint: String
        if transport == "tcp" {
            peer = try PythonPeer(["pull-bind"])
            endpoint = "tcp://127.0.0.1:\(try peer.boundPort())"
        } else {
            endpoint = "ipc:///tmp/zmtp-interop-\(getpid()).sock"
            peer = try PythonPeer(["pull-bind-at", endpoint])
            #expect(try peer.readLine() == "BOUND")
        }
        let push = try context.socket(.push, options: Self.options())
        try push.connect(endpoint)
        for message in expectedMessages { try push.send(message) }
        for message in expectedMessages { #expect(try peer.received() == Array(message.frames)) }
        #expect(peer.waitStatus() == 0)
        push.close()
    }

    @Test("a libzmq PUSH delivers to our bound PULL socket")
    func libzmqPushToOurPull() throws {
        let context = try Context()
        defer { context.shutdown() }
        let pull = try context.socket(.pull, options: Self.options())
        let endpoint = try pull.bind("tcp://127.0.0.1:*")
        let peer = try PythonPeer(["push-connect", endpoint])
        for message in expectedMessages { #expect(try pull.receive() == message) }
        #expect(try peer.readLine() == "SENT")
        #expect(peer.waitStatus() == 0)
        pull.close()
    }

    @Test("a libzmq CURVE PUSH is admitted by our CURVE PULL socket's ZAP handler and delivers")
    func libzmqCurvePushToOurPull() throws {
        let context = try Context()
        defer { context.shutdown() }
        let server = CurveKeyPair.generate()
        let client = CurveKeyPair.generate()
        var options = Self.options()
        options.curve = .server(server)
        options.zapHandler = AllowListZAPHandler(allowedClientKeys: [client.publicKey])
        let pull = try context.socket(.pull, options: options)
        let endpoint = try pull.bind("tcp://127.0.0.1:*")
        let peer = try PythonPeer([
            "curve-push-connect", endpoint, server.publicKey.z85, client.publicKey.z85, client.secretKey.z85,
        ])
        for message in expectedMessages { #expect(try pull.receive() == message) }
        var lines: [String] = []
        while let line = try? peer.readLine(timeout: 5), line != "SENT" { lines.append(line) }
        #expect(lines.contains { $0.hasPrefix("EVENT \(0x1000) ") }, "HANDSHAKE_SUCCEEDED in \(lines)")
        #expect(peer.waitStatus() == 0)
        pull.close()
    }
}

@Suite("PUSH against a misbehaving peer", .timeLimit(.minutes(1)))
struct PushDiscardTests {
    @Test("a PUSH discards what a peer sends it and keeps serving that peer")
    func pushDiscardsInbound() throws {
        let context = try Context()
        defer { context.shutdown() }
        var options = SocketOptions()
        options.receiveHighWaterMark = 10
        options.sendTimeout = .seconds(10)
        let push = try context.socket(.push, options: options)
        let endpoint = try push.bind("tcp://127.0.0.1:*")
        let port = UInt16(endpoint.split(separator: ":").last.map(String.init) ?? "") ?? 0
        let socket = try LoopbackSocket.connect(port: port)
        var peer = try Connection(configuration: ConnectionConfiguration(socketType: .pull), now: now())
        _ = try pump(&peer, over: socket) { events in
            events.contains { if case .handshakeCompleted = $0 { true } else { false } }
        }
        // A PULL has no business sending; send far more than the PUSH's receive high-water mark.
        for index in 0..<5_000 { try peer.send(Message(withUnsafeBytes(of: UInt32(index)) { Array($0) })) }
        try socket.sendAll(peer.takeOutbound())
        // The PUSH must still be reading and serving this peer.
        for index in 0..<3 { try push.send(Message([UInt8(index)])) }
        let events = try pump(&peer, over: socket) { events in
            events.filter { if case .message = $0 { true } else { false } }.count == 3
        }
        #expect(events.compactMap { if case .message(let m) = $0 { m } else { nil } } == [Message([0]), Message([1]), Message([2])])
        // Had the PUSH queued those messages, reading would have stopped at its receive high-water mark
        // and it would never see this disconnect.
        socket.shutdownBoth()
        push.waitUntilDisconnected(timeout: .seconds(3))
        #expect(push.connectedPeers == 0)
        push.close()
    }
}

@Suite("Socket interop with libzmq: IPv6, many peers, restarts", .serialized, .timeLimit(.minutes(1)))
struct SocketInteropMoreTests {
    static func options() -> SocketOptions {
        var options = SocketOptions()
        options.receiveTimeout = .seconds(10)
        options.sendTimeout = .seconds(10)
        options.linger = .seconds(5)
        options.ipv6 = true
        return options
    }

    @Test("our PUSH reaches a libzmq PULL on [::1]")
    func ipv6() throws {
        let context = try Context()
        defer { context.shutdown() }
        let peer = try PythonPeer(["pull-bind-ipv6"])
        let push = try context.socket(.push, options: Self.options())
        try push.connect("tcp://[::1]:\(try peer.boundPort())")
        for message in expectedMessages { try push.send(message) }
        for message in expectedMessages { #expect(try peer.received() == Array(message.frames)) }
        #expect(peer.waitStatus() == 0)
        push.close()
    }

    @Test("our PUSH round-robins evenly over three libzmq PULLs")
    func roundRobinOverLibzmqPeers() throws {
        let context = try Context()
        defer { context.shutdown() }
        let peer = try PythonPeer(["many-pulls", "3", "30"])
        let line = try peer.readLine()
        let ports = line.split(separator: " ").dropFirst()
        let push = try context.socket(.push, options: Self.options())
        for port in ports { try push.connect("tcp://127.0.0.1:\(port)") }
        #expect(push.waitForPeers(3, timeout: .seconds(5)))
        for index in 0..<30 { try push.send(Message([UInt8(index)])) }
        #expect(try peer.readLine() == "COUNTS 10 10 10")
        #expect(peer.waitStatus() == 0)
        push.close()
    }

    @Test("our PULL fair-queues four libzmq PUSHes, keeping each one's order")
    func fairQueueOverLibzmqPeers() throws {
        let context = try Context()
        defer { context.shutdown() }
        let pull = try context.socket(.pull, options: Self.options())
        let endpoint = try pull.bind("tcp://127.0.0.1:*")
        let peer = try PythonPeer(["many-pushes", endpoint, "4", "50"])
        var sequences: [[UInt8]] = Array(repeating: [], count: 4)
        for _ in 0..<200 {
            let frame = try pull.receive().frames[0]
            sequences[Int(frame[0])].append(frame[1])
        }
        for sequence in sequences { #expect(sequence == (0..<50).map(UInt8.init)) }
        #expect(try peer.readLine() == "SENT")
        #expect(peer.waitStatus() == 0)
        pull.close()
    }

    @Test("our PUSH reconnects when the libzmq PULL restarts on the same endpoint")
    func reconnectAfterRestart() throws {
        let context = try Context()
        defer { context.shutdown() }
        // Find a free port, then let each peer bind it in turn.
        let probe = try LoopbackListener()
        let endpoint = "tcp://127.0.0.1:\(probe.port)"
        _ = consume probe
        let first = try PythonPeer(["pull-bind-at", endpoint])
        #expect(try first.readLine() == "BOUND")
        let push = try context.socket(.push, options: Self.options())
        try push.connect(endpoint)
        for message in expectedMessages { try push.send(message) }
        for message in expectedMessages { #expect(try first.received() == Array(message.frames)) }
        #expect(first.waitStatus() == 0)
        push.waitUntilDisconnected(timeout: .seconds(5))
        let second = try PythonPeer(["pull-bind-at", endpoint])
        #expect(try second.readLine() == "BOUND")
        for message in expectedMessages { try push.send(message) }
        for message in expectedMessages { #expect(try second.received() == Array(message.frames)) }
        #expect(second.waitStatus() == 0)
        push.close()
    }
}
