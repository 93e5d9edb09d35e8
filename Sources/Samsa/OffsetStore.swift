import SamsaStorage
import Synchronization

/// Consumer groups' committed offsets: one file per group, `groups/<group>.offsets`, in Kafka's
/// offset-checkpoint format, rewritten atomically (temp file, fsync, rename, fsync of the directory)
/// on every commit, so a commit that returned survives a crash or power cut.
///
/// Threads: the in-memory offsets sit behind a lock that is never held across I/O. A group's file
/// writes are ordered by that group's own write lock (held across its fsync and rename, by the
/// group's committers only), so a later commit's file is never replaced by an earlier one.
final class OffsetStore: Sendable {
    private let directory: String
    private let files: any FileSystem
    /// Committed offsets by group (what each group's file holds); a group's file is read on first use.
    private let committed = Mutex<[String: [TopicPartition: Int64]]>([:])
    private let writeLocks = Mutex<[String: GroupWriteLock]>([:])

    /// Orders one group's file writes.
    private final class GroupWriteLock: Sendable {
        let lock = Mutex(())
    }

    init(directory: String, files: any FileSystem) throws(SamsaError) {
        self.directory = directory
        self.files = files
        if !files.isReadOnly { try storage { () throws(StorageError) in try files.makeDirectory(directory) } }
    }

    static func isValidGroup(_ group: String) -> Bool { TopicPartition.isValidTopic(group) }

    private func path(_ group: String) -> String { "\(directory)/\(group).offsets" }

    private func writeLock(_ group: String) -> GroupWriteLock {
        writeLocks.withLock { locks in
            if let lock = locks[group] { return lock }
            let lock = GroupWriteLock()
            locks[group] = lock
            return lock
        }
    }

    /// The group's committed offsets. A file that cannot be read as written is an error (`corrupt`),
    /// never taken as "nothing committed".
    func offsets(of group: String) throws(SamsaError) -> [TopicPartition: Int64] {
        if let known = committed.withLock({ $0[group] }) { return known }
        let read = try storage { () throws(StorageError) in try OffsetCheckpoint.read(path(group), files: files) }
        return committed.withLock { all in
            if let known = all[group] { return known }
            all[group] = read
            return read
        }
    }

    /// Merges `offsets` into the group's and writes them durably before returning, if `admit` (asked
    /// in the group's write order, so a commit admitted later is also written later) allows it.
    /// Returns whether it was admitted.
    @discardableResult
    func commit(_ offsets: [TopicPartition: Int64], group: String, admit: () -> Bool = { true }) throws(SamsaError) -> Bool {
        guard !offsets.isEmpty else { return true }
        return try writeLock(group).lock.withLock { _ throws(SamsaError) -> Bool in
            guard admit() else { return false }
            var merged = try self.offsets(of: group)
            merged.merge(offsets) { _, new in new }
            try storage { () throws(StorageError) in try OffsetCheckpoint.write(merged, to: path(group), files: files) }
            committed.withLock { $0[group] = merged }
            return true
        }
    }

    /// Drops every group's offsets for a deleted topic.
    func forget(topic: String) throws(SamsaError) {
        guard files.fileExists(directory) else { return }
        let groups = try storage { () throws(StorageError) in try files.listDirectory(directory) }
            .filter { $0.hasSuffix(".offsets") }.map { String($0.dropLast(".offsets".count)) }
        for group in groups {
            try writeLock(group).lock.withLock { _ throws(SamsaError) in
                let offsets = try self.offsets(of: group)
                let kept = offsets.filter { $0.key.topic != topic }
                guard kept.count != offsets.count else { return }
                try storage { () throws(StorageError) in try OffsetCheckpoint.write(kept, to: path(group), files: files) }
                committed.withLock { $0[group] = kept }
            }
        }
    }
}
