import Foundation
import Testing
@testable import ZMTP
import ZMTPTestSupport

/// The socket API beyond plain blocking send/receive: ZMQ_IMMEDIATE and the queue of a connecting
/// socket, async send and the `messages` sequence, the poller, several I/O threads, and a peer that
/// vanishes while we write.
@Suite("socket API: immediate, async, poller, I/O threads", .serialized, .timeLimit(.minutes(1)))
struct SocketAPITests {
    static func options(_ adjust: (inout SocketOptions) -> Void = { _ in }) -> SocketOptions {
        testSocketOptions { options in
            options.receiveTimeout = .seconds(10)
            options.sendTimeout = .seconds(10)
            adjust(&options)
        }
    }

    static func ipcPath(_ name: String) -> String { "ipc:///tmp/zmtp-\(name)-\(getpid()).sock" }

    @Test("immediate off: a PUSH queues up to its HWM for a peer not yet listening, and delivers it all in order")
    func queuesBeforeConnection() throws {
        let context = try Context()
        defer { context.shutdown() }
        let endpoint = Self.ipcPath("early")
        let push = try context.socket(.push, options: Self.options { $0.sendHighWaterMark = 5 })
        try push.connect(endpoint)
        for index in 0..<5 { #expect(try push.trySend(Message([UInt8(index)])), "message \(index) fits the queue") }
        #expect(try push.trySend(Message([5])) == false, "the sixth is over the send HWM")
        #expect(push.connectedPeers == 0)

        let pull = try context.socket(.pull, options: Self.options())
        try pull.bind(endpoint)
        for index in 0..<5 { #expect(try pull.receive() == Message([UInt8(index)])) }
        push.close()
        pull.close()
    }

    @Test("immediate on: with no connected peer a PUSH has nowhere to queue")
    func immediateRefusesWithoutPeer() throws {
        let context = try Context()
        defer { context.shutdown() }
        let endpoint = Self.ipcPath("immediate")
        let push = try context.socket(.push, options: Self.options { $0.immediate = true; $0.sendTimeout = .milliseconds(100) })
        try push.connect(endpoint)
        #expect(try push.trySend(Message([1])) == false)
        #expect(throws: SocketError.timedOut) { try push.send(Message([1])) }
        let pull = try context.socket(.pull, options: Self.options())
        try pull.bind(endpoint)
        #expect(push.waitForPeers(1, timeout: .seconds(5)))
        try push.send(Message([2]))
        #expect(try pull.receive() == Message([2]))
        push.close()
        pull.close()
    }

    @Test("messages queued while the peer is down reach it when it comes back")
    func queueSurvivesReconnect() throws {
        let context = try Context()
        defer { context.shutdown() }
        let endpoint = Self.ipcPath("restart")
        let push = try context.socket(.push, options: Self.options())
        try push.connect(endpoint)
        let first = try context.socket(.pull, options: Self.options())
        try first.bind(endpoint)
        try push.send(Message(Array("before".utf8)))
        #expect(try first.receive() == Message(Array("before".utf8)))
        first.close()
        push.waitUntilDisconnected(timeout: .seconds(5))
        #expect(push.connectedPeers == 0)

        for index in 0..<3 { try push.send(Message(Array("while down \(index)".utf8))) }
        let second = try context.socket(.pull, options: Self.options())
        try second.bind(endpoint)
        for index in 0..<3 { #expect(try second.receive() == Message(Array("while down \(index)".utf8))) }
        push.close()
        second.close()
    }

    @Test("async send and the messages sequence move every message, in order")
    func asyncRoundTrip() async throws {
        let context = try Context()
        defer { context.shutdown() }
        let pull = try context.socket(.pull, options: Self.options { $0.receiveHighWaterMark = 4 })
        let push = try context.socket(.push, options: Self.options { $0.sendHighWaterMark = 4 })
        try push.connect(try pull.bind("tcp://127.0.0.1:*"))
        let count = 2_000
        let sender = Task {
            for index in 0..<count { try await push.send(Message(withUnsafeBytes(of: UInt32(index)) { Array($0) })) }
        }
        var expected: UInt32 = 0
        for try await message in pull.messages {
            #expect(message.frames[0] == withUnsafeBytes(of: expected) { Array($0) })
            expected += 1
            if expected == count { break }
        }
        try await sender.value
        #expect(expected == UInt32(count))
        push.close()
        pull.close()
    }

    @Test("an async send waits for room: it suspends at the HWM and resumes when the consumer reads")
    func asyncSendBackPressure() async throws {
        let context = try Context()
        defer { context.shutdown() }
        let push = try context.socket(.push, options: Self.options { $0.sendHighWaterMark = 3 })
        try push.connect(Self.ipcPath("backpressure"))  // nobody listens yet: the queue fills
        for index in 0..<3 { try await push.send(Message([UInt8(index)])) }
        let progress = Counter()
        let blocked = Task {
            try await push.send(Message([3]))
            progress.increment()
        }
        try await Task.sleep(for: .milliseconds(200))
        #expect(progress.value == 0, "the fourth send waits for room")
        let pull = try context.socket(.pull, options: Self.options())
        try pull.bind(Self.ipcPath("backpressure"))
        for index in 0..<4 { #expect(try await pull.receive() == Message([UInt8(index)])) }
        try await blocked.value
        #expect(progress.value == 1)
        push.close()
        pull.close()
    }

    @Test("a waiting async receive ends with CancellationError when its task is cancelled, and with a timeout")
    func asyncCancellationAndTimeout() async throws {
        let context = try Context()
        defer { context.shutdown() }
        let pull = try context.socket(.pull, options: Self.options { $0.receiveTimeout = nil })
        let waiting = Task { try await pull.receive() }
        try await Task.sleep(for: .milliseconds(100))
        waiting.cancel()
        await #expect(throws: CancellationError.self) { _ = try await waiting.value }

        let timed = try context.socket(.pull, options: Self.options { $0.receiveTimeout = .milliseconds(150) })
        let start = ContinuousClock.now
        await #expect(throws: SocketError.timedOut) { _ = try await timed.receive() }
        #expect(ContinuousClock.now - start >= .milliseconds(150))
        pull.close()
        timed.close()
    }

    /// Swift Testing runs other suites' blocking tests on the same cooperative threads, so a task
    /// whose message arrived in time can be resumed after its deadline. It must get the message, not
    /// a timeout (MonitorTests' lifecycle test timed out that way in CI now and then).
    @Test("an async receive resumed after its deadline still returns a message that arrived in time")
    func lateResumeStillReceives() async throws {
        let context = try Context()
        defer { context.shutdown() }
        let endpoint = Self.ipcPath("late-resume")
        let pull = try context.socket(.pull, options: Self.options { $0.receiveTimeout = .milliseconds(300) })
        try pull.bind(endpoint)
        let push = try context.socket(.push, options: Self.options())
        try push.connect(endpoint)
        #expect(pull.waitForPeers(1, timeout: .seconds(5)))
        let waiting = Task { try await pull.receive() }
        try await Task.sleep(for: .milliseconds(50))  // suspended in its wait
        // Every cooperative thread blocks for 700 ms, past the deadline; the message arrives at 100 ms.
        let blockers = (0..<ProcessInfo.processInfo.activeProcessorCount).map { _ in
            Task.detached { _ = usleep(700_000) }
        }
        let sender = Thread {
            usleep(100_000)
            _ = try? push.trySend(Message([42]))
        }
        sender.start()
        #expect(try await waiting.value == Message([42]))
        for blocker in blockers { await blocker.value }
        push.close()
        pull.close()
    }

    @Test("closing the socket ends a messages loop that is waiting")
    func closeEndsSequence() async throws {
        let context = try Context()
        defer { context.shutdown() }
        let pull = try context.socket(.pull, options: Self.options())
        let loop = Task { () -> Int in
            var seen = 0
            for try await _ in pull.messages { seen += 1 }
            return seen
        }
        try await Task.sleep(for: .milliseconds(100))
        pull.close()
        #expect(try await loop.value == 0)
    }

    @Test("the poller reports the socket that became readable, times out on none, and sees writability")
    func poller() throws {
        let context = try Context()
        defer { context.shutdown() }
        let quiet = try context.socket(.pull, options: Self.options())
        let busy = try context.socket(.pull, options: Self.options())
        let push = try context.socket(.push, options: Self.options { $0.immediate = true })
        _ = try quiet.bind("tcp://127.0.0.1:*")
        let poller = Poller()
        poller.add(quiet, events: .readable)
        poller.add(busy, events: .readable)
        poller.add(push, events: .writable)
        #expect(poller.poll(timeout: .milliseconds(50)).isEmpty, "nothing to read, no peer to write to")

        try push.connect(try busy.bind("tcp://127.0.0.1:*"))
        let writable = poller.poll(timeout: .seconds(5))
        #expect(writable.count == 1 && writable[0].socket === push && writable[0].events == .writable)

        poller.remove(push)
        let sender = Thread { try? push.send(Message(Array("hello".utf8))) }
        sender.start()
        let ready = poller.poll(timeout: .seconds(5))
        #expect(ready.count == 1 && ready.first?.socket === busy && ready.first?.events == .readable)
        #expect(try busy.tryReceive() == Message(Array("hello".utf8)))
        #expect(poller.poll(timeout: .zero).isEmpty, "level-triggered: nothing left")
        for socket in [quiet, busy, push] { socket.close() }
    }

    @Test("with three I/O threads a PULL's connections run on all of them and every message arrives")
    func severalIOThreads() throws {
        let context = try Context(ioThreads: 3)
        defer { context.shutdown() }
        let pull = try context.socket(.pull, options: Self.options())
        let endpoint = try pull.bind("tcp://127.0.0.1:*")
        let pushes = try (0..<6).map { _ in try context.socket(.push, options: Self.options()) }
        for push in pushes { try push.connect(endpoint) }
        #expect(pull.waitForPeers(6, timeout: .seconds(5)))
        #expect(pull.connectionThreadCount == 3, "accepted connections are spread over the I/O threads")
        let perPeer = 500
        let senders = pushes.enumerated().map { index, push in
            Thread {
                for round in 0..<perPeer { try? push.send(Message([UInt8(index)], withUnsafeBytes(of: UInt16(round)) { Array($0) })) }
            }
        }
        senders.forEach { $0.start() }
        var next = [UInt16](repeating: 0, count: pushes.count)
        for _ in 0..<(perPeer * pushes.count) {
            let message = try pull.receive()
            let peer = Int(message.frames[0][0])
            let round = message.frames[1].withUnsafeBytes { $0.loadUnaligned(as: UInt16.self) }
            #expect(round == next[peer], "per-peer order")
            next[peer] = round + 1
        }
        #expect(next.allSatisfy { $0 == UInt16(perPeer) })
        for socket in pushes + [pull] { socket.close() }
    }

    @Test("a peer that vanishes while we write costs only its connection (EPIPE, not SIGPIPE)")
    func vanishingPeer() throws {
        let context = try Context()
        defer { context.shutdown() }
        let push = try context.socket(.push, options: Self.options { $0.sendHighWaterMark = 0; $0.immediate = true })
        let path = "/tmp/zmtp-vanish-\(getpid()).sock"
        let listener = try RawListener(path: path)
        try push.connect("ipc://\(path)")
        let peer = try listener.acceptAndHandshake(socketType: "PULL")
        #expect(push.waitForPeers(1, timeout: .seconds(5)))
        let big = Message([UInt8](repeating: 9, count: 256 * 1024))
        for _ in 0..<64 { try push.send(big) }  // more than the kernel buffers hold
        peer.closeNow()
        push.waitUntilDisconnected(timeout: .seconds(5))
        #expect(push.connectedPeers == 0, "the connection is gone and the process is still here")

        let pull = try context.socket(.pull, options: Self.options())
        try push.connect(try pull.bind("tcp://127.0.0.1:*"))
        #expect(push.waitForPeers(1, timeout: .seconds(5)))
        try push.send(Message(Array("after".utf8)))
        #expect(try pull.receive() == Message(Array("after".utf8)))
        push.close()
        pull.close()
    }
}

extension SocketAPITests {
    @Test("a peer killed mid-message delivers nothing partial, and a peer sending garbage loses only its own connection")
    func misbehavingPeers() throws {
        let context = try Context()
        defer { context.shutdown() }
        let path = "/tmp/zmtp-partial-\(getpid()).sock"
        let pull = try context.socket(.pull, options: Self.options { $0.receiveTimeout = .milliseconds(300) })
        try pull.bind("ipc://\(path)")
        let good = try context.socket(.push, options: Self.options())
        try good.connect("ipc://\(path)")
        #expect(pull.waitForPeers(1, timeout: .seconds(5)))

        var partial: [UInt8] = []
        FrameEncoder.appendFrame(Array("first".utf8), more: true, to: &partial)
        FrameEncoder.appendHeader(size: 100, more: false, command: false, to: &partial)
        partial += [UInt8](repeating: 1, count: 40)  // 40 of the 100 octets, then gone
        let killed = try RawPeer.connectAndHandshake(path: path, socketType: "PUSH")
        killed.write(partial)
        killed.closeNow()

        let garbage = try RawPeer.connectAndHandshake(path: path, socketType: "PUSH")
        garbage.write([0xF8, 0x01, 0x00])  // reserved flag bits set
        #expect(throws: SocketError.timedOut) { _ = try pull.receive() }

        try good.send(Message(Array("whole".utf8)))
        #expect(try pull.receive() == Message(Array("whole".utf8)))
        #expect(throws: SocketError.timedOut) { _ = try pull.receive() }
        #expect(pull.connectedPeers == 1, "only the well-behaved peer is left")
        good.close()
        pull.close()
    }
}

extension SocketAPITests {
    @Test("context shutdown closes open sockets with their linger: queued messages still arrive")
    func shutdownHonoursLinger() throws {
        let receiving = try Context()
        defer { receiving.shutdown() }
        let pull = try receiving.socket(.pull, options: Self.options())
        let endpoint = try pull.bind("tcp://127.0.0.1:*")
        let sending = try Context()
        let push = try sending.socket(.push, options: Self.options { $0.linger = .seconds(5); $0.sendHighWaterMark = 0 })
        try push.connect(endpoint)
        let payload = [UInt8](repeating: 3, count: 4096)
        for index in 0..<2_000 { try push.send(Message(payload, withUnsafeBytes(of: UInt32(index)) { Array($0) })) }
        // More than the kernel buffers and the PULL's queue hold: the linger must wait while the
        // consumer (another thread) drains it.
        let received = Counter()
        let inOrder = Counter()
        let reader = Thread {
            for index in 0..<2_000 {
                guard let message = try? pull.receive() else { return }
                received.increment()
                let tag = withUnsafeBytes(of: UInt32(index)) { Array($0) }
                if message.frames[1] == tag { inOrder.increment() }
            }
        }
        reader.start()
        sending.shutdown()  // the PUSH was never closed by hand
        let deadline = Date().addingTimeInterval(10)
        while received.value < 2_000 && Date() < deadline { usleep(10_000) }
        #expect(received.value == 2_000 && inOrder.value == 2_000)
        #expect(throws: SocketError.closed) { try push.send(Message([1])) }
        push.close()  // already closed by the shutdown: returns at once
        #expect(throws: SocketError.closed) { _ = try sending.socket(.push) }
    }

    @Test("context shutdown with a peer that never comes returns after the linger period, not later")
    func shutdownBoundedByLinger() throws {
        let context = try Context()
        let push = try context.socket(.push, options: Self.options { $0.linger = .milliseconds(300) })
        try push.connect(Self.ipcPath("nobody"))
        try push.send(Message([1]))
        let start = ContinuousClock.now
        context.shutdown()
        let elapsed = ContinuousClock.now - start
        #expect(elapsed >= .milliseconds(280) && elapsed < .seconds(2), "took \(elapsed)")
    }
}

extension SocketAPITests {
    @Test("after the peer's ERROR a connecting socket does not reconnect (RFC 37) and drops that peer's queue")
    func noReconnectAfterError() throws {
        let context = try Context()
        defer { context.shutdown() }
        let path = "/tmp/zmtp-refused-\(getpid()).sock"
        let listener = try RawListener(path: path)
        let push = try context.socket(.push, options: Self.options { $0.reconnectInterval = .milliseconds(20) })
        try push.connect("ipc://\(path)")
        try push.send(Message([1]))  // queued for the peer before it answers
        let refusing = try listener.acceptAndRefuse(reason: "invalid-socket-type")
        #expect(!listener.hasPendingConnection(timeoutMs: 600), "no second attempt after ERROR")
        #expect(try push.trySend(Message([2])) == false, "the refused peer's queue is gone")
        _ = refusing
        push.close()
    }

    @Test("after a plain disconnect a connecting socket does reconnect")
    func reconnectAfterPlainClose() throws {
        let context = try Context()
        defer { context.shutdown() }
        let path = "/tmp/zmtp-closing-\(getpid()).sock"
        let listener = try RawListener(path: path)
        let push = try context.socket(.push, options: Self.options { $0.reconnectInterval = .milliseconds(20) })
        try push.connect("ipc://\(path)")
        let first = try listener.acceptAndHandshake(socketType: "PULL")
        first.closeNow()
        #expect(listener.hasPendingConnection(timeoutMs: 2_000), "a new attempt follows a plain close")
        push.close()
    }
}

final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func increment() { lock.withLock { count += 1 } }
    var value: Int { lock.withLock { count } }
}

/// A bare Unix-domain listener that plays the peer's side of a NULL handshake by hand. (Unix
/// sockets make the failure deterministic: a write after the peer closed is always EPIPE.)
final class RawListener {
    let fd: Int32
    let path: String

    init(path: String) throws {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        self.fd = fd
        self.path = path
        unlink(path)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in path.utf8.prefix(raw.count - 1).enumerated() { raw[index] = byte }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(fd, pointer, socklen_t(MemoryLayout<sockaddr_un>.size)) == 0 && listen(fd, 4) == 0
            }
        }
        guard bound else { throw SocketError.endpoint("raw listener: errno \(errno)") }
    }

    deinit {
        close(fd)
        unlink(path)
    }

    /// Whether a connection waits to be accepted within `timeoutMs`.
    func hasPendingConnection(timeoutMs: Int32) -> Bool {
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&pfd, 1, timeoutMs) > 0
    }

    /// Accepts one connection and answers its greeting with ERROR, as a peer that refuses it.
    func acceptAndRefuse(reason: String) throws -> RawPeer {
        let client = accept(fd, nil, nil)
        guard client >= 0 else { throw SocketError.endpoint("accept: errno \(errno)") }
        let peer = RawPeer(fd: client)
        var error: [UInt8] = []
        FrameEncoder.appendFrame(try Command.error(reason).encodedBody(), command: true, to: &error)
        peer.write(Greeting(mechanism: .null, asServer: false).encoded + error)
        return peer
    }

    /// Accepts one connection and completes a NULL handshake as `socketType`.
    func acceptAndHandshake(socketType: String) throws -> RawPeer {
        let client = accept(fd, nil, nil)
        guard client >= 0 else { throw SocketError.endpoint("accept: errno \(errno)") }
        let peer = RawPeer(fd: client)
        var ready: [UInt8] = []
        FrameEncoder.appendFrame(try Command.ready(Metadata([("Socket-Type", Array(socketType.utf8))])).encodedBody(), command: true, to: &ready)
        peer.write(Greeting(mechanism: .null, asServer: false).encoded + ready)
        return peer
    }
}

final class RawPeer {
    let fd: Int32
    init(fd: Int32) { self.fd = fd }

    /// Connects to 127.0.0.1:`tcpPort`.
    static func connectTCP(port tcpPort: UInt16) throws -> RawPeer {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        let peer = RawPeer(fd: fd)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = tcpPort.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
        guard connected else { throw SocketError.endpoint("connect: errno \(errno)") }
        return peer
    }

    /// Connects to a Unix-domain endpoint and sends a NULL greeting and READY as `socketType`.
    static func connectAndHandshake(path: String, socketType: String) throws -> RawPeer {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in path.utf8.prefix(raw.count - 1).enumerated() { raw[index] = byte }
        }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) == 0 }
        }
        let peer = RawPeer(fd: fd)
        guard connected else { throw SocketError.endpoint("raw connect: errno \(errno)") }
        var ready: [UInt8] = []
        FrameEncoder.appendFrame(try Command.ready(Metadata([("Socket-Type", Array(socketType.utf8))])).encodedBody(), command: true, to: &ready)
        peer.write(Greeting(mechanism: .null, asServer: false).encoded + ready)
        return peer
    }
    deinit { closeNow() }
    private var closed = false

    func write(_ bytes: [UInt8]) {
        _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    func closeNow() {
        guard !closed else { return }
        closed = true
        close(fd)
    }
}
