import Foundation
import Testing
import ZMTPFuzzing
@testable import ZMTPWire

/// A CURVE client and server wired in memory (libsodium unless `crypto` says otherwise).
struct CurvePair {
    var client: Connection
    var server: Connection
    var clientEvents: [ConnectionEvent] = []
    var serverEvents: [ConnectionEvent] = []
    var handler: (any ZAPHandler)?

    static let serverKeys = CurveKeyPair.generate()
    static let clientKeys = CurveKeyPair.generate()

    init(
        clientKeys: CurveKeyPair = Self.clientKeys, serverKeys: CurveKeyPair = Self.serverKeys,
        serverKnownToClient: CurvePublicKey? = nil, handler: (any ZAPHandler)? = AllowListZAPHandler(allowedClientKeys: [Self.clientKeys.publicKey]),
        clientType: SocketType = .push, serverType: SocketType = .pull
    ) throws {
        client = try Connection(
            configuration: ConnectionConfiguration(socketType: clientType),
            mechanism: CurveClientMechanism(serverPublicKey: serverKnownToClient ?? serverKeys.publicKey, keyPair: clientKeys),
            now: .zero)
        server = try Connection(
            configuration: ConnectionConfiguration(socketType: serverType, peerAddress: "127.0.0.1"),
            mechanism: CurveServerMechanism(secretKey: serverKeys.secretKey, authenticates: handler != nil),
            now: .zero)
        self.handler = handler
    }

    /// Moves bytes until the client has queued its INITIATE, and returns that (undelivered).
    mutating func runUntilInitiate() throws -> [UInt8] {
        for _ in 0..<8 {
            let toServer = client.takeOutbound()
            if toServer.contains(subsequence: [8] + Array("INITIATE".utf8)) { return toServer }
            try server.receive(toServer, now: .zero)
            try client.receive(server.takeOutbound(), now: .zero)
        }
        throw ZMTPError.local(.invalidState, "no INITIATE")
    }

    /// Moves bytes until quiet, answering ZAP requests with the handler. Errors propagate.
    mutating func drive(rounds: Int = 16) throws {
        for _ in 0..<rounds {
            let toServer = client.takeOutbound()
            let toClient = server.takeOutbound()
            if toServer.isEmpty && toClient.isEmpty { return }
            if !toServer.isEmpty { try server.receive(toServer, now: .zero) }
            if !toClient.isEmpty { try client.receive(toClient, now: .zero) }
            while let event = client.nextEvent() { clientEvents.append(event) }
            while let event = server.nextEvent() {
                serverEvents.append(event)
                if case .authenticationRequested(let request) = event, let handler {
                    try server.completeAuthentication(handler.authenticate(request))
                }
            }
        }
    }
}

@Suite("CURVE (libsodium)")
struct CurveSodiumTests {
    @Test("client and server complete the handshake, authenticate via ZAP and exchange messages both ways")
    func handshakeAndMessages() throws {
        var pair = try CurvePair()
        try pair.drive()
        #expect(pair.client.isHandshakeComplete && pair.server.isHandshakeComplete)
        guard case .authenticationRequested(let request) = pair.serverEvents.first else {
            Issue.record("no ZAP request: \(pair.serverEvents)")
            return
        }
        #expect(request.mechanism == "CURVE")
        #expect(request.curveClientKey == CurvePair.clientKeys.publicKey)
        #expect(request.address == "127.0.0.1")
        #expect(pair.server.peer?.metadata["User-Id"] == Array("0".utf8), "ZAP's user id becomes User-Id")
        #expect(pair.server.peer?.socketType == .push)

        let big = [UInt8](repeating: 0xEE, count: 70_000)
        try pair.client.send(Message(Array("log-write".utf8), [], big))
        try pair.server.send(Message(Array("back".utf8)))
        try pair.drive()
        let serverMessages = pair.serverEvents.compactMap { if case .message(let m) = $0 { m } else { nil } }
        let clientMessages = pair.clientEvents.compactMap { if case .message(let m) = $0 { m } else { nil } }
        #expect(serverMessages == [Message(Array("log-write".utf8), [], big)])
        #expect(clientMessages == [Message(Array("back".utf8))])
    }

    @Test("a message held inline (a small frame received elsewhere, as a proxy forwards it) is sealed and opened like any other")
    func inlineMessageOverCurve() throws {
        var pair = try CurvePair()
        try pair.drive()
        let small = Array("zeek/topic".utf8)
        let inline = small.withUnsafeBytes { Message(copying: $0) }
        #expect(inline.frames.isInline)
        try pair.client.send(inline)
        try pair.client.send(Message(single: small))
        try pair.drive()
        let received = pair.serverEvents.compactMap { if case .message(let m) = $0 { m } else { nil } }
        #expect(received == [Message(single: small), Message(single: small)])
        #expect(received.map(\.frames.isInline) == [true, true], "opened small frames are kept inline too")
    }

    @Test("ZMTP commands travel inside MESSAGE boxes with payload flag 0x02, not in the clear")
    func commandsInsideMessages() throws {
        var pair = try CurvePair(clientType: .sub, serverType: .xpub)
        try pair.drive()
        try pair.client.subscribe(Array("zeek.".utf8))
        let wire = pair.client.takeOutbound()
        #expect(!wire.contains(subsequence: Array("SUBSCRIBE".utf8)), "SUBSCRIBE must be encrypted")
        var decoder = FrameDecoder()
        let frames = try decoder.decodeAll(wire)
        #expect(frames.count == 1 && !frames[0].isCommand && frames[0].body.starts(with: [7] + Array("MESSAGE".utf8)),
                "MESSAGE goes in a data frame, as libzmq expects")
        try pair.server.receive(wire, now: .zero)
        #expect(pair.server.nextEvent() == .subscribe(topic: Array("zeek.".utf8)))
    }

    @Test("ZAP 400 refuses the client with ERROR \"400\", which the client sees as a peer error")
    func zapRefusal() throws {
        let stranger = CurveKeyPair.generate()
        var pair = try CurvePair(clientKeys: stranger)
        expectError(.authenticationFailed) { try pair.drive() }
        #expect(pair.server.isClosed)
        let error = expectError(.peerError) { try pair.client.receive(pair.server.takeOutbound(), now: .zero) }
        #expect(error?.reason.hasSuffix("400") == true, "the ERROR reason is the bare status code")
    }

    @Test("ZAP 300 closes without ERROR, so a libzmq client would retry")
    func zapTemporaryFailure() throws {
        struct Busy: ZAPHandler {
            func authenticate(_ request: ZAPRequest) -> ZAPReply {
                ZAPReply(requestID: request.requestID, status: .temporaryError, statusText: "busy")
            }
        }
        var pair = try CurvePair(handler: Busy())
        expectError(.authenticationFailed) { try pair.drive() }
        #expect(pair.server.takeOutbound().isEmpty, "no ERROR for a temporary failure")
    }

    @Test("a client with the wrong server key fails at HELLO and gets no ERROR back")
    func wrongServerKey() throws {
        var pair = try CurvePair(serverKnownToClient: CurveKeyPair.generate().publicKey)
        expectError(.handshakeFailed) { try pair.drive() }
        #expect(pair.server.takeOutbound().isEmpty)
        #expect(!pair.client.isClosed)
    }

    @Test("a replayed or reordered MESSAGE closes the connection")
    func replayedMessage() throws {
        var pair = try CurvePair()
        try pair.drive()
        try pair.client.send(Message([1]))
        let first = pair.client.takeOutbound()
        try pair.client.send(Message([2]))
        let second = pair.client.takeOutbound()
        try pair.server.receive(second, now: .zero)
        expectError(.handshakeFailed) { try pair.server.receive(first, now: .zero) }
        #expect(pair.server.isClosed)

        var again = try CurvePair()
        try again.drive()
        try again.client.send(Message([1]))
        let message = again.client.takeOutbound()
        try again.server.receive(message, now: .zero)
        expectError(.handshakeFailed) { try again.server.receive(message, now: .zero) }
    }

    @Test("an INITIATE from another connection does not open: the cookie is bound to its connection")
    func cookieBoundToConnection() throws {
        var a = try CurvePair()
        var b = try CurvePair()
        let initiateA = try a.runUntilInitiate()
        _ = try b.runUntilInitiate()
        let error = expectError(.handshakeFailed) { try b.server.receive(initiateA, now: .zero) }
        #expect(error?.reason.contains("cookie") == true)
    }

    @Test("a HELLO captured from a real libzmq client opens; its INITIATE, made for another WELCOME, does not")
    func capturedLibzmqHello() throws {
        let capture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Fuzz/Corpus/FuzzCurveServer/captured-libzmq-client")
        let bytes = try #require(FileManager.default.contents(atPath: capture.path).map { Array($0.dropFirst()) })
        var server = try Connection(
            configuration: ConnectionConfiguration(socketType: .pull),
            mechanism: CurveServerMechanism(secretKey: try CurveSecretKey(z85: FuzzHarness.CurveFuzzKeys.sodiumServerSecret)),
            now: .zero)
        let error = expectError(.handshakeFailed) { try server.receive(bytes, now: .zero) }
        #expect(error?.reason.contains("cookie") == true, "HELLO accepted, WELCOME sent; only the replayed cookie fails")
        #expect(server.takeOutbound().count == 11 + 53 + 170, "greeting and one WELCOME")
    }

    @Test("keys round-trip through Z85 and the public key follows from the secret")
    func keys() throws {
        let pair = CurveKeyPair.generate()
        let secret = try CurveSecretKey(z85: pair.secretKey.z85)
        #expect(secret == pair.secretKey)
        #expect(CurveKeyPair(secretKey: secret).publicKey == pair.publicKey)
        #expect(try CurvePublicKey(z85: pair.publicKey.z85) == pair.publicKey)
        expectError(.invalidZ85) { _ = try CurvePublicKey(z85: "HelloWorld") }
        // RFC 32's test keys (libzmq's curve_keygen test vectors): public of the known secret.
        let knownSecret = try CurveSecretKey(z85: "D:)Q[IlAW!ahhC2ac:9*A}h:p?([4%wOTJ%JR%cs")
        #expect(CurveKeyPair(secretKey: knownSecret).publicKey.z85 == "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID")
    }
}

@Suite("CURVE rules behind the MAC checks (insecure test crypto)")
struct CurveInsecureTests {
    static let crypto = InsecureCurveCrypto()
    static let server = InsecureCurveCrypto.keyPair(fill: 0x11)
    static let client = InsecureCurveCrypto.keyPair(fill: 0x22)
    static let clientTransient = [UInt8](repeating: 0x44, count: 32)

    func makeServer() throws -> Connection {
        var connection = try Connection(
            configuration: ConnectionConfiguration(socketType: .pull),
            mechanism: CurveServerMechanism(secretKey: Self.server.secretKey, authenticates: false, crypto: Self.crypto),
            now: .zero)
        _ = connection.takeOutbound()
        return connection
    }

    static let greeting = Greeting(mechanism: .curve, asServer: false).encoded
    static let metadata = try! Metadata([("Socket-Type", Array("PUSH".utf8))])

    /// Greeting and HELLO, returning the cookie from WELCOME.
    func helloAndWelcome(_ server: inout Connection, helloNonce: UInt64 = 1) throws -> [UInt8] {
        try server.receive(Self.greeting + InsecureCurveScript.hello(clientTransient: Self.clientTransient, nonce: helloNonce), now: .zero)
        var decoder = FrameDecoder()
        let frames = try decoder.decodeAll(Array(server.takeOutbound().dropFirst(53)))  // rest of the greeting
        guard let welcome = frames.last, let parsed = InsecureCurveScript.parseWelcome(welcome.body) else {
            throw ZMTPError.local(.invalidState, "no WELCOME")
        }
        return parsed.cookie
    }

    @Test("a hand-made handshake completes, then MESSAGE nonces must strictly increase")
    func scriptedHandshake() throws {
        var server = try makeServer()
        let cookie = try helloAndWelcome(&server)
        try server.receive(InsecureCurveScript.initiate(
            cookie: cookie, clientKey: Self.client.publicKey.bytes, clientTransient: Self.clientTransient,
            serverKey: Self.server.publicKey.bytes, metadata: Self.metadata), now: .zero)
        #expect(server.isHandshakeComplete)
        try server.receive(InsecureCurveScript.message(nonce: 3, payload: [1]) + InsecureCurveScript.message(nonce: 7, payload: [2]), now: .zero)
        _ = server.nextEvent()
        #expect(server.nextEvent() == .message(Message([1])))
        #expect(server.nextEvent() == .message(Message([2])), "gaps are fine")
        expectError(.handshakeFailed) { try server.receive(InsecureCurveScript.message(nonce: 7, payload: [3]), now: .zero) }
    }

    @Test("reads nothing past INITIATE until authentication completes, so early bytes wait their turn")
    func pausesForAuthentication() throws {
        var server = try Connection(
            configuration: ConnectionConfiguration(socketType: .pull),
            mechanism: CurveServerMechanism(secretKey: Self.server.secretKey, authenticates: true, crypto: Self.crypto),
            now: .zero)
        _ = server.takeOutbound()
        let cookie = try helloAndWelcome(&server)
        let initiate = InsecureCurveScript.initiate(
            cookie: cookie, clientKey: Self.client.publicKey.bytes, clientTransient: Self.clientTransient,
            serverKey: Self.server.publicKey.bytes, metadata: Self.metadata)
        let early = InsecureCurveScript.message(nonce: 3, payload: [9])
        let consumed = try server.receive(initiate + early, now: .zero)
        #expect(consumed == initiate.count)
        guard case .authenticationRequested(let request) = server.nextEvent() else {
            Issue.record("no authentication request")
            return
        }
        #expect(request.credentials == [Self.client.publicKey.bytes])
        #expect(try server.receive(early, now: .zero) == 0, "still paused")
        try server.completeAuthentication(ZAPReply(requestID: request.requestID, status: .success, statusText: "OK"))
        #expect(try server.receive(early, now: .zero) == early.count)
        _ = server.nextEvent()  // handshakeCompleted
        #expect(server.nextEvent() == .message(Message([9])))
    }

    /// A server paused for authentication after a scripted handshake whose client metadata is `metadata`.
    func pausedServer(metadata: Metadata) throws -> (Connection, ZAPRequest) {
        var server = try Connection(
            configuration: ConnectionConfiguration(socketType: .pull),
            mechanism: CurveServerMechanism(secretKey: Self.server.secretKey, crypto: Self.crypto), now: .zero)
        _ = server.takeOutbound()
        let cookie = try helloAndWelcome(&server)
        try server.receive(InsecureCurveScript.initiate(
            cookie: cookie, clientKey: Self.client.publicKey.bytes, clientTransient: Self.clientTransient,
            serverKey: Self.server.publicKey.bytes, metadata: metadata), now: .zero)
        guard case .authenticationRequested(let request) = server.nextEvent() else {
            throw ZMTPError.local(.invalidState, "no authentication request")
        }
        return (server, request)
    }

    @Test("User-Id always comes from ZAP, never from the peer, and the reply's metadata is added")
    func userIDFromZAPOnly() throws {
        var claims = Self.metadata
        try claims.set("User-Id", Array("admin".utf8))
        var (server, request) = try pausedServer(metadata: claims)
        #expect(request.identity.isEmpty, "a PUSH peer's Identity is not a routing id")
        try server.completeAuthentication(ZAPReply(
            requestID: request.requestID, status: .success, statusText: "OK", userID: [],
            metadata: try Metadata([("X-Role", Array("worker".utf8))])))
        #expect(server.peer?.metadata["User-Id"] == [], "the peer's own claim is replaced")
        #expect(server.peer?.metadata["X-Role"] == Array("worker".utf8))
    }

    @Test("a ZAP reply for another request is refused as local misuse")
    func replyForAnotherRequest() throws {
        var (server, _) = try pausedServer(metadata: Self.metadata)
        let error = expectError(.invalidArgument) {
            try server.completeAuthentication(ZAPReply(requestID: Array("2".utf8), status: .success, statusText: "OK"))
        }
        #expect(error?.blame == .local)
    }

    @Test("MESSAGE is accepted from a command frame too (RFC 25 form), not only libzmq's data frames")
    func messageInCommandFrame() throws {
        var server = try makeServer()
        let cookie = try helloAndWelcome(&server)
        try server.receive(InsecureCurveScript.initiate(
            cookie: cookie, clientKey: Self.client.publicKey.bytes, clientTransient: Self.clientTransient,
            serverKey: Self.server.publicKey.bytes, metadata: Self.metadata), now: .zero)
        _ = server.nextEvent()
        try server.receive(InsecureCurveScript.command("MESSAGE", [0, 0, 0, 0, 0, 0, 0, 3] + [UInt8](repeating: 0, count: 16) + [0, 42]), now: .zero)
        #expect(server.nextEvent() == .message(Message([42])))
    }

    @Test("rejects an INITIATE whose nonce does not exceed HELLO's (libzmq does not check)")
    func initiateNonceAfterHello() throws {
        var server = try makeServer()
        let cookie = try helloAndWelcome(&server, helloNonce: 5)
        let error = expectError(.handshakeFailed) {
            try server.receive(InsecureCurveScript.initiate(
                cookie: cookie, nonce: 5, clientKey: Self.client.publicKey.bytes, clientTransient: Self.clientTransient,
                serverKey: Self.server.publicKey.bytes, metadata: Self.metadata), now: .zero)
        }
        #expect(error?.reason.contains("HELLO") == true)
    }

    @Test("rejects a vouch for another server (libzmq does not check)")
    func vouchForAnotherServer() throws {
        var server = try makeServer()
        let cookie = try helloAndWelcome(&server)
        let error = expectError(.handshakeFailed) {
            try server.receive(InsecureCurveScript.initiate(
                cookie: cookie, clientKey: Self.client.publicKey.bytes, clientTransient: Self.clientTransient,
                serverKey: [UInt8](repeating: 0x99, count: 32), metadata: Self.metadata), now: .zero)
        }
        #expect(error?.reason.contains("another server") == true)
    }

    @Test("rejects a vouch for another short-term key")
    func vouchForAnotherTransient() throws {
        var server = try makeServer()
        let cookie = try helloAndWelcome(&server)
        expectError(.handshakeFailed) {
            try server.receive(InsecureCurveScript.initiate(
                cookie: cookie, clientKey: Self.client.publicKey.bytes, clientTransient: [UInt8](repeating: 0x45, count: 32),
                serverKey: Self.server.publicKey.bytes, metadata: Self.metadata), now: .zero)
        }
    }

    @Test("HELLO must be exactly 200 octets with version 1.0 and zero padding")
    func helloShape() throws {
        var server = try makeServer()
        var hello = InsecureCurveScript.hello(clientTransient: Self.clientTransient)
        hello[1] = 199  // short frame size: drop the last octet
        expectError(.malformedCommand) { try server.receive(Self.greeting + Array(hello.dropLast()), now: .zero) }
        server = try makeServer()
        expectError(.malformedCommand) {
            try server.receive(Self.greeting + InsecureCurveScript.hello(clientTransient: Self.clientTransient, padding: 1), now: .zero)
        }
        server = try makeServer()
        expectError(.invalidAsServer) {
            try server.receive(Greeting(mechanism: .curve, asServer: true).encoded, now: .zero)
        }
    }

    @Test("rejects oversized or malformed INITIATE metadata with a typed error")
    func malformedInitiateMetadata() throws {
        var server = try makeServer()
        let cookie = try helloAndWelcome(&server)
        var metadataBytes = try Command.ready(Self.metadata).encodedBody().dropFirst(6).map { $0 }
        metadataBytes += [1, UInt8(ascii: "A"), 0xFF, 0xFF, 0xFF, 0xF0]  // value length overruns
        var data = cookie + [0, 0, 0, 0, 0, 0, 0, 2] + [UInt8](repeating: 0, count: 16) + Self.client.publicKey.bytes
        data += [UInt8](repeating: 0x5A, count: 16) + [UInt8](repeating: 0, count: 16) + Self.clientTransient + Self.server.publicKey.bytes
        data += metadataBytes
        expectError(.malformedMetadata) { try server.receive(InsecureCurveScript.command("INITIATE", data), now: .zero) }
    }

    @Test("MESSAGE payload flags: reserved bits are an error, 0x02 marks a command")
    func messageFlags() throws {
        var server = try makeServer()
        let cookie = try helloAndWelcome(&server)
        try server.receive(InsecureCurveScript.initiate(
            cookie: cookie, clientKey: Self.client.publicKey.bytes, clientTransient: Self.clientTransient,
            serverKey: Self.server.publicKey.bytes, metadata: Self.metadata), now: .zero)
        _ = server.takeOutbound()
        let ping = try Command.ping(ttlDeciseconds: 0, context: [7]).encodedBody()
        try server.receive(InsecureCurveScript.message(nonce: 3, flags: 0x02, payload: ping), now: .zero)
        _ = server.nextEvent()
        #expect(server.nextEvent() == .ping(ttlDeciseconds: 0, context: [7]))
        #expect(!server.takeOutbound().isEmpty, "the PONG goes back inside a MESSAGE")
        expectError(.malformedFrame) { try server.receive(InsecureCurveScript.message(nonce: 4, flags: 0x04, payload: []), now: .zero) }
    }
}

extension Array where Element == UInt8 {
    func contains(subsequence: [UInt8]) -> Bool {
        guard subsequence.count <= count else { return false }
        return (0...(count - subsequence.count)).contains { self[$0..<($0 + subsequence.count)].elementsEqual(subsequence) }
    }
}
