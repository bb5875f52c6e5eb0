import Synchronization
import ZMTPEngine

#if canImport(Glibc)
import Glibc
#endif

/// A ZeroMQ socket: PUSH, PULL (RFC 30), PUB, SUB, XPUB and XSUB (RFC 29), with libzmq 4.3's
/// semantics. For the pipeline pattern:
///
/// - PUSH round-robins whole messages over the peers whose queue is below the send high-water mark;
///   when none has room (or none exists) ``send(_:)`` blocks up to the send timeout.
/// - PULL fair-queues: it takes one message from each peer with messages waiting in turn, so one fast
///   sender cannot starve the others.
/// - Multipart messages are atomic: queued, written and delivered whole.
///
/// For publish/subscribe: PUB and XPUB send each message to the peers with a subscription that
/// prefixes its first frame (a full peer misses it); SUB and XSUB subscribe with ``subscribe(_:)``
/// (XSUB also by sending `0x01`/`0x00` + topic), tell every publisher again when it reconnects, and
/// filter what they receive. An XPUB's application receives its peers' subscriptions as messages.
///
/// Three ways to wait, all bounded by the same per-peer queues:
/// - blocking ``send(_:)`` / ``receive()`` with the socket's timeouts, for code without tasks;
/// - ``trySend(_:)`` / ``tryReceive()``, where "would block" is a value;
/// - `try await send(_:)` and `for try await message in socket.messages`, which suspend the task
///   instead of a thread. The sequence reads only as fast as it is iterated, so a slow consumer stops
///   the reading from its peers at the receive high-water mark (back-pressure reaches the sender).
///
/// Thread safety: the socket is `Sendable`; calls from several threads or tasks are serialized by its
/// lock. Connections live on the context's I/O threads; a socket spreads its connections over them.
public final class Socket: @unchecked Sendable {
    // @unchecked: every mutable field is guarded by `lock` (and `@exclusivity(unchecked)`, since the
    // lock already serializes access); `interest` and `sleepers` are atomic.
    public let type: SocketType
    public let options: SocketOptions
    /// The I/O threads this socket's connections may run on; listeners live on `loops[0]`.
    let loops: [EventLoop]
    let lock = ConditionLockHandle()
    @exclusivity(unchecked) private var pipes: [Pipe] = []
    @exclusivity(unchecked) private var nextOutbound = 0
    /// The pipes with received messages, which receives fair-queue over.
    let readyPipes = ReadyPipes()
    @exclusivity(unchecked) private var nextLoop = 0
    @exclusivity(unchecked) private var closed = false
    @exclusivity(unchecked) private var listeners: [(endpoint: String, listener: Listener)] = []
    @exclusivity(unchecked) private var connectors: [(endpoint: String, connector: Connector)] = []
    /// Suspended tasks waiting for a message or for room, by id.
    @exclusivity(unchecked) private var waiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
    @exclusivity(unchecked) private var nextWaiter: UInt64 = 0
    /// Pollers and change handlers watching this socket.
    @exclusivity(unchecked) private var observers: [any ChangeObserver] = []
    /// `waiters.count + observers.count`, read without the lock on the I/O thread's hot path (written
    /// with the lock held, so a waiter registered before a change is always seen after it).
    private let interest = Atomic<Int>(0)
    /// Threads blocked in ``sleep(until:)``: a change wakes them only if there are any.
    private let sleepers = Atomic<Int>(0)
    private lazy var bridge = SocketBridge(socket: self, fallbackLoop: loops[0])
    /// Monitors, held weakly (a monitor nobody reads any more stops); `monitorCount` lets the I/O
    /// threads skip the lock when nobody monitors.
    @exclusivity(unchecked) private var monitors: [ObjectIdentifier: WeakMonitor] = [:]
    private let monitorCount = Atomic<Int>(0)

    init(type: SocketType, options: SocketOptions, loops: [EventLoop]) {
        // Only Context creates sockets, always with at least one loop; no input reaches this.
        precondition(!loops.isEmpty, "a socket needs an I/O thread")
        canSendMessages = [.push, .pub, .xpub, .xsub].contains(type)
        canReceiveMessages = [.pull, .sub, .xsub, .xpub].contains(type)
        distributesBySubscription = type == .pub || type == .xpub
        noDrop = type == .xpub && options.xpubNoDrop
        subscribes = type == .sub || type == .xsub
        self.type = type
        self.options = options
        self.loops = loops
        peerSubscriptions = SubscriptionTrie<PipeKey>(mode: options.countsRepeatedSubscriptions ? .counting : .set)
    }

    // What the type does, decided once (they are read on every send and receive).
    private let canSendMessages: Bool
    private let canReceiveMessages: Bool
    /// PUB and XPUB: their peers' subscriptions decide where messages go.
    private let distributesBySubscription: Bool
    /// SUB and XSUB: they subscribe, and filter what they receive by their own subscriptions.
    private let subscribes: Bool
    /// An XPUB with ``SocketOptions/xpubNoDrop``: a full subscriber makes a send wait.
    private let noDrop: Bool

    // Publish/subscribe state (lock held).
    /// Peers' subscriptions (PUB, XPUB), by pipe.
    @exclusivity(unchecked) private var peerSubscriptions = SubscriptionTrie<PipeKey>(mode: .set)
    /// The peers a no-drop publish matched (lock held; emptied after each send, capacity kept).
    @exclusivity(unchecked) private var subscriptionCounts: [ObjectIdentifier: Int] = [:]
    /// Our own subscriptions (SUB, XSUB), counted: each subscribe needs its unsubscribe.
    @exclusivity(unchecked) private var ownSubscriptions = SubscriptionTrie<Int>(mode: .counting)
    /// Subscription messages (0x01/0x00 + topic) waiting for an XPUB's application; at most
    /// ``maxPendingNotifications``.
    @exclusivity(unchecked) private var notifications = RingQueue<Message>()
    @exclusivity(unchecked) private var droppedNotices = 0
    static let maxPendingNotifications = 1_000_000
    @exclusivity(unchecked) private var dropped = 0

    // MARK: - Endpoints

    /// Binds to `endpoint` and starts accepting; returns the endpoint actually bound (with the
    /// ephemeral port filled in for `tcp://host:*` or `:0`).
    ///
    /// Endpoints: `tcp://host:port` (`*` for every interface, port `*` or `0` for an ephemeral port;
    /// IPv6 addresses in brackets need ``SocketOptions/ipv6``) and `ipc:///path`.
    /// - Throws: ``SocketError/endpoint(_:)`` when the endpoint is malformed or cannot be bound.
    @discardableResult
    public func bind(_ endpoint: String) throws -> String {
        let parsed = try parse(endpoint)
        let loop = loops[0]
        let listener: Listener
        do {
            listener = try Listener(endpoint: parsed, options: transportOptions, loop: loop, factory: bridge)
        } catch {
            socketEvent(SocketEvent(
                .bindFailed, value: UInt32(clamping: error.errno ?? EINVAL), endpoint: endpoint, detail: error.message))
            throw SocketError.endpoint(error.message)
        }
        try runOnLoop(loop) { () throws(EngineError) in try listener.start() }
        lock.withLock { listeners.append((endpoint, listener)) }
        return listener.boundEndpoint.description
    }

    /// Connects to `endpoint`; the connection is made (and remade) in the background, so connecting
    /// before the peer listens works.
    ///
    /// Unless ``SocketOptions/immediate`` is set, the peer's queue exists from now on: messages sent
    /// before the connection is up wait in it (up to the send high-water mark), and messages not yet
    /// handed to a connection survive a reconnect.
    /// - Throws: ``SocketError/endpoint(_:)`` when the endpoint is malformed.
    public func connect(_ endpoint: String) throws {
        let parsed = try parse(endpoint)
        let loop = lock.withLock { nextConnectionLoop() }
        let pipe = options.immediate ? nil : makePipe(loop: loop, survivesDisconnect: true)
        let connector = Connector(endpoint: parsed, options: transportOptions, loop: loop, factory: bridge, pipe: pipe)
        if let pipe { pipeActivated(pipe) }
        lock.withLock { connectors.append((endpoint, connector)) }
        try runOnLoop(loop) { () throws(EngineError) in connector.start() }
    }

    /// Stops listening on an endpoint given to ``bind(_:)`` (as given, or as returned). Connections
    /// already accepted stay open.
    /// - Throws: ``SocketError/endpoint(_:)`` when nothing is bound there.
    public func unbind(_ endpoint: String) throws {
        let matches = lock.withLock { () -> [Listener] in
            let found = listeners.filter { $0.endpoint == endpoint || $0.listener.boundEndpoint.description == endpoint }
            listeners.removeAll { entry in found.contains { $0.listener === entry.listener } }
            return found.map(\.listener)
        }
        guard !matches.isEmpty else { throw SocketError.endpoint("not bound to \(endpoint)") }
        for listener in matches { try runOnLoop(listener.loop) { listener.stop() } }
    }

    /// Stops connecting to an endpoint given to ``connect(_:)`` and closes that connection; messages
    /// still queued for it are dropped.
    /// - Throws: ``SocketError/endpoint(_:)`` when there is no such connection.
    public func disconnect(_ endpoint: String) throws {
        let matches = lock.withLock { () -> [Connector] in
            let found = connectors.filter { $0.endpoint == endpoint || $0.connector.endpoint.description == endpoint }
            connectors.removeAll { entry in found.contains { $0.connector === entry.connector } }
            return found.map(\.connector)
        }
        guard !matches.isEmpty else { throw SocketError.endpoint("not connected to \(endpoint)") }
        for connector in matches { try runOnLoop(connector.loop) { connector.stop() } }
    }

    private func parse(_ endpoint: String) throws -> Endpoint {
        guard !lock.withLock({ closed }) else { throw SocketError.closed }
        do {
            return try Endpoint(endpoint)
        } catch {
            throw SocketError.endpoint(error.message)
        }
    }

    private var transportOptions: TransportOptions {
        var transport = TransportOptions()
        transport.sendBufferSize = options.sendBufferSize
        transport.receiveBufferSize = options.receiveBufferSize
        transport.ipv6 = options.ipv6
        transport.reconnectInterval = options.reconnectInterval
        transport.reconnectIntervalMax = options.reconnectIntervalMax
        transport.tcpKeepalive = options.tcpKeepalive
        return transport
    }

    /// The I/O thread for the next connection, in turn (lock held).
    private func nextConnectionLoop() -> EventLoop {
        defer { nextLoop = (nextLoop + 1) % loops.count }
        return loops[nextLoop]
    }

    /// Runs `body` on `loop`'s thread and waits for it.
    private func runOnLoop(_ loop: EventLoop, _ body: @escaping @Sendable () throws(EngineError) -> Void) throws {
        if loop.inLoop {
            do throws(EngineError) { try body() } catch { throw SocketError.endpoint(error.message) }
            return
        }
        let done = ConditionLockHandle()
        let box = ResultBox()
        let accepted = loop.execute {
            let outcome: EngineError?
            do throws(EngineError) { try body(); outcome = nil } catch { outcome = error }
            done.withLock { box.finished = true; box.error = outcome }
            done.broadcast()
        }
        // The context was shut down: its threads and every connection are gone already.
        guard accepted else { throw SocketError.closed }
        done.withLock { while !box.finished { _ = done.wait(until: nil) } }
        if let error = box.error { throw SocketError.endpoint(error.message) }
    }

    // MARK: - Monitoring

    /// Reports what happens to this socket's endpoints and connections (`zmq_socket_monitor`):
    /// listening, accepting, connecting, handshakes and their failures, disconnects; see
    /// ``SocketEvent`` for libzmq's event numbers and values.
    ///
    /// Several monitors may watch one socket, each with its own selection. Start monitoring before
    /// binding or connecting to see every event.
    /// - Parameters:
    ///   - events: the kinds to report (default: all).
    ///   - bufferLimit: how many unread events to keep before dropping new ones.
    public func monitor(_ events: SocketEvent.Kind = .all, bufferLimit: Int = 4096) -> SocketMonitor {
        let monitor = SocketMonitor(socket: self, selection: events, bufferLimit: bufferLimit)
        let registered = lock.withLock { () -> Bool in
            if closed { return false }
            monitors[ObjectIdentifier(monitor)] = WeakMonitor(monitor: monitor)
            monitorCount.store(monitors.count, ordering: .relaxed)
            return true
        }
        if !registered {
            monitor.record(SocketEvent(.monitorStopped, endpoint: ""))
            monitor.finish()
        }
        return monitor
    }

    func removeMonitor(_ monitor: SocketMonitor) {
        lock.withLock {
            monitors[ObjectIdentifier(monitor)] = nil
            monitorCount.store(monitors.count, ordering: .relaxed)
        }
    }

    /// Hands an event to the monitors (any thread, lock not held).
    func socketEvent(_ event: SocketEvent) {
        guard monitorCount.load(ordering: .relaxed) > 0 else { return }
        let targets = lock.withLock { () -> [SocketMonitor] in
            monitors = monitors.filter { $0.value.monitor != nil }
            monitorCount.store(monitors.count, ordering: .relaxed)
            return monitors.values.compactMap(\.monitor)
        }
        for monitor in targets { monitor.record(event) }
    }

    /// Ends every monitor with MONITOR_STOPPED (after the socket closed).
    private func stopMonitors() {
        let ending = lock.withLock { () -> [SocketMonitor] in
            defer {
                monitors.removeAll()
                monitorCount.store(0, ordering: .relaxed)
            }
            return monitors.values.compactMap(\.monitor)
        }
        for monitor in ending {
            monitor.record(SocketEvent(.monitorStopped, endpoint: ""))
            monitor.finish()
        }
    }

    // MARK: - Peers

    /// Peers whose handshake completed and whose connection is still open.
    public var connectedPeers: Int { lock.withLock { pipes.count(where: \.isConnected) } }

    /// Waits until at least `count` peers are connected, up to `timeout`; returns whether they are.
    public func waitForPeers(_ count: Int, timeout: Duration) -> Bool {
        let deadline = EventLoop.now() + timeout
        return lock.withLock {
            while pipes.count(where: \.isConnected) < count {
                if closed || deadline <= EventLoop.now() { return false }
                _ = sleep(until: deadline.nanoseconds)
            }
            return true
        }
    }

    /// Waits until no peer is connected, up to `timeout`.
    public func waitUntilDisconnected(timeout: Duration) {
        let deadline = EventLoop.now() + timeout
        lock.withLock {
            while pipes.contains(where: \.isConnected) {
                if closed || deadline <= EventLoop.now() { return }
                _ = sleep(until: deadline.nanoseconds)
            }
        }
    }

    /// How many distinct I/O threads this socket's live connections run on (for tests).
    var connectionThreadCount: Int {
        lock.withLock { Set(pipes.filter(\.isConnected).map { ObjectIdentifier($0.loop) }).count }
    }

    // MARK: - Sending (PUSH)

    /// Sends a message, blocking while no peer has room, up to the send timeout.
    /// - Throws: ``SocketError/timedOut`` when the timeout passes, ``SocketError/closed``,
    ///   ``SocketError/notSupported(_:)`` on a socket type that cannot send or for a message without
    ///   frames.
    public func send(_ message: Message) throws {
        try checkSendable(message)
        let timeout = options.sendTimeout
        var deadline: MonotonicInstant?
        try lock.withLock {
            while true {
                if closed { throw SocketError.closed }
                if deliver(message) { return }
                if Self.deadlinePassed(&deadline, timeout: timeout) { throw SocketError.timedOut }
                _ = sleep(until: deadline?.nanoseconds)
            }
        }
    }

    /// Sends without blocking; returns false when no peer has room (libzmq's EAGAIN with DONTWAIT).
    /// - Throws: ``SocketError/closed``, ``SocketError/notSupported(_:)``.
    public func trySend(_ message: Message) throws -> Bool {
        try checkSendable(message)
        return try lock.withLock {
            if closed { throw SocketError.closed }
            return deliver(message)
        }
    }

    /// Hands a message to the peers the socket type chooses (lock held); false means "would block".
    /// - PUSH: the next peer in turn with room.
    /// - PUB, XPUB: every peer with a matching subscription; a full peer misses the message
    ///   (``droppedMessages``), or with ``SocketOptions/xpubNoDrop`` the send would block instead.
    /// - XSUB: `0x01`/`0x00` + topic updates the subscriptions and goes to every publisher; anything
    ///   else goes to every publisher with room.
    private func deliver(_ message: Message) -> Bool {
        switch type {
        case .pub, .xpub:
            return publish(message)
        case .xsub:
            if let flag = message.frames.withUnsafeBytes(ofFrame: 0, { $0.first }), flag <= 1 {
                updateOwnSubscription(Array(message.frames[0].dropFirst()), subscribe: flag == 1)
            } else {
                for pipe in pipes where pipe.isConnected {
                    if pipe.canSend { pipe.enqueue(message) } else { dropped += 1 }
                }
            }
            return true
        default:
            guard let pipe = nextPipeWithRoom() else { return false }
            pipe.enqueue(message)
            return true
        }
    }

    /// PUB/XPUB fan-out (lock held). The message is shared, not copied, among the peers.
    private func publish(_ message: Message) -> Bool {
        // The topic is read in place: a small received frame is never copied into an array.
        message.frames.withUnsafeBytes(ofFrame: 0) { topic in
            guard noDrop else {
                var misses = 0
                peerSubscriptions.forEachMatch(topic) { key in
                    if key.pipe.canSend { key.pipe.enqueue(message) } else { misses += 1 }
                }
                dropped += misses
                return true
            }
            // All or nothing: a full subscriber blocks the send before any subscriber gets it. Two
            // walks (one to check, one to queue) cost less than collecting the matches: a walk is a
            // few ns, and an array of pipes costs a retain, a release and a uniqueness check per match.
            // The usual single subscriber is remembered by the first walk, which spares the second.
            var blocked = false
            var matches = 0
            var only: Pipe?
            peerSubscriptions.forEachMatch(topic) { key in
                matches += 1
                if matches == 1 { only = key.pipe }
                if !key.pipe.canSend { blocked = true }
            }
            if blocked { return false }
            if matches == 1, let only {
                only.enqueue(message)
                return true
            }
            peerSubscriptions.forEachMatch(topic) { key in key.pipe.enqueue(message) }
            return true
        }
    }

    /// Sends a message, suspending the task (not a thread) while no peer has room, up to the send
    /// timeout.
    /// - Throws: ``SocketError/timedOut``, ``SocketError/closed``, `CancellationError` when the task
    ///   is cancelled while waiting, ``SocketError/notSupported(_:)``.
    public func send(_ message: Message) async throws {
        try checkSendable(message)
        let deadline = options.sendTimeout.map { EventLoop.now() + $0 }
        while true {
            if try trySend(message) { return }
            try await wait(for: .writable, deadline: deadline)
        }
    }

    private func checkSendable(_ message: Message) throws {
        guard canSendMessages else { throw SocketError.notSupported("\(type) sockets cannot send") }
        guard !message.frames.isEmpty else { throw SocketError.notSupported("a message needs at least one frame") }
    }

    /// Round robin over pipes with room (lock held).
    private func nextPipeWithRoom() -> Pipe? {
        guard let index = indexOfPipeWithRoom() else { return nil }
        nextOutbound = (index + 1) % pipes.count
        return pipes[index]
    }

    private func indexOfPipeWithRoom() -> Int? {
        guard !pipes.isEmpty else { return nil }
        for offset in 0..<pipes.count {
            let index = (nextOutbound + offset) % pipes.count
            if pipes[index].canSend { return index }
        }
        return nil
    }

    /// Messages a PUB, XPUB or XSUB did not queue for a peer because its queue was full (Zeek
    /// counts these as `xpub_drops`).
    public var droppedMessages: Int { lock.withLock { dropped } }
    /// Subscription messages an XPUB discarded because its application let more than a million
    /// pile up.
    public var droppedNotifications: Int { lock.withLock { droppedNotices } }

    // MARK: - Subscribing (SUB, XSUB)

    /// Subscribes to messages whose first frame starts with `topic` (`ZMQ_SUBSCRIBE`); the empty
    /// topic subscribes to everything. Every publisher is told, now and whenever it (re)connects.
    /// Subscriptions are counted: each needs its own ``unsubscribe(_:)``.
    /// - Throws: ``SocketError/notSupported(_:)`` on sockets other than SUB and XSUB.
    public func subscribe(_ topic: [UInt8]) throws {
        guard subscribes else { throw SocketError.notSupported("\(type) sockets do not subscribe") }
        try lock.withLock {
            if closed { throw SocketError.closed }
            updateOwnSubscription(topic, subscribe: true)
        }
    }

    /// Cancels one ``subscribe(_:)`` of `topic` (`ZMQ_UNSUBSCRIBE`); publishers are told when the last
    /// one goes.
    public func unsubscribe(_ topic: [UInt8]) throws {
        guard subscribes else { throw SocketError.notSupported("\(type) sockets do not subscribe") }
        try lock.withLock {
            if closed { throw SocketError.closed }
            updateOwnSubscription(topic, subscribe: false)
        }
    }

    /// Records a subscription change and tells the connected publishers (lock held). As libzmq:
    /// every subscribe is forwarded (a proxy's XPUB may want to see repeats), a cancel only when the
    /// last subscription to the topic goes.
    private func updateOwnSubscription(_ topic: [UInt8], subscribe: Bool) {
        if subscribe {
            ownSubscriptions.add(topic, for: 0)
        } else if !ownSubscriptions.remove(topic, for: 0).subscriberChanged {
            return
        }
        for pipe in pipes where pipe.isConnected { pipe.enqueueSubscription(topic, subscribe: subscribe) }
    }

    // MARK: - Receiving (PULL, SUB, XSUB, XPUB)

    /// Receives the next message, fair-queued across peers, blocking up to the receive timeout.
    /// - Throws: ``SocketError/timedOut``, ``SocketError/closed``, ``SocketError/notSupported(_:)``.
    public func receive() throws -> Message {
        try checkReceivable()
        let timeout = options.receiveTimeout
        var deadline: MonotonicInstant?
        return try lock.withLock {
            while true {
                if let message = nextInboundMessage() { return message }
                if closed { throw SocketError.closed }
                if Self.deadlinePassed(&deadline, timeout: timeout) { throw SocketError.timedOut }
                _ = sleep(until: deadline?.nanoseconds)
            }
        }
    }

    /// Receives without blocking; nil when no message is waiting.
    /// - Throws: ``SocketError/closed`` once the socket is closed and drained,
    ///   ``SocketError/notSupported(_:)``.
    public func tryReceive() throws -> Message? {
        try checkReceivable()
        return try lock.withLock {
            if let message = nextInboundMessage() { return message }
            if closed { throw SocketError.closed }
            return nil
        }
    }

    /// Receives the next message, suspending the task (not a thread) up to the receive timeout.
    /// - Throws: ``SocketError/timedOut``, ``SocketError/closed``, `CancellationError`,
    ///   ``SocketError/notSupported(_:)``.
    public func receive() async throws -> Message {
        try checkReceivable()
        let deadline = options.receiveTimeout.map { EventLoop.now() + $0 }
        while true {
            if let message = try tryReceive() { return message }
            try await wait(for: .readable, deadline: deadline)
        }
    }

    /// The messages this socket receives, as an asynchronous sequence:
    /// `for try await message in socket.messages { … }`.
    ///
    /// The sequence ends when the socket is closed (after the messages already received), and throws
    /// `CancellationError` when the iterating task is cancelled. It ignores the receive timeout. Each
    /// step takes one message from the socket's queues, so iterating slowly slows the peers down
    /// through the receive high-water mark instead of buffering without bound.
    public var messages: Messages { Messages(socket: self) }

    /// See ``Socket/messages``.
    public struct Messages: AsyncSequence, Sendable {
        public typealias Element = Message
        let socket: Socket

        public func makeAsyncIterator() -> Iterator { Iterator(socket: socket) }

        public struct Iterator: AsyncIteratorProtocol {
            let socket: Socket

            public mutating func next() async throws -> Message? {
                while true {
                    do {
                        if let message = try socket.tryReceive() { return message }
                    } catch SocketError.closed {
                        return nil
                    }
                    try await socket.wait(for: .readable, deadline: nil)
                }
            }
        }
    }

    private func checkReceivable() throws {
        guard canReceiveMessages else { throw SocketError.notSupported("\(type) sockets cannot receive") }
    }

    /// Fair queue: the next pipe in turn that has a message (lock held). A closed pipe is kept until
    /// its last received message was taken, so nothing read before a disconnect is lost.
    private func nextInboundMessage() -> Message? {
        if type == .xpub, let notification = notifications.pop() { return notification }
        guard subscribes else { return nextFairQueued() }
        // SUB and XSUB filter too: a publisher may send what we did not ask for (RFC 29).
        if ownSubscriptions.matchesEverything { return nextFairQueued() }
        while let message = nextFairQueued() {
            let matched = message.frames.isEmpty
                ? ownSubscriptions.matches([UInt8]())
                : message.frames.withUnsafeBytes(ofFrame: 0) { ownSubscriptions.matches($0) }
            if matched { return message }
        }
        return nil
    }

    /// The next message in fair-queue order (lock held).
    private func nextFairQueued() -> Message? {
        guard let (message, finished) = readyPipes.next() else { return nil }
        if let finished { remove(finished) }  // a closed pipe's last message
        return message
    }

    /// Drops a pipe and keeps the round-robin cursors in range (lock held).
    private func remove(_ pipe: Pipe) {
        guard pipe.isAttached else { return }
        pipe.isAttached = false
        pipes.removeAll { $0 === pipe }
        if nextOutbound >= pipes.count { nextOutbound = 0 }
    }

    // MARK: - Readiness (async waits and pollers)

    /// What the socket could do now without blocking (lock held).
    func readiness() -> PollEvents {
        var events: PollEvents = []
        if closed { return [] }
        if canReceiveMessages, !notifications.isEmpty || !readyPipes.isEmpty {
            events.insert(.readable)
        }
        if canSendMessages {
            switch type {
            case .push: if indexOfPipeWithRoom() != nil { events.insert(.writable) }
            case .xpub where options.xpubNoDrop: if pipes.allSatisfy({ !$0.isConnected || $0.canSend }) { events.insert(.writable) }
            default: events.insert(.writable)  // PUB, XSUB and lossy XPUB never block
            }
        }
        return events
    }

    /// For a blocking call that could not complete: sets `deadline` from `timeout` the first time (the
    /// clock is read only once an attempt would block, not on every call) and tells whether it has
    /// passed. No timeout never passes.
    private static func deadlinePassed(_ deadline: inout MonotonicInstant?, timeout: Duration?) -> Bool {
        guard let timeout else { return false }
        let now = EventLoop.now()
        let due = deadline ?? now + timeout
        deadline = due
        return due <= now
    }

    /// Suspends until `events` may have become possible, the socket closes, or `deadline` passes.
    /// Spurious returns are allowed; callers retry their operation, and call again to hear of the
    /// timeout.
    /// - Throws: ``SocketError/timedOut`` if called at or after the deadline, `CancellationError`.
    private func wait(for events: PollEvents, deadline: MonotonicInstant?) async throws {
        if let deadline, deadline <= EventLoop.now() { throw SocketError.timedOut }
        let id = lock.withLock { () -> UInt64 in
            nextWaiter &+= 1
            return nextWaiter
        }
        if let deadline {
            loops[0].execute(at: deadline) { [weak self] in self?.resumeWaiter(id) }
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let ready = lock.withLock { () -> Bool in
                    // Checked under the lock the I/O threads change the queues under, so a change
                    // either happened already (ready) or will see this waiter.
                    if closed || Task.isCancelled || !readiness().isDisjoint(with: events) { return true }
                    waiters[id] = continuation
                    interest.add(1, ordering: .relaxed)
                    return false
                }
                if ready { continuation.resume() }
            }
        } onCancel: {
            resumeWaiter(id)
        }
        try Task.checkCancellation()
        // Not a timeout yet, even past the deadline: the caller tries once more first. A task
        // resumed late (every cooperative thread busy) must still get what arrived in time.
    }

    private func resumeWaiter(_ id: UInt64) {
        let continuation = lock.withLock { () -> CheckedContinuation<Void, Never>? in
            guard let continuation = waiters.removeValue(forKey: id) else { return nil }
            interest.subtract(1, ordering: .relaxed)
            return continuation
        }
        continuation?.resume()
    }

    /// Blocks the calling thread (lock held) until a change or the deadline (CLOCK_MONOTONIC ns).
    private func sleep(until deadline: UInt64?) -> Bool {
        sleepers.add(1, ordering: .relaxed)
        defer { sleepers.subtract(1, ordering: .relaxed) }
        return lock.wait(until: deadline)
    }

    /// Wakes blocked threads, suspended tasks and pollers after the queues changed. Cheap when nobody
    /// waits: two atomic loads. (Waiters register under the lock that every change is made under, so
    /// a waiter that registered before a change is always seen by the notification that follows it.)
    private func notifyChanged() {
        if sleepers.load(ordering: .relaxed) > 0 { lock.broadcast() }
        guard interest.load(ordering: .relaxed) > 0 else { return }
        // No allocation when only pollers watch (a proxy): the observer array is shared, not copied.
        let (resumed, signals) = lock.withLock { () -> ([CheckedContinuation<Void, Never>], [any ChangeObserver]) in
            guard !waiters.isEmpty else { return ([], observers) }
            let resumed = Array(waiters.values)
            interest.subtract(waiters.count, ordering: .relaxed)
            waiters.removeAll()
            return (resumed, observers)
        }
        for continuation in resumed { continuation.resume() }
        for signal in signals { signal.socketChanged() }
    }

    /// Whether ``close()`` has been called.
    public var isClosed: Bool { lock.withLock { closed } }

    /// Calls `handler` each time what the socket can do may have changed: a message arrived, a peer
    /// made room, a subscription notification is waiting, a peer came or went, or the socket closed.
    ///
    /// The handler runs on the thread that made the change, usually one of the context's I/O threads,
    /// with no lock held. It must be short and must not block: it can take messages and send them on
    /// with ``tryReceive()`` and ``trySend(_:)`` (that is how ``Proxy``-style forwarding avoids a hand-off
    /// to another thread), but a blocking call would stall every connection of that I/O thread.
    /// Changes may be reported more than once, and a call may find nothing to do.
    ///
    /// The socket holds the handler until ``SocketObservation/cancel()``.
    public func observeChanges(_ handler: @escaping @Sendable () -> Void) -> SocketObservation {
        let observation = SocketObservation(socket: self, handler: handler)
        addObserver(observation)
        return observation
    }

    func addObserver(_ signal: any ChangeObserver) {
        lock.withLock {
            if !observers.contains(where: { $0 === signal }) {
                observers.append(signal)
                interest.add(1, ordering: .relaxed)
            }
        }
    }

    func removeObserver(_ signal: any ChangeObserver) {
        lock.withLock {
            if let index = observers.firstIndex(where: { $0 === signal }) {
                observers.remove(at: index)
                interest.subtract(1, ordering: .relaxed)
            }
        }
    }

    // MARK: - Closing

    /// Closes the socket: stops accepting, waits up to the linger period (``SocketOptions/linger``)
    /// for queued messages to be written, then closes every connection. Messages already received
    /// can still be taken with ``tryReceive()``; blocked and suspended callers are woken with
    /// ``SocketError/closed``. Calling it again does nothing.
    public func close() {
        let (alreadyClosed, stopping) = lock.withLock { () -> (Bool, [Listener]) in
            defer { closed = true; listeners.removeAll() }
            return (closed, listeners.map(\.listener))
        }
        if alreadyClosed { return }
        notifyChanged()
        for listener in stopping { try? runOnLoop(listener.loop) { listener.stop() } }
        // Linger: connectors keep (re)connecting meanwhile, so messages queued for a peer that is not
        // connected yet can still reach it within the period.
        let deadline = options.linger.map { EventLoop.now() + $0 }
        lock.withLock {
            while pipes.contains(where: { !$0.isClosed && $0.hasUnsentMessages }) {
                if let deadline, deadline <= EventLoop.now() { break }
                _ = sleep(until: deadline?.nanoseconds ?? (EventLoop.now() + .milliseconds(50)).nanoseconds)
            }
        }
        let (open, connecting) = lock.withLock { () -> ([Pipe], [Connector]) in
            defer { connectors.removeAll() }
            return (pipes, connectors.map(\.connector))
        }
        for connector in connecting { try? runOnLoop(connector.loop) { connector.stop() } }
        for pipe in open { try? runOnLoop(pipe.loop) { pipe.closeSession() } }
        stopMonitors()
    }

    // MARK: - Engine callbacks (I/O threads)

    func makeConnection(role: MechanismRole, peerAddress: String) throws(ZMTPError) -> (ConnectionConfiguration, any SecurityMechanism) {
        var configuration = ConnectionConfiguration(
            socketType: type, identity: options.routingID, maxMessageSize: options.maxMessageSize,
            handshakeTimeout: options.handshakeTimeout, heartbeatInterval: options.heartbeatInterval,
            heartbeatTTL: options.heartbeatTTL, heartbeatTimeout: options.heartbeatTimeout, peerAddress: peerAddress)
        configuration.properties = Metadata()
        let mechanism: any SecurityMechanism
        switch options.curve {
        case .server(let keyPair)?:
            mechanism = CurveServerMechanism(keyPair: keyPair, authenticates: options.zapHandler != nil, zapDomain: options.zapDomain)
        case .client(let serverKey, let keyPair)?:
            mechanism = CurveClientMechanism(serverPublicKey: serverKey, keyPair: keyPair)
        case nil:
            mechanism = NullMechanism(role: role, zapDomain: options.zapHandler == nil ? nil : options.zapDomain)
        }
        return (configuration, mechanism)
    }

    func makePipe(loop: EventLoop, survivesDisconnect: Bool = false) -> Pipe {
        Pipe(
            lock: lock, loop: loop, sendHighWaterMark: options.sendHighWaterMark,
            receiveHighWaterMark: options.receiveHighWaterMark, discardsInbound: !canReceiveMessages,
            survivesDisconnect: survivesDisconnect, readyPipes: readyPipes)
    }

    func loopForConnection() -> EventLoop {
        lock.withLock { nextConnectionLoop() }
    }

    func authenticate(_ request: ZAPRequest) -> ZAPReply {
        options.zapHandler?.authenticate(request)
            ?? ZAPReply(requestID: request.requestID, status: .success, statusText: "OK")
    }

    func pipeActivated(_ pipe: Pipe) {
        let added = lock.withLock { () -> Bool in
            if closed { return false }
            // A new (or re-made) connection to a publisher learns every subscription we hold.
            if subscribes && pipe.peer != nil { pipe.resetSubscriptions(to: ownSubscriptions.allTopics()) }
            // A pipe that survives disconnects is listed from connect() on and activated again by each
            // handshake.
            if pipe.isAttached { return false }
            pipe.isAttached = true
            pipes.append(pipe)
            return true
        }
        if added || pipe.survivesDisconnect { notifyChanged() }
    }

    func pipeClosed(_ pipe: Pipe, error: String?) {
        lock.withLock {
            // The connection is gone, so are its subscriptions (a reconnecting subscriber sends them
            // again); an XPUB application hears of the topics nobody holds any more.
            forgetSubscriptions(of: pipe)
            // A closed pipe with unread messages stays listed until they are taken
            // (nextInboundMessage removes it then), so nothing received before a disconnect is lost.
            if pipe.isClosed && pipe.pendingInbound == 0 { remove(pipe) }
        }
        notifyChanged()
    }

    /// Queues a subscription message for an XPUB's application (lock held).
    private func notify(_ message: Message) {
        guard notifications.count < Self.maxPendingNotifications else {
            droppedNotices += 1
            return
        }
        notifications.push(message)
    }

    /// Drops a peer's subscriptions (lock held).
    private func forgetSubscriptions(of pipe: Pipe) {
        guard distributesBySubscription else { return }
        let key = PipeKey(pipe: pipe)
        let all = type == .xpub && options.xpubVerboser ? peerSubscriptions.topics(of: key) : []
        let orphaned = peerSubscriptions.removeAll(for: key)
        subscriptionCounts[key.id] = nil
        if type == .xpub {
            for topic in options.xpubVerboser ? all : orphaned { notify(Message(single: [0] + topic)) }
        }
    }

    func pipeSubscription(_ pipe: Pipe, topic: [UInt8], subscribe: Bool) {
        let changed = lock.withLock { () -> Bool in
            guard distributesBySubscription, !closed, topic.count <= options.maxTopicLength else { return false }
            let key = PipeKey(pipe: pipe)
            let id = key.id
            if subscribe {
                // A peer past its limit is ignored, not obeyed: a flood costs bounded memory.
                guard subscriptionCounts[id, default: 0] < options.maxSubscriptionsPerPeer else { return false }
                let change = peerSubscriptions.add(topic, for: key)
                if change.subscriberChanged { subscriptionCounts[id, default: 0] += 1 }
                if type == .xpub && (change.topicChanged || options.xpubVerbose || options.xpubVerboser) {
                    notify(Message(single: [1] + topic))
                    return true
                }
            } else {
                let change = peerSubscriptions.remove(topic, for: key)
                if change.subscriberChanged { subscriptionCounts[id, default: 1] -= 1 }
                if type == .xpub && (change.topicChanged || options.xpubVerboser) {
                    notify(Message(single: [0] + topic))
                    return true
                }
            }
            return false
        }
        if changed { notifyChanged() }
    }

    func pipeChanged(_ pipe: Pipe) {
        notifyChanged()
    }

    func pipeFlushed(_ pipe: Pipe) {
        // Only a thread blocked in close() (linger) waits for this.
        if sleepers.load(ordering: .relaxed) > 0 { lock.broadcast() }
    }
}

/// Adapts a socket to the engine's factory and owner protocols without exposing them publicly.
///
/// It holds the socket weakly: an I/O thread may still be finishing a connection (reporting its
/// close, a last batch) when the application drops a closed socket, and must then find nothing to
/// tell rather than a destroyed object. What a factory must return without a socket is inert: a
/// connection attempt fails, a pipe is private to its connection, and ZAP refuses.
final class SocketBridge: ConnectionFactory, PipeOwner, @unchecked Sendable {
    weak var socket: Socket?
    /// Where connections go when the socket is gone (its first I/O thread).
    private let fallbackLoop: EventLoop
    init(socket: Socket, fallbackLoop: EventLoop) {
        self.socket = socket
        self.fallbackLoop = fallbackLoop
    }

    func makeConnection(role: MechanismRole, peerAddress: String) throws(ZMTPError) -> (ConnectionConfiguration, any SecurityMechanism) {
        guard let socket else { throw .local(.invalidState, "the socket was closed and released") }
        return try socket.makeConnection(role: role, peerAddress: peerAddress)
    }
    func makePipe(loop: EventLoop) -> Pipe {
        socket?.makePipe(loop: loop)
            ?? Pipe(lock: ConditionLockHandle(), loop: loop, sendHighWaterMark: 1, receiveHighWaterMark: 1, discardsInbound: true)
    }
    func loopForConnection() -> EventLoop { socket?.loopForConnection() ?? fallbackLoop }
    var pipeOwner: any PipeOwner { self }
    func authenticate(_ request: ZAPRequest) -> ZAPReply {
        socket?.authenticate(request)
            ?? ZAPReply(requestID: request.requestID, status: .internalError, statusText: "socket closed")
    }
    func pipeActivated(_ pipe: Pipe) { socket?.pipeActivated(pipe) }
    func pipeClosed(_ pipe: Pipe, error: String?) { socket?.pipeClosed(pipe, error: error) }
    func pipeChanged(_ pipe: Pipe) { socket?.pipeChanged(pipe) }
    func pipeFlushed(_ pipe: Pipe) { socket?.pipeFlushed(pipe) }
    func socketEvent(_ event: SocketEvent) { socket?.socketEvent(event) }
    func pipeSubscription(_ pipe: Pipe, topic: [UInt8], subscribe: Bool) {
        socket?.pipeSubscription(pipe, topic: topic, subscribe: subscribe)
    }
}

/// A pipe as a subscriber in the subscription trie: matching hands over the pipe itself, with no
/// lookup by identity.
struct PipeKey: Hashable {
    let pipe: Pipe
    var id: ObjectIdentifier { ObjectIdentifier(pipe) }
    static func == (lhs: PipeKey, rhs: PipeKey) -> Bool { lhs.pipe === rhs.pipe }
    func hash(into hasher: inout Hasher) { hasher.combine(id) }
}

/// Something told when a socket's readiness may have changed (a poller's signal, a change handler).
protocol ChangeObserver: AnyObject, Sendable {
    /// Called with no lock held, on the thread that made the change.
    func socketChanged()
}

/// A change handler registered with ``Socket/observeChanges(_:)``.
public final class SocketObservation: ChangeObserver {
    private weak let socket: Socket?
    private let handler: @Sendable () -> Void

    init(socket: Socket, handler: @escaping @Sendable () -> Void) {
        self.socket = socket
        self.handler = handler
    }

    func socketChanged() { handler() }

    /// Stops the calls. A call already under way on another thread may still finish after this returns.
    public func cancel() {
        socket?.removeObserver(self)
    }
}

struct WeakMonitor {
    weak var monitor: SocketMonitor?
}

final class ResultBox: @unchecked Sendable {
    @exclusivity(unchecked) var finished = false
    @exclusivity(unchecked) var error: EngineError?
}
