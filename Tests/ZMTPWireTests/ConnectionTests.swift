import Testing
@testable import ZMTPWire

/// Two connections wired together in memory, in the spirit of quinn-proto's `Pair`: bytes move only
/// when `drive` is called, and it stops after a bounded number of rounds.
struct Pair {
    var a: Connection
    var b: Connection
    var now = MonotonicInstant.zero
    var eventsA: [ConnectionEvent] = []
    var eventsB: [ConnectionEvent] = []

    init(_ configA: ConnectionConfiguration, _ configB: ConnectionConfiguration) throws {
        a = try Connection(configuration: configA, now: .zero)
        b = try Connection(configuration: configB, now: .zero)
    }

    /// Moves bytes both ways until neither side has anything to send (at most `rounds` times).
    mutating func drive(rounds: Int = 16) throws {
        for _ in 0..<rounds {
            let toB = a.takeOutbound()
            let toA = b.takeOutbound()
            if toB.isEmpty && toA.isEmpty { return }
            if !toB.isEmpty { try b.receive(toB, now: now) }
            if !toA.isEmpty { try a.receive(toA, now: now) }
            while let event = a.nextEvent() { eventsA.append(event) }
            while let event = b.nextEvent() { eventsB.append(event) }
        }
        Issue.record("pair did not go quiet within \(rounds) rounds")
    }
}

/// A byte-level peer: builds what a scripted remote sends.
enum Script {
    static func greeting(major: UInt8 = 3, minor: UInt8 = 1, mechanism: MechanismName = .null, asServer: Bool = false) -> [UInt8] {
        Greeting(major: major, minor: minor, mechanism: mechanism, asServer: asServer).encoded
    }

    static func command(_ command: Command) -> [UInt8] {
        var out: [UInt8] = []
        // swiftlint:disable:next force_try
        FrameEncoder.appendFrame(try! command.encodedBody(), command: true, to: &out)
        return out
    }

    static func ready(_ socketType: String, _ extra: [(String, [UInt8])] = []) -> [UInt8] {
        command(.ready(try! Metadata([("Socket-Type", bytes(socketType))] + extra)))
    }

    static func message(_ frames: [UInt8]...) -> [UInt8] {
        var out: [UInt8] = []
        FrameEncoder.appendMessage(Message(frames: frames), to: &out)
        return out
    }
}

@Suite("Connection state machine")
struct ConnectionTests {
    @Test("two connections complete a NULL handshake and exchange multipart messages both ways")
    func handshakeAndMultipart() throws {
        var pair = try Pair(
            ConnectionConfiguration(socketType: .push, identity: bytes("pusher"), properties: try Metadata([("X-Zeek", bytes("1"))])),
            ConnectionConfiguration(socketType: .pull))
        try pair.drive()
        guard case .handshakeCompleted(let peerOfB) = pair.eventsB.first, case .handshakeCompleted(let peerOfA) = pair.eventsA.first else {
            Issue.record("no handshake: \(pair.eventsA) / \(pair.eventsB)")
            return
        }
        #expect(peerOfB.socketType == .push)
        #expect(peerOfB.metadata.identity == bytes("pusher"))
        #expect(peerOfB.metadata["x-zeek"] == bytes("1"))
        #expect(peerOfA.socketType == .pull)
        #expect(peerOfA.version == .zmtp31)

        let big = [UInt8](repeating: 0x5A, count: 100_000)
        try pair.a.send(Message(bytes("log-write"), bytes("conn"), big))
        try pair.a.send(Message([]))
        try pair.b.send(Message(bytes("back")))
        try pair.drive()
        #expect(pair.eventsB.dropFirst() == [.message(Message(bytes("log-write"), bytes("conn"), big)), .message(Message([]))])
        #expect(pair.eventsA.dropFirst() == [.message(Message(bytes("back")))])
    }

    @Test("as NULL server, sends READY only in reply to the client's READY (RFC 37)")
    func nullServerRepliesToReady() throws {
        var server = try Connection(
            configuration: ConnectionConfiguration(socketType: .pull), mechanism: NullMechanism(role: .server), now: .zero)
        try server.receive(Script.greeting(), now: .zero)
        #expect(server.takeOutbound().count == 64, "greeting only, no READY yet")
        try server.receive(Script.ready("PUSH"), now: .zero)
        #expect(try commands(in: server.takeOutbound()) == [.ready(try Metadata([("Socket-Type", bytes("PULL"))]))])
        #expect(server.isHandshakeComplete)

        // A client and a server wired together complete the handshake too.
        var pair = try Pair(ConnectionConfiguration(socketType: .push), ConnectionConfiguration(socketType: .pull))
        pair.b = try Connection(configuration: ConnectionConfiguration(socketType: .pull), mechanism: NullMechanism(role: .server), now: .zero)
        try pair.drive()
        #expect(pair.a.isHandshakeComplete && pair.b.isHandshakeComplete)
    }

    @Test("a NULL server with a ZAP domain asks the authenticator; with an empty domain it does not")
    func nullWithZAPDomain() throws {
        var server = try Connection(
            configuration: ConnectionConfiguration(socketType: .pull, peerAddress: "127.0.0.1"),
            mechanism: NullMechanism(role: .server, zapDomain: "zeek"), now: .zero)
        try server.receive(Script.greeting() + Script.ready("PUSH"), now: .zero)
        guard case .authenticationRequested(let request) = server.nextEvent() else {
            Issue.record("no authentication request")
            return
        }
        #expect(request.mechanism == "NULL" && request.domain == "zeek" && request.credentials.isEmpty)
        #expect(request.address == "127.0.0.1")
        _ = server.takeOutbound()
        expectError(.authenticationFailed) {
            try server.completeAuthentication(ZAPReply(requestID: request.requestID, status: .authenticationFailure, statusText: "no"))
        }
        #expect(try commands(in: server.takeOutbound()) == [.error("400")], "ERROR 400 and no READY")

        var open = try Connection(
            configuration: ConnectionConfiguration(socketType: .pull),
            mechanism: NullMechanism(role: .server, zapDomain: ""), now: .zero)
        try open.receive(Script.greeting() + Script.ready("PUSH"), now: .zero)
        #expect(open.isHandshakeComplete, "an empty domain means no authentication, as in libzmq")
    }

    @Test("checks Identity only from peers that may announce one")
    func identityRules() throws {
        var connection = try Connection(configuration: ConnectionConfiguration(socketType: .router), now: .zero)
        expectError(.malformedMetadata) {
            try connection.receive(Script.greeting() + Script.ready("DEALER", [("Identity", [0, 1])]), now: .zero)
        }
        connection = try Connection(configuration: ConnectionConfiguration(socketType: .router), now: .zero)
        try connection.receive(Script.greeting() + Script.ready("DEALER", [("Identity", [1])]), now: .zero)
        #expect(connection.peer?.metadata.identity == [1])
        // RFC 37: other types' Identity is ignored, so a PUSH may send anything there.
        connection = try Connection(configuration: ConnectionConfiguration(socketType: .pull), now: .zero)
        try connection.receive(Script.greeting() + Script.ready("PUSH", [("Identity", [0])]), now: .zero)
        #expect(connection.isHandshakeComplete)
        #expect(throws: ZMTPError.self) {
            try Connection(configuration: ConnectionConfiguration(socketType: .dealer, identity: [0, 1]), now: .zero)
        }
    }

    @Test("sends 11 greeting octets at once and the rest only after the peer's first 11")
    func stagedGreeting() throws {
        var connection = try Connection(configuration: ConnectionConfiguration(socketType: .pull), now: .zero)
        let ours = Greeting(mechanism: .null, asServer: false).encoded
        #expect(connection.takeOutbound() == Array(ours[0..<11]))
        // libzmq sends its 10-octet signature and waits for ours (libzmq-behaviours.md §8).
        let theirs = Script.greeting()
        try connection.receive(Array(theirs[0..<10]), now: .zero)
        #expect(connection.takeOutbound().isEmpty)
        try connection.receive([theirs[10]], now: .zero)
        #expect(connection.takeOutbound() == Array(ours[11...]))
        try connection.receive(Array(theirs[11...]), now: .zero)
        // The greeting is complete: NULL sends READY right away.
        let ready = connection.takeOutbound()
        #expect(try commands(in: ready) == [.ready(try Metadata([("Socket-Type", bytes("PULL"))]))])
    }

    @Test("completes the handshake with a scripted peer for any split of its bytes")
    func handshakeForAnySplit() throws {
        let remote = Script.greeting() + Script.ready("PUSH") + Script.message(bytes("a"), bytes("b")) + Script.message(bytes("c"))
        for (name, chunks) in splits(remote) {
            var connection = try Connection(configuration: ConnectionConfiguration(socketType: .pull), now: .zero)
            var events: [ConnectionEvent] = []
            for chunk in chunks {
                try connection.receive(chunk, now: .zero)
                while let event = connection.nextEvent() { events.append(event) }
            }
            #expect(events.count == 3, "split \(name)")
            #expect(Array(events.dropFirst()) == [.message(Message(bytes("a"), bytes("b"))), .message(Message(bytes("c")))], "split \(name)")
        }
    }

    @Test("as NULL server, answers an incompatible socket type with ERROR alone (no READY) and closes")
    func incompatibleSocketType() throws {
        var connection = try Connection(
            configuration: ConnectionConfiguration(socketType: .pull), mechanism: NullMechanism(role: .server), now: .zero)
        _ = connection.takeOutbound()
        let error = expectError(.incompatibleSocketType) {
            try connection.receive(Script.greeting() + Script.ready("PUB"), now: .zero)
        }
        #expect(error?.blame == .peer)
        #expect(connection.isClosed)
        let sent = try commands(in: Array(connection.takeOutbound().dropFirst(53)))
        #expect(sent == [Command.error("invalid-socket-type")])
        expectError(.connectionClosed) { try connection.receive([0], now: .zero) }
    }

    @Test("closes on a READY without Socket-Type, with an ERROR")
    func missingSocketType() throws {
        var connection = try Connection(configuration: ConnectionConfiguration(socketType: .pull), now: .zero)
        expectError(.incompatibleSocketType) {
            try connection.receive(Script.greeting() + Script.command(.ready(Metadata())), now: .zero)
        }
        let sent = try commands(in: Array(connection.takeOutbound().dropFirst(64)))
        #expect(sent.last == Command.error("missing-socket-type"))
    }

    @Test("rejects a mechanism mismatch, an as-server NULL peer and a data frame before READY")
    func handshakeViolations() throws {
        var connection = try Connection(configuration: ConnectionConfiguration(socketType: .pull), now: .zero)
        expectError(.mechanismMismatch) { try connection.receive(Script.greeting(mechanism: .curve), now: .zero) }

        connection = try Connection(configuration: ConnectionConfiguration(socketType: .pull), now: .zero)
        expectError(.invalidAsServer) { try connection.receive(Script.greeting(asServer: true), now: .zero) }

        connection = try Connection(configuration: ConnectionConfiguration(socketType: .pull), now: .zero)
        expectError(.unexpectedCommand) { try connection.receive(Script.greeting() + Script.message(bytes("early")), now: .zero) }

        connection = try Connection(configuration: ConnectionConfiguration(socketType: .pull), now: .zero)
        expectError(.unexpectedCommand) {
            try connection.receive(Script.greeting() + Script.command(.other(name: "HELLO", data: [])), now: .zero)
        }

        connection = try Connection(configuration: ConnectionConfiguration(socketType: .pull), now: .zero)
        expectError(.unsupportedVersion) { try connection.receive(Array(Script.greeting(major: 2)[0..<11]), now: .zero) }
        #expect(connection.takeOutbound().count == 11, "a 2.0 peer must never see the rest of our greeting")

        connection = try Connection(configuration: ConnectionConfiguration(socketType: .pull), now: .zero)
        expectError(.invalidSignature) { try connection.receive(bytes("GET / HTTP/1.1\r\n"), now: .zero) }
    }

    @Test("an ERROR from the peer closes the connection with its reason, during and after the handshake")
    func peerError() throws {
        var connection = try Connection(configuration: ConnectionConfiguration(socketType: .pull), now: .zero)
        var error = expectError(.peerError) {
            try connection.receive(Script.greeting() + Script.command(.error("go away")), now: .zero)
        }
        #expect(error?.reason.contains("go away") == true)

        connection = try Connection(configuration: ConnectionConfiguration(socketType: .pull), now: .zero)
        try connection.receive(Script.greeting() + Script.ready("PUSH"), now: .zero)
        error = expectError(.peerError) { try connection.receive(Script.command(.error("bye")), now: .zero) }
        #expect(connection.isClosed)
        #expect(error != nil)
        #expect(error?.authenticationStatus == nil)
    }

    @Test("an ERROR whose reason is exactly 300, 400 or 500 carries that ZAP status (libzmq's rule)")
    func peerErrorStatus() throws {
        let cases: [(String, Int?)] = [
            ("400", 400), ("300", 300), ("500", 500), ("200", nil), ("600", nil), ("401", nil), ("4000", nil),
            ("40", nil), ("invalid-socket-type", nil),
        ]
        for (reason, status) in cases {
            var connection = try Connection(configuration: ConnectionConfiguration(socketType: .pull), now: .zero)
            let error = expectError(.peerError) {
                try connection.receive(Script.greeting() + Script.command(.error(reason)), now: .zero)
            }
            #expect(error?.authenticationStatus == status, "reason \(reason)")
        }
    }

    @Test("a 3.1 subscriber sends SUBSCRIBE/CANCEL commands; a 3.0 one sends legacy messages")
    func subscriptionEncodings() throws {
        var pair = try Pair(ConnectionConfiguration(socketType: .sub), ConnectionConfiguration(socketType: .xpub))
        try pair.drive()
        try pair.a.subscribe(bytes("zeek."))
        let wire = pair.a.takeOutbound()
        #expect(wire == Script.command(.subscribe(topic: bytes("zeek."))))
        try pair.b.receive(wire, now: .zero)
        try pair.a.cancel(bytes("zeek."))
        try pair.b.receive(pair.a.takeOutbound(), now: .zero)
        var events: [ConnectionEvent] = []
        while let event = pair.b.nextEvent() { events.append(event) }
        #expect(events == [.subscribe(topic: bytes("zeek.")), .cancel(topic: bytes("zeek."))])

        // Against a scripted 3.0 publisher, the same calls produce 0x01/0x00 messages.
        var sub = try Connection(configuration: ConnectionConfiguration(socketType: .sub), now: .zero)
        try sub.receive(Script.greeting(minor: 0) + Script.ready("PUB"), now: .zero)
        #expect(sub.peer?.version == .zmtp30)
        _ = sub.takeOutbound()
        try sub.subscribe(bytes("t"))
        try sub.cancel(bytes("t"))
        #expect(sub.takeOutbound() == Script.message([1] + bytes("t")) + Script.message([0] + bytes("t")))
    }

    @Test("a publisher reads legacy 0x01/0x00 messages as subscriptions; a PULL does not")
    func legacySubscriptionsOnlyForPublishers() throws {
        var pub = try Connection(configuration: ConnectionConfiguration(socketType: .pub), now: .zero)
        try pub.receive(Script.greeting() + Script.ready("XSUB") + Script.message([1] + bytes("a")) + Script.message([0] + bytes("a")) + Script.message([2]), now: .zero)
        var events: [ConnectionEvent] = []
        while let event = pub.nextEvent() { events.append(event) }
        #expect(Array(events.dropFirst()) == [.subscribe(topic: bytes("a")), .cancel(topic: bytes("a")), .message(Message([2]))])

        var pull = try Connection(configuration: ConnectionConfiguration(socketType: .pull), now: .zero)
        try pull.receive(Script.greeting() + Script.ready("PUSH") + Script.message([1] + bytes("a")), now: .zero)
        _ = pull.nextEvent()
        #expect(pull.nextEvent() == .message(Message([1] + bytes("a"))))
    }

    @Test("answers PING with a PONG echoing the context and ignores unknown commands")
    func pingPong() throws {
        var connection = try Connection(configuration: ConnectionConfiguration(socketType: .pull), now: .zero)
        try connection.receive(Script.greeting() + Script.ready("PUSH"), now: .zero)
        _ = connection.takeOutbound()
        try connection.receive(Script.command(.ping(ttlDeciseconds: 10, context: bytes("ctx"))) + Script.command(.other(name: "XUNKNOWN", data: [1])), now: .zero)
        #expect(connection.takeOutbound() == Script.command(.pong(context: bytes("ctx"))))
        _ = connection.nextEvent()
        #expect(connection.nextEvent() == .ping(ttlDeciseconds: 10, context: bytes("ctx")))
        #expect(connection.nextEvent() == nil)
        #expect(!connection.isClosed)
    }

    @Test("closes a connection whose handshake does not finish in time")
    func handshakeTimeout() throws {
        var config = ConnectionConfiguration(socketType: .pull)
        config.handshakeTimeout = .seconds(30)
        var connection = try Connection(configuration: config, now: .zero)
        try connection.receive(Array(Script.greeting()[0..<20]), now: .zero + .seconds(1))
        #expect(connection.nextDeadline == .zero + .seconds(30))
        try connection.handleTimeout(now: .zero + .seconds(29))
        #expect(!connection.isClosed)
        expectError(.handshakeTimeout) { try connection.handleTimeout(now: .zero + .seconds(30)) }
        #expect(connection.isClosed)
    }

    @Test("honours a PING TTL of 65.6 s without libzmq's 16-bit wrap, refreshed by any traffic")
    func peerTTLDoesNotWrap() throws {
        var connection = try Connection(configuration: ConnectionConfiguration(socketType: .pull), now: .zero)
        try connection.receive(Script.greeting() + Script.ready("PUSH") + Script.command(.ping(ttlDeciseconds: 656, context: [])), now: .zero)
        // libzmq closes after 64 ms here (libzmq-behaviours.md §7).
        try connection.handleTimeout(now: .zero + .milliseconds(100))
        #expect(!connection.isClosed)
        #expect(connection.nextDeadline == .zero + .milliseconds(65_600))
        try connection.receive(Script.message(bytes("x")), now: .zero + .seconds(60))
        try connection.handleTimeout(now: .zero + .seconds(100))
        #expect(!connection.isClosed)
        expectError(.heartbeatTimeout) { try connection.handleTimeout(now: .zero + .milliseconds(125_600)) }
    }

    @Test("sends PINGs on the heartbeat interval and closes when nothing answers")
    func heartbeats() throws {
        var config = ConnectionConfiguration(socketType: .pull)
        config.heartbeatInterval = .seconds(1)
        config.heartbeatTTL = .seconds(5)
        config.heartbeatTimeout = .seconds(3)
        var connection = try Connection(configuration: config, now: .zero)
        try connection.receive(Script.greeting() + Script.ready("PUSH"), now: .zero)
        _ = connection.takeOutbound()
        #expect(connection.nextDeadline == .zero + .seconds(1))
        try connection.handleTimeout(now: .zero + .seconds(1))
        #expect(connection.takeOutbound() == Script.command(.ping(ttlDeciseconds: 50, context: [])))
        // A PONG (any traffic) clears the timeout.
        try connection.receive(Script.command(.pong(context: [])), now: .zero + .seconds(2))
        try connection.handleTimeout(now: .zero + .seconds(2))
        #expect(connection.takeOutbound() == Script.command(.ping(ttlDeciseconds: 50, context: [])))
        // Silence from now on: the timeout armed by the PING at t=2 fires at t=5.
        try connection.handleTimeout(now: .zero + .seconds(3))
        try connection.handleTimeout(now: .zero + .seconds(4))
        expectError(.heartbeatTimeout) { try connection.handleTimeout(now: .zero + .seconds(5)) }
    }

    @Test("3.0 peers get no PINGs")
    func noPingsTo30Peers() throws {
        var config = ConnectionConfiguration(socketType: .pull)
        config.heartbeatInterval = .seconds(1)
        var connection = try Connection(configuration: config, now: .zero)
        try connection.receive(Script.greeting(minor: 0) + Script.ready("PUSH"), now: .zero)
        #expect(connection.nextDeadline == nil)
    }

    @Test("enforces the maximum message size on data frames after the handshake")
    func maxMessageSize() throws {
        var connection = try Connection(configuration: ConnectionConfiguration(socketType: .pull, maxMessageSize: 4), now: .zero)
        try connection.receive(Script.greeting() + Script.ready("PUSH") + Script.message(bytes("1234")), now: .zero)
        expectError(.messageTooLarge) { try connection.receive(Script.message(bytes("12345")), now: .zero) }
    }

    @Test("refuses to send before the handshake and refuses empty messages")
    func localMisuse() throws {
        var pair = try Pair(ConnectionConfiguration(socketType: .push), ConnectionConfiguration(socketType: .pull))
        let early = expectError(.invalidState) { try pair.a.send(Message(bytes("x"))) }
        #expect(early?.blame == .local)
        try pair.drive()
        expectError(.invalidArgument) { try pair.a.send(Message(frames: [])) }
        #expect(throws: ZMTPError.self) {
            try Connection(configuration: ConnectionConfiguration(socketType: .push, identity: [UInt8](repeating: 1, count: 256)), now: .zero)
        }
    }
}
