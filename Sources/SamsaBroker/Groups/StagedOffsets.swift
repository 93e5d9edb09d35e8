import Foundation
import Logging
import NIOPosix
import SamsaRecords
import SamsaStorage
import Synchronization

/// Commits the embedded queue staged in the data directory (`<data>/groups/<group>.offsets`, Kafka's
/// offset-checkpoint format, each the group's whole map): made by processes that consumed as a group
/// beside the directory's writer, or by an embedded queue from before `__consumer_offsets`. They are
/// newer than what `__consumer_offsets` holds for their groups, so each partition loaded here writes
/// its groups' staged maps over the log's (`GroupShard.load`), and the files are then renamed
/// `<group>.offsets.folded` before the partition serves, so a later load never writes them again.
///
/// The broker holds `<data>/groups/served.lock` exclusively for its life: an embedded process stages
/// commits only while it holds that lock shared, so none is staged while a broker serves the groups
/// (its clients commit through it), and a broker does not start while one is being staged.
final class StagedOffsets: Sendable {
    static let directoryName = GroupsDirectory.name
    static let servedLockName = GroupsDirectory.servedLock
    static let stagedSuffix = GroupsDirectory.stagedSuffix
    static let foldedSuffix = GroupsDirectory.foldedSuffix

    private let directory: String
    private let lock: FileLock
    /// Staged maps not yet folded, by group.
    private let byGroup: Mutex<[String: [OffsetKey: CommittedOffset]]>

    private init(directory: String, lock: FileLock, byGroup: [String: [OffsetKey: CommittedOffset]]) {
        self.directory = directory
        self.lock = lock
        self.byGroup = Mutex(byGroup)
    }

    /// Takes the served lock and reads the staged maps. Blocking: call it off the event loops. A
    /// staged file that does not read is refused (it holds commits a group would lose).
    static func open(dataDirectory: String, files: any FileSystem = PosixFileSystem()) throws -> StagedOffsets {
        let directory = "\(dataDirectory)/\(directoryName)"
        if !files.fileExists(directory) {
            try files.makeDirectory(directory)
            try files.syncDirectory(dataDirectory)
        }
        let lock = try FileLock(
            path: "\(directory)/\(servedLockName)",
            held: "a process consumes this directory's groups beside it (samsa consume --group, Samsa.openForConsuming): stop it first")
        do {
            var byGroup: [String: [OffsetKey: CommittedOffset]] = [:]
            let now = WallClock.nowMilliseconds
            for name in try files.listDirectory(directory) where name.hasSuffix(stagedSuffix) {
                let group = String(name.dropLast(stagedSuffix.count))
                guard TopicPartition.isValidTopic(group) else { continue }
                let offsets = try OffsetCheckpoint.read("\(directory)/\(name)", files: files)
                byGroup[group] = Dictionary(uniqueKeysWithValues: offsets.map { partition, offset in
                    (
                        OffsetKey(group: group, topic: partition.topic, partition: partition.partition),
                        CommittedOffset(offset: offset, leaderEpoch: -1, metadata: "", commitTimestampMs: now)
                    )
                })
            }
            return StagedOffsets(directory: directory, lock: lock, byGroup: byGroup)
        } catch {
            lock.release()
            throw error
        }
    }

    /// The staged maps of the groups placed on `partition` of `count`.
    func maps(partition: Int32, of count: Int32) -> [String: [OffsetKey: CommittedOffset]] {
        byGroup.withLock { $0.filter { GroupPlacement.partition(of: $0.key, partitions: count) == partition } }
    }

    /// The groups' maps are in the log: their files are renamed (durably) and forgotten here.
    func folded(_ groups: [String], io: NIOThreadPool) async throws {
        guard !groups.isEmpty else { return }
        let directory = directory
        try await io.runIfActive {
            let files = PosixFileSystem()
            for group in groups {
                try files.rename("\(directory)/\(group)\(Self.stagedSuffix)", to: "\(directory)/\(group)\(Self.foldedSuffix)")
            }
            try files.syncDirectory(directory)
        }
        byGroup.withLock { for group in groups { $0[group] = nil } }
    }

    /// Releases the served lock (the broker stops).
    func close() { lock.release() }
}
