import Logging
import NIOCore
import SamsaProtocol
import SamsaRecords
import SamsaStorage
import Synchronization

/// What one `__consumer_offsets` partition holds once replayed: every group's committed offsets
/// and the metadata last stored for it (Kafka's GroupMetadataManager cache). Written only by the
/// shard's writer, in log order, after each record is committed; read by any request.
final class GroupShardState: Sendable {
    struct Table: Sendable {
        var offsets: [String: [OffsetKey: CommittedOffset]] = [:]
        var groups: [String: GroupSnapshot] = [:]

        /// Applies one record (the latest record of a key wins).
        mutating func apply(_ record: GroupRecord) {
            switch record {
            case .offset(let key, let committed?):
                offsets[key.group, default: [:]][key] = committed
            case .offset(let key, nil):
                offsets[key.group]?[key] = nil
                if offsets[key.group]?.isEmpty == true { offsets[key.group] = nil }
            case .group(let id, let snapshot):
                groups[id] = snapshot
            }
        }
    }

    private let table: Mutex<Table>

    init(_ table: Table = Table()) { self.table = Mutex(table) }

    func apply(_ records: [GroupRecord]) {
        table.withLock { table in for record in records { table.apply(record) } }
    }

    func read<Value>(_ body: (Table) -> Value) -> Value { table.withLock { body($0) } }

    func committed(_ key: OffsetKey) -> CommittedOffset? { table.withLock { $0.offsets[key.group]?[key] } }

    func committed(group: String) -> [OffsetKey: CommittedOffset] { table.withLock { $0.offsets[group] ?? [:] } }

    func hasCommits(group: String) -> Bool { table.withLock { $0.offsets[group] != nil } }

    /// Whether `group` has committed offsets or stored metadata.
    func knows(_ group: String) -> Bool { table.withLock { $0.offsets[group] != nil || $0.groups[group] != nil } }

    /// Groups with committed offsets or stored metadata.
    var groupIds: Set<String> { table.withLock { Set($0.offsets.keys).union($0.groups.keys) } }

    /// Replays the partition's records from its log start to its log end (blocking: on an I/O
    /// thread). A record in no layout this reads is skipped with a warning, as is a batch that does
    /// not decode (neither is written by a coordinator; the log's own recovery cut torn tails).
    static func replay(_ log: PartitionLog, logger: Logger) throws -> Table {
        var table = Table()
        var next = log.logStartOffset
        let end = log.logEndOffset
        var skipped = 0
        while next < end, let bytes = try log.read(from: next, maxBytes: 1 << 20) {
            var remaining = bytes
            let before = next
            while remaining.readableBytes > 0 {
                let batch = try RecordBatch(validating: remaining)
                remaining.moveReaderIndex(forwardBy: batch.sizeInBytes)
                next = batch.nextOffset
                // The cleaner keeps emptied batches (their offsets and producer state) and leaves gaps
                // between batches: both are simply read past.
                if batch.recordCount == 0 { continue }
                guard let records = try? batch.decodeRecords() else {
                    skipped += 1
                    continue
                }
                for record in records {
                    guard let key = record.key, let decoded = try? GroupRecord(key: key, value: record.value) else {
                        skipped += 1
                        continue
                    }
                    table.apply(decoded)
                }
            }
            if next == before { break }
        }
        if skipped > 0 {
            logger.warning("skipped records of a coordinator partition that do not decode", metadata: ["directory": "\(log.directory)", "records": "\(skipped)"])
        }
        return table
    }
}
