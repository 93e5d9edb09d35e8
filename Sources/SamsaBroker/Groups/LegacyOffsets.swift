import Foundation
import Logging
import SamsaRecords
import NIOPosix
import SamsaStorage
import Synchronization

/// The committed offsets of a broker's local offsets log from before `__consumer_offsets` existed
/// (`<data>/__consumer_offsets/offsets-0`, `CommittedOffsetLog`), read once at start so upgrading
/// loses no commit: each `__consumer_offsets` partition loaded here takes the commits of its groups
/// that it lacks (`GroupShard.load`). Once every partition has taken them, the old log is renamed
/// `__consumer_offsets.migrated` (kept, not deleted: an operator may want it; nothing reads it again).
/// Each partition is offered them once: the partitions done are recorded in
/// `<old log>/migrated-partitions` (so a commit deleted since, by DeleteGroups, OffsetDelete or expiry,
/// never comes back); a broker of a cluster that never leads some partition keeps the old log until
/// it does.
final class LegacyOffsets: Sendable {
    private let byGroup: [String: [OffsetKey: CommittedOffset]]
    private let directory: String
    private let migrated: Mutex<Set<Int32>>

    static let migratedName = "\(CommittedOffsetLog.directoryName).migrated"
    static let migratedPartitionsFile = "migrated-partitions"

    private init(byGroup: [String: [OffsetKey: CommittedOffset]], directory: String, migrated: Set<Int32>) {
        self.byGroup = byGroup
        self.directory = directory
        self.migrated = Mutex(migrated)
    }

    /// The old log's commits, nil when there is no old log. Blocking: call it off the event loops.
    static func open(dataDirectory: String) throws -> LegacyOffsets? {
        let directory = "\(dataDirectory)/\(CommittedOffsetLog.directoryName)"
        guard FileManager.default.fileExists(atPath: directory) else { return nil }
        let log = try CommittedOffsetLog.open(dataDirectory: dataDirectory)
        defer { try? log.close() }
        var byGroup: [String: [OffsetKey: CommittedOffset]] = [:]
        for group in log.groupIds() {
            for (key, committed) in log.committed(group: group) {
                byGroup[group, default: [:]][OffsetKey(group: key.group, topic: key.topic, partition: key.partition)] =
                    CommittedOffset(offset: committed.offset, leaderEpoch: committed.leaderEpoch, metadata: committed.metadata, commitTimestampMs: WallClock.nowMilliseconds)
            }
        }
        let done = (try? Data(contentsOf: URL(fileURLWithPath: "\(directory)/\(migratedPartitionsFile)")))
            .flatMap { try? JSONDecoder().decode([Int32].self, from: $0) } ?? []
        return LegacyOffsets(byGroup: byGroup, directory: directory, migrated: Set(done))
    }

    var commitCount: Int { byGroup.values.reduce(0) { $0 + $1.count } }

    /// The commits of the groups placed on `partition` of `count` (none once it took them).
    func commits(partition: Int32, of count: Int32) -> [(OffsetKey, CommittedOffset)] {
        guard !migrated.withLock({ $0.contains(partition) }) else { return [] }
        return byGroup.filter { GroupPlacement.partition(of: $0.key, partitions: count) == partition }.flatMap { $0.value.map { ($0.key, $0.value) } }
    }

    /// `partition` took its commits (recorded durably); once all `count` have, the old log is renamed.
    func migrated(partition: Int32, of count: Int32, io: NIOThreadPool, logger: Logger) async {
        let (inserted, done) = migrated.withLock { set -> (Set<Int32>?, Bool) in
            let inserted = set.insert(partition).inserted
            return (inserted ? set : nil, set.count >= count)
        }
        let directory = directory
        let target = "\((directory as NSString).deletingLastPathComponent)/\(Self.migratedName)"
        do {
            if let inserted, !done {
                let bytes = try JSONEncoder().encode(inserted.sorted())
                try await io.runIfActive {
                    guard FileManager.default.fileExists(atPath: directory) else { return }
                    // Whole and synced before it counts (a torn file would re-offer deleted commits).
                    try PosixFileSystem().writeFileAtomically("\(directory)/\(Self.migratedPartitionsFile)", Array(bytes))
                }
            }
            guard done, inserted != nil else { return }
            try await io.runIfActive {
                guard FileManager.default.fileExists(atPath: directory) else { return }
                try? FileManager.default.removeItem(atPath: target)
                try FileManager.default.moveItem(atPath: directory, toPath: target)
            }
            logger.info("moved the local offsets log's commits into __consumer_offsets", metadata: ["commits": "\(commitCount)", "kept_at": "\(target)"])
        } catch {
            logger.warning("renaming the migrated local offsets log failed", metadata: ["error": "\(error)"])
        }
    }
}
