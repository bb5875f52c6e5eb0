import CSodium

/// Secret octets that are wiped when the last copy is released (secret keys, shared keys).
///
/// Copies share one heap buffer; `sodium_memzero` clears it in `deinit`, so a key never lingers in
/// freed memory. The bytes are only reachable through ``withUnsafeBytes(_:)``.
public struct SecretBytes: Sendable, Equatable {
    final class Storage: @unchecked Sendable {
        // Immutable after init; only read afterwards, so sharing across threads is safe.
        let pointer: UnsafeMutableRawBufferPointer

        init(count: Int) {
            pointer = .allocate(byteCount: count, alignment: 16)
            pointer.initializeMemory(as: UInt8.self, repeating: 0)
        }

        deinit {
            if let base = pointer.baseAddress { sodium_memzero(base, pointer.count) }
            pointer.deallocate()
        }
    }

    let storage: Storage

    /// Copies `bytes` into wiped-on-release storage.
    public init(_ bytes: some Collection<UInt8>) {
        storage = Storage(count: bytes.count)
        _ = storage.pointer.initializeMemory(as: UInt8.self, from: bytes)
    }

    /// Storage of `count` octets filled by `body`.
    init(count: Int, _ body: (UnsafeMutableRawBufferPointer) -> Void) {
        storage = Storage(count: count)
        body(storage.pointer)
    }

    public var count: Int { storage.pointer.count }

    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(storage.pointer))
    }

    /// Constant-time comparison.
    public static func == (lhs: SecretBytes, rhs: SecretBytes) -> Bool {
        guard lhs.count == rhs.count else { return false }
        return lhs.withUnsafeBytes { a in rhs.withUnsafeBytes { b in sodium_memcmp(a.baseAddress, b.baseAddress, a.count) == 0 } }
    }
}

/// A Curve25519 public key: 32 octets, 40 characters of Z85.
public struct CurvePublicKey: Hashable, Sendable, CustomStringConvertible {
    public static let length = 32
    public let bytes: [UInt8]

    /// - Throws: `invalidArgument` unless `bytes` has exactly 32 octets.
    public init(bytes: [UInt8]) throws(ZMTPError) {
        guard bytes.count == Self.length else {
            throw .local(.invalidArgument, "a CURVE public key has 32 octets, not \(bytes.count)")
        }
        self.bytes = bytes
    }

    /// - Throws: `invalidZ85` unless `z85` is 40 valid Z85 characters.
    public init(z85: String) throws(ZMTPError) {
        guard z85.utf8.count == 40 else {
            throw .local(.invalidZ85, "a CURVE key is 40 Z85 characters, not \(z85.utf8.count)")
        }
        try self.init(bytes: try Z85.decode(z85))
    }

    /// For callers that have already checked the length (32 octets read from a fixed-size field).
    init(validated bytes: [UInt8]) {
        assert(bytes.count == Self.length)
        self.bytes = bytes
    }

    /// The key as 40 Z85 characters.
    public var z85: String { (try? Z85.encode(bytes)) ?? "" }
    public var description: String { z85 }
}

/// A Curve25519 secret key: 32 octets, wiped from memory when released.
public struct CurveSecretKey: Sendable, Equatable {
    public static let length = 32
    public let secret: SecretBytes

    /// - Throws: `invalidArgument` unless `bytes` has exactly 32 octets.
    public init(bytes: some Collection<UInt8>) throws(ZMTPError) {
        guard bytes.count == Self.length else {
            throw .local(.invalidArgument, "a CURVE secret key has 32 octets, not \(bytes.count)")
        }
        secret = SecretBytes(bytes)
    }

    /// - Throws: `invalidZ85` unless `z85` is 40 valid Z85 characters.
    public init(z85: String) throws(ZMTPError) {
        guard z85.utf8.count == 40 else {
            throw .local(.invalidZ85, "a CURVE key is 40 Z85 characters, not \(z85.utf8.count)")
        }
        var bytes = try Z85.decode(z85)
        defer { bytes.withUnsafeMutableBytes { if let base = $0.baseAddress { sodium_memzero(base, $0.count) } } }
        try self.init(bytes: bytes)
    }

    init(secret: SecretBytes) { self.secret = secret }

    /// The key as 40 Z85 characters (for `zmtp keygen`; handle with care: a String cannot be wiped).
    public var z85: String {
        secret.withUnsafeBytes { (try? Z85.encode($0)) ?? "" }
    }
}

/// A long-term or transient CURVE key pair.
public struct CurveKeyPair: Sendable {
    public let publicKey: CurvePublicKey
    public let secretKey: CurveSecretKey

    public init(publicKey: CurvePublicKey, secretKey: CurveSecretKey) {
        self.publicKey = publicKey
        self.secretKey = secretKey
    }

    /// The pair whose secret is `secretKey`, computing the public half with `crypto`.
    public init(secretKey: CurveSecretKey, crypto: any CurveCrypto = SodiumCurveCrypto()) {
        self.init(publicKey: crypto.publicKey(for: secretKey), secretKey: secretKey)
    }

    /// A fresh random key pair.
    public static func generate(crypto: any CurveCrypto = SodiumCurveCrypto()) -> CurveKeyPair {
        crypto.generateKeyPair()
    }
}
