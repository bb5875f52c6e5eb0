import ArgumentParser
import Metrics
import ZMTP
import ZMTPMetrics
import ZeekCluster

#if canImport(Glibc)
import Glibc
#endif

/// `zmtp zeek-logger`: a non-Zeek logger node (zeek-wire.md §1.3, §5). It binds a PULL socket where
/// Zeek nodes PUSH their log batches and appends the records to one file per log path.
struct ZeekLogger: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "zeek-logger",
        abstract: "Receive Zeek's log batches on a PULL socket and write one log file per path.",
        discussion: """
            Accepts Zeek's 4-frame log-write messages (log-write | node id | zeek-bin-serializer | batch) and \
            appends each record to DIR/<path>.log, in Zeek's ASCII format (what zeek-cut reads) or as JSON lines. \
            A batch whose schema differs from the file's starts a new header block. Malformed messages are \
            counted and reported on stderr, never written, and do not affect the batches around them. CURVE \
            as for zmtp proxy: --curve-secret/--curve-allow, or Zeek's environment variables. Stops on \
            SIGINT/SIGTERM, closing every file with #close.
            """)

    @Option(name: .customLong("bind"), help: ArgumentHelp("Where Zeek nodes connect (Zeek's listen_log_endpoint).", valueName: "endpoint"))
    var bind: String
    @Option(name: .customLong("dir"), help: ArgumentHelp("Directory for the log files (created if missing).", valueName: "dir"))
    var directory = "."
    @Option(help: "Log format: ascii (Zeek's TSV, the default) or json.")
    var format: ZeekLogFormat = .ascii
    @Option(name: .customLong("rcvhwm"), help: "Receive high-water mark per node, 0 = unlimited (Zeek's log_rcvhwm).")
    var receiveHighWaterMark = 1000
    @Option(name: .customLong("rcvbuf"), help: "Kernel receive buffer in bytes, 0 or -1 = OS default (Zeek's log_rcvbuf).")
    var receiveBuffer = 0
    @Flag(name: .customLong("ipv6"), help: "Allow IPv6 endpoints (Zeek's ipv6).")
    var ipv6 = false
    @Option(name: .customLong("curve-secret"), help: ArgumentHelp("Be a CURVE server with this secret key (Z85).", valueName: "z85"))
    var curveSecret: String?
    @Option(name: .customLong("curve-allow"), help: ArgumentHelp("Admit this client public key (Z85; repeatable). Without it every client is admitted.", valueName: "z85"))
    var curveAllow: [String] = []
    @Option(name: .customLong("metrics"), help: ArgumentHelp("Serve Prometheus metrics at http://HOST:PORT/metrics.", valueName: "host:port"))
    var metrics: String?
    @Flag(name: .customLong("events"), help: "Print the socket's monitor events on stderr.")
    var events = false

    func validate() throws {
        if !curveAllow.isEmpty && curveSecret == nil { throw ValidationError("--curve-allow needs --curve-secret") }
    }

    func run() throws {
        Interrupt.install()
        let curve = try CurveServerSettings(secret: curveSecret, allowed: curveAllow).resolve(environment: currentEnvironment())
        let metricsServer = try metrics.map { try MetricsServer(listen: $0) }
        defer { metricsServer?.stop() }
        guard mkdir(directory, 0o755) == 0 || errno == EEXIST else {
            throw ToolError("cannot create \(directory): \(String(cString: strerror(errno)))")
        }
        let context = try Context()
        defer { context.shutdown() }
        var options = SocketOptions()
        options.receiveHighWaterMark = max(0, receiveHighWaterMark)
        options.receiveBufferSize = max(0, receiveBuffer)
        options.ipv6 = ipv6
        options.receiveTimeout = .milliseconds(100)
        options.linger = .zero
        if let (keyPair, zap) = curve {
            options.curve = .server(keyPair)
            options.zapHandler = zap
        }
        let pull = try context.socket(.pull, options: options)
        let printer = events ? EventPrinter(pull.monitor()) : nil
        if !events { _ = AcceptFailureReporter(pull, program: "zmtp zeek-logger") }
        let sink = ZeekLogSink(directory: directory, format: format)
        let socketMetrics = metricsServer.map { _ in SocketMetrics(socket: pull, name: "pull") }
        metricsServer?.refresh = { socketMetrics?.update() }
        defer {
            pull.close()
            printer?.waitUntilStopped()
            sink.closeAll()
            ToolOutput.standardError(
                "zmtp zeek-logger: stopped; \(sink.recordsWritten) records in \(sink.batchesWritten) batches, "
                    + "\(sink.rejectedMessages) messages rejected"
                    + (sink.recordsPerSecond.map { "; \(Int($0)) records/s" } ?? ""))
        }
        do {
            let bound = try pull.bind(bind)
            ToolOutput.standardError("zmtp zeek-logger: listening on \(bound), writing \(format.rawValue) logs to \(directory)")
        } catch let error as SocketError {
            throw ToolError(error.description)
        }
        if let metricsServer { try metricsServer.waitUntilListening() }
        while !Interrupt.isRequested {
            let message: Message
            do {
                message = try pull.receive()
            } catch SocketError.timedOut {
                continue
            }
            sink.handle(message)
        }
    }
}

enum ZeekLogFormat: String, ExpressibleByArgument, CaseIterable {
    case ascii, json
}

/// The CURVE server side of the broker and the logger: flags, or Zeek's environment variables.
struct CurveServerSettings {
    var secret: String?
    var allowed: [String]

    /// The key pair and ZAP handler, or nil for NULL security.
    /// - Throws: ``ToolError`` with Zeek's message for mixed configuration or a malformed key.
    func resolve(environment: [String: String]) throws -> (CurveKeyPair, (any ZAPHandler)?)? {
        let explicit = ZeekCurveConfiguration.Keys(serverSecretKey: secret ?? "", clientPublicKey: allowed.first ?? "")
        let resolved: ZeekCurveConfiguration
        do {
            resolved = try ZeekCurveConfiguration.resolve(explicit: explicit, environment: environment)
        } catch {
            throw ToolError(error.message)  // Zeek's message: mixed configuration, or a malformed key
        }
        if resolved.source == .environment, let server = resolved.server {
            return (CurveKeyPair(secretKey: server.secretKey), server.zapHandler)
        }
        guard let secret else { return nil }
        do {
            let keyPair = CurveKeyPair(secretKey: try CurveSecretKey(z85: secret))
            if allowed.isEmpty { return (keyPair, nil) }
            return (keyPair, AllowListZAPHandler(allowedClientKeys: Set(try allowed.map { try CurvePublicKey(z85: $0) })))
        } catch let error as ZMTPError {
            throw ToolError("CURVE key: \(error.reason)")
        }
    }
}

/// Turns log-write messages into lines in per-path files (the receiving thread only).
final class ZeekLogSink {
    let directory: String
    let format: ZeekLogFormat
    /// Open files by log path, with the schema of their current header block.
    private var files: [String: (descriptor: Int32, fields: [ZeekLogBatch.Field])] = [:]
    /// More distinct paths than this are refused (each is an open descriptor).
    static let maxOpenFiles = 512
    private(set) var recordsWritten = 0
    private(set) var batchesWritten = 0
    private(set) var rejectedMessages = 0
    /// When the first and the last batch were written (CLOCK_MONOTONIC seconds), for the rate.
    private(set) var firstBatchAt: Double?
    private(set) var lastBatchAt: Double?

    /// Records written per second between the first batch and the last one.
    var recordsPerSecond: Double? {
        guard let first = firstBatchAt, let last = lastBatchAt, last > first else { return nil }
        return Double(recordsWritten) / (last - first)
    }
    private let records = Counter(label: "zmtp_zeek_logger_records_total")
    private let batches = Counter(label: "zmtp_zeek_logger_batches_total")

    init(directory: String, format: ZeekLogFormat) {
        self.directory = directory
        self.format = format
    }

    /// Checks, decodes and writes one message; a bad one is counted and reported, nothing else.
    func handle(_ message: Message) {
        do throws(LogRejection) {
            let batch = try decode(message)
            try write(batch)
            recordsWritten += batch.records.count
            batchesWritten += 1
            let now = monotonicSeconds()
            if firstBatchAt == nil { firstBatchAt = now }
            lastBatchAt = now
            records.increment(by: Int64(batch.records.count))
            batches.increment()
        } catch {
            rejectedMessages += 1
            Counter(label: "zmtp_zeek_logger_rejected_total", dimensions: [("reason", error.reason)]).increment()
            // The first few in full, then a reminder now and then: a flood must not flood stderr.
            if rejectedMessages <= 10 || rejectedMessages % 1000 == 0 {
                ToolOutput.standardError("zmtp zeek-logger: rejected message \(rejectedMessages): \(error.detail)")
            }
        }
    }

    struct LogRejection: Error {
        /// A short label for metrics: frames, kind, serializer, format, path, file.
        var reason: String
        var detail: String
    }

    private func decode(_ message: Message) throws(LogRejection) -> ZeekLogBatch {
        let frames = message.frames
        guard frames.count == 4 else {
            throw LogRejection(reason: "frames", detail: "expected 4 frames, got \(frames.count)")
        }
        guard frames[0] == Array("log-write".utf8) else {
            throw LogRejection(reason: "kind", detail: "first frame is not log-write")
        }
        guard frames[2] == Array(ZeekLogBatch.serializerName.utf8) else {
            throw LogRejection(
                reason: "serializer",
                detail: "serializer '\(String(decoding: frames[2].prefix(64), as: UTF8.self))', expected \(ZeekLogBatch.serializerName)")
        }
        do {
            return try ZeekLogBatch.decode(frames[3])
        } catch {
            throw LogRejection(reason: "format", detail: "batch from \(String(decoding: frames[1].prefix(128), as: UTF8.self)): \(error)")
        }
    }

    private func write(_ batch: ZeekLogBatch) throws(LogRejection) {
        let path = batch.path
        // The path names a file: nothing that leaves the directory or hides a file.
        guard !path.isEmpty, path.utf8.count <= 200, !path.hasPrefix("."),
            !path.contains("/"), !path.utf8.contains(0)
        else {
            throw LogRejection(reason: "path", detail: "unsafe log path '\(path.prefix(64))'")
        }
        var output: [UInt8] = []
        var descriptor: Int32
        if let open = files[path] {
            descriptor = open.descriptor
            if format == .ascii && open.fields != batch.fields {
                // A new schema: close this header block and start another in the same file.
                output += Array(ZeekASCIIFormat.close(time: Self.timestamp()).utf8)
                output += Array(ZeekASCIIFormat.header(path: path, fields: batch.fields, openTime: Self.timestamp()).utf8)
                files[path]?.fields = batch.fields
            }
        } else {
            guard files.count < Self.maxOpenFiles else {
                throw LogRejection(reason: "file", detail: "more than \(Self.maxOpenFiles) log paths")
            }
            descriptor = Glibc.open("\(directory)/\(path).log", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
            guard descriptor >= 0 else {
                throw LogRejection(reason: "file", detail: "cannot open \(directory)/\(path).log: \(String(cString: strerror(errno)))")
            }
            files[path] = (descriptor, batch.fields)
            if format == .ascii {
                output += Array(ZeekASCIIFormat.header(path: path, fields: batch.fields, openTime: Self.timestamp()).utf8)
            }
        }
        for record in batch.records {
            switch format {
            case .ascii: output += ZeekASCIIFormat.line(record)
            case .json: output += ZeekJSONFormat.line(record, fields: batch.fields)
            }
        }
        guard Self.writeAll(descriptor, output) else {
            throw LogRejection(reason: "file", detail: "cannot write \(path).log: \(String(cString: strerror(errno)))")
        }
    }

    /// Writes `#close` to every ASCII log and closes the files.
    func closeAll() {
        for (_, file) in files {
            if format == .ascii { _ = Self.writeAll(file.descriptor, Array(ZeekASCIIFormat.close(time: Self.timestamp()).utf8)) }
            Glibc.close(file.descriptor)
        }
        files.removeAll()
    }

    static func writeAll(_ descriptor: Int32, _ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
            if written < 0 {
                if errno == EINTR { continue }
                return false
            }
            offset += written
        }
        return true
    }

    /// Local time as Zeek writes `#open` and `#close`: `%Y-%m-%d-%H-%M-%S`.
    static func timestamp() -> String {
        var now = time(nil)
        var parts = tm()
        localtime_r(&now, &parts)
        var buffer = [CChar](repeating: 0, count: 32)
        let length = strftime(&buffer, buffer.count, "%Y-%m-%d-%H-%M-%S", &parts)
        return String(decoding: buffer[..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
