// Wire-core micro-benchmarks: the frame decoder on 64-byte and 64 KiB frames, next to a plain memcpy
// of the same bytes, and the encoder. Run in release mode:
//
//     swift run -c release zmtp-wire-bench [--runs N]
//
// Each figure is the median of N runs (default 7). Inputs are built once; every run consumes its
// results (a checksum is printed) so the optimizer cannot delete the work.

import CSodium
import Foundation
import ZMTPWire

#if canImport(Glibc)
import Glibc
#endif

func monotonicSeconds() -> Double {
    var spec = timespec()
    clock_gettime(CLOCK_MONOTONIC, &spec)
    return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
}

func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }

func rate(_ perSecond: Double) -> String {
    if perSecond >= 1e6 { return String(format: "%.1f M", perSecond / 1e6) }
    if perSecond >= 1e4 { return String(format: "%.0f k", perSecond / 1e3) }
    return String(format: "%.0f", perSecond)
}

let arguments = CommandLine.arguments
let runs = arguments.firstIndex(of: "--runs").flatMap { Int(arguments[$0 + 1]) } ?? 7
let readSize = 64 * 1024  // the engine will read about this much per syscall

struct Case {
    var name: String
    var frameSize: Int
    var frameCount: Int
}

let cases = [
    Case(name: "64 B frames", frameSize: 64, frameCount: 1_000_000),
    Case(name: "64 KiB frames", frameSize: 64 * 1024, frameCount: 1_024),
]

var checksum = 0
print("| case | decoder (frames/s) | decoder (GB/s of wire bytes) | memcpy (GB/s) | decoder / memcpy | encoder (frames/s) |")
print("|---|---:|---:|---:|---:|---:|")
for benchmarkCase in cases {
    var payload = [UInt8](repeating: 0, count: benchmarkCase.frameSize)
    for index in payload.indices { payload[index] = UInt8(truncatingIfNeeded: index &* 31) }
    var wire: [UInt8] = []
    wire.reserveCapacity((benchmarkCase.frameSize + 9) * benchmarkCase.frameCount)
    for index in 0..<benchmarkCase.frameCount {
        FrameEncoder.appendFrame(payload, more: index % 4 != 3, to: &wire)
    }

    // Decoder: fed in read-sized chunks, producing owned frames as the connection does.
    var decodeTimes: [Double] = []
    for _ in 0..<runs {
        var decoder = FrameDecoder(maxMessageSize: nil)
        var frames = 0
        var bytes = 0
        let start = monotonicSeconds()
        wire.withUnsafeBytes { all in
            var offset = 0
            while offset < all.count {
                var input = UnsafeRawBufferPointer(rebasing: all[offset..<min(all.count, offset + readSize)])
                offset += input.count
                while let frame = try? decoder.next(from: &input) {
                    frames += 1
                    bytes &+= frame.body.count &+ Int(frame.body.last ?? 0)
                }
            }
        }
        decodeTimes.append(monotonicSeconds() - start)
        precondition(frames == benchmarkCase.frameCount, "decoded \(frames) frames")
        checksum &+= bytes
    }

    // memcpy of the same wire bytes, in the same read-sized pieces, into one reused read-sized
    // destination: the decoder's freshly allocated frame buffers are recycled by malloc and stay in
    // cache too, so copying into a 64 MB destination would flatter the decoder.
    var destination = [UInt8](repeating: 0, count: readSize)
    var copyTimes: [Double] = []
    for run in 0..<runs {
        let start = monotonicSeconds()
        wire.withUnsafeBytes { source in
            destination.withUnsafeMutableBytes { target in
                var offset = 0
                while offset < source.count {
                    let length = min(readSize, source.count - offset)
                    memcpy(target.baseAddress!, source.baseAddress! + offset, length)
                    offset += length
                }
            }
        }
        copyTimes.append(monotonicSeconds() - start)
        checksum &+= Int(destination[run % destination.count])
    }

    // Encoder: whole messages of four frames into an outbound buffer, drained every 64 KiB.
    var encodeTimes: [Double] = []
    let message = Message(frames: [payload, payload, payload, payload])
    for _ in 0..<runs {
        var outbound = OutboundBuffer()
        let start = monotonicSeconds()
        for _ in 0..<(benchmarkCase.frameCount / 4) {
            outbound.appendMessage(message)
            if outbound.count >= readSize {
                checksum &+= outbound.count
                outbound.consume(outbound.count)
            }
        }
        encodeTimes.append(monotonicSeconds() - start)
        checksum &+= outbound.count
    }

    let decodeSeconds = median(decodeTimes)
    let copySeconds = median(copyTimes)
    let encodeSeconds = median(encodeTimes)
    let framesPerSecond = Double(benchmarkCase.frameCount) / decodeSeconds
    let decodeGBs = Double(wire.count) / decodeSeconds / 1e9
    let copyGBs = Double(wire.count) / copySeconds / 1e9
    let encodeFramesPerSecond = Double(benchmarkCase.frameCount) / encodeSeconds
    print(
        "| \(benchmarkCase.name) | \(rate(framesPerSecond)) | "
            + String(format: "%.2f | %.2f | %.2f | ", decodeGBs, copyGBs, decodeGBs / copyGBs)
            + "\(rate(encodeFramesPerSecond)) |")
}
// The whole receive path of a connection after the handshake: bytes in, message events out, for
// single-frame 64-byte messages (Zeek's events are small), fed in read-sized chunks.
do {
    let messageCount = 1_000_000
    let payload = [UInt8](repeating: 0x42, count: 64)
    var wire: [UInt8] = []
    for _ in 0..<messageCount { FrameEncoder.appendFrame(payload, to: &wire) }
    var greeting = Greeting(mechanism: .null, asServer: false).encoded
    var ready: [UInt8] = []
    FrameEncoder.appendFrame(
        try Command.ready(try Metadata([("Socket-Type", Array("PUSH".utf8))])).encodedBody(), command: true, to: &ready)
    greeting += ready
    var times: [Double] = []
    for _ in 0..<runs {
        var connection = try Connection(configuration: ConnectionConfiguration(socketType: .pull), now: .zero)
        try connection.receive(greeting, now: .zero)
        _ = connection.nextEvent()
        var received = 0
        let start = monotonicSeconds()
        try wire.withUnsafeBytes { all in
            var offset = 0
            while offset < all.count {
                let input = UnsafeRawBufferPointer(rebasing: all[offset..<min(all.count, offset + readSize)])
                offset += input.count
                try connection.receive(input, now: .zero)
                while let event = connection.nextEvent() {
                    if case .message(let message) = event { received &+= message.frames.count }
                }
            }
        }
        times.append(monotonicSeconds() - start)
        precondition(received == messageCount, "received \(received)")
        checksum &+= received
    }
    print("")
    print("| connection receive path | messages/s | ns/message |")
    print("|---|---:|---:|")
    let seconds = median(times)
    print("| 64 B single-frame messages, NULL | \(rate(Double(messageCount) / seconds)) | " + String(format: "%.1f |", seconds / Double(messageCount) * 1e9))
}
// CURVE: handshakes (client and server in memory, libsodium, no ZAP) and MESSAGE throughput (client
// encrypts, server decrypts, frames in between), next to the raw libsodium box rate for the same sizes
// (crypto_box_easy_afternm + crypto_box_open_easy_afternm with a precomputed key: the floor).
do {
    let serverKeys = CurveKeyPair.generate()
    let clientKeys = CurveKeyPair.generate()
    func handshake() throws -> (Connection, Connection) {
        var client = try Connection(
            configuration: ConnectionConfiguration(socketType: .push),
            mechanism: CurveClientMechanism(serverPublicKey: serverKeys.publicKey, keyPair: clientKeys), now: .zero)
        var server = try Connection(
            configuration: ConnectionConfiguration(socketType: .pull),
            mechanism: CurveServerMechanism(keyPair: serverKeys, authenticates: false), now: .zero)
        for _ in 0..<6 {
            try server.receive(client.takeOutbound(), now: .zero)
            try client.receive(server.takeOutbound(), now: .zero)
        }
        precondition(client.isHandshakeComplete && server.isHandshakeComplete, "handshake")
        _ = client.nextEvent()
        _ = server.nextEvent()
        return (client, server)
    }
    let handshakeCount = 2_000
    var handshakeTimes: [Double] = []
    for _ in 0..<runs {
        let start = monotonicSeconds()
        for _ in 0..<handshakeCount { _ = try handshake() }
        handshakeTimes.append(monotonicSeconds() - start)
    }
    print("")
    print("| CURVE (libsodium) | figure |")
    print("|---|---:|")
    print("| handshakes/s (client and server in one thread; per handshake 6 key agreements and 2 key pairs) | \(rate(Double(handshakeCount) / median(handshakeTimes))) |")

    print("")
    print("| CURVE MESSAGE size | messages/s (encrypt + frame + decrypt) | GB/s | raw libsodium seal+open/s | ours / raw |")
    print("|---|---:|---:|---:|---:|")
    for size in [64, 64 * 1024] {
        let count = size == 64 ? 300_000 : 3_000
        let payload = [UInt8](repeating: 0x42, count: size)
        var (client, server) = try handshake()
        var times: [Double] = []
        for _ in 0..<runs {
            var received = 0
            let start = monotonicSeconds()
            for _ in 0..<count {
                try client.send(Message(frames: [payload]))
                if client.outbound.count >= readSize {
                    try server.receive(client.takeOutbound(), now: .zero)
                    while let event = server.nextEvent() { if case .message = event { received += 1 } }
                }
            }
            try server.receive(client.takeOutbound(), now: .zero)
            while let event = server.nextEvent() { if case .message = event { received += 1 } }
            times.append(monotonicSeconds() - start)
            precondition(received == count, "received \(received)")
        }
        // Raw: seal and open the same payload plus the flags octet with a precomputed key.
        var key = [UInt8](repeating: 7, count: 32)
        let nonce = [UInt8](repeating: 1, count: 24)
        var sealed = [UInt8](repeating: 0, count: size + 1 + 16)
        var opened = [UInt8](repeating: 0, count: size + 1)
        let plain = [UInt8](repeating: 0x42, count: size + 1)
        var rawTimes: [Double] = []
        for _ in 0..<runs {
            let start = monotonicSeconds()
            for index in 0..<count {
                key[0] = UInt8(truncatingIfNeeded: index)
                _ = crypto_box_easy_afternm(&sealed, plain, UInt64(plain.count), nonce, key)
                checksum &+= Int(crypto_box_open_easy_afternm(&opened, sealed, UInt64(sealed.count), nonce, key))
            }
            rawTimes.append(monotonicSeconds() - start)
        }
        let ours = Double(count) / median(times)
        let raw = Double(count) / median(rawTimes)
        print("| \(size == 64 ? "64 B" : "64 KiB") | \(rate(ours)) | " + String(format: "%.2f", ours * Double(size) / 1e9)
            + " | \(rate(raw)) | " + String(format: "%.2f |", ours / raw))
    }
}
print("runs per figure: \(runs) (median); checksum \(checksum)")
