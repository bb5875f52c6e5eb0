// The per-peer ZMTP connection state machine.
//
//   awaitingGreetingPrefix --11 octets: signature + major >= 3--> awaitingGreetingRest
//        (we sent our first 11 octets at start)     (we now send our other 53 octets)
//   awaitingGreetingRest --64 octets: mechanism and as-server accepted--> handshaking
//        (the mechanism starts: NULL sends READY)
//   handshaking --mechanism reports completion--> ready   (event: handshakeCompleted)
//   ready: data frames become messages; SUBSCRIBE/CANCEL, PING/PONG handled; unknown commands ignored
//   any state --error, ERROR received, timeout, close()--> closed
//
// Rules that hold in every state (RFC 23, RFC 37):
// - An ERROR command from the peer ends the connection (peerError, with its reason).
// - A data frame before the handshake completed is a protocol error.
// - After any error, outbound may still hold bytes the driver should flush (an ERROR we owe the peer)
//   before closing the transport; every later call throws `connectionClosed`.
//
// The connection is sans-IO: the driver feeds received bytes with `receive(_:now:)`, pulls events with
// `nextEvent()`, queues messages with `send(_:)`, writes `outbound` to the transport, and calls
// `handleTimeout(now:)` when `nextDeadline` passes. It reads no clock and starts no thread.

/// What a connection reports to its driver.
public enum ConnectionEvent: Hashable, Sendable {
    /// Both greetings and the mechanism's handshake are done; messages may flow.
    // Indirect: boxed once per connection, so the per-message events stay small (24 octets, not 72).
    indirect case handshakeCompleted(PeerInfo)
    /// A whole multipart message arrived.
    case message(Message)
    /// The peer subscribed to a topic prefix (SUBSCRIBE, or a legacy 0x01 message to a PUB/XPUB).
    case subscribe(topic: [UInt8])
    /// The peer cancelled a subscription (CANCEL, or a legacy 0x00 message to a PUB/XPUB).
    case cancel(topic: [UInt8])
    /// The peer sent a PING; the PONG has already been queued.
    case ping(ttlDeciseconds: UInt16, context: [UInt8])
    /// The peer answered a PING.
    case pong(context: [UInt8])
    /// The handshake is paused until the driver answers with ``Connection/completeAuthentication(_:)``
    /// (a ZAP decision: RFC 27).
    indirect case authenticationRequested(ZAPRequest)
}

/// What we learned about the peer during the handshake.
public struct PeerInfo: Hashable, Sendable {
    public var version: ProtocolVersion
    public var greeting: Greeting
    public var socketType: SocketType
    public var metadata: Metadata
}

/// One ZMTP connection: greeting, security handshake, framing and heartbeats for a single peer.
///
/// Not thread-safe by design: one owner (an engine's I/O thread, a test) drives it.
public struct Connection: Sendable {
    enum State: Sendable {
        case awaitingGreetingPrefix
        case awaitingGreetingRest
        case handshaking(PeerHandshake)
        case ready(PeerInfo)
        case closed(ZMTPError?)
    }

    struct PeerHandshake: Sendable {
        var greeting: Greeting
        var context: HandshakeContext
        /// Set while the mechanism waits for ``Connection/completeAuthentication(_:)``.
        var awaitingAuthentication = false
    }

    public let configuration: ConnectionConfiguration
    private var mechanism: any SecurityMechanism
    private let mechanismTransformsFrames: Bool
    /// Our socket is a PUB or XPUB (asked for every single-frame message, so decided once).
    private let receivesSubscriptions: Bool
    /// The largest body the fast path in ``receive(_:now:)`` takes whole frames of (-1: no fast
    /// path). Only NULL connections that do not receive subscriptions use it, so that a short final
    /// data frame needs no more than what ``handle(frame:now:)`` would do with it.
    private let shortFrameLimit: Int
    /// Whether every frame is transformed on its way out and in (CURVE's MESSAGE boxes): encoding
    /// then costs per octet, which a driver may want to interleave with its writes.
    public var encodesFrames: Bool { mechanismTransformsFrames }
    private let localGreeting: [UInt8]
    private var state: State = .awaitingGreetingPrefix
    private var peerGreeting: [UInt8] = []
    private var decoder: FrameDecoder
    private var partialMessage: [[UInt8]] = []
    /// Optional so that ``nextEvent()`` moves each event out instead of copying it (no reference
    /// counting per message on the hot path).
    private var events: [ConnectionEvent?] = []
    private var eventHead = 0
    private var outboundBuffer = OutboundBuffer()

    // Deadlines and heartbeat bookkeeping.
    private var handshakeDeadline: MonotonicInstant?
    private var lastInbound: MonotonicInstant
    private var nextPingAt: MonotonicInstant?
    private var pongDeadline: MonotonicInstant?
    private var peerTTL: Duration?

    /// Starts a connection: our first 11 greeting octets are queued in ``outbound`` at once.
    /// - Throws: `invalidArgument` (blame `.local`) if the configuration cannot be encoded.
    public init(
        configuration: ConnectionConfiguration,
        mechanism: any SecurityMechanism = NullMechanism(),
        now: MonotonicInstant
    ) throws(ZMTPError) {
        _ = try configuration.localMetadata()  // validate up front: fail at creation, not mid-handshake
        self.configuration = configuration
        self.mechanism = mechanism
        self.mechanismTransformsFrames = mechanism.transformsFrames
        self.receivesSubscriptions = configuration.socketType.receivesSubscriptions
        self.shortFrameLimit = mechanism.transformsFrames || receivesSubscriptions
            ? -1 : min(Int(UInt8.max), configuration.maxMessageSize ?? Int(UInt8.max))
        self.localGreeting = Greeting(mechanism: mechanism.name, asServer: mechanism.asServer).encoded
        self.decoder = FrameDecoder(maxMessageSize: configuration.maxMessageSize)
        self.lastInbound = now
        self.handshakeDeadline = configuration.handshakeTimeout.map { now + $0 }
        outboundBuffer.append(Array(localGreeting[0..<Limits.greetingVersionPrefix]))
    }

    // MARK: - State queries

    /// The peer, once the handshake is complete.
    public var peer: PeerInfo? {
        if case .ready(let info) = state { return info }
        return nil
    }

    public var isHandshakeComplete: Bool { peer != nil }

    public var isClosed: Bool {
        if case .closed = state { return true }
        return false
    }

    /// The error that closed the connection, if one did.
    public var closeError: ZMTPError? {
        if case .closed(let error) = state { return error }
        return nil
    }

    // MARK: - Outbound bytes

    /// Bytes waiting to be written to the transport.
    public var outbound: OutboundBuffer {
        get { outboundBuffer }
        _modify { yield &outboundBuffer }
    }

    /// Removes and returns all pending outbound bytes.
    public mutating func takeOutbound() -> [UInt8] { outboundBuffer.takeAll() }

    // MARK: - Events

    /// The next event, or `nil` when there is none.
    public mutating func nextEvent() -> ConnectionEvent? {
        guard eventHead < events.count else { return nil }
        let event = events[eventHead].take()
        eventHead += 1
        if eventHead == events.count {
            events.removeAll(keepingCapacity: true)
            eventHead = 0
        }
        return event
    }

    // MARK: - Inbound bytes

    /// Feeds bytes received from the transport.
    ///
    /// - Returns: how many octets were consumed: all of them, except while the handshake is paused for
    ///   an authentication decision (``ConnectionEvent/authenticationRequested(_:)``). Nothing after the
    ///   paused command is read until ``completeAuthentication(_:)``; feed the rest again then. This keeps
    ///   the outcome independent of how the bytes were split, and lets a driver stop reading from an
    ///   unauthenticated peer (memory stays bounded by its read buffer).
    /// - Throws: the ``ZMTPError`` that closed the connection. The connection is then closed; flush
    ///   ``outbound`` (it may hold an ERROR, or the rest of our greeting) and close the transport.
    @discardableResult
    public mutating func receive(_ bytes: UnsafeRawBufferPointer, now: MonotonicInstant) throws(ZMTPError) -> Int {
        try ensureOpen()
        lastInbound = now
        pongDeadline = nil
        var input = bytes
        do throws(ZMTPError) {
            while !input.isEmpty {
                switch state {
                case .awaitingGreetingPrefix, .awaitingGreetingRest:
                    try receiveGreeting(&input)
                case .handshaking(let handshake) where handshake.awaitingAuthentication:
                    return bytes.count - input.count
                case .handshaking, .ready:
                    // Fast path: a whole short data frame with no MORE (flags octet 0), received
                    // between messages, becomes a message straight from the input: one copy, no
                    // decoder state, no intermediate frame.
                    if input.count >= 2, input[0] == 0, Int(input[1]) <= shortFrameLimit,
                        input.count >= 2 + Int(input[1]), partialMessage.isEmpty, decoder.isAtFrameBoundary,
                        case .ready = state
                    {
                        let end = 2 + Int(input[1])
                        events.append(.message(Message(copying: UnsafeRawBufferPointer(rebasing: input[2..<end]))))
                        input = UnsafeRawBufferPointer(rebasing: input[end...])
                        continue
                    }
                    guard let frame = try decoder.next(from: &input) else { return bytes.count }
                    try handle(frame: frame, now: now)
                case .closed:
                    return bytes.count - input.count
                }
            }
        } catch {
            fail(error)
            throw error
        }
        return bytes.count
    }

    /// Feeds bytes held in an array; see ``receive(_:now:)-(UnsafeRawBufferPointer,_)``.
    @discardableResult
    public mutating func receive(_ bytes: [UInt8], now: MonotonicInstant) throws(ZMTPError) -> Int {
        try bytes.withRawBytes { (raw: UnsafeRawBufferPointer) throws(ZMTPError) -> Int in
            try receive(raw, now: now)
        }
    }

    private mutating func receiveGreeting(_ input: inout UnsafeRawBufferPointer) throws(ZMTPError) {
        let take = min(Limits.greetingLength - peerGreeting.count, input.count)
        peerGreeting.append(contentsOf: UnsafeRawBufferPointer(rebasing: input[0..<take]))
        input = UnsafeRawBufferPointer(rebasing: input[take...])
        try Greeting.validatePrefix(peerGreeting)  // fails as soon as a bad octet arrives
        if case .awaitingGreetingPrefix = state, peerGreeting.count >= Limits.greetingVersionPrefix {
            outboundBuffer.append(Array(localGreeting[Limits.greetingVersionPrefix...]))
            state = .awaitingGreetingRest
        }
        guard peerGreeting.count == Limits.greetingLength else { return }
        let greeting = try Greeting.decode(peerGreeting)
        guard greeting.mechanism == mechanism.name else {
            throw .peer(.mechanismMismatch, "peer uses mechanism \(greeting.mechanism), we use \(mechanism.name)")
        }
        try mechanism.validate(peerGreeting: greeting)
        let context = HandshakeContext(
            socketType: configuration.socketType,
            localMetadata: try configuration.localMetadata(),
            version: greeting.negotiatedVersion,
            peerAddress: configuration.peerAddress
        )
        state = .handshaking(PeerHandshake(greeting: greeting, context: context))
        let step = try mechanism.start(context)
        try apply(step, greeting: greeting, context: context)
    }

    private mutating func handle(frame: consuming Frame, now: MonotonicInstant) throws(ZMTPError) {
        switch state {
        case .handshaking(let handshake):
            guard frame.isCommand else {
                throw .peer(.unexpectedCommand, "data frame before the handshake completed")
            }
            if let reason = try Self.peekError(frame.body)?.reasonText {
                throw Self.peerError(reason)
            }
            let step = try mechanism.receive(command: frame.body, handshake.context)
            try apply(step, greeting: handshake.greeting, context: handshake.context)

        case .ready:
            // Hot path: no payload is bound here, so no per-frame copy of the peer's metadata.
            let frame = mechanismTransformsFrames ? try mechanism.decode(frame) : frame
            if frame.isCommand {
                try handleCommand(frame.body)
            } else if frame.more {
                partialMessage.append(frame.body)
            } else if partialMessage.isEmpty {
                deliver(single: frame.body)
            } else {
                partialMessage.append(frame.body)
                var frames: [[UInt8]] = []
                swap(&frames, &partialMessage)
                events.append(.message(Message(frames: frames)))
            }

        case .awaitingGreetingPrefix, .awaitingGreetingRest, .closed:
            return
        }
    }

    /// A single-frame message, which to a PUB or XPUB may be a legacy subscription (RFC 29 / ZMTP 3.0).
    private mutating func deliver(single body: consuming [UInt8]) {
        if receivesSubscriptions, let first = body.first, first <= 1 {
            let topic = Array(body.dropFirst())
            events.append(first == 1 ? .subscribe(topic: topic) : .cancel(topic: topic))
        } else if body.count <= Message.Frames.inlineCapacity {
            // Kept inline: the array is freed here, on the thread that allocated it, rather than by
            // the application thread (glibc's cross-thread frees are the costly kind).
            events.append(.message(body.withUnsafeBytes { Message(copying: $0) }))
        } else {
            events.append(.message(Message(single: body)))
        }
    }

    private mutating func handleCommand(_ body: [UInt8]) throws(ZMTPError) {
        switch try Command.decode(body) {
        case .error(let reason):
            throw Self.peerError(String(decoding: reason, as: UTF8.self))
        case .subscribe(let topic):
            events.append(.subscribe(topic: topic))
        case .cancel(let topic):
            events.append(.cancel(topic: topic))
        case .ping(let ttl, let context):
            try sendCommand(.pong(context: context))
            peerTTL = ttl == 0 ? nil : .milliseconds(Int64(ttl) * 100)
            events.append(.ping(ttlDeciseconds: ttl, context: context))
        case .pong(let context):
            events.append(.pong(context: context))
        case .ready:
            throw .peer(.unexpectedCommand, "READY after the handshake completed")
        case .other:
            // Unknown commands after the handshake are ignored (RFC 37 leaves room for extensions).
            break
        }
    }

    private mutating func apply(_ step: HandshakeStep, greeting: Greeting, context: HandshakeContext) throws(ZMTPError) {
        for command in step.commands { outboundBuffer.appendFrame(command, command: true) }
        if let request = step.authentication {
            state = .handshaking(PeerHandshake(greeting: greeting, context: context, awaitingAuthentication: true))
            events.append(.authenticationRequested(request))
            return
        }
        guard let (metadata, socketType) = step.completion else { return }
        let info = PeerInfo(version: context.version, greeting: greeting, socketType: socketType, metadata: metadata)
        state = .ready(info)
        handshakeDeadline = nil
        if let interval = configuration.heartbeatInterval, info.version == .zmtp31 {
            nextPingAt = lastInbound + interval
        }
        events.append(.handshakeCompleted(info))
    }

    /// Resumes a handshake paused by ``ConnectionEvent/authenticationRequested(_:)`` with the
    /// authenticator's reply: 200 completes it; 300 closes; 400 and 500 close after an ERROR whose
    /// reason is the status code (what libzmq clients recognise as an authentication failure).
    /// - Throws: `authenticationFailed` when refused (the connection is then closed; flush
    ///   ``outbound``), `invalidState` when no authentication is pending.
    public mutating func completeAuthentication(_ reply: ZAPReply) throws(ZMTPError) {
        try ensureOpen()
        guard case .handshaking(var handshake) = state, handshake.awaitingAuthentication else {
            throw .local(.invalidState, "no authentication is pending")
        }
        handshake.awaitingAuthentication = false
        state = .handshaking(handshake)
        do throws(ZMTPError) {
            let step = try mechanism.authenticated(reply, handshake.context)
            try apply(step, greeting: handshake.greeting, context: handshake.context)
        } catch {
            fail(error)
            throw error
        }
    }

    /// Decodes a command only far enough to see whether it is ERROR.
    private static func peekError(_ body: [UInt8]) throws(ZMTPError) -> Command? {
        guard body.count >= 6, body[0] == 5, body[1...5].elementsEqual(Command.errorName) else { return nil }
        return try Command.decode(body)
    }

    // MARK: - Sending

    /// Queues a multipart message.
    /// - Throws: `invalidState` before the handshake completed, `invalidArgument` for a message with no
    ///   frames, `connectionClosed` after close.
    public mutating func send(_ message: Message) throws(ZMTPError) {
        // Hot path: test the state without copying the peer's info out of it.
        guard case .ready = state else { try ensureReady(); return }
        guard !message.frames.isEmpty else { throw .local(.invalidArgument, "a message needs at least one frame") }
        if mechanismTransformsFrames {
            let last = message.frames.count - 1
            if message.frames.isInline {
                // Read in place: an inline frame is never made into an array to be sealed.
                try message.frames.withUnsafeBytes(ofFrame: 0) { (body: UnsafeRawBufferPointer) throws(ZMTPError) in
                    try mechanism.encode(frameBytes: body, more: false, isCommand: false, into: &outboundBuffer)
                }
                return
            }
            for index in message.frames.indices {
                try mechanism.encode(frame: message.frames[index], more: index != last, isCommand: false, into: &outboundBuffer)
            }
        } else {
            outboundBuffer.appendMessage(message)
        }
    }

    /// Subscribes the peer (a publisher) to `topic`: a SUBSCRIBE command to a ZMTP 3.1 peer, a legacy
    /// 0x01 message to a 3.0 peer.
    public mutating func subscribe(_ topic: [UInt8]) throws(ZMTPError) {
        try sendSubscription(topic, subscribe: true)
    }

    /// Cancels a subscription: CANCEL to 3.1 peers, a legacy 0x00 message to 3.0 peers.
    public mutating func cancel(_ topic: [UInt8]) throws(ZMTPError) {
        try sendSubscription(topic, subscribe: false)
    }

    private mutating func sendSubscription(_ topic: [UInt8], subscribe: Bool) throws(ZMTPError) {
        let peer = try ensureReady()
        if peer.version == .zmtp31 {
            try sendCommand(subscribe ? .subscribe(topic: topic) : .cancel(topic: topic))
        } else {
            try send(Message(frames: [[subscribe ? 1 : 0] + topic]))
        }
    }

    /// Sends a PING now (heartbeats send them by themselves when configured).
    public mutating func ping(context: [UInt8] = [], now: MonotonicInstant) throws(ZMTPError) {
        try ensureReady()
        let ttl = configuration.heartbeatTTL.map(Self.deciseconds) ?? 0
        try sendCommand(.ping(ttlDeciseconds: ttl, context: context))
        if pongDeadline == nil, let timeout = configuration.heartbeatTimeout ?? configuration.heartbeatInterval {
            pongDeadline = now + timeout
        }
    }

    private mutating func sendCommand(_ command: Command) throws(ZMTPError) {
        let body = try command.encodedBody()
        if mechanismTransformsFrames {
            try mechanism.encode(frame: body, more: false, isCommand: true, into: &outboundBuffer)
        } else {
            outboundBuffer.appendFrame(body, command: true)
        }
    }

    /// Closes the connection locally. Pending outbound bytes stay for the driver to flush or drop.
    public mutating func close() {
        if !isClosed { state = .closed(nil) }
    }

    // MARK: - Time

    /// The earliest instant at which ``handleTimeout(now:)`` has work to do, or `nil`.
    public var nextDeadline: MonotonicInstant? {
        if isClosed { return nil }
        // Asked after every read: no array, just the earliest of four optionals.
        func earlier(_ a: MonotonicInstant?, _ b: MonotonicInstant?) -> MonotonicInstant? {
            guard let a else { return b }
            guard let b else { return a }
            return min(a, b)
        }
        return earlier(earlier(handshakeDeadline, peerTTL.map { lastInbound + $0 }), earlier(pongDeadline, nextPingAt))
    }

    /// Runs whatever is due at `now`: closes on a handshake or heartbeat timeout, sends due PINGs.
    /// - Throws: `handshakeTimeout` or `heartbeatTimeout` (the connection is then closed).
    public mutating func handleTimeout(now: MonotonicInstant) throws(ZMTPError) {
        guard !isClosed else { return }
        do throws(ZMTPError) {
            if let deadline = handshakeDeadline, deadline <= now {
                throw .peer(.handshakeTimeout, "handshake not complete after \(deadline.duration(since: .zero)) deadline")
            }
            if let ttl = peerTTL, lastInbound + ttl <= now {
                throw .peer(.heartbeatTimeout, "peer silent for longer than its heartbeat TTL of \(ttl)")
            }
            if let deadline = pongDeadline, deadline <= now {
                throw .peer(.heartbeatTimeout, "no traffic from peer within the heartbeat timeout after our PING")
            }
            if let due = nextPingAt, due <= now, let interval = configuration.heartbeatInterval {
                try ping(now: now)
                nextPingAt = now + interval
            }
        } catch {
            fail(error)
            throw error
        }
    }

    static func deciseconds(_ duration: Duration) -> UInt16 {
        let (seconds, attoseconds) = duration.components
        let value = Int128(seconds) * 10 + Int128(attoseconds / 100_000_000_000_000_000)
        return UInt16(clamping: value)
    }

    // MARK: - Errors

    /// The error for a peer's ERROR command. A reason of exactly `300`, `400` or `500` is a ZAP status
    /// (libzmq's test, `mechanism_base_t::handle_error_reason`), kept as ``ZMTPError/authenticationStatus``.
    static func peerError(_ reason: String) -> ZMTPError {
        var error = ZMTPError.peer(.peerError, "peer sent ERROR: \(reason)")
        let octets = Array(reason.utf8)
        if octets.count == 3, (UInt8(ascii: "3")...UInt8(ascii: "5")).contains(octets[0]),
            octets[1] == UInt8(ascii: "0"), octets[2] == UInt8(ascii: "0")
        {
            error.authenticationStatus = Int(octets[0] - UInt8(ascii: "0")) * 100
        }
        return error
    }

    private mutating func fail(_ error: ZMTPError) {
        guard !isClosed else { return }
        if let reason = error.errorCommandReason,
            let body = try? Command.error(reason: Array(reason.utf8.prefix(Limits.maxErrorReasonLength)))
                .encodedBody()
        {
            outboundBuffer.appendFrame(body, command: true)
        }
        state = .closed(error)
        partialMessage = []
        nextPingAt = nil
        pongDeadline = nil
        handshakeDeadline = nil
    }

    private func ensureOpen() throws(ZMTPError) {
        if case .closed(let error) = state {
            throw .local(.connectionClosed, "connection is closed" + (error.map { " (\($0))" } ?? ""))
        }
    }

    @discardableResult
    private func ensureReady() throws(ZMTPError) -> PeerInfo {
        try ensureOpen()
        guard case .ready(let info) = state else {
            throw .local(.invalidState, "the handshake has not completed")
        }
        return info
    }
}
