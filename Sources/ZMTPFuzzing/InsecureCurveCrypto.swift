import ZMTPWire

/// A deliberately insecure ``CurveCrypto`` for tests and fuzzers ONLY.
///
/// Boxes are the plaintext behind a MAC of 16 zero octets, a public key equals its secret key, and
/// "random" octets are a fixed pattern. A fuzzer can therefore write valid boxes and reach every state
/// behind the MAC checks (the approach of rustls' fuzzing provider). Never use it on a network.
public struct InsecureCurveCrypto: CurveCrypto {
    public init() {}

    public func randomBytes(_ count: Int) -> [UInt8] { [UInt8](repeating: 0x5A, count: count) }

    public func generateKeyPair() -> CurveKeyPair {
        Self.keyPair(fill: 0x33)
    }

    public func publicKey(for secretKey: CurveSecretKey) -> CurvePublicKey {
        secretKey.secret.withUnsafeBytes { (try? CurvePublicKey(bytes: Array($0))) ?? Self.zeroKey }
    }

    public func sharedKey(publicKey: CurvePublicKey, secretKey: CurveSecretKey) -> SecretBytes {
        secretKey.secret.withUnsafeBytes { secret in SecretBytes(zip(publicKey.bytes, secret).map { $0 ^ $1 }) }
    }

    public func seal(_ plaintext: UnsafeRawBufferPointer, nonce: [UInt8], key: SecretBytes, into out: inout [UInt8]) {
        out.append(contentsOf: repeatElement(0, count: 16))
        out.append(contentsOf: plaintext)
    }

    public func open(_ box: UnsafeRawBufferPointer, nonce: [UInt8], key: SecretBytes) -> [UInt8]? {
        guard box.count >= 16, box.prefix(16).allSatisfy({ $0 == 0 }) else { return nil }
        return Array(box.dropFirst(16))
    }

    public func secretSeal(_ plaintext: UnsafeRawBufferPointer, nonce: [UInt8], key: SecretBytes, into out: inout [UInt8]) {
        seal(plaintext, nonce: nonce, key: key, into: &out)
    }

    public func secretOpen(_ box: UnsafeRawBufferPointer, nonce: [UInt8], key: SecretBytes) -> [UInt8]? {
        open(box, nonce: nonce, key: key)
    }

    /// A key pair whose 32 octets are all `fill` (public = secret).
    public static func keyPair(fill: UInt8) -> CurveKeyPair {
        let bytes = [UInt8](repeating: fill, count: 32)
        let secret = (try? CurveSecretKey(bytes: bytes)) ?? zeroSecret
        return CurveKeyPair(publicKey: (try? CurvePublicKey(bytes: bytes)) ?? zeroKey, secretKey: secret)
    }

    static let zeroKey: CurvePublicKey = {
        guard let key = try? CurvePublicKey(bytes: [UInt8](repeating: 0, count: 32)) else { preconditionFailure("32 octets") }
        return key
    }()

    static let zeroSecret: CurveSecretKey = {
        guard let key = try? CurveSecretKey(bytes: [UInt8](repeating: 0, count: 32)) else { preconditionFailure("32 octets") }
        return key
    }()
}

/// Builds what a CURVE client or server sends when its crypto is ``InsecureCurveCrypto``: the scripted
/// attacker of the fuzz harnesses and the tests that need a hand-made handshake.
public enum InsecureCurveScript {
    static let mac = [UInt8](repeating: 0, count: 16)

    public static func command(_ name: String, _ data: [UInt8]) -> [UInt8] {
        let nameBytes = Array(name.utf8)
        var frame: [UInt8] = []
        FrameEncoder.appendFrame([UInt8(nameBytes.count)] + nameBytes + data, command: true, to: &frame)
        return frame
    }

    static func nonce(_ value: UInt64) -> [UInt8] { withUnsafeBytes(of: value.bigEndian) { Array($0) } }

    /// HELLO from a client whose short-term key is `clientTransient`.
    public static func hello(clientTransient: [UInt8], nonce value: UInt64 = 1, padding: UInt8 = 0) -> [UInt8] {
        command("HELLO", [1, 0] + [UInt8](repeating: padding, count: 72) + clientTransient + nonce(value) + mac + [UInt8](repeating: 0, count: 64))
    }

    /// Splits a WELCOME frame body (insecure crypto) into S' and the cookie.
    public static func parseWelcome(_ frameBody: [UInt8]) -> (serverTransient: [UInt8], cookie: [UInt8])? {
        // name (8) + long nonce (16) + MAC (16) + S' (32) + cookie (96)
        guard frameBody.count == 168 else { return nil }
        return (Array(frameBody[40..<72]), Array(frameBody[72..<168]))
    }

    /// INITIATE from a client with long-term key `clientKey` and short-term `clientTransient`,
    /// vouching for `serverKey`.
    public static func initiate(
        cookie: [UInt8], nonce value: UInt64 = 2, clientKey: [UInt8], clientTransient: [UInt8], serverKey: [UInt8],
        metadata: Metadata
    ) -> [UInt8] {
        var metadataBytes: [UInt8] = []
        metadata.encode(into: &metadataBytes)
        let vouch = [UInt8](repeating: 0x5A, count: 16) + mac + clientTransient + serverKey
        return command("INITIATE", cookie + nonce(value) + mac + clientKey + vouch + metadataBytes)
    }

    /// A MESSAGE carrying `payload` with the given flags octet.
    public static func message(nonce value: UInt64, flags: UInt8 = 0, payload: [UInt8]) -> [UInt8] {
        var frame: [UInt8] = []
        FrameEncoder.appendFrame([7] + Array("MESSAGE".utf8) + nonce(value) + mac + [flags] + payload, to: &frame)
        return frame
    }
}
