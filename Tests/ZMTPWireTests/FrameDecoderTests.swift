import Testing
import ZMTPFuzzing
@testable import ZMTPWire

@Suite("Frame decoder")
struct FrameDecoderTests {
    /// A stream mixing empty, short, 255/256-boundary, long, multipart and command frames.
    static func sampleStream() -> (bytes: [UInt8], frames: [Frame]) {
        var generator = SplitMix64(seed: 7)
        let frames: [Frame] = [
            Frame(body: []),
            Frame(body: bytes("hello"), more: true),
            Frame(body: [UInt8](repeating: 0xAB, count: 255), more: true),
            Frame(body: [UInt8](repeating: 0xCD, count: 256)),
            Frame(body: (0..<70_000).map { _ in UInt8.random(in: 0...255, using: &generator) }),
            Frame(body: [5] + bytes("READY"), isCommand: true),
            Frame(body: [1, 2, 3], more: true),
            Frame(body: []),
        ]
        var out: [UInt8] = []
        for frame in frames { FrameEncoder.appendFrame(frame.body, more: frame.more, command: frame.isCommand, to: &out) }
        return (out, frames)
    }

    @Test("gives identical frames for every split of the input")
    func identicalFramesForAnySplit() throws {
        let (stream, expected) = Self.sampleStream()
        for (name, chunks) in splits(stream) {
            let frames = try decodeFrames(chunks)
            #expect(frames == expected, "split \(name)")
        }
        for seed in 1...20 as ClosedRange<UInt64> {
            let frames = try decodeFrames(splits(stream, seed: seed)[2].1)
            #expect(frames == expected, "random split with seed \(seed)")
        }
    }

    @Test("encodes sizes up to 255 in one octet and larger ones in eight")
    func shortAndLongSizes() {
        var out: [UInt8] = []
        FrameEncoder.appendFrame([UInt8](repeating: 1, count: 255), to: &out)
        #expect(Array(out.prefix(2)) == [0x00, 0xFF])
        out = []
        FrameEncoder.appendFrame([UInt8](repeating: 1, count: 256), more: true, to: &out)
        #expect(Array(out.prefix(9)) == [0x03, 0, 0, 0, 0, 0, 0, 1, 0])
        out = []
        FrameEncoder.appendFrame([9], command: true, to: &out)
        #expect(out == [0x04, 1, 9])
    }

    @Test("accepts a LONG frame whose size would fit in one octet")
    func acceptsLongFormForSmallSize() throws {
        let frames = try decodeFrames([[0x02, 0, 0, 0, 0, 0, 0, 0, 3, 7, 8, 9]])
        #expect(frames == [Frame(body: [7, 8, 9])])
    }

    @Test("rejects reserved flag bits", arguments: [0x08, 0x10, 0x20, 0x40, 0x80, 0xF8] as [UInt8])
    func rejectsReservedFlagBits(flags: UInt8) {
        expectError(.malformedFrame) { _ = try decodeFrames([[flags, 0]]) }
    }

    @Test("rejects a command frame with MORE set")
    func rejectsCommandWithMore() {
        expectError(.malformedFrame) { _ = try decodeFrames([[0x05, 1, 0x41]]) }
    }

    @Test("rejects a frame longer than the maximum message size from its header alone")
    func rejectsFrameLongerThanMaximumMessageSizeBeforeBody() {
        // Only the header arrives: the error must come before any body byte.
        expectError(.messageTooLarge) { _ = try decodeFrames([[0x02, 0, 0, 0, 0, 0, 1, 0, 1]], maxMessageSize: 65536) }
        expectError(.messageTooLarge) { _ = try decodeFrames([[0x00, 11]], maxMessageSize: 10) }
        // Exactly at the limit is fine.
        #expect(throws: Never.self) { try decodeFrames([[0x00, 10] + [UInt8](repeating: 0, count: 10)], maxMessageSize: 10) }
    }

    @Test("rejects an 8-octet size with the top bit set, split or whole")
    func rejectsSizeWithTopBitSet() {
        let header: [UInt8] = [0x02, 0x80, 0, 0, 0, 0, 0, 0, 0]
        for (name, chunks) in splits(header) {
            let error = expectError(.malformedFrame) { _ = try decodeFrames(chunks) }
            #expect(error?.blame == .peer, "split \(name)")
        }
    }

    @Test("rejects command frames above 1 MiB even with no message size limit")
    func rejectsOversizedCommand() {
        let size = UInt64(Limits.maxCommandSize + 1)
        var header: [UInt8] = [0x06]
        withUnsafeBytes(of: size.bigEndian) { header.append(contentsOf: $0) }
        expectError(.commandTooLarge) { _ = try decodeFrames([header]) }
    }

    @Test("never reserves the announced size for a body that has not arrived")
    func doesNotAllocateFromAnnouncedSize() throws {
        var decoder = FrameDecoder(maxMessageSize: nil)
        // Announce 2^62 octets, send 3.
        let frames = try decoder.decodeAll([0x02, 0x40, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3])
        #expect(frames.isEmpty)
        // Allocators round up; what matters is that 2^62 was not asked for.
        #expect(decoder.partialBody.capacity <= 2 * Limits.speculativeBodyReservation)
        #expect(decoder.partialBody == [1, 2, 3])
    }

    @Test("consumes exactly one frame per call and leaves the rest of the input")
    func consumesInPlace() throws {
        var stream: [UInt8] = []
        FrameEncoder.appendFrame([1], to: &stream)
        FrameEncoder.appendFrame([2, 2], to: &stream)
        var decoder = FrameDecoder()
        try stream.withUnsafeBytes { (raw: UnsafeRawBufferPointer) throws in
            var input = raw
            #expect(try decoder.next(from: &input) == Frame(body: [1]))
            #expect(input.count == 4)
            #expect(try decoder.next(from: &input) == Frame(body: [2, 2]))
            #expect(input.isEmpty)
            #expect(try decoder.next(from: &input) == nil)
        }
        #expect(decoder.isAtFrameBoundary)
    }
}

@Suite("Outbound buffer")
struct OutboundBufferTests {
    @Test("hands out every byte in order across partial consumes, sharing large bodies")
    func partialConsumesPreserveOrder() {
        var buffer = OutboundBuffer()
        let big = [UInt8](repeating: 7, count: OutboundBuffer.shareThreshold)
        var expected: [UInt8] = []
        buffer.appendFrame([1, 2, 3], more: true)
        FrameEncoder.appendFrame([1, 2, 3], more: true, to: &expected)
        buffer.appendFrame(big)
        FrameEncoder.appendFrame(big, to: &expected)
        buffer.appendFrame([9], command: true)
        FrameEncoder.appendFrame([9], command: true, to: &expected)
        #expect(buffer.count == expected.count)

        var received: [UInt8] = []
        var step = 1
        while !buffer.isEmpty {
            let taken: [UInt8] = buffer.withChunks(maxChunks: 2) { pieces in
                var flat: [UInt8] = []
                for piece in pieces { flat.append(contentsOf: piece) }
                return Array(flat.prefix(step))
            }
            received += taken
            buffer.consume(taken.count)
            step = step * 3 + 1
        }
        #expect(received == expected)
    }

    @Test("takeAll empties the buffer")
    func takeAllEmpties() {
        var buffer = OutboundBuffer()
        buffer.append([1, 2, 3])
        buffer.consume(1)
        buffer.append([4])
        #expect(buffer.takeAll() == [2, 3, 4])
        #expect(buffer.isEmpty)
        #expect(buffer.takeAll() == [])
    }

    @Test("a buffer that is never entirely sent keeps only about what is unsent, not everything ever written")
    func partialWritesDoNotAccumulate() {
        var buffer = OutboundBuffer()
        let frame = [UInt8](repeating: 7, count: 1024)
        var written: [UInt8] = []
        var expected: [UInt8] = []
        for round in 0..<10_000 {
            buffer.appendFrame(frame)
            FrameEncoder.appendFrame(frame, to: &expected)
            // The kernel takes all but the last 100 octets each time (as a full socket buffer does).
            let take = buffer.count - 100
            buffer.withChunks { pieces in
                var left = take
                for piece in pieces where left > 0 {
                    written.append(contentsOf: piece.prefix(left))
                    left -= min(left, piece.count)
                }
            }
            buffer.consume(take)
            if round % 1000 == 0 { #expect(buffer.retainedOctets < 256 * 1024, "round \(round): \(buffer.retainedOctets) octets held") }
        }
        #expect(buffer.retainedOctets < 256 * 1024)
        written += buffer.takeAll()
        #expect(written == expected, "every octet once, in order")
    }
}
