import Foundation
import NIOCore
import SamsaProtocol
import SamsaRecords
import SamsaStorage
import Synchronization

/// Committed consumer-group offsets, durable in a log of their own (as Kafka's `__consumer_offsets`):
/// `<data>/__consumer_offsets/offsets-0`, one record per committed partition (key: group, topic,
/// partition; value: offset, leader epoch, metadata), fsynced before a commit is acknowledged. Opening
/// replays the log; for each key the commit written last wins. The directory name has no
/// `-<partition>` suffix, so the broker's own log manager does not take it for a topic.
///
/// The log is compacted once it holds `compactionBytes` (see `compact`), so it stays about the size of
/// the live commits instead of growing with every commit.
///
/// Every batch written is at most `maxBatchBytes` (the caller refuses a larger commit, see
/// `estimatedBytes`; compaction splits its copies), well under what recovery and replay read back, so
/// nothing a client commits can keep the broker from starting again.
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

    /// The commits and the groups that have any (so `hasCommits` does not scan every commit).
    private struct Table {
        var entries: [Key: Entry]
        var groups: Set<String>
    }

    static let directoryName = "__consumer_offsets"
    /// The largest batch written to the log: a commit (Kafka's `message.max.bytes` default, which its
    /// `__consumer_offsets` topic inherits) and each batch of a compaction's copies.
    static let maxBatchBytes = 1_048_588
    private let manager: LogManager
    private let log: PartitionLog
    private let offsets: Mutex<Table>
    private let compactionBytes: Int
    /// The size of the log after the last compaction: the next one waits until the log is twice that
    /// (so a large live set is not rewritten on every commit).
    private let compactedBytes = Atomic<Int>(0)
    private let compacting = Atomic<Bool>(false)

    /// Opens (and replays) the store under `dataDirectory`. Blocking: call it off the event loops.
    static func open(dataDirectory: String, segmentBytes: Int = 16 << 20, compactionBytes: Int = 64 << 20) throws -> CommittedOffsetLog {
        let manager = try LogManager.open(
            directory: "\(dataDirectory)/\(directoryName)", configuration: LogConfiguration(segmentBytes: segmentBytes, flushPolicy: .everyAppend)
        ).manager
        let log = try manager.createLog(TopicPartition(topic: "offsets", partition: 0))
        let offsets = try replay(log, below: log.logEndOffset)
        let store = CommittedOffsetLog(manager: manager, log: log, offsets: offsets, compactionBytes: compactionBytes)
        store.compactedBytes.store(log.sizeInBytes, ordering: .relaxed)
        return store
    }

    private init(manager: LogManager, log: PartitionLog, offsets: [Key: Entry], compactionBytes: Int) {
        self.manager = manager
        self.log = log
        self.offsets = Mutex(Table(entries: offsets, groups: Set(offsets.keys.map(\.group))))
        self.compactionBytes = compactionBytes
    }

    /// Writes the commits (blocking: on an I/O thread) and returns what to wait on for durability.
    func write(_ commits: [(Key, Committed)]) throws -> AppendResult {
        var builder = RecordBatchBuilder()
        for (key, value) in commits { Self.append(key, Entry(committed: value, writtenAt: -1), to: &builder) }
        return try log.appendWithoutWaiting(try builder.build())
    }

    /// Waits until written commits are durable, then makes them visible to OffsetFetch.
    func publish(_ commits: [(Key, Committed)], after result: AppendResult) async throws {
        try await log.waitForFlushPolicy(result)
        offsets.withLock { table in
            for (index, (key, value)) in commits.enumerated() {
                Self.keepLatest(Entry(committed: value, writtenAt: result.baseOffset + Int64(index)), for: key, in: &table.entries)
                table.groups.insert(key.group)
            }
        }
    }

    func committed(_ key: Key) -> Committed? { offsets.withLock { $0.entries[key]?.committed } }

    func committed(group: String) -> [Key: Committed] {
        offsets.withLock { table in
            guard table.groups.contains(group) else { return [:] }
            return table.entries.filter { $0.key.group == group }.mapValues(\.committed)
        }
    }

    /// Whether `group` has committed offsets.
    func hasCommits(group: String) -> Bool { offsets.withLock { $0.groups.contains(group) } }

    /// About the bytes `commits` take in a batch of the log (their keys and values plus each record's
    /// framing, at most 40 bytes), to refuse a commit past `maxBatchBytes` before building it.
    static func estimatedBytes(_ commits: [(Key, Committed)]) -> Int {
        RecordBatchLayout.headerLength
            + commits.reduce(0) { sum, commit in sum + recordBytes(commit.0, Entry(committed: commit.1, writtenAt: 0)) }
    }

    private static func recordBytes(_ key: Key, _ entry: Entry) -> Int {
        40 + 2 + key.group.utf8.count + 2 + key.topic.utf8.count + 4 + 8 + 4 + 2 + (entry.committed.metadata?.utf8.count ?? 0) + 8
    }

    /// Whether the log has grown enough since the last compaction to compact it now.
    var compactionDue: Bool {
        !compacting.load(ordering: .relaxed) && log.segmentCount > 1
            && log.sizeInBytes >= max(compactionBytes, 2 * compactedBytes.load(ordering: .relaxed))
    }

    /// Compacts the log: the segments written so far are sealed and replayed, the latest commit of each
    /// key is written again at the end (keeping the offset it was first written at), and once that is
    /// durable the old segments are dropped. Blocking: on an I/O thread; one at a time.
    ///
    /// Each step leaves a log that replays to the same commits: the copies only repeat what the old
    /// segments hold, and a commit written while this runs lands after the sealed segments at a higher
    /// offset than anything copied, so it wins over a copy of an older commit written after it.
    /// Returns the number of live commits copied (nil when another compaction was running).
    /// `afterSealing` runs between the replay and the copies (a test seam for commits that race it).
    @discardableResult
    func compact(afterSealing: () throws -> Void = {}) throws -> Int? {
        guard !compacting.exchange(true, ordering: .acquiringAndReleasing) else { return nil }
        defer { compacting.store(false, ordering: .releasing) }
        try log.roll()
        // After the roll every append goes to the new segment; flushing makes the sealed ones durable
        // (a commit in them that failed to sync fails this, and the log refuses writes).
        let sealedEnd = log.segmentBaseOffsets.last ?? log.logStartOffset
        try log.flush()
        let live = try Self.replay(log, below: sealedEnd)
        try afterSealing()
        // Copies go in batches of at most 1,000 records and `maxBatchBytes` (long group ids and
        // metadata would otherwise make a batch too large to read back).
        var builder = RecordBatchBuilder()
        var batched = (records: 0, bytes: RecordBatchLayout.headerLength)
        for (key, entry) in live {
            let bytes = Self.recordBytes(key, entry)
            if batched.records > 0 && (batched.records == 1000 || batched.bytes + bytes > Self.maxBatchBytes) {
                _ = try log.appendWithoutWaiting(try builder.build())
                builder = RecordBatchBuilder()
                batched = (0, RecordBatchLayout.headerLength)
            }
            Self.append(key, entry, to: &builder)
            batched.records += 1
            batched.bytes += bytes
        }
        if batched.records > 0 { _ = try log.appendWithoutWaiting(try builder.build()) }
        try log.flush()
        try log.advanceLogStart(to: sealedEnd)
        compactedBytes.store(log.sizeInBytes, ordering: .relaxed)
        return live.count
    }

    func close() throws { try manager.close() }

    // MARK: - Records

    /// The latest commit per key among the records below `end`.
    private static func replay(_ log: PartitionLog, below end: Int64) throws -> [Key: Entry] {
        var table: [Key: Entry] = [:]
        var next = log.logStartOffset
        while next < end, let bytes = try log.read(from: next, maxBytes: 1 << 20) {
            var remaining = bytes
            while remaining.readableBytes > 0 {
                let batch = try RecordBatch(validating: remaining)
                remaining.moveReaderIndex(forwardBy: batch.sizeInBytes)
                guard batch.baseOffset < end else { return table }
                next = batch.nextOffset
                for record in try batch.decodeRecords() where record.offset < end {
                    guard var key = record.key, var value = record.value else { continue }
                    var entry = try decodeValue(&value)
                    if entry.writtenAt < 0 { entry.writtenAt = record.offset }
                    keepLatest(entry, for: try decodeKey(&key), in: &table)
                }
            }
        }
        return table
    }

    private static func keepLatest(_ entry: Entry, for key: Key, in table: inout [Key: Entry]) {
        if let existing = table[key], existing.writtenAt > entry.writtenAt { return }
        table[key] = entry
    }

    /// Value layout: offset (int64), leader epoch (int32), metadata (nullable string), then, for a
    /// compaction's copy only, the offset the commit was first written at (int64).
    private static func append(_ key: Key, _ entry: Entry, to builder: inout RecordBatchBuilder) {
        var keyBytes = ByteBuffer()
        keyBytes.writeKafkaString(key.group, compact: false)
        keyBytes.writeKafkaString(key.topic, compact: false)
        keyBytes.writeInteger(key.partition)
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
