import Foundation
import NIOCore
import SamsaProtocol
import SamsaRecords
import SamsaStorage
import Synchronization

/// The local committed-offsets log of Samsa versions before `__consumer_offsets` (issue 22):
/// `<data>/__consumer_offsets/offsets-0`, one record per committed partition (key: group, topic,
/// partition; value: offset, leader epoch, metadata, and for a compaction's copy the offset it was
/// first written at); a deletion is a tombstone. Opening replays it (for each key the commit or
/// deletion written last wins); `LegacyOffsets` reads it once to move its commits into
/// `__consumer_offsets`. Writing stays for tests that make such a directory.
final class CommittedOffsetLog: Sendable {
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

    /// A commit and the log offset it was first written at: of two commits to one key, the one at the
    /// higher offset wins, wherever a compaction copied it since.
    struct Entry: Sendable {
        var committed: Committed
        var writtenAt: Int64
    }

    /// The live commits by group, and the keys deleted (DeleteGroups, OffsetDelete) with the log offset
    /// of their tombstone: a commit written before a deletion loses to it, in whichever order the two
    /// are published or replayed. A tombstone is forgotten once compaction dropped the segments below
    /// it and no write older than it still waits to be published.
    private struct Table {
        var groups: [String: [Key: Entry]] = [:]
        var deleted: [Key: Int64] = [:]

        /// Applies a commit (`entry`) or a deletion (nil) written at `offset`, unless a later one of
        /// the key is already in.
        mutating func apply(_ entry: Entry?, for key: Key, at offset: Int64) {
            if let existing = groups[key.group]?[key], existing.writtenAt > offset { return }
            if let deletedAt = deleted[key], deletedAt > offset { return }
            if let entry {
                groups[key.group, default: [:]][key] = entry
                deleted[key] = nil
            } else {
                groups[key.group]?[key] = nil
                if groups[key.group]?.isEmpty == true { groups[key.group] = nil }
                deleted[key] = offset
            }
        }
    }

    /// A write's changes, each with the log offset it was written at, and the append to wait on.
    struct Written: Sendable {
        var changes: [(key: Key, committed: Committed?, offset: Int64)]
        var last: AppendResult?
    }

    static let directoryName = "__consumer_offsets"
    /// The largest batch written to the log: a commit (Kafka's `message.max.bytes` default, which its
    /// `__consumer_offsets` topic inherits) and each batch of a compaction's copies.
    static let maxBatchBytes = 1_048_588
    private let manager: LogManager
    private let log: PartitionLog
    private let offsets: Mutex<Table>

    /// Opens (and replays) the store under `dataDirectory`. Blocking: call it off the event loops.
    static func open(dataDirectory: String, segmentBytes: Int = 16 << 20) throws -> CommittedOffsetLog {
        let manager = try LogManager.open(
            directory: "\(dataDirectory)/\(directoryName)", configuration: LogConfiguration(segmentBytes: segmentBytes, flushPolicy: .everyAppend)
        ).manager
        let log = try manager.createLog(TopicPartition(topic: "offsets", partition: 0))
        let offsets = try replay(log, below: log.logEndOffset)
        return CommittedOffsetLog(manager: manager, log: log, offsets: offsets)
    }

    private init(manager: LogManager, log: PartitionLog, offsets: Table) {
        self.manager = manager
        self.log = log
        self.offsets = Mutex(offsets)
    }

    /// Writes commits and deletions (nil), in batches of at most `maxBatchBytes` and 1,000 records
    /// (blocking: on an I/O thread); `publish` then waits for durability and makes them visible.
    func write(_ changes: [(Key, Committed?)]) throws -> Written {
        var written = Written(changes: [], last: nil)
        written.changes.reserveCapacity(changes.count)
        var batch: [(Key, Committed?)] = []
        var bytes = RecordBatchLayout.headerLength
        func flushBatch() throws {
            guard !batch.isEmpty else { return }
            var builder = RecordBatchBuilder()
            for (key, value) in batch { Self.append(key, value.map { Entry(committed: $0, writtenAt: -1) }, to: &builder) }
            let result = try log.appendWithoutWaiting(try builder.build())
            for (index, (key, value)) in batch.enumerated() { written.changes.append((key, value, result.baseOffset + Int64(index))) }
            written.last = result
            batch.removeAll(keepingCapacity: true)
            bytes = RecordBatchLayout.headerLength
        }
        do {
            for change in changes {
                let size = Self.recordBytes(change.0, change.1)
                if !batch.isEmpty && (batch.count == 1000 || bytes + size > Self.maxBatchBytes) { try flushBatch() }
                batch.append(change)
                bytes += size
            }
            try flushBatch()
        }
        return written
    }

    /// Waits until a write is durable, then makes it visible to OffsetFetch (each change unless a
    /// later one of its key is already in).
    func publish(_ written: Written) async throws {
        guard let last = written.last else { return }
        try await log.waitForFlushPolicy(last)
        offsets.withLock { table in
            for change in written.changes { table.apply(change.committed.map { Entry(committed: $0, writtenAt: change.offset) }, for: change.key, at: change.offset) }
        }
    }

    func committed(_ key: Key) -> Committed? { offsets.withLock { $0.groups[key.group]?[key]?.committed } }

    func committed(group: String) -> [Key: Committed] {
        offsets.withLock { $0.groups[group]?.mapValues(\.committed) ?? [:] }
    }

    /// The groups that have committed offsets.
    func groupIds() -> [String] { offsets.withLock { Array($0.groups.keys) } }

    /// Whether `group` has committed offsets.
    func hasCommits(group: String) -> Bool { offsets.withLock { $0.groups[group] != nil } }

    /// A record's bytes at most: framing, key, and the value (a tombstone has none).
    private static func recordBytes(_ key: Key, _ committed: Committed?) -> Int {
        40 + 2 + key.group.utf8.count + 2 + key.topic.utf8.count + 4 + (committed.map { 8 + 4 + 2 + ($0.metadata?.utf8.count ?? 0) + 8 } ?? 0)
    }

    func close() throws { try manager.close() }

    // MARK: - Records

    /// The latest commit or deletion per key among the records below `end`.
    private static func replay(_ log: PartitionLog, below end: Int64) throws -> Table {
        var table = Table()
        var next = log.logStartOffset
        while next < end, let bytes = try log.read(from: next, maxBytes: 1 << 20) {
            var remaining = bytes
            while remaining.readableBytes > 0 {
                let batch = try RecordBatch(validating: remaining)
                remaining.moveReaderIndex(forwardBy: batch.sizeInBytes)
                guard batch.baseOffset < end else { return table }
                next = batch.nextOffset
                for record in try batch.decodeRecords() where record.offset < end {
                    guard var key = record.key else { continue }
                    guard var value = record.value else {
                        table.apply(nil, for: try decodeKey(&key), at: record.offset)
                        continue
                    }
                    var entry = try decodeValue(&value)
                    if entry.writtenAt < 0 { entry.writtenAt = record.offset }
                    table.apply(entry, for: try decodeKey(&key), at: entry.writtenAt)
                }
            }
        }
        return table
    }

    /// Value layout: offset (int64), leader epoch (int32), metadata (nullable string), then, for a
    /// compaction's copy only, the offset the commit was first written at (int64). A deletion is a
    /// record without a value (a tombstone, as in Kafka's `__consumer_offsets`).
    private static func append(_ key: Key, _ entry: Entry?, to builder: inout RecordBatchBuilder) {
        var keyBytes = ByteBuffer()
        keyBytes.writeKafkaString(key.group, compact: false)
        keyBytes.writeKafkaString(key.topic, compact: false)
        keyBytes.writeInteger(key.partition)
        guard let entry else {
            return builder.append(timestamp: Int64(Date().timeIntervalSince1970 * 1000), key: keyBytes, value: nil as ByteBuffer?)
        }
        var valueBytes = ByteBuffer()
        valueBytes.writeInteger(entry.committed.offset)
        valueBytes.writeInteger(entry.committed.leaderEpoch)
        valueBytes.writeKafkaNullableString(entry.committed.metadata, compact: false)
        if entry.writtenAt >= 0 { valueBytes.writeInteger(entry.writtenAt) }
        builder.append(timestamp: Int64(Date().timeIntervalSince1970 * 1000), key: keyBytes, value: valueBytes)
    }

    private static func decodeKey(_ bytes: inout ByteBuffer) throws -> Key {
        Key(group: try bytes.readKafkaString(compact: false), topic: try bytes.readKafkaString(compact: false), partition: try bytes.readKafkaInteger())
    }

    private static func decodeValue(_ bytes: inout ByteBuffer) throws -> Entry {
        let committed = Committed(
            offset: try bytes.readKafkaInteger(), leaderEpoch: try bytes.readKafkaInteger(), metadata: try bytes.readKafkaNullableString(compact: false))
        let writtenAt: Int64 = bytes.readableBytes >= 8 ? try bytes.readKafkaInteger() : -1
        return Entry(committed: committed, writtenAt: writtenAt)
    }
}
