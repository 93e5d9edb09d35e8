import Foundation
import Logging
import NIOCore
import SamsaRecords
import SamsaStorage
import Synchronization

/// The data directory's committed offsets: the `__consumer_offsets` topic, in Kafka's record layout
/// (`ConsumerOffsetsRecord`), the same store a broker serving the directory uses. Its partition
/// logs are written only by the directory's writer (`Samsa.open`); a commit is one batch appended to
/// its group's partition (Kafka's placement) and synced before it returns. Reading replays the
/// partitions: the last record of a key wins, a tombstone deletes.
///
/// The topic is made with the directory (1 partition unless `Samsa.Options.offsetsTopicPartitions`
/// says otherwise; a broker keeps the count it finds), compacted as Kafka's is (`cleanup.policy=
/// compact`): the log cleaner keeps each key's latest record, so a replay reads about the live
/// state, not the history.
final class ConsumerOffsetsLog: Sendable {
    static let topic = ConsumerOffsetsRecord.topic

    /// The settings `__consumer_offsets` is made with here (the broker's, for one replica).
    static func configs() -> [String: String] {
        var configs = TopicConfigNames.flushConfigs(.everyAppend)
        configs[TopicConfigNames.retentionMs] = "-1"
        configs[TopicConfigNames.retentionBytes] = "-1"
        configs[TopicConfigNames.segmentBytes] = "104857600"
        configs[TopicConfigNames.cleanupPolicy] = CleanupPolicy.compact.rawValue
        configs["min.insync.replicas"] = "1"
        return configs
    }

    /// Adds `__consumer_offsets` to a writer's registry if it is not there (a new directory, or one
    /// from before it); its logs are made with the others' at open.
    static func register(in registry: TopicRegistry, partitions: Int) throws(SamsaError) {
        if var stored = registry.stored(topic) {
            // One made before it was compacted (by an earlier Samsa or broker) is compacted from now on.
            guard stored.configs[TopicConfigNames.cleanupPolicy].flatMap({ CleanupPolicy($0) })?.compacts != true else { return }
            stored.configs[TopicConfigNames.cleanupPolicy] = CleanupPolicy.compact.rawValue
            try registry.replace(topic, stored)
            return
        }
        guard (1...1000).contains(partitions) else {
            throw SamsaError(.invalidArgument, "offsets topic partitions must be 1...1000, not \(partitions)")
        }
        try registry.add(topic, StoredTopic(id: TopicId.random(), partitions: Int32(partitions), configs: configs()))
    }

    private let logs: LogManager
    /// The topic's partition count (the writer's, for placement).
    private let partitions: Int32

    init(logs: LogManager, partitions: Int32) {
        self.logs = logs
        self.partitions = partitions
    }

    func partition(of group: String) -> Int32 { ConsumerOffsetsRecord.partition(of: group, partitions: partitions) }

    private func log(_ partition: Int32) throws(SamsaError) -> PartitionLog {
        guard let log = logs.log(TopicPartition(topic: Self.topic, partition: partition)) else {
            throw SamsaError(.storage, "\(Self.topic)-\(partition) is missing")
        }
        return log
    }

    /// Every group's committed offsets, replayed from the partitions. A record that does not decode
    /// is skipped with a warning (a broker's group metadata records are the broker's own). Beside
    /// the writer, the logs are looked at again first: a commit the writer returned from is read
    /// (and the topic found, if the writer made it after this process opened the directory).
    func replay(logger: Logger) throws(SamsaError) -> [String: [TopicPartition: Int64]] {
        _ = try storage { () throws(StorageError) in try logs.refresh() }
        var groups: [String: [TopicPartition: Int64]] = [:]
        var skipped = 0
        for id in logs.partitions where id.topic == Self.topic {
            guard let log = logs.log(id) else { continue }
            try storage { () throws(StorageError) in
                var next = log.logStartOffset
                while next < log.logEndOffset, let bytes = try log.read(from: next, maxBytes: 1 << 20) {
                    var remaining = bytes
                    let before = next
                    while remaining.readableBytes > 0 {
                        let batch: RecordBatch
                        do {
                            batch = try RecordBatch(validating: remaining)
                        } catch {
                            throw StorageError(.corrupt, path: log.directory, "a batch at offset \(next) does not read: \(error)")
                        }
                        remaining.moveReaderIndex(forwardBy: batch.sizeInBytes)
                        next = batch.nextOffset
                        guard let records = try? batch.decodeRecords() else {
                            skipped += 1
                            continue
                        }
                        for record in records {
                            guard let key = record.key, let decoded = try? ConsumerOffsetsRecord.decode(key: key, value: record.value) else {
                                skipped += 1
                                continue
                            }
                            guard case .offset(let key, let value) = decoded else { continue }
                            let id = TopicPartition(topic: key.topic, partition: key.partition)
                            groups[key.group, default: [:]][id] = value?.offset
                            if groups[key.group]?.isEmpty == true { groups[key.group] = nil }
                        }
                    }
                    if next == before { break }
                }
            }
        }
        if skipped > 0 {
            logger.warning("skipped records of \(Self.topic) that do not decode", metadata: ["records": "\(skipped)"])
        }
        return groups
    }

    /// Appends the group's changes (nil: deleted) as records and syncs them before returning.
    func append(group: String, _ changes: [TopicPartition: Int64?]) throws(SamsaError) {
        guard !changes.isEmpty else { return }
        let log = try log(partition(of: group))
        try write(changes.sorted { $0.key < $1.key }.map { (group, $0.key, $0.value) }, to: log, at: WallClock.nowMilliseconds)
    }

    /// Writes records in batches of at most 1,000 records and 1 MiB, then syncs.
    private func write(_ records: [(group: String, partition: TopicPartition, offset: Int64?)], to log: PartitionLog, at now: Int64) throws(SamsaError) {
        var index = 0
        while index < records.count {
            var builder = RecordBatchBuilder()
            while index < records.count && builder.recordCount < 1000 && builder.uncompressedSize < 1 << 20 {
                let (group, partition, offset) = records[index]
                let key = ConsumerOffsetsRecord.key(.init(group: group, topic: partition.topic, partition: partition.partition))
                let value = offset.map { ConsumerOffsetsRecord.value(.init(offset: $0, commitTimestampMs: now)) }
                builder.append(timestamp: now, key: key, value: value)
                index += 1
            }
            let batch: RecordBatch
            do {
                batch = try builder.build()
            } catch {
                throw SamsaError(.invalidArgument, "cannot encode committed offsets: \(error)")
            }
            _ = try storage { () throws(StorageError) in try log.appendWithoutWaiting(batch) }
        }
        try storage { () throws(StorageError) in try log.flush() }
    }
}
