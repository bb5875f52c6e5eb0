import Metrics
import Synchronization
import ZMTP
import ZMTPProxy

/// Reports a ``Proxy``'s counters through swift-metrics under the names Zeek's own broker uses
/// (`zeek_cluster_zeromq_proxy_{frontend,backend}_{messages,bytes}_{received,sent}_total`, zeek-wire.md
/// §8), so dashboards built on a Zeek manager's metrics keep working when `zmtp proxy` is the broker.
///
/// Like Zeek's callback counters, the values come from the proxy's statistics when ``update()`` is
/// called (before each scrape): nothing is counted twice on the forwarding path. A "message" is a
/// frame, as in libzmq 4.3.5's STATISTICS.
public final class ProxyMetrics: Sendable {
    private let proxy: Proxy
    private let counters: [Counter]
    private let reported = Mutex<[UInt64]>([UInt64](repeating: 0, count: 8))

    /// The metric names, in the order of libzmq's STATISTICS reply.
    public static let names = [
        "zeek_cluster_zeromq_proxy_frontend_messages_received_total",
        "zeek_cluster_zeromq_proxy_frontend_bytes_received_total",
        "zeek_cluster_zeromq_proxy_frontend_messages_sent_total",
        "zeek_cluster_zeromq_proxy_frontend_bytes_sent_total",
        "zeek_cluster_zeromq_proxy_backend_messages_received_total",
        "zeek_cluster_zeromq_proxy_backend_bytes_received_total",
        "zeek_cluster_zeromq_proxy_backend_messages_sent_total",
        "zeek_cluster_zeromq_proxy_backend_bytes_sent_total",
    ]

    public init(proxy: Proxy) {
        self.proxy = proxy
        counters = Self.names.map { Counter(label: $0) }
    }

    /// Brings the counters up to the proxy's statistics.
    public func update() {
        let statistics = proxy.statistics
        let current = [
            statistics.frontendMessagesReceived, statistics.frontendBytesReceived,
            statistics.frontendMessagesSent, statistics.frontendBytesSent,
            statistics.backendMessagesReceived, statistics.backendBytesReceived,
            statistics.backendMessagesSent, statistics.backendBytesSent,
        ]
        let deltas = reported.withLock { last -> [UInt64] in
            defer { last = current }
            return zip(current, last).map { $0 &- $1 }
        }
        for (counter, delta) in zip(counters, deltas) where delta > 0 { counter.increment(by: Int64(clamping: delta)) }
    }
}

/// swift-metrics for one socket, all with the dimension `socket` (a name the caller chooses):
/// - `zmtp_connected_peers` (gauge): peers whose handshake completed and whose connection is open;
/// - `zmtp_dropped_messages_total`: messages a PUB/XPUB/XSUB did not queue for a full peer;
/// - `zmtp_handshake_failures_total`, with `reason` = the monitor event (`HANDSHAKE_FAILED_AUTH`,
///   `HANDSHAKE_FAILED_PROTOCOL`, `HANDSHAKE_FAILED_NO_DETAIL`) and `value` (the ZAP status, the
///   protocol error, the errno);
/// - `zmtp_disconnects_total` and `zmtp_accepted_total`.
///
/// Failures and connection events are counted as the socket's monitor reports them (read by a
/// detached task); the gauge and the drops are read from the socket when ``update()`` is called.
public final class SocketMetrics: Sendable {
    private let socket: Socket
    private let name: String
    private let connected: Gauge
    private let dropped: Counter
    private let reportedDrops = Mutex<Int>(0)

    public init(socket: Socket, name: String) {
        self.socket = socket
        self.name = name
        connected = Gauge(label: "zmtp_connected_peers", dimensions: [("socket", name)])
        dropped = Counter(label: "zmtp_dropped_messages_total", dimensions: [("socket", name)])
        let monitor = socket.monitor([.handshakeFailedAuth, .handshakeFailedProtocol, .handshakeFailedNoDetail, .disconnected, .accepted])
        let accepted = Counter(label: "zmtp_accepted_total", dimensions: [("socket", name)])
        let disconnects = Counter(label: "zmtp_disconnects_total", dimensions: [("socket", name)])
        Task.detached {
            for await event in monitor {
                switch event.kind {
                case .accepted: accepted.increment()
                case .disconnected: disconnects.increment()
                default:
                    let value = event.kind == .handshakeFailedProtocol ? "0x" + String(event.value, radix: 16) : String(event.value)
                    Counter(
                        label: "zmtp_handshake_failures_total",
                        dimensions: [("socket", name), ("reason", event.kind.description), ("value", value)]
                    ).increment()
                }
            }
        }
    }

    /// Reads the gauge and the drop count from the socket.
    public func update() {
        connected.record(socket.connectedPeers)
        let drops = socket.droppedMessages
        let delta = reportedDrops.withLock { last -> Int in
            defer { last = drops }
            return drops - last
        }
        if delta > 0 { dropped.increment(by: Int64(delta)) }
    }
}
