import FlyingFox
import Foundation
import Metrics
import Prometheus
import Synchronization

/// `--metrics HOST:PORT`: Prometheus's text format at `http://HOST:PORT/metrics`, served by FlyingFox
/// from the swift-metrics values the command records (swift-prometheus is the metrics backend).
final class MetricsServer: Sendable {
    let registry = PrometheusCollectorRegistry()
    private let server: HTTPServer
    private let task: Task<Void, any Error>
    /// The address given (`127.0.0.1:9100`, `[::1]:9100`).
    let address: String

    /// Runs before each scrape, to bring pulled values (proxy statistics, gauges) up to date.
    var refresh: @Sendable () -> Void {
        get { refreshHolder.body.withLock { $0 } }
        set { refreshHolder.body.withLock { $0 = newValue } }
    }
    private final class RefreshHolder: Sendable {
        let body = Mutex<@Sendable () -> Void>({})
    }
    private let refreshHolder = RefreshHolder()

    /// Makes swift-metrics report to this server's registry (call before creating any metric) and
    /// starts serving.
    init(listen address: String) throws {
        self.address = address
        guard let colon = address.lastIndex(of: ":"), let port = UInt16(address[address.index(after: colon)...]) else {
            throw ToolError("--metrics: expected HOST:PORT, got '\(address)'")
        }
        var host = String(address[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        do {
            server = host.contains(":")
                ? HTTPServer(address: try .inet6(ip6: host, port: port), logger: .disabled)
                : HTTPServer(address: try .inet(ip4: host, port: port), logger: .disabled)
        } catch {
            throw ToolError("--metrics: '\(host)' is not a numeric IPv4 or IPv6 address")
        }
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        let (server, registry) = (self.server, self.registry)
        let refreshHolder = self.refreshHolder
        task = Task {
            await server.appendRoute("GET /metrics") { _ in
                refreshHolder.body.withLock { $0 }()
                return HTTPResponse(
                    statusCode: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                    body: Data(registry.emitToBuffer()))
            }
            try await server.run()
        }
    }

    /// Waits until the server listens (or failed to); throws a one-line error if it cannot.
    func waitUntilListening() throws {
        final class Outcome: @unchecked Sendable {
            // @unchecked: `failed` is written before `done` is signalled and read after the wait.
            var failed = false
            let done = DispatchSemaphore(value: 0)
        }
        let outcome = Outcome()
        let server = self.server
        Task {
            do { try await server.waitUntilListening(timeout: 5) } catch { outcome.failed = true }
            outcome.done.signal()
        }
        outcome.done.wait()
        if outcome.failed { throw ToolError("--metrics: cannot listen on \(address)") }
    }

    func stop() { task.cancel() }
}
