import CSodium

// The CurveZMQ server (RFC 26, over ZMTP as RFC 25).
//
//   awaitingHello --HELLO: 200 octets, version 1.0, zero padding, Box[64 zeros] opens-->
//       send WELCOME(S' + cookie); awaitingInitiate
//   awaitingInitiate --INITIATE: cookie opens and names this connection's C' and s', nonce above
//       HELLO's, box opens, vouch opens and names C' and our S, metadata valid-->
//       with a ZAP handler: awaitingAuthentication (the connection asks its driver)
//       without:            send READY(metadata); ready
//   awaitingAuthentication --200--> send READY; ready   --300--> close   --400/500--> ERROR(code); close
//
// Memory an unauthenticated client can make us hold is fixed: after HELLO, one short-term key pair, one
// cookie key and C' (about 200 octets); INITIATE is bounded by the command frame limit (1 MiB) and is
// dropped once parsed. The cookie key lives only in this connection's state, so a cookie (or a whole
// INITIATE) from another connection cannot open here, and it is forgotten once INITIATE is accepted.

/// The server side of CURVE: holds the server's long-term secret key.
public struct CurveServerMechanism: SecurityMechanism {
    enum State: Sendable {
        case awaitingHello
        case awaitingInitiate(AwaitingInitiate)
        case awaitingAuthentication(AwaitingAuthentication)
        case ready
    }

    struct AwaitingInitiate: Sendable {
        var clientTransient: CurvePublicKey
        var helloNonce: UInt64
        var serverTransient: CurveKeyPair
        var cookieKey: SecretBytes
    }

    struct AwaitingAuthentication: Sendable {
        var metadata: Metadata
        var socketType: SocketType
    }

    public var name: MechanismName { .curve }
    public var asServer: Bool { true }
    public var transformsFrames: Bool { true }

    let keyPair: CurveKeyPair
    let crypto: any CurveCrypto
    let zapDomain: String?
    let authenticates: Bool
    var state: State = .awaitingHello
    var session: CurveSession?

    /// - Parameters:
    ///   - secretKey: the server's long-term secret key (`ZMQ_CURVE_SECRETKEY` with `ZMQ_CURVE_SERVER`).
    ///   - authenticates: whether to pause each handshake for a ZAP decision (the connection emits
    ///     ``ConnectionEvent/authenticationRequested(_:)``). Without it every client with a valid
    ///     handshake is admitted, as libzmq does when no ZAP handler is bound.
    ///   - zapDomain: the ZAP domain to put in requests (`ZMQ_ZAP_DOMAIN`); empty when nil.
    public init(
        secretKey: CurveSecretKey, authenticates: Bool = true, zapDomain: String? = nil,
        crypto: any CurveCrypto = SodiumCurveCrypto()
    ) {
        self.init(
            keyPair: CurveKeyPair(secretKey: secretKey, crypto: crypto), authenticates: authenticates,
            zapDomain: zapDomain, crypto: crypto)
    }

    /// As ``init(secretKey:authenticates:zapDomain:crypto:)`` with the public half already known, which
    /// saves a scalar multiplication per connection (a listener computes it once).
    public init(
        keyPair: CurveKeyPair, authenticates: Bool = true, zapDomain: String? = nil,
        crypto: any CurveCrypto = SodiumCurveCrypto()
    ) {
        self.keyPair = keyPair
        self.crypto = crypto
        self.authenticates = authenticates
        self.zapDomain = zapDomain
    }

    /// Two servers cannot talk. A client that greets with as-server = 0 is what we expect.
    public func validate(peerGreeting: Greeting) throws(ZMTPError) {
        if peerGreeting.asServer {
            throw .peer(.invalidAsServer, "peer greets as a CURVE server too")
        }
    }

    public mutating func start(_ context: HandshakeContext) throws(ZMTPError) -> HandshakeStep {
        HandshakeStep()  // the client speaks first
    }

    public mutating func receive(command body: [UInt8], _ context: HandshakeContext) throws(ZMTPError) -> HandshakeStep {
        switch state {
        case .awaitingHello:
            return try receiveHello(body)
        case .awaitingInitiate(let pending):
            return try receiveInitiate(body, pending, context)
        case .awaitingAuthentication, .ready:
            throw .peer(.unexpectedCommand, "command after INITIATE before READY")
        }
    }

    private mutating func receiveHello(_ body: [UInt8]) throws(ZMTPError) -> HandshakeStep {
        let data = try CurveWire.data(of: body, expecting: CurveWire.helloName)
        guard data.count == CurveWire.helloDataLength else {
            throw .peer(.malformedCommand, "HELLO of \(data.count + 6) octets, must be 200")
        }
        var cursor = data.startIndex
        func take(_ count: Int) -> ArraySlice<UInt8> {
            defer { cursor += count }
            return data[cursor..<(cursor + count)]
        }
        guard take(2).elementsEqual([1, 0]) else { throw .peer(.malformedCommand, "HELLO version is not 1.0") }
        guard take(CurveWire.helloPaddingLength).allSatisfy({ $0 == 0 }) else {
            throw .peer(.malformedCommand, "HELLO padding is not all zeros")
        }
        let clientTransient = CurvePublicKey(validated: Array(take(CurveWire.keyLength)))
        let nonceBytes = take(CurveWire.shortNonceLength)
        let box = take(CurveWire.macLength + 64)
        let helloKey = crypto.sharedKey(publicKey: clientTransient, secretKey: keyPair.secretKey)
        let signature = box.withUnsafeBytes {
            crypto.open($0, nonce: CurveWire.helloNoncePrefix + nonceBytes, key: helloKey)
        }
        guard let signature, signature.allSatisfy({ $0 == 0 }) else {
            throw CurveWire.failed("HELLO signature box does not open under our key")
        }

        // WELCOME: Box[S' + cookie](S -> C'), cookie = SecretBox[C' + s'](cookie key).
        let serverTransient = crypto.generateKeyPair()
        let cookieKey = SecretBytes(crypto.randomBytes(CurveWire.keyLength))
        let cookieNonce = crypto.randomBytes(CurveWire.longNonceLength)
        var cookie = cookieNonce
        var cookiePlaintext: [UInt8] = []
        cookiePlaintext.reserveCapacity(2 * CurveWire.keyLength)  // no reallocation: one buffer to wipe
        cookiePlaintext += clientTransient.bytes
        serverTransient.secretKey.secret.withUnsafeBytes { cookiePlaintext.append(contentsOf: $0) }
        cookiePlaintext.withUnsafeBytes {
            crypto.secretSeal($0, nonce: CurveWire.cookieNoncePrefix + cookieNonce, key: cookieKey, into: &cookie)
        }
        Self.wipe(&cookiePlaintext)
        let welcomeNonce = crypto.randomBytes(CurveWire.longNonceLength)
        var box2 = welcomeNonce
        (serverTransient.publicKey.bytes + cookie).withUnsafeBytes {
            crypto.seal($0, nonce: CurveWire.welcomeNoncePrefix + welcomeNonce, key: helloKey, into: &box2)
        }
        state = .awaitingInitiate(AwaitingInitiate(
            clientTransient: clientTransient, helloNonce: CurveWire.counter(nonceBytes),
            serverTransient: serverTransient, cookieKey: cookieKey))
        return HandshakeStep(commands: [CurveWire.command(CurveWire.welcomeName, box2)])
    }

    private mutating func receiveInitiate(
        _ body: [UInt8], _ pending: AwaitingInitiate, _ context: HandshakeContext
    ) throws(ZMTPError) -> HandshakeStep {
        let data = try CurveWire.data(of: body, expecting: CurveWire.initiateName)
        guard data.count >= CurveWire.initiateMinimumDataLength else {
            throw .peer(.malformedCommand, "INITIATE of \(data.count + 9) octets, minimum is 257")
        }
        var cursor = data.startIndex
        func take(_ count: Int) -> ArraySlice<UInt8> {
            defer { cursor += count }
            return data[cursor..<(cursor + count)]
        }
        // The cookie must be the one we issued on this connection.
        let cookieNonce = take(CurveWire.longNonceLength)
        let cookieBox = take(CurveWire.cookieLength - CurveWire.longNonceLength)
        var cookie = cookieBox.withUnsafeBytes {
            crypto.secretOpen($0, nonce: CurveWire.cookieNoncePrefix + cookieNonce, key: pending.cookieKey)
        } ?? []
        let cookieMatches = cookie.count == 2 * CurveWire.keyLength
            && cookie[0..<32].elementsEqual(pending.clientTransient.bytes)
            && SecretBytes(cookie[32..<64]) == pending.serverTransient.secretKey.secret
        Self.wipe(&cookie)  // it holds s'
        guard cookieMatches else {
            throw CurveWire.failed("INITIATE cookie was not issued on this connection")
        }
        let nonceBytes = take(CurveWire.shortNonceLength)
        let initiateNonce = CurveWire.counter(nonceBytes)
        guard initiateNonce > pending.helloNonce else {
            throw CurveWire.failed("INITIATE nonce \(initiateNonce) does not exceed HELLO's \(pending.helloNonce)")
        }
        let sessionKey = crypto.sharedKey(publicKey: pending.clientTransient, secretKey: pending.serverTransient.secretKey)
        let box = data[cursor...]
        let plaintext = box.withUnsafeBytes {
            crypto.open($0, nonce: CurveWire.initiateNoncePrefix + nonceBytes, key: sessionKey)
        }
        guard let plaintext, plaintext.count >= CurveWire.keyLength + CurveWire.vouchLength else {
            throw CurveWire.failed("INITIATE box does not open")
        }
        // Vouch: Box[C' + S](C -> S'), proving the client's long-term key C wants this C' and this server.
        let clientKey = CurvePublicKey(validated: Array(plaintext[0..<32]))
        let vouchNonce = plaintext[32..<48]
        let vouchBox = plaintext[48..<128]
        let vouchKey = crypto.sharedKey(publicKey: clientKey, secretKey: pending.serverTransient.secretKey)
        let vouch = vouchBox.withUnsafeBytes {
            crypto.open($0, nonce: CurveWire.vouchNoncePrefix + vouchNonce, key: vouchKey)
        }
        guard let vouch, vouch.count == 2 * CurveWire.keyLength else {
            throw CurveWire.failed("INITIATE vouch does not open under the client's long-term key")
        }
        guard vouch[0..<32].elementsEqual(pending.clientTransient.bytes) else {
            throw CurveWire.failed("vouch names another short-term client key")
        }
        guard vouch[32..<64].elementsEqual(keyPair.publicKey.bytes) else {
            throw CurveWire.failed("vouch names another server")  // libzmq skips this check (behaviours §3)
        }
        let metadata = try Metadata.decode(Array(plaintext[128...]))
        let socketType = try context.validate(peerMetadata: metadata)

        session = CurveSession(
            crypto: crypto, key: sessionKey, sendPrefix: CurveWire.serverMessageNoncePrefix,
            receivePrefix: CurveWire.clientMessageNoncePrefix, nextSendNonce: 1, lastReceivedNonce: initiateNonce)
        guard authenticates else {
            let step = try ready(metadata: metadata, socketType: socketType, context)
            state = .ready
            return step
        }
        state = .awaitingAuthentication(AwaitingAuthentication(metadata: metadata, socketType: socketType))
        var step = HandshakeStep()
        step.authentication = ZAPRequest(
            domain: zapDomain ?? "", address: context.peerAddress, identity: context.routingID(of: metadata, socketType),
            mechanism: "CURVE", credentials: [clientKey.bytes])
        return step
    }

    public mutating func authenticated(_ reply: ZAPReply, _ context: HandshakeContext) throws(ZMTPError) -> HandshakeStep {
        guard case .awaitingAuthentication(let pending) = state else {
            throw .local(.invalidState, "no authentication is pending")
        }
        var metadata = pending.metadata
        try ZAPOutcome.apply(reply, to: &metadata)
        let step = try ready(metadata: metadata, socketType: pending.socketType, context)
        state = .ready
        return step
    }

    /// READY: Box[our metadata](S' -> C') with our first short nonce.
    private mutating func ready(metadata: Metadata, socketType: SocketType, _ context: HandshakeContext) throws(ZMTPError) -> HandshakeStep {
        guard var session else { throw .local(.invalidState, "no CURVE session") }
        var plaintext: [UInt8] = []
        context.localMetadata.encode(into: &plaintext)
        let nonce = CurveWire.shortNonce(CurveWire.readyNoncePrefix, session.nextSendNonce)
        session.nextSendNonce += 1
        var data = Array(nonce[16...])
        plaintext.withUnsafeBytes { crypto.seal($0, nonce: nonce, key: session.key, into: &data) }
        self.session = session
        return HandshakeStep(commands: [CurveWire.command(CurveWire.readyName, data)], completion: (metadata, socketType))
    }

    public mutating func encode(frame body: [UInt8], more: Bool, isCommand: Bool, into out: inout OutboundBuffer) throws(ZMTPError) {
        guard session != nil else { throw .local(.invalidState, "CURVE handshake not complete") }
        try session?.encode(frame: body, more: more, isCommand: isCommand, into: &out)
    }

    public mutating func encode(
        frameBytes body: UnsafeRawBufferPointer, more: Bool, isCommand: Bool, into out: inout OutboundBuffer
    ) throws(ZMTPError) {
        guard session != nil else { throw .local(.invalidState, "CURVE handshake not complete") }
        try session?.encode(frameBytes: body, more: more, isCommand: isCommand, into: &out)
    }

    public mutating func decode(_ frame: consuming Frame) throws(ZMTPError) -> Frame {
        // Mutated in place through the optional (no copy of the session, whose nonce buffer stays
        // uniquely referenced).
        guard session != nil, let opened = try session?.decode(frame) else {
            throw .local(.invalidState, "CURVE handshake not complete")
        }
        return opened
    }

    /// Clears secret octets with `sodium_memzero`, which the optimizer may not remove.
    static func wipe(_ bytes: inout [UInt8]) {
        bytes.withUnsafeMutableBytes { if let base = $0.baseAddress { sodium_memzero(base, $0.count) } }
    }
}

/// How a ZAP reply ends a handshake (RFC 27, and what libzmq clients understand: libzmq-behaviours.md §5).
enum ZAPOutcome {
    /// Admits (setting the peer's `User-Id` and adding the reply's metadata) or throws the refusal.
    ///
    /// - 200: admitted. `User-Id` is always the authenticator's (empty if it gave none), replacing any
    ///   `User-Id` the peer put in its own metadata, and the reply's metadata properties are added,
    ///   as libzmq does.
    /// - 300: temporary; closed without ERROR, so the client reconnects later (an ERROR would be fatal).
    /// - 400 and 500: ERROR whose reason is the status code itself: libzmq raises its
    ///   HANDSHAKE_FAILED_AUTH event (which Zeek treats as fatal) only for a reason of exactly "300",
    ///   "400" or "500". The status text is kept in the local error.
    static func apply(_ reply: ZAPReply, to metadata: inout Metadata) throws(ZMTPError) {
        guard reply.requestID == ZAPRequest.defaultRequestID else {
            throw .local(.invalidArgument, "ZAP reply answers request id \(reply.requestID), not the pending one")
        }
        switch reply.status {
        case .success:
            try metadata.set(Metadata.Name.userID, reply.userID)
            for property in reply.metadata { try metadata.set(property.name, property.value) }
        case .temporaryError:
            var error = ZMTPError.peer(.authenticationFailed, "ZAP: 300 \(reply.statusText)")
            error.authenticationStatus = 300
            throw error
        case .authenticationFailure, .internalError:
            var error = ZMTPError(
                .authenticationFailed, blame: .peer, "ZAP: \(reply.status.rawValue) \(reply.statusText)",
                errorCommandReason: reply.status.rawValue)
            error.authenticationStatus = Int(reply.status.rawValue)
            throw error
        }
    }
}
