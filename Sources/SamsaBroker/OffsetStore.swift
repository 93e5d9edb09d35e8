import Foundation
import NIOCore
import SamsaProtocol
import SamsaRecords
import SamsaStorage
import Synchronization

/// Committed consumer-group offsets, durable in a log of their own (as Kafka's `__consumer_offsets`):
/// `<data>/__consumer_offsets/offsets-0`, one record per committed partition (key: group, topic,
/// partition; value: offset, leader epoch, metadata), fsynced before a commit is acknowledged. Opening
/// replays the log; the latest record per key wins. The directory name has no `-<partition>` suffix, so
/// the broker's own log manager does not take it for a topic.
///
/// The log is never compacted yet: it grows with every commit (see the broker notes).
final class OffsetStore: Sendable {
    struct Key: Hashable, Sendable {
        var group: String
        var topic: String
        var partition: Int32
    }

    struct Committed: Hashable, Sendable {
        var offset: Int64
        var leaderEpoch: Int32
        var metadata: String?
    }

    static let directoryName = "__consumer_offsets"
    private let manager: LogManager
    private let log: PartitionLog
    private let offsets: Mutex<[Key: Committed]>

    /// Opens (and replays) the store under `dataDirectory`. Blocking: call it off the event loops.
    static func open(dataDirectory: String) throws -> OffsetStore {
        let manager = try LogManager.open(
            directory: "\(dataDirectory)/\(directoryName)", configuration: LogConfiguration(segmentBytes: 64 << 20, flushPolicy: .everyAppend)
        ).manager
        let log = try manager.createLog(TopicPartition(topic: "offsets", partition: 0))
        var offsets: [Key: Committed] = [:]
        var next = log.logStartOffset
        while let bytes = try log.read(from: next, maxBytes: 1 << 20) {
            var remaining = bytes
            while remaining.readableBytes > 0 {
                let batch = try RecordBatch(validating: remaining)
                remaining.moveReaderIndex(forwardBy: batch.sizeInBytes)
                next = batch.nextOffset
                for record in try batch.decodeRecords() {
                    guard var key = record.key, var value = record.value else { continue }
                    offsets[try Self.decodeKey(&key)] = try Self.decodeValue(&value)
                }
            }
        }
        return OffsetStore(manager: manager, log: log, offsets: offsets)
    }

    private init(manager: LogManager, log: PartitionLog, offsets: [Key: Committed]) {
        self.manager = manager
        self.log = log
        self.offsets = Mutex(offsets)
    }

    /// Writes the commits (blocking: on an I/O thread) and returns what to wait on for durability.
    func write(_ commits: [(Key, Committed)]) throws -> AppendResult {
        var builder = RecordBatchBuilder()
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        for (key, value) in commits {
            var keyBytes = ByteBuffer()
            keyBytes.writeKafkaString(key.group, compact: false)
            keyBytes.writeKafkaString(key.topic, compact: false)
            keyBytes.writeInteger(key.partition)
            var valueBytes = ByteBuffer()
            valueBytes.writeInteger(value.offset)
            valueBytes.writeInteger(value.leaderEpoch)
            valueBytes.writeKafkaNullableString(value.metadata, compact: false)
            builder.append(timestamp: now, key: keyBytes, value: valueBytes)
        }
        return try log.appendWithoutWaiting(try builder.build())
    }

    /// Waits until written commits are durable, then makes them visible to OffsetFetch.
    func publish(_ commits: [(Key, Committed)], after result: AppendResult) async throws {
        try await log.waitForFlushPolicy(result)
        offsets.withLock { table in
            for (key, value) in commits { table[key] = value }
        }
    }

    func committed(_ key: Key) -> Committed? { offsets.withLock { $0[key] } }

    func committed(group: String) -> [Key: Committed] { offsets.withLock { $0.filter { $0.key.group == group } } }

    func close() throws { try manager.close() }

    private static func decodeKey(_ bytes: inout ByteBuffer) throws -> Key {
        Key(group: try bytes.readKafkaString(compact: false), topic: try bytes.readKafkaString(compact: false), partition: try bytes.readKafkaInteger())
    }

    private static func decodeValue(_ bytes: inout ByteBuffer) throws -> Committed {
        Committed(offset: try bytes.readKafkaInteger(), leaderEpoch: try bytes.readKafkaInteger(), metadata: try bytes.readKafkaNullableString(compact: false))
    }
}
