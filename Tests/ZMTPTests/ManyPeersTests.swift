import Foundation
import Testing
@testable import ZMTP
import ZMTPEngine
import ZMTPTestSupport

/// What changes when a socket has many peers: connections on one I/O thread share its read buffer,
/// and receiving fair-queues over the pipes that hold messages rather than over every pipe.
@Suite("many peers: shared read buffer, ready-pipe fair queuing", .serialized, .timeLimit(.minutes(1)))
struct ManyPeersTests {
    static func options(_ adjust: (inout SocketOptions) -> Void = { _ in }) -> SocketOptions {
        testSocketOptions { options in
            options.receiveTimeout = .seconds(10)
            adjust(&options)
        }
    }

    /// One data frame of `count` octets of `fill`, long-form header when `count` > 255.
    static func frame(_ fill: UInt8, count: Int) -> [UInt8] {
        var bytes: [UInt8] = []
        FrameEncoder.appendFrame([UInt8](repeating: fill, count: count), more: false, to: &bytes)
        return bytes
    }

    @Test("frames split across reads and interleaved between peers of one I/O thread arrive whole")
    func interleavedPartialFrames() throws {
        let context = try Context(ioThreads: 1)
        defer { context.shutdown() }
        let path = "/tmp/zmtp-shared-read-\(getpid()).sock"
        let pull = try context.socket(.pull, options: Self.options())
        try pull.bind("ipc://\(path)")
        let a = try RawPeer.connectAndHandshake(path: path, socketType: "PUSH")
        let b = try RawPeer.connectAndHandshake(path: path, socketType: "PUSH")
        let c = try RawPeer.connectAndHandshake(path: path, socketType: "PUSH")
        #expect(pull.waitForPeers(3, timeout: .seconds(5)))
        let frameA = Self.frame(0xA1, count: 300)  // long header (9 octets)
        let frameB = Self.frame(0xB2, count: 200)  // short header
        let frameC = Self.frame(0xC3, count: 70_000)  // more than one read buffer
        // Each peer's frame in pieces: A stops inside its 9-octet header, B inside its body, C
        // after 1 octet; every piece is read (and decoded) before the next peer's lands in the same
        // buffer.
        let cuts = [(a, frameA, [4, 150]), (b, frameB, [100]), (c, frameC, [1, 65_000])]
        var offsets = [0, 0, 0]
        for round in 0..<3 {
            for (index, (peer, bytes, pieces)) in cuts.enumerated() {
                let end = round < pieces.count ? pieces[round] : bytes.count
                guard end > offsets[index] else { continue }
                peer.write(Array(bytes[offsets[index]..<end]))
                offsets[index] = end
                usleep(20_000)
            }
        }
        var received: [Message] = []
        for _ in 0..<3 { received.append(try pull.receive()) }
        let expected: Set<Message> = [
            Message(single: [UInt8](repeating: 0xA1, count: 300)),
            Message(single: [UInt8](repeating: 0xB2, count: 200)),
            Message(single: [UInt8](repeating: 0xC3, count: 70_000)),
        ]
        #expect(Set(received) == expected)
        #expect(pull.connectedPeers == 3)
        pull.close()
    }

    @Test("with 300 silent peers, receiving alternates between the talking ones and drains a departed peer")
    func fairQueueAmongIdlePeers() throws {
        let context = try Context(ioThreads: 2)
        defer { context.shutdown() }
        let path = "/tmp/zmtp-fair-idle-\(getpid()).sock"
        let pull = try context.socket(.pull, options: Self.options())
        try pull.bind("ipc://\(path)")
        let silent = try (0..<300).map { _ in try RawPeer.connectAndHandshake(path: path, socketType: "PUSH") }
        let talkers = try (0..<2).map { _ in try RawPeer.connectAndHandshake(path: path, socketType: "PUSH") }
        let leaver = try RawPeer.connectAndHandshake(path: path, socketType: "PUSH")
        #expect(pull.waitForPeers(303, timeout: .seconds(10)))
        // Everything is queued before the first receive: talker 0 first, then talker 1.
        for (index, talker) in talkers.enumerated() {
            talker.write((0..<50).flatMap { Self.frame(UInt8(index), count: 1 + $0) })
        }
        let parting = (0..<5).flatMap { Self.frame(9, count: 1 + $0) }
        let sent = parting.withUnsafeBytes { send(leaver.fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        #expect(sent == parting.count, "errno \(errno)")
        let peersBeforeLeaving = pull.connectedPeers
        // The leaver reads what we sent (greeting, READY) before closing, as a well-behaved peer
        // does, so its close is a plain end of stream rather than a reset.
        var drain = [UInt8](repeating: 0, count: 4096)
        while drain.withUnsafeMutableBytes({ recv(leaver.fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }) > 0 {}
        leaver.closeNow()
        usleep(300_000)
        var order: [Int] = []
        for _ in 0..<105 {
            guard let body = try? pull.receive().frames[0] else { break }
            order.append(Int(body[0]))
            #expect(body.allSatisfy { $0 == body[0] })
        }
        // Fair queuing: while both talkers have messages, no talker gets two in a row ahead of the
        // other (the departed peer's five are interleaved too).
        let talking = order.filter { $0 != 9 }
        #expect(talking.count == 100)
        #expect(zip(talking, talking.dropFirst()).allSatisfy { $0 != $1 }, "strict alternation: \(talking.prefix(12))")
        for index in 0..<2 { #expect(order.count(where: { $0 == index }) == 50) }
        // The leaver may close before our READY reached it; writing that READY then fails, and its
        // five messages must still be read (they were lost that way under load before the session
        // left write errors to its read path).
        #expect(order.count(where: { $0 == 9 }) == 5, "\(peersBeforeLeaving) peers before the leaver left")
        #expect(try pull.tryReceive() == nil)
        #expect(pull.connectedPeers == 302)
        withExtendedLifetime(silent) {}
        pull.close()
    }
}

extension ManyPeersTests {
    @Test("a socket closed and released with unread messages frees its pipes (no cycle through the ready list)")
    func closedWithUnreadMessagesIsReleased() throws {
        let context = try Context(ioThreads: 1)
        defer { context.shutdown() }
        weak var released: Socket?
        weak var readyList: ReadyPipes?
        try {
            let pull = try context.socket(.pull, options: Self.options())
            let endpoint = try pull.bind("tcp://127.0.0.1:*")
            let push = try context.socket(.push, options: Self.options())
            try push.connect(endpoint)
            for index in 0..<10 { try push.send(Message([UInt8(index)])) }
            #expect(try pull.receive() == Message([0]))
            usleep(100_000)  // the other nine wait in the pull's pipe, listed as ready
            released = pull
            readyList = pull.readyPipes
            push.close()
            pull.close()
        }()
        usleep(200_000)  // the I/O thread lets go of the sessions
        #expect(released == nil)
        #expect(readyList == nil, "the ready list and its pipes hold each other")
    }
}

extension ManyPeersTests {
    /// A peer that says everything and leaves before reading a byte: writing our greeting or READY
    /// to it fails (EPIPE), yet what it sent is already in our receive buffer and must be delivered
    /// (libzmq leaves write errors to the read path for the same reason). Zeek nodes do this: push the
    /// last log batch, close, exit.
    @Test("a peer that sends and closes before reading anything still delivers every message")
    func sendAndLeaveBeforeReading() throws {
        let context = try Context(ioThreads: 1)
        defer { context.shutdown() }
        let path = "/tmp/zmtp-send-and-leave-\(getpid()).sock"
        let pull = try context.socket(.pull, options: Self.options { $0.receiveTimeout = .seconds(5) })
        try pull.bind("ipc://\(path)")
        let peers = 40
        for index in 0..<peers {
            let peer = try RawPeer.connectAndHandshake(path: path, socketType: "PUSH")
            peer.write((0..<3).flatMap { _ in Self.frame(UInt8(index), count: 8) })
            peer.closeNow()
        }
        var counts = [Int](repeating: 0, count: peers)
        for _ in 0..<(3 * peers) {
            guard let body = try? pull.receive().frames[0] else { break }
            counts[Int(body[0])] += 1
        }
        #expect(counts.allSatisfy { $0 == 3 }, "peers whose messages were lost: \(counts.indices.filter { counts[$0] != 3 })")
        pull.close()
    }
}

extension ManyPeersTests {
    /// A connection whose writes failed stays only to read what the peer sent; when reading is
    /// paused at the receive high-water mark it may stay a while, and a lingering close must not wait
    /// on it for messages that can never leave.
    @Test("close with infinite linger returns when the only peer's connection can no longer be written")
    func lingerSkipsFailedWrites() throws {
        let context = try Context(ioThreads: 1)
        defer { context.shutdown() }
        let path = "/tmp/zmtp-linger-failed-\(getpid()).sock"
        let xpub = try context.socket(.xpub, options: Self.options {
            $0.receiveHighWaterMark = 1
            $0.linger = nil
        })
        try xpub.bind("ipc://\(path)")
        let peer = try RawPeer.connectAndHandshake(path: path, socketType: "XSUB")
        // Subscribe to everything, then send more data than the high-water mark lets us read.
        peer.write(Self.frame(1, count: 1) + (0..<50).flatMap { _ in Self.frame(7, count: 100) })
        #expect(xpub.waitForPeers(1, timeout: .seconds(5)))
        #expect(try xpub.receive() == Message(single: [1]))  // the subscription
        usleep(100_000)  // reading has paused with the peer's data queued
        peer.closeNow()
        usleep(100_000)
        for _ in 0..<10 { _ = try xpub.trySend(Message(single: [7, 7])) }  // writing to it fails
        let closed = DispatchSemaphore(value: 0)
        Thread { xpub.close(); closed.signal() }.start()
        #expect(closed.wait(timeout: .now() + 5) == .success, "close() waited on a connection that cannot be written")
    }
}
