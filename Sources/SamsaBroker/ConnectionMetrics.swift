import CoreMetrics
import Prometheus

/// The connection limits' series, in the broker's registry: connections refused (per listener and
/// limit), connections closed for idleness, the connection ceiling now, and the request bytes held
/// (`RequestMemoryPool`). The gauges are read when scraped (`record`), not on every change.
final class ConnectionMetrics: Sendable {
    private let refusedPerAddress: [String: CoreMetrics.Counter]
    private let refusedFull: [String: CoreMetrics.Counter]
    private let idleClosed: [String: CoreMetrics.Counter]
    private let ceiling: CoreMetrics.Gauge
    private let requestBytes: CoreMetrics.Gauge

    static let listeners = ["kafka", "metrics"]

    init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        let factory = PrometheusMetricsFactory(registry: registry)
        func counters(_ label: String, _ extra: [(String, String)] = []) -> [String: CoreMetrics.Counter] {
            Dictionary(uniqueKeysWithValues: Self.listeners.map { ($0, CoreMetrics.Counter(label: label, dimensions: [("listener", $0)] + extra, factory: factory)) })
        }
        refusedPerAddress = counters("samsa_connections_refused_total", [("limit", "max.connections.per.ip")])
        refusedFull = counters("samsa_connections_refused_total", [("limit", "max.connections")])
        idleClosed = counters("samsa_connections_idle_closed_total")
        ceiling = CoreMetrics.Gauge(label: "samsa_connections_max", factory: factory)
        requestBytes = CoreMetrics.Gauge(label: "samsa_queued_request_bytes", factory: factory)
    }

    func refused(_ listener: String, _ admission: ConnectionLimits.Admission) {
        (admission == .tooManyFromAddress ? refusedPerAddress : refusedFull)[listener]?.increment()
    }

    func closedIdle(_ listener: String) { idleClosed[listener]?.increment() }

    /// Reads the gauges before a scrape.
    func record(limits: ConnectionLimits, memory: RequestMemoryPool) {
        ceiling.record(Int64(min(limits.ceiling, Int(Int64.max))))
        requestBytes.record(Int64(memory.used))
    }
}
