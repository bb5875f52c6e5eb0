// Fuzz harnesses for CURVE and ZAP. The first input octet picks the crypto: even = InsecureCurveCrypto
// (depth: the fuzzer can write valid boxes and reach every state behind the MAC checks), odd = libsodium
// (realism: what an attacker on the network faces). The rest is what the attacker sends.

import ZMTPWire

extension FuzzHarness {
    /// Keys the harnesses use. With insecure crypto a public key equals its secret; with libsodium these
    /// are libzmq's documented test pairs (also Zeek's btest keys), so captured real handshakes apply.
    public enum CurveFuzzKeys {
        public static let insecureServer = InsecureCurveCrypto.keyPair(fill: 0x11)
        public static let insecureClient = InsecureCurveCrypto.keyPair(fill: 0x22)
        public static let sodiumServerSecret = "JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6"
        public static let sodiumClientSecret = "D:)Q[IlAW!ahhC2ac:9*A}h:p?([4%wOTJ%JR%cs"

        static func keys(insecure: Bool) -> (server: CurveKeyPair, client: CurveKeyPair, crypto: any CurveCrypto)? {
            if insecure { return (insecureServer, insecureClient, InsecureCurveCrypto()) }
            guard let server = try? CurveSecretKey(z85: sodiumServerSecret),
                let client = try? CurveSecretKey(z85: sodiumClientSecret)
            else { return nil }
            return (CurveKeyPair(secretKey: server), CurveKeyPair(secretKey: client), SodiumCurveCrypto())
        }
    }

    /// CURVE server fed by an attacker client, checked by ``compareSplits(_:make:allowed:sendBound:)``.
    public static func curveServer(_ data: [UInt8]) -> String? {
        guard let first = data.first, let keys = CurveFuzzKeys.keys(insecure: first & 1 == 0) else { return nil }
        let input = Array(data.dropFirst())
        let make = { () throws(ZMTPError) -> Connection in
            try Connection(
                configuration: ConnectionConfiguration(socketType: .xpub, maxMessageSize: 1 << 16),
                mechanism: CurveServerMechanism(secretKey: keys.server.secretKey, crypto: keys.crypto), now: .zero)
        }
        // Greeting 64 + WELCOME 170 + READY with our metadata (< 100) + ERROR (< 16).
        return compareSplits(
            input, make: make, allowed: AllowListZAPHandler(allowedClientKeys: [keys.client.publicKey]), sendBound: 400)
    }

    /// CURVE client fed by an attacker server. Same invariants; a client never sends ERROR.
    public static func curveClient(_ data: [UInt8]) -> String? {
        guard let first = data.first, let keys = CurveFuzzKeys.keys(insecure: first & 1 == 0) else { return nil }
        let input = Array(data.dropFirst())
        let make = { () throws(ZMTPError) -> Connection in
            try Connection(
                configuration: ConnectionConfiguration(socketType: .sub, maxMessageSize: 1 << 16),
                mechanism: CurveClientMechanism(serverPublicKey: keys.server.publicKey, keyPair: keys.client, crypto: keys.crypto),
                now: .zero)
        }
        // Greeting 64 + HELLO 202 + INITIATE with our metadata (< 360); a client never sends ERROR.
        return compareSplits(input, make: make, allowed: nil, sendBound: 630)
    }

    /// MESSAGE boxes after a real handshake between our own client and server: payloads taken from the
    /// input survive encryption and decryption exactly (frames, MORE, order), and the input fed raw to
    /// the server as MESSAGE frames gives only typed peer errors.
    public static func curveMessage(_ data: [UInt8]) -> String? {
        guard let first = data.first, let keys = CurveFuzzKeys.keys(insecure: first & 1 == 0) else { return nil }
        let input = Array(data.dropFirst())
        guard var pair = try? HandshakenCurvePair(keys: keys) else { return "in-memory CURVE handshake failed" }
        // 1. Round trip: split the input into frames at 0xFF octets.
        let frames = input.split(separator: 0xFF, omittingEmptySubsequences: false).map(Array.init)
        let message = Message(frames: frames.isEmpty ? [[]] : frames)
        do throws(ZMTPError) {
            try pair.client.send(message)
            try pair.server.receive(pair.client.takeOutbound(), now: .zero)
        } catch {
            return "our own MESSAGE did not decrypt: \(error)"
        }
        guard pair.server.nextEvent() == .message(message) else { return "MESSAGE round trip changed the message" }
        // 2. Raw attacker MESSAGE frames.
        var raw: [UInt8] = []
        FrameEncoder.appendFrame([7] + Array("MESSAGE".utf8) + input, to: &raw)
        do throws(ZMTPError) {
            try pair.server.receive(raw, now: .zero)
        } catch {
            guard error.blame == .peer, pair.server.isClosed else { return "bad MESSAGE: \(error) (blame \(error.blame))" }
        }
        return nil
    }

    /// ZAP request and reply codecs: frames split from the input at 0xFF octets; whatever decodes
    /// re-encodes to the same frames, and errors are `malformedCommand`.
    public static func zap(_ data: [UInt8]) -> String? {
        let message = Message(frames: data.split(separator: 0xFF, omittingEmptySubsequences: false).map(Array.init))
        do throws(ZMTPError) {
            let request = try ZAPRequest.decode(message)
            guard request.encoded == message else { return "ZAP request re-encodes differently" }
        } catch {
            guard error.code == .malformedCommand else { return "unexpected error \(error)" }
        }
        do throws(ZMTPError) {
            let reply = try ZAPReply.decode(message)
            guard try ZAPReply.decode(reply.encoded) == reply else { return "ZAP reply does not round-trip" }
        } catch {
            guard error.code == .malformedCommand else { return "unexpected error \(error)" }
        }
        return nil
    }

    // MARK: - Drivers

    struct HandshakenCurvePair {
        var client: Connection
        var server: Connection

        init(keys: (server: CurveKeyPair, client: CurveKeyPair, crypto: any CurveCrypto)) throws(ZMTPError) {
            client = try Connection(
                configuration: ConnectionConfiguration(socketType: .push),
                mechanism: CurveClientMechanism(serverPublicKey: keys.server.publicKey, keyPair: keys.client, crypto: keys.crypto),
                now: .zero)
            server = try Connection(
                configuration: ConnectionConfiguration(socketType: .pull),
                mechanism: CurveServerMechanism(secretKey: keys.server.secretKey, authenticates: false, crypto: keys.crypto),
                now: .zero)
            for _ in 0..<8 {
                try server.receive(client.takeOutbound(), now: .zero)
                try client.receive(server.takeOutbound(), now: .zero)
            }
            guard client.isHandshakeComplete, server.isHandshakeComplete else {
                throw .local(.invalidState, "handshake did not complete")
            }
            _ = client.nextEvent()
            _ = server.nextEvent()
        }
    }

    /// The invariants shared by the handshake harnesses: every error is the peer's and closes the
    /// connection; the outcome (events and error) does not depend on how the bytes were split; the
    /// handshake completes at most once and before any traffic; what we send stays under `sendBound`
    /// plus a small reply per PING.
    static func compareSplits(
        _ input: [UInt8], make: () throws(ZMTPError) -> Connection, allowed: (any ZAPHandler)?, sendBound: Int
    ) -> String? {
        var outcomes: [ConnectionOutcome] = []
        for chunking in [Chunking.whole, .bytewise, .chunks(seed: input.last ?? 0)] {
            outcomes.append(drive(input, make: make, allowed: allowed, sendBound: sendBound, chunking: chunking))
        }
        if let problem = outcomes.compactMap(\.problem).first { return problem }
        for other in outcomes.dropFirst() where other.events != outcomes[0].events || other.error != outcomes[0].error {
            return "outcome depends on split: \(outcomes[0]) vs \(other)"
        }
        let events = outcomes[0].events
        let handshakes = events.indices.filter {
            if case .handshakeCompleted = events[$0] { return true } else { return false }
        }
        if handshakes.count > 1 { return "handshake completed twice" }
        let firstMessage = events.firstIndex {
            switch $0 {
            case .message, .subscribe, .cancel, .ping, .pong: return true
            case .handshakeCompleted, .authenticationRequested: return false
            }
        }
        if let firstMessage, handshakes.first.map({ $0 > firstMessage }) ?? true {
            return "traffic event before handshake completion"
        }
        return nil
    }

    static func drive(
        _ input: [UInt8], make: () throws(ZMTPError) -> Connection, allowed: (any ZAPHandler)?, sendBound: Int,
        chunking: Chunking
    ) -> ConnectionOutcome {
        var outcome = ConnectionOutcome()
        var connection: Connection
        do throws(ZMTPError) { connection = try make() } catch {
            outcome.problem = "could not create a connection: \(error)"
            return outcome
        }
        var sent = 0
        var replies = 0
        for piece in chunking.split(input) {
            do throws(ZMTPError) {
                var rest = piece
                while !rest.isEmpty {
                    let consumed = try rest.withRawBytes { (raw: UnsafeRawBufferPointer) throws(ZMTPError) -> Int in
                        try connection.receive(raw, now: .zero)
                    }
                    rest = rest.dropFirst(consumed)
                    var resumed = false
                    while let event = connection.nextEvent() {
                        outcome.events.append(event)
                        if case .ping = event { replies += 1 }
                        if case .authenticationRequested(let request) = event, let allowed {
                            try connection.completeAuthentication(allowed.authenticate(request))
                            resumed = true
                        }
                    }
                    if consumed == 0 && !resumed { break }  // paused with no authenticator: stop
                }
            } catch {
                outcome.error = error.code
                if error.blame != .peer { outcome.problem = "error blamed on us: \(error)" }
                if !connection.isClosed { outcome.problem = "error did not close the connection" }
                while let event = connection.nextEvent() { outcome.events.append(event) }
            }
            sent += connection.takeOutbound().count
            if outcome.error != nil { break }
        }
        // The handshake's own output plus a PONG per PING (a MESSAGE of at most 2 + 33 + 22 octets).
        let bound = sendBound + replies * 60
        if sent > bound { outcome.problem = "sent \(sent) octets to an attacker, more than the \(bound) allowed" }
        return outcome
    }
}
