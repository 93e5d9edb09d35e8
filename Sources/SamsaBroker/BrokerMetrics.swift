import CoreMetrics
import Prometheus
import SamsaProtocol
import SamsaStorage
import Synchronization

/// The broker's metrics, through swift-metrics into a Prometheus registry (text format on
/// `--metrics HOST:PORT`, see `MetricsEndpoint`): requests and errors per API and version, request
/// latency per API, bytes in and out, open connections, and per partition its log start, log end and
/// high watermark (read from the logs when scraped, so the hot path does not update them). In a
/// cluster also replication's (read from the replica manager when scraped): partitions led here that
/// are under-replicated, ISR shrinks and expands of them, and each follower's lag in messages. And
/// the log cleaner's (`CleanerMetrics`).
///
/// The per-API handles are made once, up front, for every served API and version: recording is a
/// dictionary read and an atomic add, with no lock.
final class BrokerMetrics: Sendable {
    let registry: PrometheusCollectorRegistry
    private let factory: PrometheusMetricsFactory
    private let requests: [Int32: CoreMetrics.Counter]
    private let latency: [Int16: CoreMetrics.Timer]
    /// Requests with bytes after their last field (ignored, as Kafka ignores them), per API.
    private let trailing: [Int16: CoreMetrics.Counter]
    private let bytesIn: CoreMetrics.Counter
    private let bytesOut: CoreMetrics.Counter
    private let connections: CoreMetrics.Meter
    private let malformed: CoreMetrics.Counter
    private let unsupported: CoreMetrics.Counter
    private let partitionGauges = Mutex<[TopicPartition: PartitionGauges]>([:])
    private let replication: ReplicaManager?
    private let replicationGauges: ReplicationGauges?
    private let cleaner: CleanerMetrics

    /// Replication's series; the counters follow the replica manager's totals (added at each scrape).
    private final class ReplicationGauges: Sendable {
        let underReplicated: CoreMetrics.Gauge
        let shrinks: CoreMetrics.Counter
        let expands: CoreMetrics.Counter
        /// The totals already added to the counters.
        let counted = Mutex<(shrinks: Int, expands: Int)>((0, 0))
        let lag = Mutex<[FollowerKey: CoreMetrics.Gauge]>([:])

        init(underReplicated: CoreMetrics.Gauge, shrinks: CoreMetrics.Counter, expands: CoreMetrics.Counter) {
            self.underReplicated = underReplicated
            self.shrinks = shrinks
            self.expands = expands
        }
    }

    private struct FollowerKey: Hashable, Sendable {
        var partition: TopicPartition
        var replica: Int32
    }

    private struct PartitionGauges: Sendable {
        var logStart: CoreMetrics.Gauge
        var logEnd: CoreMetrics.Gauge
        var highWatermark: CoreMetrics.Gauge
    }

    init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry(), replication: ReplicaManager? = nil) {
        self.registry = registry
        var factory = PrometheusMetricsFactory(registry: registry)
        // Requests take tens of microseconds to seconds (long polls): finer than the 5 ms-10 s default.
        factory.defaultDurationHistogramBuckets = [
            .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2.5), .milliseconds(5),
            .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
            .seconds(1), .seconds(5), .seconds(30),
        ]
        self.factory = factory
        var requests: [Int32: CoreMetrics.Counter] = [:]
        var latency: [Int16: CoreMetrics.Timer] = [:]
        var trailing: [Int16: CoreMetrics.Counter] = [:]
        for (api, versions) in SupportedApis.versions {
            let name = "\(api)"
            latency[api.rawValue] = CoreMetrics.Timer(label: "samsa_request_duration_seconds", dimensions: [("request", name)], factory: factory)
            trailing[api.rawValue] = CoreMetrics.Counter(label: "samsa_requests_with_trailing_bytes_total", dimensions: [("request", name)], factory: factory)
            for version in versions {
                requests[Self.slot(api.rawValue, version)] = CoreMetrics.Counter(
                    label: "samsa_requests_total", dimensions: [("request", name), ("version", "\(version)")], factory: factory)
            }
        }
        self.requests = requests
        self.latency = latency
        self.trailing = trailing
        bytesIn = CoreMetrics.Counter(label: "samsa_network_bytes_in_total", factory: factory)
        bytesOut = CoreMetrics.Counter(label: "samsa_network_bytes_out_total", factory: factory)
        connections = CoreMetrics.Meter(label: "samsa_connections", factory: factory)
        malformed = CoreMetrics.Counter(label: "samsa_request_errors_total", dimensions: [("reason", "malformed")], factory: factory)
        unsupported = CoreMetrics.Counter(label: "samsa_request_errors_total", dimensions: [("reason", "unsupported")], factory: factory)
        cleaner = CleanerMetrics(factory: factory)
        self.replication = replication
        replicationGauges = replication.map { _ in
            ReplicationGauges(
                underReplicated: CoreMetrics.Gauge(label: "samsa_under_replicated_partitions", factory: factory),
                shrinks: CoreMetrics.Counter(label: "samsa_isr_shrinks_total", factory: factory),
                expands: CoreMetrics.Counter(label: "samsa_isr_expands_total", factory: factory))
        }
    }

    private static func slot(_ api: Int16, _ version: Int16) -> Int32 { Int32(api) << 16 | Int32(UInt16(bitPattern: version)) }

    /// One answered request and how long it took; an API or version the broker does not serve counts
    /// as an unsupported request.
    func answered(api: Int16, version: Int16, nanoseconds: Int64) {
        guard let counter = requests[Self.slot(api, version)] else {
            unsupported.increment()
            return
        }
        counter.increment()
        latency[api]?.recordNanoseconds(nanoseconds)
    }

    /// A request with bytes after its last field, which were ignored.
    func trailingBytes(api: Int16) { trailing[api]?.increment() }

    /// A request that did not decode (its connection is closed).
    func malformedRequest() { malformed.increment() }

    func received(bytes: Int) { bytesIn.increment(by: Int64(bytes)) }

    func sent(bytes: Int) { bytesOut.increment(by: Int64(bytes)) }

    func connectionOpened() { connections.increment() }

    func connectionClosed() { connections.decrement() }

    /// The registry in Prometheus' text format, with the partition gauges read from `logs` now.
    func scrape(_ logs: LogManager) -> [UInt8] {
        let current = logs.partitions.compactMap { partition in logs.log(partition).map { (partition, $0) } }
        partitionGauges.withLock { gauges in
            let live = Set(current.map(\.0))
            for (partition, gone) in gauges where !live.contains(partition) {
                gone.logStart.destroy()
                gone.logEnd.destroy()
                gone.highWatermark.destroy()
                gauges[partition] = nil
            }
            for (partition, log) in current {
                let entry = gauges[partition] ?? makeGauges(partition)
                gauges[partition] = entry
                entry.logStart.record(log.logStartOffset)
                entry.logEnd.record(log.logEndOffset)
                entry.highWatermark.record(log.highWatermark)
            }
        }
        if let replication, let replicationGauges { recordReplication(replication, replicationGauges) }
        cleaner.record(logs.cleaner.statistics)
        return registry.emitToBuffer()
    }

    private func recordReplication(_ replication: ReplicaManager, _ gauges: ReplicationGauges) {
        let led = replication.ledPartitions
        gauges.underReplicated.record(led.filter(\.isUnderReplicated).count)
        let (shrinks, expands) = (replication.isrChanges.shrinkCount, replication.isrChanges.expandCount)
        gauges.counted.withLock { counted in
            if shrinks > counted.shrinks { gauges.shrinks.increment(by: Int64(shrinks - counted.shrinks)) }
            if expands > counted.expands { gauges.expands.increment(by: Int64(expands - counted.expands)) }
            counted = (max(counted.shrinks, shrinks), max(counted.expands, expands))
        }
        gauges.lag.withLock { lag in
            var current: [FollowerKey: Int64] = [:]
            for status in led {
                for (replica, messages) in status.followerLag { current[FollowerKey(partition: status.partition, replica: replica.rawValue)] = messages }
            }
            // A partition no longer led here (or a follower gone) loses its series.
            for (key, gauge) in lag where current[key] == nil {
                gauge.destroy()
                lag[key] = nil
            }
            for (key, messages) in current {
                let gauge = lag[key] ?? CoreMetrics.Gauge(
                    label: "samsa_replica_lag_messages",
                    dimensions: [("topic", key.partition.topic), ("partition", "\(key.partition.partition)"), ("replica", "\(key.replica)")],
                    factory: factory)
                lag[key] = gauge
                gauge.record(messages)
            }
        }
    }

    private func makeGauges(_ partition: TopicPartition) -> PartitionGauges {
        let dimensions = [("topic", partition.topic), ("partition", "\(partition.partition)")]
        return PartitionGauges(
            logStart: CoreMetrics.Gauge(label: "samsa_log_start_offset", dimensions: dimensions, factory: factory),
            logEnd: CoreMetrics.Gauge(label: "samsa_log_end_offset", dimensions: dimensions, factory: factory),
            highWatermark: CoreMetrics.Gauge(label: "samsa_high_watermark", dimensions: dimensions, factory: factory))
    }
}
