// The CurveZMQ client (RFC 26, over ZMTP as RFC 25).
//
//   start: send HELLO(C', Box[64 zeros](C'->S)); awaitingWelcome
//   awaitingWelcome --WELCOME: 168 octets, box opens under S-->
//       send INITIATE(cookie, Box[C + vouch + metadata](C'->S')); awaitingReady
//   awaitingReady --READY: nonce, box opens under S', metadata valid--> ready
//
// Only a server sends ERROR (RFC 26), so every failure here closes without one. The as-server octet
// of the server's greeting is not used: libzmq's CURVE server sends 0 (libzmq-behaviours.md §2).

/// The client side of CURVE: holds the client's long-term key pair and the server's public key.
public struct CurveClientMechanism: SecurityMechanism {
    enum State: Sendable {
        /// `helloKey` is the shared key of C' and S, which WELCOME's box also uses.
        case awaitingWelcome(helloKey: SecretBytes)
        case awaitingReady(serverTransient: CurvePublicKey)
        case ready
    }

    public var name: MechanismName { .curve }
    public var asServer: Bool { false }
    public var transformsFrames: Bool { true }

    let serverKey: CurvePublicKey
    let keyPair: CurveKeyPair
    let transient: CurveKeyPair
    let crypto: any CurveCrypto
    var state: State?
    var nextNonce: UInt64 = 1
    var session: CurveSession?

    /// - Parameters:
    ///   - serverPublicKey: the server's long-term public key (`ZMQ_CURVE_SERVERKEY`).
    ///   - keyPair: our long-term key pair (`ZMQ_CURVE_PUBLICKEY` / `ZMQ_CURVE_SECRETKEY`).
    public init(serverPublicKey: CurvePublicKey, keyPair: CurveKeyPair, crypto: any CurveCrypto = SodiumCurveCrypto()) {
        self.serverKey = serverPublicKey
        self.keyPair = keyPair
        self.crypto = crypto
        self.transient = crypto.generateKeyPair()
    }

    public func validate(peerGreeting: Greeting) throws(ZMTPError) {}

    public mutating func start(_ context: HandshakeContext) throws(ZMTPError) -> HandshakeStep {
        let nonce = CurveWire.shortNonce(CurveWire.helloNoncePrefix, takeNonce())
        var data: [UInt8] = [1, 0] + [UInt8](repeating: 0, count: CurveWire.helloPaddingLength)
        data += transient.publicKey.bytes
        data += nonce[16...]
        let key = crypto.sharedKey(publicKey: serverKey, secretKey: transient.secretKey)
        [UInt8](repeating: 0, count: 64).withUnsafeBytes { crypto.seal($0, nonce: nonce, key: key, into: &data) }
        state = .awaitingWelcome(helloKey: key)
        return HandshakeStep(commands: [CurveWire.command(CurveWire.helloName, data)])
    }

    public mutating func receive(command body: [UInt8], _ context: HandshakeContext) throws(ZMTPError) -> HandshakeStep {
        do throws(ZMTPError) {
            switch state {
            case .awaitingWelcome(let helloKey):
                return try receiveWelcome(body, helloKey, context)
            case .awaitingReady(let serverTransient):
                return try receiveReady(body, serverTransient, context)
            case .ready, nil:
                throw .peer(.unexpectedCommand, "handshake command out of order")
            }
        } catch {
            // A client never answers with ERROR (RFC 26): drop any reply the error asked for.
            throw ZMTPError(error.code, blame: error.blame, error.reason, file: error.file, line: error.line)
        }
    }

    private mutating func receiveWelcome(
        _ body: [UInt8], _ key: SecretBytes, _ context: HandshakeContext
    ) throws(ZMTPError) -> HandshakeStep {
        let data = try CurveWire.data(of: body, expecting: CurveWire.welcomeName)
        guard data.count == CurveWire.welcomeDataLength else {
            throw .peer(.malformedCommand, "WELCOME of \(data.count + 8) octets, must be 168")
        }
        let welcomeNonce = data.prefix(CurveWire.longNonceLength)
        let plaintext = data.dropFirst(CurveWire.longNonceLength).withUnsafeBytes {
            crypto.open($0, nonce: CurveWire.welcomeNoncePrefix + welcomeNonce, key: key)
        }
        guard let plaintext, plaintext.count == CurveWire.keyLength + CurveWire.cookieLength else {
            throw CurveWire.failed("WELCOME box does not open under the server's key")
        }
        let serverTransient = CurvePublicKey(validated: Array(plaintext[0..<32]))
        let cookie = plaintext[32...]

        // vouch = long nonce | Box[C' + S](C -> S')
        let vouchNonce = crypto.randomBytes(CurveWire.longNonceLength)
        var vouch = vouchNonce
        let vouchKey = crypto.sharedKey(publicKey: serverTransient, secretKey: keyPair.secretKey)
        (transient.publicKey.bytes + serverKey.bytes).withUnsafeBytes {
            crypto.seal($0, nonce: CurveWire.vouchNoncePrefix + vouchNonce, key: vouchKey, into: &vouch)
        }
        var plaintextOut = keyPair.publicKey.bytes + vouch
        context.localMetadata.encode(into: &plaintextOut)
        let sessionKey = crypto.sharedKey(publicKey: serverTransient, secretKey: transient.secretKey)
        let nonce = CurveWire.shortNonce(CurveWire.initiateNoncePrefix, takeNonce())
        var out = Array(cookie)
        out += nonce[16...]
        plaintextOut.withUnsafeBytes { crypto.seal($0, nonce: nonce, key: sessionKey, into: &out) }
        session = CurveSession(
            crypto: crypto, key: sessionKey, sendPrefix: CurveWire.clientMessageNoncePrefix,
            receivePrefix: CurveWire.serverMessageNoncePrefix, nextSendNonce: nextNonce, lastReceivedNonce: 0)
        state = .awaitingReady(serverTransient: serverTransient)
        return HandshakeStep(commands: [CurveWire.command(CurveWire.initiateName, out)])
    }

    private mutating func receiveReady(
        _ body: [UInt8], _ serverTransient: CurvePublicKey, _ context: HandshakeContext
    ) throws(ZMTPError) -> HandshakeStep {
        let data = try CurveWire.data(of: body, expecting: CurveWire.readyName)
        guard data.count >= CurveWire.readyMinimumDataLength, var current = session else {
            throw .peer(.malformedCommand, "READY of \(data.count + 6) octets, minimum is 30")
        }
        let nonceBytes = data.prefix(CurveWire.shortNonceLength)
        let plaintext = data.dropFirst(CurveWire.shortNonceLength).withUnsafeBytes {
            crypto.open($0, nonce: CurveWire.readyNoncePrefix + nonceBytes, key: current.key)
        }
        guard let plaintext else { throw CurveWire.failed("READY box does not open") }
        let metadata = try Metadata.decode(plaintext)
        let socketType = try context.validate(peerMetadata: metadata)
        current.lastReceivedNonce = CurveWire.counter(nonceBytes)
        session = current
        state = .ready
        return HandshakeStep(completion: (metadata, socketType))
    }

    private mutating func takeNonce() -> UInt64 {
        defer { nextNonce += 1 }
        return nextNonce
    }

    public mutating func encode(frame body: [UInt8], more: Bool, isCommand: Bool, into out: inout OutboundBuffer) throws(ZMTPError) {
        guard session != nil, case .ready = state else { throw .local(.invalidState, "CURVE handshake not complete") }
        try session?.encode(frame: body, more: more, isCommand: isCommand, into: &out)
    }

    public mutating func encode(
        frameBytes body: UnsafeRawBufferPointer, more: Bool, isCommand: Bool, into out: inout OutboundBuffer
    ) throws(ZMTPError) {
        guard session != nil, case .ready = state else { throw .local(.invalidState, "CURVE handshake not complete") }
        try session?.encode(frameBytes: body, more: more, isCommand: isCommand, into: &out)
    }

    public mutating func decode(_ frame: consuming Frame) throws(ZMTPError) -> Frame {
        // Mutated in place through the optional, as in the server's decode.
        guard session != nil, case .ready = state, let opened = try session?.decode(frame) else {
            throw .local(.invalidState, "CURVE handshake not complete")
        }
        return opened
    }
}
