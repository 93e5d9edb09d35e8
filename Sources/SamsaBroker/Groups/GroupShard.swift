import Synchronization
import Logging
import NIOCore
import SamsaProtocol
import SamsaRecords
import SamsaStorage

/// The groups of one `__consumer_offsets` partition led here (Kafka's group coordinator for the
/// groups that hash to it): a `GroupCoordinator` actor for their membership and rebalances, their
/// committed offsets and stored metadata (`GroupShardState`), and the writer through which every
/// change becomes a record of the partition before it is answered.
final class GroupShard: CoordinatorShard {
    let partition: Partition
    let epoch: LeaderEpoch
    let coordinator: GroupCoordinator
    let state: GroupShardState
    let writer: CoordinatorWriter
    let logger: Logger

    /// Made by `load` from a replayed `table`.
    private init(
        partition: Partition, epoch: LeaderEpoch, table: GroupShardState.Table, limits: GroupLimits, loop: any EventLoop,
        minInsyncReplicas: @escaping @Sendable () -> Int, failed: @escaping @Sendable (GroupShard) -> Void, logger: Logger
    ) {
        self.partition = partition
        self.epoch = epoch
        self.logger = logger
        let state = GroupShardState(table)
        self.state = state
        let failure = FailureHook()
        let writer = CoordinatorWriter(partition: partition, epoch: epoch, minInsyncReplicas: minInsyncReplicas) { failure.fire() }
        self.writer = writer
        coordinator = GroupCoordinator(
            limits: limits, hasOffsets: { state.hasCommits(group: $0) }, store: GroupShardStore(writer: writer, state: state), loop: loop,
            logger: logger)
        failure.set { [weak self] in if let self { failed(self) } }
    }

    /// Replays `partition` (blocking reads on `io`) into a new shard whose coordinator carries on
    /// the groups stored in it. Then `staged` maps (the embedded queue's, `StagedOffsets`: newer
    /// than the log) are written over what the log holds for their groups (a failure throws and the
    /// load is retried: a group must not serve older offsets), and `legacy` commits (from a broker's
    /// local offsets log before this layout) that the partition still lacks.
    static func load(
        _ partition: Partition, epoch: LeaderEpoch, io: @escaping @Sendable (@escaping @Sendable () throws -> GroupShardState.Table) async throws -> GroupShardState.Table,
        limits: GroupLimits, loop: any EventLoop, minInsyncReplicas: @escaping @Sendable () -> Int, legacy: [(OffsetKey, CommittedOffset)],
        staged: [String: [OffsetKey: CommittedOffset]] = [:], failed: @escaping @Sendable (GroupShard) -> Void, logger: Logger
    ) async throws -> (GroupShard, migrated: Bool) {
        var logger = logger
        logger[metadataKey: "partition"] = "\(partition.id.partition)"
        let log = partition.log
        let table = try await io { [logger] in try GroupShardState.replay(log, logger: logger) }
        let shard = GroupShard(
            partition: partition, epoch: epoch, table: table, limits: limits, loop: loop, minInsyncReplicas: minInsyncReplicas, failed: failed, logger: logger)
        await shard.coordinator.load(Array(table.groups.values))
        if !staged.isEmpty {
            // Upserts only: a partition a staged map does not list was not deleted by its stager.
            let records = staged.flatMap { _, offsets in offsets.map { GroupRecord.offset($0.key, $0.value) } }
            let code = await shard.writeInBatches(records)
            guard code == .none else {
                await shard.unload()
                throw LegacyMigrationFailed(code: code)
            }
            logger.info("moved commits staged by the embedded queue into the log", metadata: ["groups": "\(staged.count)", "commits": "\(records.count)"])
        }
        let missing = legacy.filter { key, _ in shard.state.committed(group: key.group)[key] == nil && table.groups[key.group] == nil }
        if !missing.isEmpty {
            let code = await shard.writeInBatches(missing.map { GroupRecord.offset($0.0, $0.1) })
            guard code == .none else {
                // Records whose fate is unknown: load again (the log is the truth).
                if shard.writer.isClosed { throw LegacyMigrationFailed(code: code) }
                // Too few replicas in sync: the partition serves meanwhile (its groups must not wait for
                // the old log); the commits are offered again at its next load here.
                logger.warning("moving committed offsets from the local offsets log failed", metadata: ["commits": "\(missing.count)", "error": "\(code)"])
                return (shard, migrated: false)
            }
            logger.info("moved committed offsets from the local offsets log", metadata: ["commits": "\(missing.count)"])
        }
        return (shard, migrated: true)
    }

    struct LegacyMigrationFailed: Error {
        var code: ErrorCode
    }

    func unload() async {
        await writer.close()
        await coordinator.stop()
    }

    /// Writes commits and deletions (nil) as one write; answers once they are committed and visible
    /// (or the error, see `CoordinatorWriter.write`). Callers keep one call within a batch.
    func commit(_ changes: [(OffsetKey, CommittedOffset?)]) async -> ErrorCode {
        let records = changes.map { GroupRecord.offset($0.0, $0.1) }
        return await writer.write(records.map(\.record)) { [state] _ in state.apply(records) }
    }

    /// Deletes groups: their offsets and their metadata, as tombstones (DeleteGroups), in batches.
    func delete(groups ids: [String]) async -> ErrorCode {
        let records = ids.flatMap { id in
            state.committed(group: id).keys.map { GroupRecord.offset($0, nil) } + (state.read { $0.groups[id] } != nil ? [GroupRecord.group(id, nil)] : [])
        }
        return await writeInBatches(records)
    }

    /// Writes records in as many writes as a batch allows.
    func writeInBatches(_ records: [GroupRecord]) async -> ErrorCode {
        for batch in Self.batches(records) {
            let code = await writer.write(batch.map(\.record)) { [state] _ in state.apply(batch) }
            guard code == .none else { return code }
        }
        return .none
    }
}

/// Where a shard's coordinator stores group metadata: a record through the shard's writer.
struct GroupShardStore: GroupMetadataStore {
    let writer: CoordinatorWriter
    let state: GroupShardState

    /// An Empty group without committed offsets is removed (Kafka's Dead group): its record is a
    /// tombstone, so neither a replay nor the log keeps it.
    func store(_ group: GroupSnapshot) async -> ErrorCode {
        let removed = group.members.isEmpty && !state.hasCommits(group: group.groupId)
        let record = GroupRecord.group(group.groupId, removed ? nil : group)
        switch await writer.write([record.record], apply: { [state] _ in state.apply([record]) }) {
        case .messageSizeTooLarge, .recordListTooLarge: return .unknown
        case .kafkaStorageError: return .notCoordinator
        case let code: return code
        }
    }
}

/// The writer's failure callback, set once the shard exists (the writer is made before it).
private final class FailureHook: Sendable {
    private let action = Mutex<(@Sendable () -> Void)?>(nil)
    func set(_ body: @escaping @Sendable () -> Void) { action.withLock { $0 = body } }
    func fire() { action.withLock { $0 }?() }
}

// MARK: - Expiry: exclusive work of the shard's writer
//
// The partition is compacted by the log cleaner (`cleanup.policy=compact`, as Kafka's), like any
// compacted topic: it keeps each key's latest record and drops tombstones after
// `delete.retention.ms`, so a replay sees the same live state from fewer records.

extension GroupShard {
    /// Expires committed offsets (Kafka's `offsets.retention.minutes`, KIP-211): all offsets of a
    /// consumer group that has been Empty for `retentionMs`, and each offset of a group without
    /// members or stored metadata (simple consumers) committed over `retentionMs` ago; a group left
    /// with neither offsets nor members is deleted. Alone on the writer: no commit can slip between
    /// the check and the tombstones.
    func expireOffsets(nowMs: Int64, retentionMs: Int64) async {
        _ = await writer.exclusively { [self] in
            // The coordinator's own view, taken alone on the writer: a group with members keeps its
            // offsets; an Empty one's clock starts when it became Empty in memory (its Empty record may
            // still be on its way, or have failed); one it does not hold goes by its stored record.
            var live: [String: GroupSnapshot] = [:]
            for group in state.read({ Array($0.offsets.keys) }) {
                if let snapshot = await coordinator.snapshot(of: group) { live[group] = snapshot }
            }
            let expired = state.read { table -> [GroupRecord] in
                var records: [GroupRecord] = []
                for (group, offsets) in table.offsets {
                    let known = live[group] ?? table.groups[group]
                    guard known?.members.isEmpty ?? true else { continue }
                    // A consumer group's offsets expire together, `retentionMs` after it became Empty;
                    // a simple consumer's each `retentionMs` after its commit.
                    let gone: [OffsetKey]
                    if let known, known.protocolType?.isEmpty == false {
                        gone = nowMs - known.stateTimestampMs >= retentionMs ? Array(offsets.keys) : []
                    } else {
                        gone = offsets.filter { nowMs - $0.value.commitTimestampMs >= retentionMs }.map(\.key)
                    }
                    records += gone.map { GroupRecord.offset($0, nil) }
                    if gone.count == offsets.count && table.groups[group] != nil { records.append(.group(group, nil)) }
                }
                return records
            }
            for batch in Self.batches(expired) {
                switch await writer.append(batch.map(\.record)) {
                case .success: state.apply(batch)
                case .failure(let failure):
                    if failure.appended { writer.failAndReload() }
                    return
                }
            }
            if !expired.isEmpty { logger.info("expired committed offsets", metadata: ["records": "\(expired.count)"]) }
        }
    }

    /// Records split into batches the writer takes.
    static func batches(_ records: [GroupRecord]) -> [[GroupRecord]] {
        var batches: [[GroupRecord]] = []
        var batch: [GroupRecord] = []
        var bytes = RecordBatchLayout.headerLength
        for record in records {
            let size = CoordinatorWriter.recordBytes(record.record)
            if !batch.isEmpty && (batch.count == CoordinatorWriter.maxBatchRecords || bytes + size > CoordinatorWriter.maxBatchBytes) {
                batches.append(batch)
                batch = []
                bytes = RecordBatchLayout.headerLength
            }
            batch.append(record)
            bytes += size
        }
        if !batch.isEmpty { batches.append(batch) }
        return batches
    }
}
