import CSodium

/// The cryptography CurveZMQ needs, behind a small protocol so that tests and fuzzers can substitute a
/// deliberately insecure implementation that reaches the states behind the MAC checks. The real one is
/// ``SodiumCurveCrypto``.
///
/// Boxes are in CurveZMQ's wire form: the 16-octet MAC followed by the ciphertext (libsodium's
/// `crypto_box_easy_afternm` / `crypto_secretbox_easy`, equal to the classic zero-padded API with the
/// padding stripped).
public protocol CurveCrypto: Sendable {
    /// `count` octets from a cryptographically secure source.
    func randomBytes(_ count: Int) -> [UInt8]
    /// A fresh key pair (`crypto_box_keypair`).
    func generateKeyPair() -> CurveKeyPair
    /// The public key of `secretKey` (`crypto_scalarmult_base`).
    func publicKey(for secretKey: CurveSecretKey) -> CurvePublicKey
    /// The precomputed key for boxes between `publicKey`'s owner and `secretKey`'s (`crypto_box_beforenm`).
    func sharedKey(publicKey: CurvePublicKey, secretKey: CurveSecretKey) -> SecretBytes
    /// Appends Box[plaintext] under a shared key and a 24-octet nonce to `out` (16 + count octets).
    func seal(_ plaintext: UnsafeRawBufferPointer, nonce: [UInt8], key: SecretBytes, into out: inout [UInt8])
    /// Opens a box; `nil` when the MAC does not verify or the box is shorter than a MAC.
    func open(_ box: UnsafeRawBufferPointer, nonce: [UInt8], key: SecretBytes) -> [UInt8]?
    /// Secret-key box (cookies: `crypto_secretbox_easy`), appended to `out`.
    func secretSeal(_ plaintext: UnsafeRawBufferPointer, nonce: [UInt8], key: SecretBytes, into out: inout [UInt8])
    /// Opens a secret-key box; `nil` on failure.
    func secretOpen(_ box: UnsafeRawBufferPointer, nonce: [UInt8], key: SecretBytes) -> [UInt8]?
    /// Seals in place (MESSAGE boxes, no allocation): `buffer` holds 16 octets of room for the MAC,
    /// then the plaintext; afterwards it holds the box.
    func sealInPlace(_ buffer: UnsafeMutableRawBufferPointer, nonce: [UInt8], key: SecretBytes)
    /// Opens in place: `buffer` holds a box; on success its first `count - 16` octets hold the
    /// plaintext. Returns false when the MAC does not verify (the buffer's contents are then
    /// unspecified).
    func openInPlace(_ buffer: UnsafeMutableRawBufferPointer, nonce: [UInt8], key: SecretBytes) -> Bool
}

extension CurveCrypto {
    /// In terms of ``seal(_:nonce:key:into:)``, with a copy (for implementations without an in-place
    /// primitive, such as the test-only one).
    public func sealInPlace(_ buffer: UnsafeMutableRawBufferPointer, nonce: [UInt8], key: SecretBytes) {
        guard buffer.count >= 16 else { return }
        var box: [UInt8] = []
        seal(UnsafeRawBufferPointer(rebasing: buffer[16...]), nonce: nonce, key: key, into: &box)
        guard box.count == buffer.count else { return }
        box.withUnsafeBytes { buffer.copyMemory(from: $0) }
    }

    /// In terms of ``open(_:nonce:key:)``, with a copy.
    public func openInPlace(_ buffer: UnsafeMutableRawBufferPointer, nonce: [UInt8], key: SecretBytes) -> Bool {
        guard let plaintext = open(UnsafeRawBufferPointer(buffer), nonce: nonce, key: key),
            plaintext.count + 16 == buffer.count
        else { return false }
        plaintext.withUnsafeBytes { UnsafeMutableRawBufferPointer(rebasing: buffer[..<plaintext.count]).copyMemory(from: $0) }
        return true
    }
}

/// CurveZMQ's cryptography from libsodium.
public struct SodiumCurveCrypto: CurveCrypto {
    /// MAC length of every box.
    public static let macLength = 16
    public static let nonceLength = 24

    public init() {
        // sodium_init is idempotent and thread-safe; it returns -1 only when the library is unusable.
        _ = Self.initialized
    }

    private static let initialized: Bool = sodium_init() >= 0

    public func randomBytes(_ count: Int) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        bytes.withUnsafeMutableBytes { if let base = $0.baseAddress { randombytes_buf(base, $0.count) } }
        return bytes
    }

    public func generateKeyPair() -> CurveKeyPair {
        var publicBytes = [UInt8](repeating: 0, count: CurvePublicKey.length)
        let secret = SecretBytes(count: CurveSecretKey.length) { secret in
            publicBytes.withUnsafeMutableBytes { publicBuffer in
                guard let pk = Self.pointer(publicBuffer), let sk = Self.pointer(secret) else { return }
                _ = crypto_box_keypair(pk, sk)
            }
        }
        return CurveKeyPair(publicKey: CurvePublicKey(validated: publicBytes), secretKey: CurveSecretKey(secret: secret))
    }

    public func publicKey(for secretKey: CurveSecretKey) -> CurvePublicKey {
        var publicBytes = [UInt8](repeating: 0, count: CurvePublicKey.length)
        secretKey.secret.withUnsafeBytes { secret in
            publicBytes.withUnsafeMutableBytes { publicBuffer in
                guard let pk = Self.pointer(publicBuffer), let sk = Self.pointer(secret) else { return }
                _ = crypto_scalarmult_base(pk, sk)
            }
        }
        return CurvePublicKey(validated: publicBytes)
    }

    public func sharedKey(publicKey: CurvePublicKey, secretKey: CurveSecretKey) -> SecretBytes {
        SecretBytes(count: Int(crypto_box_BEFORENMBYTES)) { shared in
            publicKey.bytes.withUnsafeBytes { publicBuffer in
                secretKey.secret.withUnsafeBytes { secret in
                    guard let k = Self.pointer(shared), let pk = Self.pointer(publicBuffer), let sk = Self.pointer(secret) else {
                        return
                    }
                    // Fails only for a low-order public key; the shared key then stays all zeros and
                    // every box under it fails to open, which ends the handshake.
                    _ = crypto_box_beforenm(k, pk, sk)
                }
            }
        }
    }

    public func seal(_ plaintext: UnsafeRawBufferPointer, nonce: [UInt8], key: SecretBytes, into out: inout [UInt8]) {
        seal(plaintext, nonce: nonce, key: key, into: &out) { crypto_box_easy_afternm($0, $1, $2, $3, $4) }
    }

    public func open(_ box: UnsafeRawBufferPointer, nonce: [UInt8], key: SecretBytes) -> [UInt8]? {
        open(box, nonce: nonce, key: key) { crypto_box_open_easy_afternm($0, $1, $2, $3, $4) }
    }

    /// `crypto_box_easy_afternm` with the plaintext already where the box goes (libsodium allows the
    /// overlap: it moves the plaintext first when they overlap).
    public func sealInPlace(_ buffer: UnsafeMutableRawBufferPointer, nonce: [UInt8], key: SecretBytes) {
        guard buffer.count >= Self.macLength, nonce.count == Self.nonceLength,
            let base = buffer.baseAddress?.assumingMemoryBound(to: UInt8.self)
        else { return }
        nonce.withUnsafeBufferPointer { nonceBuffer in
            key.withUnsafeBytes { keyBuffer in
                guard let noncePointer = nonceBuffer.baseAddress, let keyPointer = Self.pointer(keyBuffer) else { return }
                _ = crypto_box_easy_afternm(
                    base, base + Self.macLength, UInt64(buffer.count - Self.macLength), noncePointer, keyPointer)
            }
        }
    }

    /// `crypto_box_open_easy_afternm` writing the plaintext over the box.
    public func openInPlace(_ buffer: UnsafeMutableRawBufferPointer, nonce: [UInt8], key: SecretBytes) -> Bool {
        guard buffer.count >= Self.macLength, nonce.count == Self.nonceLength,
            let base = buffer.baseAddress?.assumingMemoryBound(to: UInt8.self)
        else { return false }
        return nonce.withUnsafeBufferPointer { nonceBuffer in
            key.withUnsafeBytes { keyBuffer in
                guard let noncePointer = nonceBuffer.baseAddress, let keyPointer = Self.pointer(keyBuffer) else { return false }
                return crypto_box_open_easy_afternm(base, base, UInt64(buffer.count), noncePointer, keyPointer) == 0
            }
        }
    }

    public func secretSeal(_ plaintext: UnsafeRawBufferPointer, nonce: [UInt8], key: SecretBytes, into out: inout [UInt8]) {
        seal(plaintext, nonce: nonce, key: key, into: &out) { crypto_secretbox_easy($0, $1, $2, $3, $4) }
    }

    public func secretOpen(_ box: UnsafeRawBufferPointer, nonce: [UInt8], key: SecretBytes) -> [UInt8]? {
        open(box, nonce: nonce, key: key) { crypto_secretbox_open_easy($0, $1, $2, $3, $4) }
    }

    /// The shape shared by `crypto_box_easy_afternm` and `crypto_secretbox_easy` (and their `open`s):
    /// output, input, input length, nonce, key.
    private typealias BoxFunction = (
        UnsafeMutablePointer<UInt8>, UnsafePointer<UInt8>, UInt64, UnsafePointer<UInt8>, UnsafePointer<UInt8>
    ) -> Int32

    private func seal(
        _ plaintext: UnsafeRawBufferPointer, nonce: [UInt8], key: SecretBytes, into out: inout [UInt8],
        _ function: BoxFunction
    ) {
        // Callers pass 24-octet nonces and 32-octet keys; anything else leaves a zeroed (unopenable) box.
        let start = out.count
        out.append(contentsOf: repeatElement(0, count: Self.macLength + plaintext.count))
        out.withUnsafeMutableBytes { buffer in
            nonce.withUnsafeBytes { nonceBuffer in
                key.withUnsafeBytes { keyBuffer in
                    guard nonceBuffer.count == Self.nonceLength, let output = Self.pointer(buffer),
                        let noncePointer = Self.pointer(nonceBuffer), let keyPointer = Self.pointer(keyBuffer)
                    else { return }
                    _ = function(
                        output + start, Self.pointer(plaintext) ?? UnsafePointer(Self.scratch), UInt64(plaintext.count),
                        noncePointer, keyPointer)
                }
            }
        }
    }

    private func open(
        _ box: UnsafeRawBufferPointer, nonce: [UInt8], key: SecretBytes, _ function: BoxFunction
    ) -> [UInt8]? {
        guard box.count >= Self.macLength, nonce.count == Self.nonceLength else { return nil }
        var plaintext = [UInt8](repeating: 0, count: box.count - Self.macLength)
        let status = plaintext.withUnsafeMutableBytes { output in
            nonce.withUnsafeBytes { nonceBuffer in
                key.withUnsafeBytes { keyBuffer in
                    guard let boxPointer = Self.pointer(box), let noncePointer = Self.pointer(nonceBuffer),
                        let keyPointer = Self.pointer(keyBuffer)
                    else { return Int32(-1) }
                    return function(Self.pointer(output) ?? Self.scratch, boxPointer, UInt64(box.count), noncePointer, keyPointer)
                }
            }
        }
        return status == 0 ? plaintext : nil
    }

    private static func pointer(_ buffer: UnsafeRawBufferPointer) -> UnsafePointer<UInt8>? {
        buffer.baseAddress?.assumingMemoryBound(to: UInt8.self)
    }

    private static func pointer(_ buffer: UnsafeMutableRawBufferPointer) -> UnsafeMutablePointer<UInt8>? {
        buffer.baseAddress?.assumingMemoryBound(to: UInt8.self)
    }

    /// Output pointer for empty plaintexts (libsodium writes nothing there but wants a pointer).
    nonisolated(unsafe) private static let scratch = UnsafeMutablePointer<UInt8>.allocate(capacity: 1)
}
