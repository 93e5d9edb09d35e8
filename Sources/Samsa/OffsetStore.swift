import Logging
import SamsaStorage
import Synchronization

/// Consumer groups' committed offsets: one file per group, `groups/<group>.offsets`, in Kafka's
/// offset-checkpoint format, rewritten atomically (temp file, fsync, rename, fsync of the directory)
/// on every commit, so a commit that returned survives a crash or power cut.
///
/// Processes: a group's file is written only under its lock, `groups/<group>.lock` (a `FileLock`),
/// so two processes never write it at once. A process holds the lock while it has the group open
/// (`open`, a member per call, until the last `close`), and otherwise takes it for one commit only;
/// a group another process holds is refused with `.locked`. While held, the group's offsets are
/// read once and kept in memory (nobody else writes the file); otherwise every read reads the file,
/// which another process may have changed.
///
/// Threads: each group's state sits behind its own lock, held across that group's file work (lock
/// file, read, fsync and rename) by that group's users only, so a later commit's file is never
/// replaced by an earlier one.
final class OffsetStore: Sendable {
    private let directory: String
    private let files: any FileSystem
    private let logger: Logger
    private let groups = Mutex<[String: Group]>([:])

    /// One group in this process.
    private final class Group: Sendable {
        struct State {
            /// Held while `users` > 0.
            var lock: FileLock?
            var users = 0
            /// What the file holds, known while the lock is held.
            var offsets: [TopicPartition: Int64]?
        }

        let state = Mutex(State())
    }

    /// `files` read-only: offsets are read, never written (a read-only open).
    init(directory: String, files: any FileSystem, logger: Logger) throws(SamsaError) {
        self.directory = directory
        self.files = files
        self.logger = logger
        // Made by the directory's writer; a consuming open on a read-only disk finds it there.
        if !files.isReadOnly && !files.fileExists(directory) { try storage { () throws(StorageError) in try files.makeDirectory(directory) } }
    }

    /// Group ids name files, so they follow Kafka's topic rule: no '/', no "..", at most 249 bytes.
    static func isValidGroup(_ group: String) -> Bool { TopicPartition.isValidTopic(group) }

    static func checkGroup(_ group: String) throws(SamsaError) {
        guard isValidGroup(group) else {
            throw SamsaError(.invalidArgument, "invalid group id '\(group.prefix(64))\(group.count > 64 ? "..." : "")': use 1-249 of a-z A-Z 0-9 . _ -")
        }
    }

    private func path(_ group: String) -> String { "\(directory)/\(group).offsets" }

    private func group(_ name: String) -> Group {
        groups.withLock { groups in
            if let group = groups[name] { return group }
            let group = Group()
            groups[name] = group
            return group
        }
    }

    /// Takes the group's lock file; `.locked` when another process holds it.
    private func takeLock(_ group: String) throws(SamsaError) -> FileLock {
        do {
            return try FileLock(
                path: "\(directory)/\(group).lock",
                held: "group '\(group)' is consumed in another process: one process at a time owns a group's offsets (stop it, or use another group)")
        } catch {
            if error.code == .locked { throw SamsaError(error) }
            throw SamsaError(.storage, "cannot own group '\(group)': \(error)", underlying: error)
        }
    }

    private func read(_ group: String) throws(SamsaError) -> [TopicPartition: Int64] {
        try storage { () throws(StorageError) in try OffsetCheckpoint.read(path(group), files: files) }
    }

    /// Opens the group for one more user in this process, taking its lock for the first.
    func open(_ group: String) throws(SamsaError) {
        try self.group(group).state.withLock { state throws(SamsaError) in
            if state.users == 0 {
                let lock = try takeLock(group)
                do throws(SamsaError) {
                    state.offsets = try read(group)
                } catch {
                    lock.release()
                    throw error
                }
                state.lock = lock
            }
            state.users += 1
        }
    }

    /// Closes the group for one user; the last releases its lock.
    func close(_ group: String) {
        self.group(group).state.withLock { state in
            guard state.users > 0 else { return }
            state.users -= 1
            if state.users == 0 { Self.release(&state) }
        }
    }

    /// Releases every group's lock (the directory closes).
    func closeAll() {
        for group in groups.withLock({ Array($0.values) }) {
            group.state.withLock { state in
                state.users = 0
                Self.release(&state)
            }
        }
    }

    private static func release(_ state: inout Group.State) {
        state.lock?.release()
        state.lock = nil
        state.offsets = nil
    }

    /// The group's committed offsets. A file that cannot be read as written is an error (`corrupt`),
    /// never taken as "nothing committed".
    func offsets(of group: String) throws(SamsaError) -> [TopicPartition: Int64] {
        try self.group(group).state.withLock { state throws(SamsaError) in
            if let offsets = state.offsets { return offsets }
            return try read(group)
        }
    }

    /// Merges `offsets` into the group's and writes them durably before returning, if `admit` (asked
    /// in the group's write order, so a commit admitted later is also written later) allows it. A
    /// group not open here is locked for this commit only. Returns whether it was admitted.
    @discardableResult
    func commit(_ offsets: [TopicPartition: Int64], group: String, admit: () -> Bool = { true }) throws(SamsaError) -> Bool {
        guard !offsets.isEmpty else { return true }
        return try update(group) { current throws(SamsaError) in
            guard admit() else { return nil }
            return current.merging(offsets) { _, new in new }
        } != nil
    }

    /// Drops every group's offsets for a deleted topic. A group another process holds is left as it
    /// is (its owner may write them back), with a warning: a topic of that name created later finds
    /// them, and a consumer resets those outside the log.
    func forget(topic: String) throws(SamsaError) {
        guard files.fileExists(directory) else { return }
        let groups = try storage { () throws(StorageError) in try files.listDirectory(directory) }
            .filter { $0.hasSuffix(".offsets") }.map { String($0.dropLast(".offsets".count)) }.filter(Self.isValidGroup)
        for group in groups {
            do throws(SamsaError) {
                try update(group) { current in
                    let kept = current.filter { $0.key.topic != topic }
                    return kept.count == current.count ? nil : kept
                }
            } catch where error.code == .locked {
                logger.warning(
                    "group '\(group)' is consumed in another process: its committed offsets of deleted topic '\(topic)' are kept",
                    metadata: ["group": "\(group)", "topic": "\(topic)"])
            }
        }
    }

    /// Writes what `change` makes of the group's offsets (nothing when it returns nil), under the
    /// group's lock file: the one held while the group is open here, or one taken for this write.
    @discardableResult
    private func update(
        _ group: String, _ change: ([TopicPartition: Int64]) throws(SamsaError) -> [TopicPartition: Int64]?
    ) throws(SamsaError) -> [TopicPartition: Int64]? {
        try self.group(group).state.withLock { state throws(SamsaError) -> [TopicPartition: Int64]? in
            var taken: FileLock?
            defer { taken?.release() }
            let current: [TopicPartition: Int64]
            if let known = state.offsets {
                current = known
            } else {
                taken = try takeLock(group)
                current = try read(group)
            }
            guard let changed = try change(current) else { return nil }
            try storage { () throws(StorageError) in try OffsetCheckpoint.write(changed, to: path(group), files: files) }
            if taken == nil { state.offsets = changed }
            return changed
        }
    }
}
