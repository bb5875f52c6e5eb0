import ZMTPWire

/// The two bounded message queues between a socket and one peer's session (libzmq's pipe).
///
/// `outbound` holds messages the socket accepted for this peer (at most `sendHighWaterMark`; 0 means
/// unlimited); `inbound` holds whole messages received from the peer (at most
/// `receiveHighWaterMark`). Both are guarded by the owning socket's lock (`lock`); the session runs on
/// the event loop and takes the same lock for every queue operation.
public final class Pipe: @unchecked Sendable {
    // @unchecked: every mutable field is accessed with `lock` held. They are also
    // `@exclusivity(unchecked)`: the lock already serializes access, and the dynamic check costs.
    public let lock: ConditionLockHandle
    public let sendHighWaterMark: Int
    public let receiveHighWaterMark: Int
    /// Drop what the peer sends (a PUSH receives nothing; RFC 30), so a misbehaving peer can neither
    /// fill a queue nor stall the connection.
    public let discardsInbound: Bool
    /// Outlives its connections: a connecting socket's pipe when `ZMQ_IMMEDIATE` is off. It accepts
    /// messages before the first connection and keeps what is still queued across reconnects; only
    /// ``terminate(owner:)`` closes it.
    public let survivesDisconnect: Bool
    /// The peer, once its handshake completed (guarded by `lock`).
    @exclusivity(unchecked) public internal(set) var peer: PeerInfo? {
        didSet { hasPeer = peer != nil }
    }
    /// `peer != nil`, kept apart: reading `peer` copies the whole `PeerInfo` (a retain per field),
    /// and ``canSend`` is asked for every message.
    @exclusivity(unchecked) private var hasPeer = false
    /// Set when the pipe is finished with: its connection is gone (or, for a pipe that
    /// ``survivesDisconnect``, it was terminated); the socket drops it (guarded by `lock`).
    @exclusivity(unchecked) public internal(set) var isClosed = false
    @exclusivity(unchecked) var outbound = RingQueue<Message>()
    @exclusivity(unchecked) var inbound = RingQueue<Message>()
    /// Set by the session when it stopped reading because `inbound` was full.
    @exclusivity(unchecked) var readingPaused = false
    /// Set by the session when it found `outbound` at the high-water mark (a sender may be waiting);
    /// cleared, with a wake-up, once the queue is down to ``lowWaterMark``.
    @exclusivity(unchecked) var sawFull = false
    /// Where a full outbound queue wakes its senders again: half the high-water mark, as libzmq's
    /// `compute_lwm` (with at most 1024 messages of hysteresis). Waking at every batch taken from a full
    /// queue would cost a wake-up and two context switches per few hundred messages.
    var lowWaterMark: Int {
        sendHighWaterMark > 2048 ? sendHighWaterMark - 1024 : (sendHighWaterMark + 1) / 2
    }
    /// Set while messages taken from `outbound` wait in the session's buffers for the kernel.
    @exclusivity(unchecked) var unflushed = false
    /// Set when the current connection can no longer be written to (a write failed; the session
    /// reads what the peer sent before it ends). Nothing queued can leave through it, so a lingering
    /// close does not wait for it.
    @exclusivity(unchecked) var writeFailed = false
    /// Subscriptions to send to the peer (a SUB or XSUB telling its publisher), ahead of messages.
    /// Not counted against the high-water mark: they are commands, bounded by the socket's own
    /// subscription set.
    @exclusivity(unchecked) var pendingSubscriptions: [(topic: [UInt8], subscribe: Bool)] = []
    weak var session: StreamSession?
    public let loop: EventLoop
    /// The owning socket's list of pipes with received messages, which this pipe joins when its
    /// first message arrives (guarded by `lock`). Weak: the list holds the pipes it names, and a
    /// socket closed with unread messages must not leave the two holding each other.
    public private(set) weak var readyPipes: ReadyPipes?
    /// Whether this pipe is in `readyPipes` (guarded by `lock`).
    @exclusivity(unchecked) var isListedReady = false
    /// Whether the owning socket lists this pipe among its peers: a flag the socket keeps so that
    /// it need not search its list (guarded by `lock`).
    @exclusivity(unchecked) public var isAttached = false

    public init(
        lock: ConditionLockHandle, loop: EventLoop, sendHighWaterMark: Int, receiveHighWaterMark: Int,
        discardsInbound: Bool = false, survivesDisconnect: Bool = false, readyPipes: ReadyPipes? = nil
    ) {
        self.readyPipes = readyPipes
        self.discardsInbound = discardsInbound
        self.survivesDisconnect = survivesDisconnect
        self.lock = lock
        self.loop = loop
        self.sendHighWaterMark = sendHighWaterMark
        self.receiveHighWaterMark = receiveHighWaterMark
    }

    // MARK: - Socket side (lock held)

    /// Whether one more outbound message fits (lock held).
    public var canSend: Bool {
        !isClosed && (hasPeer || survivesDisconnect)
            && (sendHighWaterMark == 0 || outbound.count < sendHighWaterMark)
    }

    /// Whether a peer is connected through this pipe right now (lock held).
    public var isConnected: Bool { !isClosed && hasPeer }

    /// Queues a message for the peer (lock held; check ``canSend`` first) and makes sure the session
    /// will write it.
    public func enqueue(_ message: Message) {
        let wasEmpty = outbound.isEmpty
        outbound.push(message)
        if wasEmpty {
            loop.execute { [self] in self.session?.pullOutbound() }  // strong: a weak capture would give every Pipe a side table and slow refcounting
        }
    }

    /// Queues a SUBSCRIBE or CANCEL for the peer (lock held).
    public func enqueueSubscription(_ topic: [UInt8], subscribe: Bool) {
        pendingSubscriptions.append((topic, subscribe))
        if pendingSubscriptions.count == 1 {
            loop.execute { [self] in self.session?.pullOutbound() }
        }
    }

    /// Replaces the queued subscriptions with `topics` (lock held): what a fresh connection to a
    /// publisher must be told, so that a late joiner or a restarted publisher gets the whole set.
    public func resetSubscriptions(to topics: [[UInt8]]) {
        pendingSubscriptions = topics.map { ($0, true) }
        if !pendingSubscriptions.isEmpty {
            loop.execute { [self] in self.session?.pullOutbound() }
        }
    }

    /// Takes the next received message (lock held), resuming a paused reader when there is room again.
    public func dequeue() -> Message? {
        guard let message = inbound.pop() else { return nil }
        if readingPaused, receiveHighWaterMark == 0 || inbound.count < receiveHighWaterMark {
            readingPaused = false
            loop.execute { [self] in self.session?.resumeReading() }
        }
        return message
    }

    /// Closes the connection behind this pipe (loop thread). A pipe that ``survivesDisconnect`` stays
    /// open, waiting for the next connection.
    public func closeSession() {
        session?.closeLocally()
    }

    /// Closes the pipe for good, with its connection if any (loop thread). Queued messages are dropped.
    public func terminate(owner: any PipeOwner) {
        let current = lock.withLock { () -> StreamSession? in
            isClosed = true
            return session
        }
        if let current {
            current.closeLocally()  // reports pipeClosed
        } else {
            owner.pipeClosed(self, error: nil)
        }
    }

    /// Messages received and not yet taken (lock held).
    public var pendingInbound: Int { inbound.count }

    /// Queues a message received from the peer (session side, lock held) and lists the pipe as ready.
    func receive(_ message: consuming Message) {
        inbound.push(message)
        if !isListedReady, let readyPipes {
            isListedReady = true
            readyPipes.queue.push(self)
        }
    }
    /// Messages queued and not yet written (lock held).
    public var pendingOutbound: Int { outbound.count }
    /// Whether anything accepted for this peer has not yet been handed to the kernel: queued
    /// messages, or octets in the connection's buffer (lock held). Linger waits on this.
    public var hasUnsentMessages: Bool { !writeFailed && (!outbound.isEmpty || unflushed) }
}

/// The lock a socket shares with its pipes (a public face of ``ConditionLock``).
public final class ConditionLockHandle: @unchecked Sendable {
    @usableFromInline let lock = ConditionLock()
    public init() {}
    /// Inlinable so that a critical section in another module is specialized, not a generic call.
    @inlinable
    public func withLock<R>(_ body: () throws -> R) rethrows -> R { try lock.withLock(body) }
    /// Waits with the lock held until signalled or the deadline (CLOCK_MONOTONIC ns); false on timeout.
    public func wait(until deadline: UInt64?) -> Bool { lock.wait(until: deadline) }
    public func broadcast() { lock.broadcast() }
}

/// The pipes of one socket that hold received messages, in the order they became non-empty
/// (libzmq's active region of `fq_t`). A receive takes from these, so its cost does not grow with
/// the number of idle peers: with 10,000 connected subscribers that say nothing, an XPUB's receive
/// looks at one list entry, not 10,000 pipes. Guarded by the socket's lock.
public final class ReadyPipes: @unchecked Sendable {
    // @unchecked: guarded by the lock the socket shares with its pipes.
    @exclusivity(unchecked) var queue = RingQueue<Pipe>()

    public init() {}

    /// Whether no pipe holds a received message (lock held).
    public var isEmpty: Bool { queue.isEmpty }

    /// The next received message, one per ready pipe in turn (fair queuing), and, when that message
    /// was the last of a closed pipe, the pipe, which its socket can now drop (lock held).
    public func next() -> (message: Message, finished: Pipe?)? {
        while let pipe = queue.first {
            guard let message = pipe.dequeue() else {
                pipe.isListedReady = false
                _ = queue.pop()
                continue
            }
            if pipe.inbound.isEmpty {
                pipe.isListedReady = false
                _ = queue.pop()
                return (message, pipe.isClosed ? pipe : nil)
            }
            queue.rotate()
            return (message, nil)
        }
        return nil
    }
}
