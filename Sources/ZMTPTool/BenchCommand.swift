import ArgumentParser
import ZMTP

#if canImport(Glibc)
import Glibc
#endif

/// `zmtp bench ROLE ...`: the benchmark roles of ../shared/bench/PROTOCOL.md, so that its harness can
/// run swift-zmtp interleaved with the libzmq programs and report ratios.
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Benchmark roles: thr-recv, thr-send, lat-a, lat-b, proxy-dev, proxy-pub, proxy-sub (shared harness, PROTOCOL.md); ps-pub, ps-sub, ps-match (bench/run-pubsub.sh).",
        subcommands: [ThrRecv.self, ThrSend.self, LatA.self, LatB.self, ProxyDev.self, ProxyPub.self, ProxySub.self, PubSubPub.self, PubSubSub.self, PubSubMatch.self]
    )

    func run() throws {
        throw ValidationError("missing role: thr-recv, thr-send, lat-a, lat-b, proxy-dev, proxy-pub, proxy-sub, ps-pub, ps-sub or ps-match")
    }

    /// PROTOCOL.md §4's fixed test keys.
    enum Keys {
        static let serverPublic = "f81TELd<8xSuxeM1[qC*}3X[)Mg2dZ=jj!m3IP*a"
        static let serverSecret = "{3e#$G&?$51kMDV8@%4AQmHm]XQH6dP[d(.LhKXJ"
        static let clientPublic = "!:C1shS{lZjg:t^r:br2kwIow7c3f.IzL^rrnCX7"
        static let clientSecret = "ZEl9Vj{#nB/4D@.[n}5=6.=@[jTf.M8Nmc0FRu%x"
    }

    static let implementation = "swift-zmtp-\(Version.toolVersion)"
}

/// Options every role takes.
struct BenchFlags: ParsableArguments {
    @Flag(help: "CURVE on every socket: binding sockets are servers, connecting ones clients.")
    var curve = false
    @Option(help: "Wall-clock bound in seconds; past it, exit with status 124.")
    var timeout: Double = 120
    @Flag(help: "Diagnostics on stderr.")
    var verbose = false

    /// Options for a socket that binds (`server`) or connects.
    func options(server: Bool) throws -> SocketOptions {
        var options = SocketOptions()
        options.linger = .seconds(Int64(timeout))
        if curve {
            if server {
                options.curve = .server(CurveKeyPair(secretKey: try CurveSecretKey(z85: Bench.Keys.serverSecret)))
            } else {
                options.curve = .client(
                    serverPublicKey: try CurvePublicKey(z85: Bench.Keys.serverPublic),
                    keyPair: CurveKeyPair(
                        publicKey: try CurvePublicKey(z85: Bench.Keys.clientPublic),
                        secretKey: try CurveSecretKey(z85: Bench.Keys.clientSecret)))
            }
        }
        return options
    }

    /// Exits with status 124 once the timeout has passed (a watchdog thread).
    func armWatchdog() {
        let seconds = timeout
        Thread.detach {
            var remaining = seconds
            while remaining > 0 {
                let step = min(remaining, 1.0)
                usleep(useconds_t(step * 1_000_000))
                remaining -= step
            }
            ToolOutput.standardError("zmtp bench: ERROR: timeout after \(seconds) s")
            Glibc.exit(124)
        }
    }

    var mech: String { curve ? "curve" : "null" }
}

/// A tiny detached-thread helper (no Foundation).
enum Thread {
    static func detach(_ body: @escaping @Sendable () -> Void) {
        final class Box: @unchecked Sendable { let body: @Sendable () -> Void; init(_ body: @escaping @Sendable () -> Void) { self.body = body } }
        var handle = pthread_t()
        let box = Unmanaged.passRetained(Box(body))
        pthread_create(&handle, nil, { argument in
            guard let argument else { return nil }
            Unmanaged<Box>.fromOpaque(argument).takeRetainedValue().body()
            return nil
        }, box.toOpaque())
        pthread_detach(handle)
    }
}

func monotonicSeconds() -> Double {
    var spec = timespec()
    clock_gettime(CLOCK_MONOTONIC, &spec)
    return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
}

/// `value` with `digits` decimals (what `%.Nf` prints), without Foundation.
func fixed(_ value: Double, _ digits: Int) -> String {
    var scale = 1.0
    for _ in 0..<digits { scale *= 10 }
    let scaled = Int64((abs(value) * scale).rounded())
    let divisor = Int64(scale)
    var fraction = String(scaled % divisor)
    while fraction.count < digits { fraction = "0" + fraction }
    return (value < 0 ? "-" : "") + String(scaled / divisor) + (digits > 0 ? "." + fraction : "")
}

func transportName(_ endpoint: String) -> String { endpoint.hasPrefix("ipc://") ? "ipc" : "tcp" }

/// A failed check: "ERROR: ..." on stderr, exit 1.
func benchFailure(_ message: String) -> ToolError { ToolError("bench: ERROR: \(message)") }

/// Receives `count` one-frame messages of `size` octets and returns the seconds from the first to the
/// last (PROTOCOL.md §2: the clock starts after the first message).
func timedReceive(_ socket: Socket, size: Int, count: Int) throws -> Double {
    try checkOneFrame(try socket.receive(), size: size)
    let start = monotonicSeconds()
    for _ in 1..<count { try checkOneFrame(try socket.receive(), size: size) }
    return monotonicSeconds() - start
}

/// The RESULT line of a throughput role (PROTOCOL.md §3).
func printThroughput(test: String, endpoint: String, flags: BenchFlags, size: Int, count: Int, elapsed: Double) {
    let rate = Double(count - 1) / elapsed
    let fields: [String] = [
        "RESULT test=\(test)", "impl=\(Bench.implementation)", "transport=\(transportName(endpoint))",
        "mech=\(flags.mech)", "size=\(size)", "count=\(count)", "elapsed_s=" + fixed(elapsed, 6),
        "msgs_per_s=\(Int(rate.rounded()))", "mbit_per_s=" + fixed(rate * Double(size) * 8 / 1e6, 2),
    ]
    print(fields.joined(separator: " "))
    fflush(nil)
}

func checkOneFrame(_ message: Message, size: Int) throws {
    // The size is read without copying the frame out (libzmq's receivers call zmq_msg_size).
    guard message.frames.count == 1, message.frames.byteCount(ofFrame: 0) == size else {
        throw benchFailure("expected one frame of \(size) bytes, got \(message.frames.map(\.count))")
    }
}

struct ThrRecv: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "thr-recv", abstract: "Bind PULL, time COUNT messages.")
    @Argument var endpoint: String
    @Argument var size: Int
    @Argument var count: Int
    @OptionGroup var flags: BenchFlags

    func validate() throws { if count < 2 || size < 0 { throw ValidationError("SIZE >= 0 and COUNT >= 2") } }

    func run() throws {
        flags.armWatchdog()
        let context = try Context()
        var options = try flags.options(server: true)
        options.linger = .zero
        let pull = try context.socket(.pull, options: options)
        try pull.bind(endpoint)
        let elapsed = try timedReceive(pull, size: size, count: count)
        printThroughput(test: "thr", endpoint: endpoint, flags: flags, size: size, count: count, elapsed: elapsed)
        pull.close()
        context.shutdown()
    }
}

struct ThrSend: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "thr-send", abstract: "Connect PUSH, send COUNT messages.")
    @Argument var endpoint: String
    @Argument var size: Int
    @Argument var count: Int
    @OptionGroup var flags: BenchFlags

    func run() throws {
        flags.armWatchdog()
        let context = try Context()
        let push = try context.socket(.push, options: try flags.options(server: false))
        try push.connect(endpoint)
        let message = Message([UInt8](repeating: 0, count: size))
        let count = self.count
        for _ in 0..<count { try push.send(message) }
        // Stay connected until the receiver closes (PROTOCOL.md §2), then exit without dropping anything.
        _ = push.waitForPeers(1, timeout: .seconds(Int64(flags.timeout)))
        push.waitUntilDisconnected(timeout: .seconds(Int64(flags.timeout)))
        push.close()
        context.shutdown()
    }
}

struct LatB: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "lat-b", abstract: "Bind PULL (ping) and PUSH (pong); echo ROUNDTRIPS+1 messages.")
    @Argument var pingEndpoint: String
    @Argument var pongEndpoint: String
    @Argument var size: Int
    @Argument var roundtrips: Int
    @OptionGroup var flags: BenchFlags

    func run() throws {
        flags.armWatchdog()
        let context = try Context()
        let pull = try context.socket(.pull, options: try flags.options(server: true))
        let push = try context.socket(.push, options: try flags.options(server: true))
        try pull.bind(pingEndpoint)
        try push.bind(pongEndpoint)
        let (size, roundtrips) = (self.size, self.roundtrips)
        for _ in 0...roundtrips {
            let message = try pull.receive()
            try checkOneFrame(message, size: size)
            try push.send(message)
        }
        push.close()
        pull.close()
        context.shutdown()
    }
}

struct LatA: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "lat-a", abstract: "Connect PUSH (ping) and PULL (pong); time ROUNDTRIPS round trips.")
    @Argument var pingEndpoint: String
    @Argument var pongEndpoint: String
    @Argument var size: Int
    @Argument var roundtrips: Int
    @OptionGroup var flags: BenchFlags

    func validate() throws { if roundtrips < 1 || size < 0 { throw ValidationError("SIZE >= 0 and ROUNDTRIPS >= 1") } }

    func run() throws {
        flags.armWatchdog()
        let context = try Context()
        let push = try context.socket(.push, options: try flags.options(server: false))
        let pull = try context.socket(.pull, options: try flags.options(server: false))
        try push.connect(pingEndpoint)
        try pull.connect(pongEndpoint)
        let (size, roundtrips) = (self.size, self.roundtrips)
        let message = Message([UInt8](repeating: 0, count: size))
        let warmupStart = monotonicSeconds()
        try push.send(message)
        try checkOneFrame(try pull.receive(), size: size)
        let warmup = monotonicSeconds() - warmupStart
        let start = monotonicSeconds()
        for _ in 0..<roundtrips {
            try push.send(message)
            try checkOneFrame(try pull.receive(), size: size)
        }
        let elapsed = monotonicSeconds() - start
        let oneWay: Double = elapsed * 1e6 / Double(2 * roundtrips)
        let perSecond: Double = Double(roundtrips) / elapsed
        let fields: [String] = [
            "RESULT test=lat", "impl=\(Bench.implementation)", "transport=\(transportName(pingEndpoint))",
            "mech=\(flags.mech)", "size=\(size)", "roundtrips=\(roundtrips)", "elapsed_s=" + fixed(elapsed, 6),
            "avg_oneway_us=" + fixed(oneWay, 3), "roundtrips_per_s=\(Int(perSecond.rounded()))",
            "warmup_us=\(Int(warmup * 1e6))",
        ]
        print(fields.joined(separator: " "))
        fflush(nil)
        push.close()
        pull.close()
        context.shutdown()
    }
}
