/// Writes ZMTP frames (RFC 37 §Framing).
///
/// A frame is a flags octet, a size (one octet up to 255, else eight octets in network order) and the
/// body. Sizes up to 255 always use the short form, as RFC 23 recommends.
public enum FrameEncoder {
    /// Octets of header a frame of `size` needs.
    @inlinable
    public static func headerLength(forSize size: Int) -> Int { size > 255 ? 9 : 2 }

    /// Appends the flags and size of a frame whose `size`-octet body the caller appends next.
    @inlinable
    public static func appendHeader(size: Int, more: Bool, command: Bool, to out: inout [UInt8]) {
        var flags: UInt8 = 0
        if more { flags |= FrameFlags.more.rawValue }
        if command { flags |= FrameFlags.command.rawValue }
        if size > 255 {
            out.append(flags | FrameFlags.long.rawValue)
            let big = UInt64(size).bigEndian
            withUnsafeBytes(of: big) { out.append(contentsOf: $0) }
        } else {
            out.append(flags)
            out.append(UInt8(truncatingIfNeeded: size))
        }
    }

    /// Appends one whole frame.
    @inlinable
    public static func appendFrame(_ body: [UInt8], more: Bool = false, command: Bool = false, to out: inout [UInt8]) {
        appendHeader(size: body.count, more: more, command: command, to: &out)
        out.append(contentsOf: body)
    }

    /// Appends every frame of `message`, MORE set on all but the last.
    @inlinable
    public static func appendMessage(_ message: Message, to out: inout [UInt8]) {
        let last = message.frames.count - 1
        for (index, frame) in message.frames.enumerated() {
            appendFrame(frame, more: index != last, to: &out)
        }
    }
}

/// Outbound bytes of one connection, kept as a list of chunks so that a driver can hand them all to one
/// `writev` and consume however many octets the kernel took.
///
/// Small frames are copied into a shared chunk; a body of at least ``shareThreshold`` octets is
/// referenced (copy-on-write) rather than copied, so fanning a large message out to many peers never
/// duplicates its bytes.
public struct OutboundBuffer: Sendable {
    /// Bodies this large or larger are kept by reference instead of being copied.
    public static let shareThreshold = 16 * 1024
    /// Sent octets at the front of the tail that are dropped (moving the rest down) once they are at
    /// least this many and at least half of it.
    public static let compactThreshold = 64 * 1024
    /// A tail that grew past this capacity is freed, not kept, once everything in it was sent: a
    /// connection that once had a burst queued does not keep the burst's memory while idle (with
    /// thousands of connections that adds up). Below it the storage is reused: a session copies at
    /// most 64 KiB of small frames ahead of the kernel, so a steady stream fits and never
    /// reallocates (freeing at 64 KiB cost 16-byte throughput about 5 %).
    public static let retainedTailCapacity = 256 * 1024
    /// ``shareThreshold`` zero octets, the room a frame filled in place starts from.
    @usableFromInline static let zeros = [UInt8](repeating: 0, count: shareThreshold)

    @usableFromInline var chunks: [[UInt8]] = []
    /// Index of the first chunk not fully sent.
    @usableFromInline var head = 0
    /// Octets of `chunks[head]` already sent.
    @usableFromInline var headOffset = 0
    /// Small bytes not yet sealed into `chunks`.
    @usableFromInline var tail: [UInt8] = []
    /// Octets not yet consumed.
    @inlinable public var count: Int { pending }
    /// Unsent octets in the copy buffer for small frames (headers and bodies under
    /// ``shareThreshold``): what this connection holds of its own, as opposed to bodies it shares.
    @inlinable public var copiedOctets: Int { head == chunks.count ? tail.count - headOffset : tail.count }
    @usableFromInline var pending = 0

    public init() {}

    public var isEmpty: Bool { count == 0 }

    /// Octets the buffer holds in memory, sent or not (diagnostics and tests: it must stay near
    /// ``count``, not grow with everything ever written).
    public var retainedOctets: Int {
        tail.count + chunks[head...].reduce(0) { $0 + $1.count }
    }

    /// Appends raw octets (already encoded).
    @inlinable
    public mutating func append(_ bytes: [UInt8]) {
        if bytes.count >= Self.shareThreshold {
            sealTail()
            chunks.append(bytes)
        } else {
            tail.append(contentsOf: bytes)
        }
        pending += bytes.count
    }

    /// Appends a frame: its header is copied, its body shared when large.
    @inlinable
    public mutating func appendFrame(_ body: [UInt8], more: Bool = false, command: Bool = false) {
        let before = tail.count
        FrameEncoder.appendHeader(size: body.count, more: more, command: command, to: &tail)
        pending += tail.count - before
        append(body)
    }

    /// Appends a frame of `size` octets whose body `fill` writes in place (zeroed beforehand), with
    /// no intermediate array: CURVE seals MESSAGE boxes this way. A body of ``shareThreshold`` octets
    /// or more gets a chunk of its own, so it is written once and never copied again.
    @inlinable
    public mutating func appendFrame<R>(
        size: Int, more: Bool = false, command: Bool = false, fill: (UnsafeMutableRawBufferPointer) -> R
    ) -> R {
        let before = tail.count
        FrameEncoder.appendHeader(size: size, more: more, command: command, to: &tail)
        pending += tail.count - before
        if size >= Self.shareThreshold {
            sealTail()
            var result: R?
            let chunk = [UInt8](unsafeUninitializedCapacity: size) { buffer, initialized in
                buffer.initialize(repeating: 0)
                result = fill(UnsafeMutableRawBufferPointer(buffer))
                initialized = size
            }
            chunks.append(chunk)
            pending += size
            // `fill` ran exactly once above.
            return result.unsafelyUnwrapped
        }
        let start = tail.count
        // Zeros from a static buffer: one memcpy (appending `repeatElement` goes octet by octet).
        // `size` is under shareThreshold here, the buffer's length.
        tail.append(contentsOf: Self.zeros[0..<size])
        pending += size
        return tail.withUnsafeMutableBytes { fill(UnsafeMutableRawBufferPointer(rebasing: $0[start...])) }
    }

    /// Appends every frame of a message.
    @inlinable
    public mutating func appendMessage(_ message: Message) {
        if message.frames.isInline {
            // Copied from the message in place, with no array made for it. Not through
            // appendFrame(size:fill:): zero-filling first and the closure cost the proxy 76 more
            // instructions per 16 B message (callgrind, 2,250 -> 2,326).
            message.frames.withUnsafeBytes(ofFrame: 0) { body in
                let before = tail.count
                FrameEncoder.appendHeader(size: body.count, more: false, command: false, to: &tail)
                tail.append(contentsOf: body)
                pending += tail.count - before
            }
            return
        }
        let last = message.frames.count - 1
        for index in message.frames.indices {
            appendFrame(message.frames[index], more: index != last)
        }
    }

    /// Gives `body` the unsent bytes as up to `maxChunks` contiguous pieces, in order (for `writev`).
    public func withChunks<R, E: Error>(
        maxChunks: Int = 64, _ body: ([UnsafeRawBufferPointer]) throws(E) -> R
    ) throws(E) -> R {
        var pieces: [ArraySlice<UInt8>] = []
        var index = head
        while index < chunks.count, pieces.count < maxChunks {
            let chunk = chunks[index]
            pieces.append(index == head ? chunk[headOffset...] : chunk[...])
            index += 1
        }
        if index == chunks.count, pieces.count < maxChunks, !tail.isEmpty {
            pieces.append(chunks.count == head ? tail[headOffset...] : tail[...])
        }
        var pointers: [UnsafeRawBufferPointer] = []
        pointers.reserveCapacity(pieces.count)
        return try Self.nest(pieces[...], &pointers, body)
    }

    private static func nest<R, E: Error>(
        _ rest: ArraySlice<ArraySlice<UInt8>>, _ pointers: inout [UnsafeRawBufferPointer],
        _ body: ([UnsafeRawBufferPointer]) throws(E) -> R
    ) throws(E) -> R {
        guard let first = rest.first else { return try body(pointers) }
        return try first.withRawBytes { (raw: UnsafeRawBufferPointer) throws(E) -> R in
            pointers.append(raw)
            return try nest(rest.dropFirst(), &pointers, body)
        }
    }

    /// Marks the first `n` unsent octets as sent.
    public mutating func consume(_ n: Int) {
        assert(n >= 0 && n <= count, "consumed more than was buffered")
        let n = min(max(n, 0), count)
        var left = n
        pending -= n
        while left > 0 {
            if head < chunks.count {
                let available = chunks[head].count - headOffset
                if left >= available {
                    left -= available
                    head += 1
                    headOffset = 0
                } else {
                    headOffset += left
                    left = 0
                }
            } else {
                headOffset += left
                left = 0
            }
        }
        if head == chunks.count, headOffset == tail.count {
            // Everything sent: reuse the tail's storage.
            chunks.removeAll(keepingCapacity: true)
            head = 0
            headOffset = 0
            tail.removeAll(keepingCapacity: tail.capacity <= Self.retainedTailCapacity)
        } else if head > 32, head * 2 > chunks.count {
            chunks.removeFirst(head)
            head = 0
        } else if head == chunks.count, headOffset >= Self.compactThreshold, headOffset * 2 >= tail.count {
            // The writer keeps appending to a tail that is never entirely sent (the kernel takes a bit
            // less than is queued each time): drop the sent part, or the tail would grow without bound.
            tail.removeFirst(headOffset)
            headOffset = 0
        }
    }

    /// Removes and returns every unsent octet as one array (tests and simple drivers).
    public mutating func takeAll() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(count)
        withChunks(maxChunks: Int.max) { (pieces: [UnsafeRawBufferPointer]) in
            for piece in pieces { out.append(contentsOf: piece) }
        }
        consume(count)
        return out
    }

    @usableFromInline
    mutating func sealTail() {
        guard !tail.isEmpty else { return }
        if head == chunks.count, headOffset > 0 {
            // The tail is partly sent; keep only its unsent part.
            tail.removeFirst(headOffset)
            headOffset = 0
        }
        chunks.append(tail)
        tail.removeAll(keepingCapacity: false)
    }
}
