import Testing
@testable import ZMTPWire
import ZMTPFuzzing

/// Splits `bytes` three ways for "any split gives the same result" tests: whole, one byte at a time,
/// and random chunk sizes from a seeded generator.
func splits(_ bytes: [UInt8], seed: UInt64 = 42) -> [(String, [[UInt8]])] {
    var generator = SplitMix64(seed: seed)
    var chunks: [[UInt8]] = []
    var start = 0
    while start < bytes.count {
        let size = Int(generator.next() % 23) + 1
        let end = min(bytes.count, start + size)
        chunks.append(Array(bytes[start..<end]))
        start = end
    }
    return [("whole", [bytes]), ("bytewise", bytes.map { [$0] }), ("random", chunks)]
}


/// Decodes all frames of `bytes` fed in the given chunks.
func decodeFrames(_ chunks: [[UInt8]], maxMessageSize: Int? = nil) throws(ZMTPError) -> [Frame] {
    var decoder = FrameDecoder(maxMessageSize: maxMessageSize)
    var frames: [Frame] = []
    for chunk in chunks { frames += try decoder.decodeAll(chunk) }
    return frames
}

/// Asserts that `body` throws a ZMTPError with `code`, and returns it.
@discardableResult
func expectError(
    _ code: ZMTPError.Code, sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () throws -> Void
) -> ZMTPError? {
    do {
        try body()
        Issue.record("expected \(code), nothing was thrown", sourceLocation: sourceLocation)
        return nil
    } catch let error as ZMTPError {
        #expect(error.code == code, "got \(error)", sourceLocation: sourceLocation)
        return error
    } catch {
        Issue.record("expected a ZMTPError, got \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

func bytes(_ string: String) -> [UInt8] { Array(string.utf8) }

/// Decodes `wire` as command frames.
func commands(in wire: [UInt8]) throws -> [Command] {
    var decoder = FrameDecoder()
    return try decoder.decodeAll(wire).map { try Command.decode($0.body) }
}
