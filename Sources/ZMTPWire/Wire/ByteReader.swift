/// A bounds-checked big-endian reader over a byte buffer, for command bodies and metadata.
///
/// Every read checks the remaining length first and throws a peer error naming what was missing, so a
/// length field can never make us read (or allocate) past the end of what arrived.
@usableFromInline
struct ByteReader {
    @usableFromInline var bytes: UnsafeRawBufferPointer
    @usableFromInline let code: ZMTPError.Code
    @usableFromInline let context: String

    @inlinable
    init(_ bytes: UnsafeRawBufferPointer, code: ZMTPError.Code, context: String) {
        self.bytes = bytes
        self.code = code
        self.context = context
    }

    @inlinable var remaining: Int { bytes.count }
    @inlinable var isAtEnd: Bool { bytes.isEmpty }

    @inlinable
    mutating func readUInt8(_ what: @autoclosure () -> String) throws(ZMTPError) -> UInt8 {
        guard let value = bytes.first else { throw missing(what(), 1) }
        bytes = UnsafeRawBufferPointer(rebasing: bytes[1...])
        return value
    }

    @inlinable
    mutating func readUInt16(_ what: @autoclosure () -> String) throws(ZMTPError) -> UInt16 {
        guard bytes.count >= 2 else { throw missing(what(), 2) }
        let value = bytes.loadUnaligned(as: UInt16.self).bigEndian
        bytes = UnsafeRawBufferPointer(rebasing: bytes[2...])
        return value
    }

    @inlinable
    mutating func readUInt32(_ what: @autoclosure () -> String) throws(ZMTPError) -> UInt32 {
        guard bytes.count >= 4 else { throw missing(what(), 4) }
        let value = bytes.loadUnaligned(as: UInt32.self).bigEndian
        bytes = UnsafeRawBufferPointer(rebasing: bytes[4...])
        return value
    }

    /// Reads `count` octets; `count` is checked against what remains before anything is allocated.
    @inlinable
    mutating func readBytes(_ count: Int, _ what: @autoclosure () -> String) throws(ZMTPError) -> [UInt8] {
        guard count >= 0, count <= bytes.count else { throw missing(what(), count) }
        let value = [UInt8](UnsafeRawBufferPointer(rebasing: bytes[0..<count]))
        bytes = UnsafeRawBufferPointer(rebasing: bytes[count...])
        return value
    }

    /// Reads everything left.
    @inlinable
    mutating func readRest() -> [UInt8] {
        let value = [UInt8](bytes)
        bytes = UnsafeRawBufferPointer(rebasing: bytes[bytes.count...])
        return value
    }

    /// Throws unless every octet was consumed (trailing bytes are an error).
    @inlinable
    func expectEnd() throws(ZMTPError) {
        guard bytes.isEmpty else {
            throw .peer(code, "\(context): \(bytes.count) unexpected trailing octet(s)")
        }
    }

    @usableFromInline
    func missing(_ what: String, _ needed: Int) -> ZMTPError {
        .peer(code, "\(context): \(what) needs \(needed) octet(s) but only \(bytes.count) remain")
    }
}

extension Collection<UInt8> {
    /// `withUnsafeBytes` for typed-throws bodies (the standard library's version rethrows untyped).
    @inlinable
    public func withRawBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        let result: Result<R, E>? = withContiguousStorageIfAvailable { buffer in
            Result { () throws(E) -> R in try body(UnsafeRawBufferPointer(buffer)) }
        }
        if let result { return try result.get() }
        let copy = Array(self)
        return try copy.withRawBytes(body)
    }
}
