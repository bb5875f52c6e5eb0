// Socket monitor events and heartbeats of swift-zmtp's sockets against libzmq 4.3.5 (pyzmq): what a
// libzmq client's monitor reports when our socket refuses it, what ours reports in the same
// situations, and heartbeats finding a peer that went silent.

import Foundation
import Testing
import ZMTP
import ZMTPTestSupport

#if canImport(Glibc)
import Glibc
#endif

@Suite("Monitor events and heartbeats against libzmq (pyzmq)", .serialized, .timeLimit(.minutes(1)))
struct MonitorInteropTests {
    static let server = CurveKeyPair.generate()
    static let client = CurveKeyPair.generate()

    static func endpoint(_ transport: String, _ name: String) -> String {
        transport == "ipc" ? "ipc:///tmp/zmtp-\(name)-\(getpid()).sock" : "tcp://127.0.0.1:*"
    }

    /// Monitor lines a peer printed ("EVENT <number> <value>") until it exits.
    static func events(of peer: PythonPeer) -> [String] {
        var lines: [String] = []
        while let line = try? peer.readLine(timeout: 5) { lines.append(line) }
        return lines
    }

    @Test("a libzmq CURVE client with an unknown key: its monitor and ours both report HANDSHAKE_FAILED_AUTH 400",
          arguments: ["tcp", "ipc"])
    func curveRefusalSeenByLibzmq(transport: String) throws {
        let context = try Context()
        defer { context.shutdown() }
        var options = SocketOptions()
        options.curve = .server(Self.server)
        options.zapHandler = AllowListZAPHandler(allowedClientKeys: [Self.client.publicKey])
        options.linger = .zero
        let xpub = try context.socket(.xpub, options: options)
        let ours = EventRecorder(xpub)
        let endpoint = try xpub.bind(Self.endpoint(transport, "refuse"))
        let stranger = CurveKeyPair.generate()
        let peer = try PythonPeer([
            "curve-client-monitored", "XSUB", endpoint, Self.server.publicKey.z85, stranger.publicKey.z85,
            stranger.secretKey.z85,
        ])
        let lines = Self.events(of: peer)
        #expect(peer.waitStatus() == 0)
        // ZMQ_EVENT_HANDSHAKE_FAILED_AUTH (0x4000) with the ZAP status, which Zeek treats as fatal.
        #expect(lines.last == "EVENT 16384 400", "libzmq's events: \(lines)")
        #expect(!lines.contains { $0.hasPrefix("EVENT 4096 ") }, "no HANDSHAKE_SUCCEEDED")
        let refused = try #require(ours.first(.handshakeFailedAuth))
        #expect(refused.value == 400)
        #expect(refused.endpoint == endpoint)
        #expect(ours.first(.disconnected) != nil)
        xpub.close()
    }

    @Test("a libzmq NULL client against our CURVE socket: both monitors report MECHANISM_MISMATCH",
          arguments: ["tcp", "ipc"])
    func mechanismMismatchSeenByLibzmq(transport: String) throws {
        let context = try Context()
        defer { context.shutdown() }
        var options = SocketOptions()
        options.curve = .server(Self.server)
        options.linger = .zero
        let pull = try context.socket(.pull, options: options)
        let ours = EventRecorder(pull)
        let endpoint = try pull.bind(Self.endpoint(transport, "mismatch"))
        let peer = try PythonPeer(["null-push-connect-monitored", endpoint])
        let lines = Self.events(of: peer)
        #expect(peer.waitStatus() == 0)
        // ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL (0x2000), ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH.
        #expect(lines.last == "EVENT 8192 \(0x1100_0002)", "libzmq's events: \(lines)")
        let failed = try #require(ours.first(.handshakeFailedProtocol))
        #expect(failed.value == 0x1100_0002)
        pull.close()
    }

    @Test("our CURVE client refused by a libzmq server's ZAP: our monitor reports what libzmq's would, AUTH 400")
    func ourClientRefusedByLibzmq() throws {
        let peer = try PythonPeer(["curve-pull-bind", Self.server.secretKey.z85, Self.client.publicKey.z85, "0"])
        let port = try peer.boundPort()
        let context = try Context()
        defer { context.shutdown() }
        var options = SocketOptions()
        options.curve = .client(serverPublicKey: Self.server.publicKey, keyPair: CurveKeyPair.generate())
        options.linger = .zero
        let push = try context.socket(.push, options: options)
        let ours = EventRecorder(push)
        try push.connect("tcp://127.0.0.1:\(port)")
        let refused = try #require(ours.first(.handshakeFailedAuth))
        #expect(refused.value == 400)
        #expect(refused.endpoint == "tcp://127.0.0.1:\(port)")
        #expect(ours.first(.handshakeSucceeded, timeout: .milliseconds(200)) == nil)
        peer.closeInput()
        #expect(peer.waitStatus() == 0)
        push.close()
    }

    /// How the silent subscriber is found: by our heartbeat timeout, or by the TTL its own PINGs
    /// asked for (RFC 37), with no heartbeat option on our side.
    enum Detection: String, CaseIterable, CustomTestStringConvertible {
        case ourTimeout, peerTTL
        var testDescription: String { rawValue }
    }

    @Test("heartbeats find a libzmq subscriber that went silent (SIGSTOP): its subscription goes, DISCONNECTED is reported",
          arguments: Detection.allCases)
    func silentPeer(detection: Detection) throws {
        let context = try Context()
        defer { context.shutdown() }
        var options = SocketOptions()
        options.receiveTimeout = .seconds(10)
        options.linger = .zero
        if detection == .ourTimeout {
            options.heartbeatInterval = .milliseconds(100)
            options.heartbeatTimeout = .milliseconds(400)
        }
        let xpub = try context.socket(.xpub, options: options)
        let ours = EventRecorder(xpub, [.handshakeSucceeded, .disconnected])
        let endpoint = try xpub.bind("tcp://127.0.0.1:*")
        // In the TTL case the peer pings every 100 ms and tells us to give up after 600 ms of silence.
        let peer = try PythonPeer(
            ["sub-connect-heartbeat", endpoint] + (detection == .peerTTL ? ["100", "600"] : ["0", "0"]))
        #expect(try xpub.receive() == Message(single: [1] + Array("zeek.".utf8)))
        try xpub.send(Message(single: Array("zeek.hello".utf8)))
        #expect(try peer.received() == [Array("zeek.hello".utf8)])

        // The peer's first PING (after 100 ms) tells us its TTL; silence before that tells nothing.
        if detection == .peerTTL { usleep(400_000) }
        let stoppedAt = ContinuousClock.now
        kill(peer.process.processIdentifier, SIGSTOP)
        defer {
            kill(peer.process.processIdentifier, SIGCONT)
            peer.closeInput()
            _ = peer.waitStatus()
        }
        // The kernel still acknowledges TCP for a stopped process; only heartbeats can tell.
        #expect(try xpub.receive() == Message(single: [0] + Array("zeek.".utf8)))
        let elapsed = ContinuousClock.now - stoppedAt
        #expect(elapsed >= .milliseconds(300), "not before the timeout: \(elapsed)")
        #expect(elapsed < .seconds(3), "soon after the timeout: \(elapsed)")
        #expect(ours.first(.disconnected) != nil)
        #expect(xpub.connectedPeers == 0)
        xpub.close()
    }
}
