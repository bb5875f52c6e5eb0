import Foundation
import Testing
import ZMTP
import ZMTPTestSupport

#if canImport(Glibc)
import Glibc
#endif

@Suite("Socket monitor events", .serialized, .timeLimit(.minutes(1)))
struct MonitorTests {
    static func options(_ adjust: (inout SocketOptions) -> Void = { _ in }) -> SocketOptions {
        PubSubTests.options(adjust)
    }

    @Test("A bind, a connect, a handshake and a disconnect give libzmq's events and values in order")
    func lifecycle() async throws {
        let context = try Context()
        defer { context.shutdown() }
        let pull = try context.socket(.pull, options: Self.options())
        let server = EventRecorder(pull)
        let endpoint = try pull.bind("tcp://127.0.0.1:*")
        let push = try context.socket(.push, options: Self.options())
        let client = EventRecorder(push)
        try push.connect(endpoint)
        try await push.send(Message(single: Array("hello".utf8)))
        #expect(try await pull.receive() == Message(single: Array("hello".utf8)))

        let listening = try #require(server.first(.listening))
        #expect(listening.endpoint == endpoint)
        #expect(listening.value > 2)  // a descriptor
        let accepted = try #require(server.first(.accepted))
        #expect(accepted.endpoint == endpoint)
        #expect(server.first(.handshakeSucceeded)?.endpoint == endpoint)
        let connected = try #require(client.first(.connected))
        #expect(connected.endpoint == endpoint)
        #expect(client.first(.handshakeSucceeded)?.endpoint == endpoint)
        #expect(client.kinds.firstIndex(of: .connected)! < client.kinds.firstIndex(of: .handshakeSucceeded)!)

        // The peer going away: DISCONNECTED with the accepted descriptor; closing our own socket
        // reports CLOSED for the listener and ends the monitor.
        push.close()
        let disconnected = try #require(server.first(.disconnected))
        #expect(disconnected.value == accepted.value)
        #expect(client.first(.disconnected, timeout: .milliseconds(200)) == nil)  // a local close is not a disconnect
        pull.close()
        server.finished()
        client.finished()
        #expect(server.kinds.suffix(2) == [.closed, .monitorStopped])
        #expect(server.all.last(where: { $0.kind == .closed })?.value == listening.value)
        #expect(client.kinds.last == .monitorStopped)
    }

    @Test("Connecting to nothing retries with the reconnect interval as the value; a busy port is BIND_FAILED")
    func retriesAndBindFailure() async throws {
        let context = try Context()
        defer { context.shutdown() }
        let taken = try context.socket(.pull, options: Self.options())
        let endpoint = try taken.bind("tcp://127.0.0.1:*")
        let second = try context.socket(.pull, options: Self.options())
        let bindEvents = EventRecorder(second)
        #expect(throws: SocketError.self) { try second.bind(endpoint) }
        let failed = try #require(bindEvents.first(.bindFailed))
        #expect(failed.value == UInt32(EADDRINUSE))
        #expect(failed.endpoint == endpoint)
        taken.close()  // nothing listens there now

        let push = try context.socket(.push, options: Self.options { $0.reconnectInterval = .milliseconds(30) })
        let events = EventRecorder(push)
        try push.connect(endpoint)
        let retried = try #require(events.first(.connectRetried))
        #expect(retried.value == 30)
        #expect(retried.endpoint == endpoint)
        #expect(events.first(.handshakeSucceeded, timeout: .milliseconds(100)) == nil)
    }

    @Test("A refused CURVE client: both sides see HANDSHAKE_FAILED_AUTH 400")
    func curveRefusal() throws {
        let context = try Context()
        defer { context.shutdown() }
        let serverKeys = CurveKeyPair.generate()
        let allowed = CurveKeyPair.generate()
        let pull = try context.socket(.pull, options: Self.options {
            $0.curve = .server(serverKeys)
            $0.zapHandler = AllowListZAPHandler(allowedClientKeys: [allowed.publicKey])
        })
        let server = EventRecorder(pull)
        let endpoint = try pull.bind("tcp://127.0.0.1:*")
        let push = try context.socket(.push, options: Self.options {
            $0.curve = .client(serverPublicKey: serverKeys.publicKey, keyPair: CurveKeyPair.generate())
        })
        let client = EventRecorder(push)
        try push.connect(endpoint)

        let refused = try #require(server.first(.handshakeFailedAuth))
        #expect(refused.value == 400)
        #expect(refused.endpoint == endpoint)
        let rejected = try #require(client.first(.handshakeFailedAuth))
        #expect(rejected.value == 400)
        #expect(client.first(.disconnected) != nil)
        #expect(server.first(.handshakeSucceeded, timeout: .milliseconds(100)) == nil)
        // libzmq does not reconnect after a peer's ERROR, and neither do we.
        usleep(100_000)
        #expect(client.kinds.filter { $0 == .handshakeFailedAuth }.count == 1)
    }

    @Test("NULL against CURVE: both sides see HANDSHAKE_FAILED_PROTOCOL with MECHANISM_MISMATCH")
    func mechanismMismatch() throws {
        let context = try Context()
        defer { context.shutdown() }
        let pull = try context.socket(.pull, options: Self.options { $0.curve = .server(CurveKeyPair.generate()) })
        let server = EventRecorder(pull)
        let endpoint = try pull.bind("ipc:///tmp/zmtp-monitor-\(getpid()).sock")
        let push = try context.socket(.push, options: Self.options())
        let client = EventRecorder(push)
        try push.connect(endpoint)
        for recorder in [server, client] {
            let failed = try #require(recorder.first(.handshakeFailedProtocol))
            #expect(failed.value == SocketEvent.ProtocolError.zmtpMechanismMismatch)
            #expect(failed.value == 0x1100_0002)
            #expect(failed.endpoint == endpoint)
            #expect(failed.description.hasPrefix("HANDSHAKE_FAILED_PROTOCOL value=0x11000002 endpoint=\(endpoint)"))
        }
    }

    @Test("A peer that connects and says nothing: HANDSHAKE_FAILED_NO_DETAIL with ETIMEDOUT, then DISCONNECTED")
    func handshakeTimeout() throws {
        let context = try Context()
        defer { context.shutdown() }
        let pull = try context.socket(.pull, options: Self.options { $0.handshakeTimeout = .milliseconds(100) })
        let events = EventRecorder(pull, [.handshakeFailedNoDetail, .disconnected])
        let endpoint = try pull.bind("tcp://127.0.0.1:*")
        let port = try #require(UInt16(endpoint.split(separator: ":").last.map(String.init) ?? ""))
        let silent = try RawPeer.connectTCP(port: port)
        defer { silent.closeNow() }
        let failed = try #require(events.first(.handshakeFailedNoDetail))
        #expect(failed.value == UInt32(ETIMEDOUT))
        #expect(events.first(.disconnected) != nil)
        #expect(events.kinds == [.handshakeFailedNoDetail, .disconnected])  // the selection is honoured
    }

    @Test("A reader that falls behind keeps the oldest events up to the limit; the rest are counted as dropped")
    func boundedBuffer() async throws {
        let context = try Context()
        defer { context.shutdown() }
        let pull = try context.socket(.pull, options: Self.options())
        let monitor = pull.monitor(bufferLimit: 2)
        try pull.bind("tcp://127.0.0.1:*")  // LISTENING
        try pull.bind("tcp://127.0.0.1:*")
        try pull.bind("tcp://127.0.0.1:*")
        #expect(monitor.droppedEvents == 1)
        pull.close()  // CLOSED ×3 and MONITOR_STOPPED are dropped too: nobody read
        var kinds: [SocketEvent.Kind] = []
        for await event in monitor { kinds.append(event.kind) }
        #expect(kinds == [.listening, .listening])
        #expect(monitor.droppedEvents == 5)
    }

    @Test("A cancelled monitor ends, and stops recording")
    func cancel() throws {
        let context = try Context()
        defer { context.shutdown() }
        let pull = try context.socket(.pull, options: Self.options())
        let monitor = pull.monitor()
        monitor.cancel()
        try pull.bind("tcp://127.0.0.1:*")
        #expect(monitor.next(timeout: .seconds(1)) == nil)
        #expect(monitor.droppedEvents == 0)
    }

    @Test("A monitor on a closed socket ends at once with MONITOR_STOPPED")
    func monitorAfterClose() async throws {
        let context = try Context()
        defer { context.shutdown() }
        let socket = try context.socket(.sub, options: Self.options())
        socket.close()
        var kinds: [SocketEvent.Kind] = []
        for await event in socket.monitor() { kinds.append(event.kind) }
        #expect(kinds == [.monitorStopped])
    }
}

@Suite("Heartbeats", .serialized, .timeLimit(.minutes(1)))
struct HeartbeatTests {
    @Test("A subscriber whose PING asked for a TTL and then fell silent is dropped after the TTL, with its subscriptions")
    func peerTTLHonoured() throws {
        let context = try Context()
        defer { context.shutdown() }
        let xpub = try context.socket(.xpub, options: PubSubTests.options())  // no heartbeat options of its own
        let events = EventRecorder(xpub, [.disconnected])
        let path = "/tmp/zmtp-ttl-\(getpid()).sock"
        try xpub.bind("ipc://\(path)")
        let peer = try RawPeer.connectAndHandshake(path: path, socketType: "SUB")
        var frames: [UInt8] = []
        FrameEncoder.appendFrame(try Command.subscribe(topic: Array("zeek.".utf8)).encodedBody(), command: true, to: &frames)
        FrameEncoder.appendFrame(try Command.ping(ttlDeciseconds: 3, context: []).encodedBody(), command: true, to: &frames)
        let sentAt = ContinuousClock.now
        peer.write(frames)
        #expect(try xpub.receive() == Message(single: [1] + Array("zeek.".utf8)))
        #expect(try xpub.receive() == Message(single: [0] + Array("zeek.".utf8)))
        let elapsed = ContinuousClock.now - sentAt
        #expect(elapsed >= .milliseconds(290) && elapsed < .seconds(2), "dropped after \(elapsed)")
        #expect(events.first(.disconnected) != nil)
    }
}
