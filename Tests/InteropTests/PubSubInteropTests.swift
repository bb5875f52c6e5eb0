// swift-zmtp's PUB/SUB/XPUB sockets against libzmq 4.3.5 (pyzmq).

import Foundation
import Testing
import ZMTP

@Suite("Publish/subscribe socket interop with libzmq (pyzmq)", .serialized, .timeLimit(.minutes(1)))
struct PubSubInteropTests {
    static func options() -> SocketOptions {
        var options = SocketOptions()
        options.receiveTimeout = .seconds(10)
        options.sendTimeout = .seconds(10)
        options.linger = .seconds(2)
        return options
    }

    static func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    @Test("our SUB and XSUB subscribe through a libzmq XPUB (NULL, and CURVE admitted by ZAP), receive only their topic, and cancel",
          arguments: ["null", "curve"], [SocketType.sub, .xsub])
    func ourSubscriberToLibzmqXpub(mechanism: String, type: SocketType) throws {
        let context = try Context()
        defer { context.shutdown() }
        var options = Self.options()
        let peer: PythonPeer
        if mechanism == "curve" {
            peer = try PythonPeer(["curve-xpub-bind", Self.server.secretKey.z85, Self.client.publicKey.z85])
            options.curve = .client(serverPublicKey: Self.server.publicKey, keyPair: Self.client)
        } else {
            peer = try PythonPeer(["xpub-bind"])
        }
        let subscriber = try context.socket(type, options: options)
        try Self.subscription(subscriber, "zeek.", subscribe: true)
        try subscriber.connect("tcp://127.0.0.1:\(try peer.boundPort())")
        #expect(try peer.received() == [[1] + Self.bytes("zeek.")])
        // libzmq sends "other.topic" first; only the matching message may arrive.
        #expect(try subscriber.receive() == Message(Self.bytes("zeek.event"), Self.bytes("yes")))
        try Self.subscription(subscriber, "zeek.", subscribe: false)
        #expect(try peer.received() == [[0] + Self.bytes("zeek.")])
        #expect(peer.waitStatus() == 0)
        subscriber.close()
    }

    /// Subscribes or cancels the way the socket type does it: options on a SUB, messages on an XSUB.
    static func subscription(_ socket: Socket, _ topic: String, subscribe: Bool) throws {
        if socket.type == .xsub {
            try socket.send(Message(single: [subscribe ? 1 : 0] + bytes(topic)))
        } else if subscribe {
            try socket.subscribe(bytes(topic))
        } else {
            try socket.unsubscribe(bytes(topic))
        }
    }

    @Test("our XSUB through a libzmq verbose XPUB over ipc: subscribes, receives, cancels; a second subscribe reaches it too")
    func ourXsubToLibzmqXpubOverIPC() throws {
        let context = try Context()
        defer { context.shutdown() }
        let endpoint = "ipc:///tmp/zmtp-xsub-xpub-\(getpid()).sock"
        let peer = try PythonPeer(["xpub-bind-at", endpoint])
        #expect(try peer.readLine() == "BOUND")
        let xsub = try context.socket(.xsub, options: Self.options())
        try xsub.connect(endpoint)
        try Self.subscription(xsub, "zeek.", subscribe: true)
        #expect(try peer.received() == [[1] + Self.bytes("zeek.")])
        #expect(try xsub.receive() == Message(Self.bytes("zeek.event"), Self.bytes("yes")))
        // As libzmq's XSUB: every subscribe is passed on (a proxy's verbose XPUB wants repeats); the
        // cancel only when the last one is cancelled.
        try Self.subscription(xsub, "zeek.", subscribe: true)
        #expect(try peer.received() == [[1] + Self.bytes("zeek.")])
        #expect(try xsub.receive() == Message(Self.bytes("zeek.event"), Self.bytes("yes")))
        try Self.subscription(xsub, "zeek.", subscribe: false)
        try Self.subscription(xsub, "zeek.", subscribe: false)
        #expect(try peer.received() == [[0] + Self.bytes("zeek.")])
        #expect(peer.waitStatus() == 0)
        xsub.close()
    }

    @Test("our XPUB sees a libzmq XSUB subscribe and cancel by message, over tcp and ipc", arguments: ["tcp", "ipc"])
    func libzmqXsubToOurXpub(transport: String) throws {
        let context = try Context()
        defer { context.shutdown() }
        let xpub = try context.socket(.xpub, options: Self.options())
        let endpoint = try xpub.bind(
            transport == "ipc" ? "ipc:///tmp/zmtp-xpub-xsub-\(getpid()).sock" : "tcp://127.0.0.1:*")
        let peer = try PythonPeer(["xsub-connect", endpoint])
        #expect(try xpub.receive() == Message(single: [1] + Self.bytes("zeek.")))
        try xpub.send(Message(Self.bytes("other.topic"), Self.bytes("no")))
        try xpub.send(Message(Self.bytes("zeek.hello"), Self.bytes("world")))
        #expect(try peer.received() == [Self.bytes("zeek.hello"), Self.bytes("world")])
        // The cancel arrives while the peer is still connected: it came by message, not by disconnect.
        #expect(try xpub.receive() == Message(single: [0] + Self.bytes("zeek.")))
        #expect(xpub.connectedPeers == 1)
        peer.closeInput()
        #expect(peer.waitStatus() == 0)
        xpub.close()
    }

    @Test("a libzmq SUB subscribes to our PUB socket and receives only matching messages")
    func libzmqSubToOurPub() throws {
        let context = try Context()
        defer { context.shutdown() }
        let pub = try context.socket(.pub, options: Self.options())
        let endpoint = try pub.bind("tcp://127.0.0.1:*")
        let peer = try PythonPeer(["pub-connect", endpoint])
        // Publish a non-matching and a matching message (from another thread) until the subscription
        // has arrived and the peer reports what it received: its first message must be the match.
        let stop = Counter()
        let publisher = Thread {
            while stop.value == 0 {
                _ = try? pub.trySend(Message(Self.bytes("other.topic"), Self.bytes("no")))
                _ = try? pub.trySend(Message(Self.bytes("zeek.event"), Self.bytes("payload")))
                usleep(10_000)
            }
        }
        publisher.start()
        let received = try? peer.received()
        stop.increment()
        #expect(received == [Self.bytes("zeek.event"), Self.bytes("payload")])
        #expect(peer.waitStatus() == 0)
        pub.close()
    }

    @Test("our XPUB sees a libzmq SUB's subscription, publishes to it, and sees the cancellation its disconnect implies")
    func libzmqSubToOurXpub() throws {
        let context = try Context()
        defer { context.shutdown() }
        let xpub = try context.socket(.xpub, options: Self.options())
        let endpoint = try xpub.bind("tcp://127.0.0.1:*")
        let peer = try PythonPeer(["pub-connect", endpoint])
        #expect(try xpub.receive() == Message(single: [1] + Self.bytes("zeek.")))
        try xpub.send(Message(Self.bytes("zeek.hello"), Self.bytes("world")))
        #expect(try peer.received() == [Self.bytes("zeek.hello"), Self.bytes("world")])
        #expect(peer.waitStatus() == 0)
        #expect(try xpub.receive() == Message(single: [0] + Self.bytes("zeek.")), "the peer exited: its topic is gone")
        xpub.close()
    }
}

extension PubSubInteropTests {
    @Test("our SUB connects before a libzmq PUB exists, and gets its subscription back to a restarted one")
    func lateJoinAndPublisherRestart() throws {
        let context = try Context()
        defer { context.shutdown() }
        let endpoint = "ipc:///tmp/zmtp-interop-restart-\(getpid()).sock"
        let sub = try context.socket(.sub, options: Self.options())
        try sub.subscribe(Self.bytes("zeek."))
        try sub.connect(endpoint)  // nobody there yet
        for round in 0..<2 {
            let publisher = try PythonPeer(["pub-bind-at", endpoint])
            #expect(try publisher.readLine() == "BOUND")
            let message = try sub.receive()
            #expect(message.frames[0] == Self.bytes("zeek.tick"), "round \(round): only the subscribed topic")
            publisher.closeInput()
            #expect(publisher.waitStatus() == 0)
            sub.waitUntilDisconnected(timeout: .seconds(5))
            while (try? sub.tryReceive()) ?? nil != nil {}  // what the first publisher left
        }
        sub.close()
    }

    static let server = CurveKeyPair.generate()
    static let client = CurveKeyPair.generate()

    @Test("CURVE over ipc: a libzmq CURVE SUB is admitted by our XPUB socket's ZAP handler and receives what it subscribed to")
    func libzmqCurveSubToOurXpub() throws {
        let context = try Context()
        defer { context.shutdown() }
        var options = Self.options()
        options.curve = .server(Self.server)
        options.zapHandler = AllowListZAPHandler(allowedClientKeys: [Self.client.publicKey])
        let xpub = try context.socket(.xpub, options: options)
        let endpoint = try xpub.bind("ipc:///tmp/zmtp-curve-xpub-\(getpid()).sock")
        let peer = try PythonPeer([
            "curve-sub-connect", endpoint, Self.server.publicKey.z85, Self.client.publicKey.z85, Self.client.secretKey.z85,
        ])
        #expect(try xpub.receive() == Message(single: [1] + Self.bytes("zeek.")))
        try xpub.send(Message(Self.bytes("other"), Self.bytes("no")))
        try xpub.send(Message(Self.bytes("zeek.event"), Self.bytes("payload")))
        #expect(try peer.received() == [Self.bytes("zeek.event"), Self.bytes("payload")])
        #expect(peer.waitStatus() == 0)
        xpub.close()
    }
}

final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func increment() { lock.withLock { count += 1 } }
    var value: Int { lock.withLock { count } }
}
