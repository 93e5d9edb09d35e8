import Foundation
import NIOCore
import SamsaProtocol
import SamsaRecords
import SamsaStorage
import Synchronization

/// Committed consumer-group offsets, durable in a log of their own (as Kafka's `__consumer_offsets`):
/// `<data>/__consumer_offsets/offsets-0`, one record per committed partition (key: group, topic,
/// partition; value: offset, leader epoch, metadata), fsynced before a commit is acknowledged; a
/// deletion (DeleteGroups, OffsetDelete) is a record without a value, a tombstone. Opening replays the
/// log; for each key the commit or deletion written last wins. The directory name has no
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
    /// The first offsets of writes not yet published (tombstones at or past the oldest stay).
    private let unpublished = Mutex<[Int64: Int]>([:])
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

    private init(manager: LogManager, log: PartitionLog, offsets: Table, compactionBytes: Int) {
        self.manager = manager
        self.log = log
        self.offsets = Mutex(offsets)
        self.compactionBytes = compactionBytes
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
            if written.last == nil { unpublished.withLock { $0[result.baseOffset, default: 0] += 1 } }
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
        } catch {
            // Nothing will publish it: the log refuses writes after a failed one.
            if let first = written.changes.first?.offset { unpublished.withLock { $0[first] = nil } }
            throw error
        }
        return written
    }

    /// Waits until a write is durable, then makes it visible to OffsetFetch (each change unless a
    /// later one of its key is already in).
    func publish(_ written: Written) async throws {
        guard let last = written.last, let first = written.changes.first?.offset else { return }
        defer {
            unpublished.withLock { pending in
                pending[first, default: 1] -= 1
                if pending[first] == 0 { pending[first] = nil }
            }
        }
        try await log.waitForFlushPolicy(last)
        offsets.withLock { table in
            for change in written.changes { table.apply(change.committed.map { Entry(committed: $0, writtenAt: change.offset) }, for: change.key, at: change.offset) }
        }
    }

    func committed(_ key: Key) -> Committed? { offsets.withLock { $0.groups[key.group]?[key]?.committed } }

    func committed(group: String) -> [Key: Committed] {
        offsets.withLock { $0.groups[group]?.mapValues(\.committed) ?? [:] }
    }

    /// Deletions remembered to win over older commits (tests: compaction forgets them).
    var tombstoneCount: Int { offsets.withLock { $0.deleted.count } }

    /// The groups that have committed offsets.
    func groupIds() -> [String] { offsets.withLock { Array($0.groups.keys) } }

    /// Whether `group` has committed offsets.
    func hasCommits(group: String) -> Bool { offsets.withLock { $0.groups[group] != nil } }

    /// About the bytes `commits` take in a batch of the log (their keys and values plus each record's
    /// framing, at most 40 bytes), to refuse a commit past `maxBatchBytes` before building it.
    static func estimatedBytes(_ commits: [(Key, Committed)]) -> Int {
        RecordBatchLayout.headerLength + commits.reduce(0) { sum, commit in sum + recordBytes(commit.0, commit.1) }
    }

    /// A record's bytes at most: framing, key, and the value (a tombstone has none).
    private static func recordBytes(_ key: Key, _ committed: Committed?) -> Int {
        40 + 2 + key.group.utf8.count + 2 + key.topic.utf8.count + 4 + (committed.map { 8 + 4 + 2 + ($0.metadata?.utf8.count ?? 0) + 8 } ?? 0)
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
        let live = try Self.replay(log, below: sealedEnd).groups.values.flatMap { $0 }
        try afterSealing()
        // Copies go in batches of at most 1,000 records and `maxBatchBytes` (long group ids and
        // metadata would otherwise make a batch too large to read back).
        var builder = RecordBatchBuilder()
        var batched = (records: 0, bytes: RecordBatchLayout.headerLength)
        for (key, entry) in live {
            let bytes = Self.recordBytes(key, entry.committed)
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
        // Tombstones below the dropped segments and below every write still to be published have
        // nothing left to win over.
        let horizon = min(sealedEnd, unpublished.withLock { $0.keys.min() } ?? .max)
        offsets.withLock { table in table.deleted = table.deleted.filter { $0.value >= horizon } }
        return live.count
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
