import ZMTPWire

#if canImport(Glibc)
import Glibc
#endif

/// How a session ended, for whoever started it (a connector decides whether to reconnect).
struct SessionEnd {
    /// Why, or nil for a local close or a clean EOF.
    var reason: String?
    /// False after a protocol error: reconnecting would fail the same way.
    var reconnect: Bool
}

/// What a session tells the socket that owns its pipe. Called on the event loop's thread.
public protocol PipeOwner: AnyObject, Sendable {
    /// The handshake completed: the pipe may carry messages now.
    func pipeActivated(_ pipe: Pipe)
    /// The connection ended (`error` is nil for a local close or a clean EOF). The pipe is closed
    /// unless it ``Pipe/survivesDisconnect``, in which case it waits for the next connection.
    func pipeClosed(_ pipe: Pipe, error: String?)
    /// Messages arrived in the pipe or room was made in it.
    func pipeChanged(_ pipe: Pipe)
    /// Everything taken from the pipe has been handed to the kernel (what a lingering close waits
    /// for). Readiness did not change, so pollers and suspended tasks need not hear of it.
    func pipeFlushed(_ pipe: Pipe)
    /// The peer (a subscriber) subscribed to or cancelled `topic`.
    func pipeSubscription(_ pipe: Pipe, topic: [UInt8], subscribe: Bool)
    /// Something happened that a socket monitor reports (listeners, connectors and sessions call
    /// this on their loop's thread).
    func socketEvent(_ event: SocketEvent)
}

/// Drives one ZMTP ``Connection`` over a non-blocking stream socket, on one event loop.
///
/// Reads go into the loop's shared read buffer, which the frame decoder consumes in place; writes leave in one
/// `writev` over the connection's outbound chunks. Back-pressure: reading stops while the pipe's
/// inbound queue is at the receive high-water mark, and the session pulls outbound messages into the
/// connection only while less than ``maxBufferedOctets`` are waiting for the kernel.
final class StreamSession: EventHandler {
    // Stored properties are `@exclusivity(unchecked)`: the session lives on one loop thread, so the
    // runtime's dynamic exclusivity bookkeeping (a TLS lookup per access) would only cost.
    static let maxBufferedOctets = 1024 * 1024
    /// The limit when every octet is encrypted (CURVE): smaller, so that encrypting the next messages
    /// alternates with writing the last ones and the kernel's buffer never runs dry meanwhile.
    static let maxEncryptedOctets = 64 * 1024
    private lazy var bufferLimit = connection.encodesFrames ? Self.maxEncryptedOctets : Self.maxBufferedOctets
    /// The most octets of small frames copied into the connection's own buffer and waiting for the
    /// kernel. Large bodies are shared with the message (and with every other subscriber of a
    /// fan-out), small ones are copies: a stalled subscriber holds at most this much of them, plus
    /// what its pipe holds up to the high-water mark, instead of ``maxBufferedOctets``.
    static let maxCopiedOctets = 64 * 1024

    let loop: EventLoop
    let descriptor: FileDescriptor
    /// The endpoint this connection belongs to, as monitor events name it: the connect endpoint, or
    /// the listener's bound endpoint.
    let endpoint: String
    @exclusivity(unchecked) var connection: Connection
    let pipe: Pipe
    weak var owner: (any PipeOwner)?
    @exclusivity(unchecked) private var token: UInt64 = 0
    /// Bytes read but not yet consumed: the incomplete tail of a read, copied out of the loop's
    /// shared buffer before the next connection reads into it.
    @exclusivity(unchecked) private var unconsumed: [UInt8] = []
    @exclusivity(unchecked) private var timer: UInt64?
    @exclusivity(unchecked) private var wantsWrite = false
    @exclusivity(unchecked) private var wantsRead = true
    @exclusivity(unchecked) private var closed = false
    /// Messages on their way into / out of the pipe, moved in batches (one lock round trip per read
    /// and per 256 messages written); ring queues so that each message is moved, not copied.
    @exclusivity(unchecked) private var inboundBatch = RingQueue<Message>()
    @exclusivity(unchecked) private var outboundBatch = RingQueue<Message>()
    /// Mirror of `pipe.unflushed`, so the lock is taken only when it changes.
    @exclusivity(unchecked) private var unflushed = false
    /// Answers authentication requests (a ZAP handler), if the mechanism asks.
    @exclusivity(unchecked) var authenticate: ((ZAPRequest) -> ZAPReply)?
    /// Called once when the session ends, after the pipe is closed (for reconnects).
    @exclusivity(unchecked) var onClose: ((SessionEnd) -> Void)?
    /// Cleared when the connection failed on a protocol error, after which a connecting socket must
    /// not try again (RFC 37: a peer's ERROR; libzmq does the same for every protocol error).
    @exclusivity(unchecked) private var reconnectAllowed = true
    /// Set when a write failed (the peer closed or reset the connection). Nothing more is written,
    /// but the session ends only once reading has taken everything the peer sent before it left: a
    /// peer that pushes its last messages and closes must not lose them because our greeting, READY
    /// or PING to it failed first. libzmq leaves write errors to its read path for the same reason.
    @exclusivity(unchecked) private var writeFailure: SystemError?

    init(
        loop: EventLoop, fd: consuming FileDescriptor, endpoint: String, connection: Connection, pipe: Pipe,
        owner: any PipeOwner
    ) {
        self.loop = loop
        self.endpoint = endpoint
        self.descriptor = fd
        self.connection = connection
        self.pipe = pipe
        self.owner = owner
    }

    /// Registers with the loop and sends the greeting (loop thread).
    func start() {
        do throws(SystemError) {
            token = try loop.register(descriptor.raw, handler: self, readable: true, writable: false)
        } catch {
            close("register: \(error)", handshakeEvent: noDetail(error.errno, "register: \(error)"))
            return
        }
        pipe.lock.withLock {
            pipe.session = self
            pipe.writeFailed = false
        }
        flush()
        rearmTimer()
    }

    func handle(readable: Bool, writable: Bool, hangup: Bool) {
        if writable { flush() }
        if readable || hangup { readAvailable() }
    }

    // MARK: - Reading

    private func readAvailable() {
        while !closed {
            if pipe.lock.withLock({ pipe.readingPaused }) {
                setWantsRead(false)  // stop epoll from reporting what we will not read yet
                return
            }
            let result: IOResult<Int>
            do throws(SystemError) {
                result = try Syscall.read(descriptor.raw, into: loop.readBuffer)
            } catch {
                close("\(error)", handshakeEvent: noDetail(error.errno, "\(error)"))
                return
            }
            switch result {
            case .wouldBlock:
                // After a failed write, the peer is gone and what it sent has all been read.
                if let writeFailure {
                    close("\(writeFailure)", handshakeEvent: noDetail(writeFailure.errno, "\(writeFailure)"))
                }
                return
            case .processed(0):
                if connection.isHandshakeComplete {
                    close(nil)
                } else {
                    let reason = "peer closed the connection during the handshake"
                    close(reason, handshakeEvent: noDetail(EPIPE, reason))
                }
                return
            case .processed(let count):
                feed(count)
            }
        }
    }

    /// Feeds `count` freshly read octets (plus any held back) to the connection.
    private func feed(_ count: Int) {
        do throws(ZMTPError) {
            let read = UnsafeRawBufferPointer(rebasing: loop.readBuffer[0..<count])
            if unconsumed.isEmpty {
                let consumed = try connection.receive(read, now: EventLoop.now())
                if consumed < count { unconsumed = Array(read[consumed...]) }
            } else {
                unconsumed += read
                let consumed = try connection.receive(unconsumed, now: EventLoop.now())
                unconsumed.removeFirst(consumed)
            }
            try drainEvents()
        } catch {
            flush()
            fail(error)
            return
        }
        flush()
        rearmTimer()
    }

    private func drainEvents() throws(ZMTPError) {
        // Messages are handed to the pipe in one batch per read: one lock round trip, not one per message.
        while let event = connection.nextEvent() {
            switch consume event {  // the message is moved out of the event, not copied
            case .handshakeCompleted(let info):
                pipe.lock.withLock { pipe.peer = info }
                owner?.socketEvent(SocketEvent(.handshakeSucceeded, endpoint: endpoint))
                owner?.pipeActivated(pipe)
                pullOutbound()
            case .message(let message):
                if !pipe.discardsInbound { inboundBatch.push(message) }
            case .authenticationRequested(let request):
                let reply = authenticate?(request)
                    ?? ZAPReply(requestID: request.requestID, status: .success, statusText: "OK")
                try connection.completeAuthentication(reply)
                if !unconsumed.isEmpty {
                    let consumed = try connection.receive(unconsumed, now: EventLoop.now())
                    unconsumed.removeFirst(consumed)
                }
            case .subscribe(let topic):
                owner?.pipeSubscription(pipe, topic: topic, subscribe: true)
            case .cancel(let topic):
                owner?.pipeSubscription(pipe, topic: topic, subscribe: false)
            case .ping, .pong:
                break  // answered inside the connection
            }
        }
        guard !inboundBatch.isEmpty else { return }
        let becameReadable = pipe.lock.withLock { () -> Bool in
            let wasEmpty = pipe.inbound.isEmpty
            while let message = inboundBatch.pop() { pipe.receive(message) }
            // Reading stops at the next read; this read's messages are all kept (bounded by one read).
            if pipe.receiveHighWaterMark != 0 && pipe.inbound.count >= pipe.receiveHighWaterMark {
                pipe.readingPaused = true
            }
            return wasEmpty
        }
        // A reader waits only when every queue was empty, so only that transition needs a wake-up.
        if becameReadable { owner?.pipeChanged(pipe) }
    }


    /// Called (loop thread) when the socket made room in a paused inbound queue.
    func resumeReading() {
        guard !closed else { return }
        setWantsRead(true)
        readAvailable()
    }

    // MARK: - Writing

    /// Moves queued messages from the pipe into the connection, then writes (loop thread).
    func pullOutbound() {
        guard !closed, writeFailure == nil, connection.isHandshakeComplete else { return }
        guard moveOutbound() else { return }
        flush()
    }

    /// Moves messages from the pipe into the connection while less than the buffer limit waits for
    /// the kernel, taking up to 256 per lock round trip; what does not fit yet stays in
    /// `outboundBatch` for the next round. Returns false if the session closed.
    @discardableResult
    private func moveOutbound() -> Bool {
        guard connection.isHandshakeComplete else { return true }  // a pipe may fill before its connection is up
        var madeRoom = false
        while connection.outbound.count < bufferLimit && connection.outbound.copiedOctets < Self.maxCopiedOctets {
            if outboundBatch.isEmpty {
                var subscriptions: [(topic: [UInt8], subscribe: Bool)] = []
                pipe.lock.withLock {
                    // Subscriptions first, in the same critical section (the socket's lock is busy
                    // with senders; one round trip per batch, not two).
                    if !pipe.pendingSubscriptions.isEmpty { swap(&subscriptions, &pipe.pendingSubscriptions) }
                    if pipe.sendHighWaterMark != 0 && pipe.outbound.count >= pipe.sendHighWaterMark { pipe.sawFull = true }
                    while outboundBatch.count < 256, let message = pipe.outbound.pop() { outboundBatch.push(message) }
                    if pipe.sawFull && pipe.outbound.count <= pipe.lowWaterMark {
                        pipe.sawFull = false
                        madeRoom = true
                    }
                    if !outboundBatch.isEmpty { pipe.unflushed = true }
                }
                for subscription in subscriptions {
                    do throws(ZMTPError) {
                        if subscription.subscribe {
                            try connection.subscribe(subscription.topic)
                        } else {
                            try connection.cancel(subscription.topic)
                        }
                    } catch {
                        outboundBatch.removeAll()
                        close(error.description)
                        return false
                    }
                }
                if outboundBatch.isEmpty { break }
                unflushed = true
            }
            guard let message = outboundBatch.pop() else { break }
            do throws(ZMTPError) {
                try connection.send(message)
            } catch {
                outboundBatch.removeAll()
                close(error.description)
                return false
            }
        }
        // A sender waits only when every queue was full, so only a full queue drained to its low-water
        // mark needs a wake-up.
        if madeRoom { owner?.pipeChanged(pipe) }
        return true
    }

    /// Whether messages wait to be encoded: in `outboundBatch` or in the pipe.
    private var hasMessagesToMove: Bool {
        !outboundBatch.isEmpty || pipe.lock.withLock { !pipe.outbound.isEmpty }
    }

    private func flush() {
        guard !closed, writeFailure == nil else { return }
        while !connection.outbound.isEmpty {
            let result: IOResult<Int>
            do throws(SystemError) {
                result = try connection.outbound.withChunks(maxChunks: 64) { chunks throws(SystemError) in
                    try Syscall.writev(descriptor.raw, chunks)
                }
            } catch {
                writeFailed(error)
                return
            }
            switch result {
            case .wouldBlock:
                setWantsWrite(true)
                return
            case .processed(let count):
                connection.outbound.consume(count)
            }
            if connection.outbound.count < bufferLimit / 2, hasMessagesToMove {
                guard moveOutbound() else { return }
            }
        }
        setWantsWrite(false)
        if unflushed && outboundBatch.isEmpty {
            unflushed = false
            pipe.lock.withLock { pipe.unflushed = false }
            owner?.pipeFlushed(pipe)  // linger may be waiting for this
        }
        if connection.isClosed {
            if let error = connection.closeError { fail(error) } else { close(nil) }
        }
    }

    /// Stops writing after `error` and lets the read path end the session once it has read what the
    /// peer sent. The read runs from a timer due now, not from here: `flush` is called in the middle
    /// of decoding, which must not be re-entered.
    private func writeFailed(_ error: SystemError) {
        writeFailure = error
        setWantsWrite(false)
        unflushed = false
        pipe.lock.withLock {
            pipe.writeFailed = true
            pipe.unflushed = false
        }
        owner?.pipeFlushed(pipe)  // a lingering close stops waiting for this connection
        if !wantsRead {
            // Reading is paused at the receive high-water mark: the session stays until the
            // application makes room and `resumeReading` reads to the end of the stream.
            return
        }
        loop.schedule(at: EventLoop.now()) { [self] in
            if !self.closed { self.readAvailable() }
        }
    }

    private func setWantsWrite(_ wanted: Bool) {
        guard wanted != wantsWrite, !closed else { return }
        wantsWrite = wanted
        loop.modify(token, readable: wantsRead, writable: wantsWrite)
    }

    private func setWantsRead(_ wanted: Bool) {
        guard wanted != wantsRead, !closed else { return }
        wantsRead = wanted
        loop.modify(token, readable: wantsRead, writable: wantsWrite)
    }

    // MARK: - Time and closing

    private func rearmTimer() {
        if let timer { loop.cancel(timer) }
        timer = nil
        guard !closed, let deadline = connection.nextDeadline else { return }
        // Strong capture (close() cancels the timer): a weak one would put the session's refcount in
        // a side table, which costs on every retain of this hot object.
        timer = loop.schedule(at: deadline) { [self] in
            self.timer = nil
            do throws(ZMTPError) {
                try self.connection.handleTimeout(now: EventLoop.now())
            } catch {
                self.flush()
                self.fail(error)
                return
            }
            self.flush()
            self.rearmTimer()
        }
    }

    /// Ends the session because the connection failed: a protocol error blamed on the peer ends
    /// reconnecting too; timeouts do not (the peer may just be slow or gone).
    private func fail(_ error: ZMTPError) {
        if error.blame == .peer, error.code != .handshakeTimeout, error.code != .heartbeatTimeout {
            reconnectAllowed = false
        }
        close(error.description, handshakeEvent: SocketEvent.handshakeFailure(error, endpoint: endpoint))
    }

    /// A HANDSHAKE_FAILED_NO_DETAIL event for a system-level failure.
    private func noDetail(_ errno: Int32, _ reason: String) -> SocketEvent {
        SocketEvent(.handshakeFailedNoDetail, value: UInt32(clamping: errno), endpoint: endpoint, detail: reason)
    }

    /// Closes the session because our own socket is closing or dropping this peer: no monitor
    /// event, as in libzmq (loop thread).
    func closeLocally() {
        close(nil, local: true)
    }

    /// Ends the session: deregisters, marks the pipe closed and tells the owner (loop thread).
    /// Unless the close is `local`, a monitor hears of it: `handshakeEvent` if the handshake had not
    /// completed, then DISCONNECTED.
    func close(_ error: String?, handshakeEvent: SocketEvent? = nil, local: Bool = false) {
        guard !closed else { return }
        closed = true
        if !local {
            if !connection.isHandshakeComplete, let handshakeEvent { owner?.socketEvent(handshakeEvent) }
            owner?.socketEvent(SocketEvent(
                .disconnected, value: UInt32(clamping: descriptor.raw), endpoint: endpoint, detail: error))
        }
        if let timer { loop.cancel(timer) }
        loop.deregister(token)
        connection.close()
        pipe.lock.withLock {
            pipe.session = nil
            pipe.peer = nil
            pipe.unflushed = false
            pipe.writeFailed = false
            // A pipe that survives disconnects keeps its queue for the next connection; messages
            // already moved into this connection's buffers are lost with it (as in libzmq).
            if !pipe.survivesDisconnect { pipe.isClosed = true }
        }
        owner?.pipeClosed(pipe, error: error)
        onClose?(SessionEnd(reason: error, reconnect: reconnectAllowed))
        onClose = nil
    }
}
