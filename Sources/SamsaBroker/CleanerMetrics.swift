import CoreMetrics
import Prometheus
import SamsaStorage
import Synchronization

/// The log cleaner's metrics, read from `LogCleaner.statistics` at each scrape, under the names
/// Prometheus' JMX exporter gives Kafka's (`kafka.log:type=LogCleaner,name=max-dirty-percent` is
/// `kafka_log_LogCleaner_max_dirty_percent`), and Samsa's own for what Kafka has no metric of:
/// bytes and time of the passes, and each compacted partition's dirty ratio and last clean.
final class CleanerMetrics: Sendable {
    private let factory: PrometheusMetricsFactory
    private let maxDirtyPercent: CoreMetrics.Gauge
    private let recopyPercent: CoreMetrics.Gauge
    private let maxCleanTimeSeconds: CoreMetrics.Gauge
    private let uncleanablePartitions: CoreMetrics.Gauge
    private let bytesRead: CoreMetrics.Counter
    private let bytesWritten: CoreMetrics.Counter
    private let passes: CoreMetrics.Counter
    private let seconds: CoreMetrics.Gauge
    /// The totals already added to the counters.
    private let counted = Mutex<(read: Int64, written: Int64, passes: Int)>((0, 0, 0))
    private let partitions = Mutex<[TopicPartition: PartitionGauges]>([:])

    private struct PartitionGauges: Sendable {
        var dirtyRatio: CoreMetrics.Gauge
        var cleanPoint: CoreMetrics.Gauge
        var lastClean: CoreMetrics.Gauge
    }

    init(factory: PrometheusMetricsFactory) {
        self.factory = factory
        maxDirtyPercent = CoreMetrics.Gauge(label: "kafka_log_LogCleaner_max_dirty_percent", factory: factory)
        recopyPercent = CoreMetrics.Gauge(label: "kafka_log_LogCleaner_cleaner_recopy_percent", factory: factory)
        maxCleanTimeSeconds = CoreMetrics.Gauge(label: "kafka_log_LogCleaner_max_clean_time_secs", factory: factory)
        uncleanablePartitions = CoreMetrics.Gauge(label: "kafka_log_LogCleanerManager_uncleanable_partitions_count", factory: factory)
        bytesRead = CoreMetrics.Counter(label: "samsa_log_cleaner_bytes_read_total", factory: factory)
        bytesWritten = CoreMetrics.Counter(label: "samsa_log_cleaner_bytes_written_total", factory: factory)
        passes = CoreMetrics.Counter(label: "samsa_log_cleaner_passes_total", factory: factory)
        seconds = CoreMetrics.Gauge(label: "samsa_log_cleaner_seconds_total", factory: factory)
    }

    /// Records `statistics` (the cleaner's totals since the broker started).
    func record(_ statistics: LogCleanerStatistics) {
        maxDirtyPercent.record(statistics.maxDirtyRatio * 100)
        // Kafka's, of the last pass: written as a share of read.
        if let last = statistics.lastPass {
            recopyPercent.record(last.bytesRead > 0 ? 100 * Double(last.bytesWritten) / Double(last.bytesRead) : 0)
            maxCleanTimeSeconds.record(last.seconds)
        }
        uncleanablePartitions.record(statistics.uncleanablePartitions.count)
        seconds.record(statistics.cleaningSeconds)
        counted.withLock { counted in
            if statistics.bytesRead > counted.read { bytesRead.increment(by: statistics.bytesRead - counted.read) }
            if statistics.bytesWritten > counted.written { bytesWritten.increment(by: statistics.bytesWritten - counted.written) }
            if statistics.passes > counted.passes { passes.increment(by: Int64(statistics.passes - counted.passes)) }
            counted = (max(counted.read, statistics.bytesRead), max(counted.written, statistics.bytesWritten), max(counted.passes, statistics.passes))
        }
        partitions.withLock { gauges in
            for (partition, gone) in gauges where statistics.partitions[partition] == nil {
                gone.dirtyRatio.destroy()
                gone.cleanPoint.destroy()
                gone.lastClean.destroy()
                gauges[partition] = nil
            }
            for (partition, state) in statistics.partitions {
                let entry = gauges[partition] ?? makeGauges(partition)
                gauges[partition] = entry
                entry.dirtyRatio.record(state.dirtyRatio)
                entry.cleanPoint.record(state.cleanPoint)
                entry.lastClean.record((state.lastCleanMilliseconds ?? 0) / 1000)
            }
        }
    }

    private func makeGauges(_ partition: TopicPartition) -> PartitionGauges {
        let dimensions = [("topic", partition.topic), ("partition", "\(partition.partition)")]
        return PartitionGauges(
            dirtyRatio: CoreMetrics.Gauge(label: "samsa_log_cleaner_dirty_ratio", dimensions: dimensions, factory: factory),
            cleanPoint: CoreMetrics.Gauge(label: "samsa_log_cleaner_clean_point", dimensions: dimensions, factory: factory),
            lastClean: CoreMetrics.Gauge(label: "samsa_log_cleaner_last_clean_timestamp_seconds", dimensions: dimensions, factory: factory))
    }
}
