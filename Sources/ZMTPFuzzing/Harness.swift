// Fuzz harnesses: one function per target, each checking invariants rather than only "did not crash".
//
// Each returns nil when every invariant held, or a description of the first violation. The libFuzzer
// shims in Fuzz/ trap on a violation; the unit tests replay Fuzz/Corpus and Fuzz/FailCases through the
// same functions and report violations as test failures. A trap inside the library (a crash) fails
// both.

import ZMTPWire

/// The fuzz targets, by the name used for Fuzz/ directories and `Fuzz/run.sh`.
public enum FuzzTarget: String, CaseIterable, Sendable {
    case frameDecoder = "FuzzFrameDecoder"
    case handshakeServer = "FuzzHandshakeServer"
    case handshakeClient = "FuzzHandshakeClient"
    case metadata = "FuzzMetadata"
    case command = "FuzzCommand"
    case z85 = "FuzzZ85"
    case curveServer = "FuzzCurveServer"
    case curveClient = "FuzzCurveClient"
    case curveMessage = "FuzzCurveMessage"
    case zap = "FuzzZAP"

    /// Runs this target's harness on one input.
    public func run(_ data: [UInt8]) -> String? {
        switch self {
        case .frameDecoder: return FuzzHarness.frameDecoder(data)
        case .handshakeServer: return FuzzHarness.nullHandshake(data, role: .server)
        case .handshakeClient: return FuzzHarness.nullHandshake(data, role: .client)
        case .metadata: return FuzzHarness.metadata(data)
        case .command: return FuzzHarness.command(data)
        case .z85: return FuzzHarness.z85(data)
        case .curveServer: return FuzzHarness.curveServer(data)
        case .curveClient: return FuzzHarness.curveClient(data)
        case .curveMessage: return FuzzHarness.curveMessage(data)
        case .zap: return FuzzHarness.zap(data)
        }
    }
}

public enum FuzzHarness {
    /// Frame decoder: the same frames (or the same error) for the input fed whole, one byte at a time,
    /// and in chunks whose sizes come from the input; decoded frames re-encode to frames that decode
    /// identically; nothing is consumed past an error.
    public static func frameDecoder(_ data: [UInt8]) -> String? {
        let limit = 1 << 16
        let whole = decodeFrames(data, maxMessageSize: limit, chunking: .whole)
        let bytewise = decodeFrames(data, maxMessageSize: limit, chunking: .bytewise)
        let chunked = decodeFrames(data, maxMessageSize: limit, chunking: .chunks(seed: data.first ?? 0))
        guard whole == bytewise else { return "whole vs one-byte-at-a-time differ: \(whole) vs \(bytewise)" }
        guard whole == chunked else { return "whole vs chunked differ: \(whole) vs \(chunked)" }
        if let code = whole.error, code != .malformedFrame, code != .messageTooLarge, code != .commandTooLarge {
            return "unexpected error code \(code)"
        }
        for frame in whole.frames {
            if frame.isCommand && frame.body.count > Limits.maxCommandSize { return "command over the limit accepted" }
            if !frame.isCommand && frame.body.count > limit { return "frame over maxMessageSize accepted" }
            if frame.isCommand && frame.more { return "command with MORE accepted" }
        }
        var reencoded: [UInt8] = []
        for frame in whole.frames {
            FrameEncoder.appendFrame(frame.body, more: frame.more, command: frame.isCommand, to: &reencoded)
        }
        let again = decodeFrames(reencoded, maxMessageSize: limit, chunking: .whole)
        guard again.error == nil, again.frames == whole.frames else { return "re-encoded frames decode differently" }
        return nil
    }

    public enum Role: Sendable { case server, client }

    /// Greeting + NULL handshake + traffic with attacker-controlled bytes, our side playing `role`
    /// (server: an accepting XPUB that answers READY; client: a connecting PUSH that sends READY first).
    /// The invariants are those of ``compareSplits(_:make:allowed:sendBound:)``.
    public static func nullHandshake(_ data: [UInt8], role: Role) -> String? {
        let socketType: SocketType = role == .server ? .xpub : .push
        let mechanismRole: MechanismRole = role == .server ? .server : .client
        let make = { () throws(ZMTPError) -> Connection in
            try Connection(
                configuration: ConnectionConfiguration(socketType: socketType, maxMessageSize: 1 << 16),
                mechanism: NullMechanism(role: mechanismRole), now: .zero)
        }
        // Greeting (64) + READY (small) + one ERROR (<= 2 + 6 + 256).
        return compareSplits(data, make: make, allowed: nil, sendBound: 64 + 512 + 300)
    }

    /// Metadata: a property list that decodes re-encodes to exactly the same octets (the encoding is
    /// canonical), and every error is `malformedMetadata`.
    public static func metadata(_ data: [UInt8]) -> String? {
        do throws(ZMTPError) {
            let metadata = try Metadata.decode(data)
            var out: [UInt8] = []
            metadata.encode(into: &out)
            guard out == data else { return "metadata re-encodes differently" }
            guard metadata.encodedLength == data.count else { return "encodedLength disagrees" }
            for property in metadata {
                guard metadata[property.name.uppercased()] != nil else { return "case-insensitive lookup failed" }
            }
        } catch {
            guard error.code == .malformedMetadata, error.blame == .peer else { return "unexpected error \(error)" }
        }
        return nil
    }

    /// Commands: a body that decodes re-encodes to the same octets; errors are the peer's fault.
    public static func command(_ data: [UInt8]) -> String? {
        do throws(ZMTPError) {
            let command = try Command.decode(data)
            let out: [UInt8]
            do throws(ZMTPError) { out = try command.encodedBody() } catch { return "decoded command does not encode: \(error)" }
            guard out == data else { return "command \(command.name) re-encodes differently" }
        } catch {
            guard error.blame == .peer, error.code == .malformedCommand || error.code == .malformedMetadata else {
                return "unexpected error \(error)"
            }
        }
        return nil
    }

    /// Z85: decodable text re-encodes to itself; any bytes (truncated to a multiple of 4) round-trip.
    public static func z85(_ data: [UInt8]) -> String? {
        let text = String(decoding: data, as: UTF8.self)
        do throws(ZMTPError) {
            let decoded = try Z85.decode(text)
            guard Array(text.utf8) == data else { return nil }  // input was not valid UTF-8 as given
            let again = try Z85.encode(decoded)
            guard again == text else { return "Z85 text does not re-encode to itself" }
        } catch {
            guard error.code == .invalidZ85 else { return "unexpected error \(error)" }
        }
        let bytes = Array(data.prefix(data.count - data.count % 4))
        do throws(ZMTPError) {
            let text = try Z85.encode(bytes)
            guard text.utf8.count == bytes.count / 4 * 5 else { return "Z85 length wrong" }
            guard try Z85.decode(text) == bytes else { return "Z85 round trip failed" }
        } catch {
            return "Z85 round trip threw \(error)"
        }
        return nil
    }

    // MARK: - Drivers

    enum Chunking {
        case whole
        case bytewise
        /// Chunk sizes 1...17 from a small linear congruential sequence.
        case chunks(seed: UInt8)

        func split(_ data: [UInt8]) -> [ArraySlice<UInt8>] {
            switch self {
            case .whole:
                return [data[...]]
            case .bytewise:
                return data.indices.map { data[$0...$0] }
            case .chunks(let seed):
                var state = UInt32(seed) &+ 1
                var pieces: [ArraySlice<UInt8>] = []
                var start = 0
                while start < data.count {
                    state = state &* 1_103_515_245 &+ 12345
                    let size = Int(state >> 16) % 17 + 1
                    let end = min(data.count, start + size)
                    pieces.append(data[start..<end])
                    start = end
                }
                return pieces
            }
        }
    }

    struct DecodeOutcome: Equatable, CustomStringConvertible {
        var frames: [Frame] = []
        var error: ZMTPError.Code?
        var description: String { "\(frames.count) frames, error \(error.map(\.name) ?? "none")" }
    }

    static func decodeFrames(_ data: [UInt8], maxMessageSize: Int, chunking: Chunking) -> DecodeOutcome {
        var decoder = FrameDecoder(maxMessageSize: maxMessageSize)
        var outcome = DecodeOutcome()
        for piece in chunking.split(data) {
            do throws(ZMTPError) {
                try piece.withRawBytes { (raw: UnsafeRawBufferPointer) throws(ZMTPError) in
                    var input = raw
                    while let frame = try decoder.next(from: &input) { outcome.frames.append(frame) }
                }
            } catch {
                outcome.error = error.code
                return outcome
            }
        }
        return outcome
    }

    struct ConnectionOutcome: CustomStringConvertible {
        var events: [ConnectionEvent] = []
        var error: ZMTPError.Code?
        var problem: String?
        var description: String { "\(events.count) events, error \(error.map(\.name) ?? "none")" }
    }
}
