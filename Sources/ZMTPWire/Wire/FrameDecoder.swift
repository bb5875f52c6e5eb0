/// Incremental ZMTP frame decoder (RFC 37 §Framing).
///
/// Feed it whatever bytes arrived and pull frames; `nil` means "need more input". Any split of the same
/// bytes gives the same frames. The decoder consumes its input in place: a frame whose bytes are all
/// present is copied exactly once, from the input into the frame's storage; a frame that straddles
/// reads keeps only its own partial body.
///
/// Limits are checked before anything is allocated for a frame:
/// - data frames against ``maxMessageSize`` (per frame, like libzmq's `ZMQ_MAXMSGSIZE`);
/// - command frames against ``Limits/maxCommandSize``;
/// - an 8-octet size with the top bit set is malformed.
/// Even with no maximum, the buffer for a partial body grows with the bytes actually received, never
/// with the size the peer announced.
public struct FrameDecoder: Sendable {
    @usableFromInline
    enum State: Sendable {
        /// Waiting for a flags octet.
        case awaitingFlags
        /// Have the flags; waiting for the one-octet size.
        case awaitingShortSize(UInt8)
        /// Have the flags and `count` octets of the 8-octet size so far.
        case awaitingLongSize(UInt8, partial: UInt64, count: Int)
        /// Receiving a body into `partialBody`; `remaining` octets still to come.
        case awaitingBody(UInt8, remaining: Int)
    }

    /// Largest data frame accepted, in octets; `nil` for no limit (libzmq's default of -1).
    public var maxMessageSize: Int?

    @usableFromInline var state: State = .awaitingFlags
    @usableFromInline var partialBody: [UInt8] = []

    public init(maxMessageSize: Int? = nil) {
        self.maxMessageSize = maxMessageSize
    }

    /// True when no frame is partly decoded (a clean point to stop at).
    public var isAtFrameBoundary: Bool {
        if case .awaitingFlags = state { return true }
        return false
    }

    /// Decodes the next frame from the front of `input`, advancing `input` past every byte consumed.
    ///
    /// Returns `nil` when `input` is exhausted without completing a frame; the partial frame is kept
    /// and continues with the next call.
    /// - Throws: ``ZMTPError`` with blame `.peer` for malformed flags, or a size over the limits. The
    ///   decoder must not be used after an error.
    @inlinable
    public mutating func next(from input: inout UnsafeRawBufferPointer) throws(ZMTPError) -> Frame? {
        while true {
            switch state {
            case .awaitingFlags:
                guard let flags = input.first else { return nil }
                try Self.validate(flags: flags)
                let headerLength = flags & FrameFlags.long.rawValue != 0 ? 9 : 2
                guard input.count >= headerLength else {
                    input = Self.dropping(1, from: input)
                    state = flags & FrameFlags.long.rawValue != 0
                        ? .awaitingLongSize(flags, partial: 0, count: 0)
                        : .awaitingShortSize(flags)
                    continue
                }
                let size: Int
                if headerLength == 2 {
                    size = Int(input[1])
                } else {
                    size = try checkedLongSize(input.loadUnaligned(fromByteOffset: 1, as: UInt64.self).bigEndian)
                }
                try check(size: size, flags: flags)
                if input.count - headerLength >= size {
                    // Fast path: the whole frame is here; one copy into the frame's own storage.
                    let body = [UInt8](UnsafeRawBufferPointer(rebasing: input[headerLength..<(headerLength + size)]))
                    input = Self.dropping(headerLength + size, from: input)
                    return Self.frame(flags: flags, body: body)
                }
                input = Self.dropping(headerLength, from: input)
                beginBody(flags: flags, size: size, available: input.count)

            case .awaitingShortSize(let flags):
                guard let octet = input.first else { return nil }
                input = Self.dropping(1, from: input)
                let size = Int(octet)
                try check(size: size, flags: flags)
                beginBody(flags: flags, size: size, available: input.count)

            case .awaitingLongSize(let flags, var partial, var count):
                while count < 8, let octet = input.first {
                    partial = partial << 8 | UInt64(octet)
                    count += 1
                    input = Self.dropping(1, from: input)
                }
                guard count == 8 else {
                    state = .awaitingLongSize(flags, partial: partial, count: count)
                    return nil
                }
                let size = try checkedLongSize(partial)
                try check(size: size, flags: flags)
                beginBody(flags: flags, size: size, available: input.count)

            case .awaitingBody(let flags, let remaining):
                if remaining > 0 {
                    guard !input.isEmpty else { return nil }
                    let take = min(remaining, input.count)
                    partialBody.append(contentsOf: UnsafeRawBufferPointer(rebasing: input[0..<take]))
                    input = Self.dropping(take, from: input)
                    if take < remaining {
                        state = .awaitingBody(flags, remaining: remaining - take)
                        return nil
                    }
                }
                state = .awaitingFlags
                var body: [UInt8] = []
                swap(&body, &partialBody)
                return Self.frame(flags: flags, body: body)
            }
        }
    }

    /// Convenience for tests and simple drivers: decodes every complete frame in `bytes`.
    public mutating func decodeAll(_ bytes: [UInt8]) throws(ZMTPError) -> [Frame] {
        var frames: [Frame] = []
        try bytes.withRawBytes { (raw: UnsafeRawBufferPointer) throws(ZMTPError) in
            var input = raw
            while let frame = try next(from: &input) { frames.append(frame) }
        }
        return frames
    }

    // MARK: - Pieces

    @inlinable
    static func validate(flags: UInt8) throws(ZMTPError) {
        if flags & FrameFlags.reserved.rawValue != 0 {
            throw .peer(.malformedFrame, "reserved flag bits set in flags octet 0x\(String(flags, radix: 16))")
        }
        if flags & FrameFlags.command.rawValue != 0, flags & FrameFlags.more.rawValue != 0 {
            throw .peer(.malformedFrame, "command frame has the MORE flag set")
        }
    }

    @inlinable
    func checkedLongSize(_ raw: UInt64) throws(ZMTPError) -> Int {
        guard raw <= Limits.maxEncodableFrameSize else {
            throw .peer(.malformedFrame, "8-octet frame size \(raw) has the top bit set")
        }
        return Int(raw)
    }

    @inlinable
    func check(size: Int, flags: UInt8) throws(ZMTPError) {
        if flags & FrameFlags.command.rawValue != 0 {
            if size > Limits.maxCommandSize {
                throw .peer(.commandTooLarge, "command frame of \(size) octets exceeds \(Limits.maxCommandSize)")
            }
        } else if let limit = maxMessageSize, size > limit {
            throw .peer(.messageTooLarge, "frame of \(size) octets exceeds the maximum message size \(limit)")
        }
    }

    /// Starts a body that has not fully arrived. Reserves what has arrived plus a bounded margin, never
    /// the announced size itself.
    @inlinable
    mutating func beginBody(flags: UInt8, size: Int, available: Int) {
        partialBody.removeAll(keepingCapacity: true)
        partialBody.reserveCapacity(min(size, available + Limits.speculativeBodyReservation))
        state = .awaitingBody(flags, remaining: size)
    }

    @inlinable
    static func frame(flags: UInt8, body: [UInt8]) -> Frame {
        Frame(
            body: body,
            more: flags & FrameFlags.more.rawValue != 0,
            isCommand: flags & FrameFlags.command.rawValue != 0
        )
    }

    @inlinable
    static func dropping(_ n: Int, from input: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: input[n...])
    }
}
