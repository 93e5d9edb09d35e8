import Logging
import SamsaStorage
import Synchronization

/// Consumer groups' committed offsets. Their store is the directory's `__consumer_offsets` topic
/// (`ConsumerOffsetsLog`), the one a broker serving the directory uses too, written by the
/// directory's writer (`Samsa.open`) only.
///
/// A process that consumes as a group beside the writer (`Samsa.openForConsuming`) cannot append to
/// the writer's logs: its commits are staged in `groups/<group>.offsets` (Kafka's offset-checkpoint
/// format, the group's whole map, rewritten atomically on every commit). A staged file is newer than
/// the log for its group, and the directory's writer folds it into the log (then renames it
/// `<group>.offsets.folded`) before it next commits for the group or when it opens the group; a
/// broker folds them all when it starts. An embedded directory from before `__consumer_offsets`
/// kept every group this way, so it converts by the same path.
///
/// Processes: a group's offsets are written only under its lock, `groups/<group>.lock` (a
/// `FileLock`), so two processes never commit for one group at once. A process holds the lock while
/// it has the group open (`open`, a member per call, until the last `close`), and otherwise takes it
/// for one commit only; a group another process holds is refused with `.locked`. A consuming process
/// also holds `groups/served.lock` shared while it stages, which a broker takes exclusively: groups
/// are staged only while no broker serves the directory (a broker's clients commit through it).
///
/// Threads: each group's state sits behind its own lock, held across that group's file work by that
/// group's users only, so a later commit is never overtaken by an earlier one.
final class OffsetStore: Sendable {
    enum Role {
        /// The directory's writer: commits go to the log.
        case writer(ConsumerOffsetsLog)
        /// Beside a writer: reads the log; `commits` stages.
        case beside(ConsumerOffsetsLog, commits: Bool)
    }

    static let servedLockName = GroupsDirectory.servedLock
    static let stagedSuffix = GroupsDirectory.stagedSuffix
    static let foldedSuffix = GroupsDirectory.foldedSuffix

    private let directory: String
    private let files: any FileSystem
    private let logger: Logger
    private let role: Role
    private let groups = Mutex<[String: Group]>([:])
    /// Beside a writer: `groups/served.lock`, held shared while any group is open or committing here.
    private let served = Mutex(Served())

    private struct Served {
        var lock: FileLock?
        var users = 0
    }
    /// The writer's view of the log: every group's offsets (replayed at open, then kept).
    private let logged: Mutex<[String: [TopicPartition: Int64]]>

    /// One group in this process.
    private final class Group: Sendable {
        struct State {
            /// Held while `users` > 0.
            var lock: FileLock?
            /// A consuming process holds the served lock for it (`holdServed`).
            var holdsServed = false
            var users = 0
            /// Beside a writer: the group's offsets, known while the lock is held.
            var offsets: [TopicPartition: Int64]?
        }

        let state = Mutex(State())
    }

    /// `directory`: the `groups` directory of staged commits and locks.
    init(directory: String, files: any FileSystem, role: Role, logger: Logger) throws(SamsaError) {
        self.directory = directory
        self.files = files
        self.logger = logger
        self.role = role
        var logged: [String: [TopicPartition: Int64]] = [:]
        if case .writer(let log) = role { logged = try log.replay(logger: logger) }
        self.logged = Mutex(logged)
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

    private func stagedPath(_ group: String) -> String { "\(directory)/\(group)\(Self.stagedSuffix)" }

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
                path: "\(directory)/\(group)\(GroupsDirectory.lockSuffix)",
                held: "group '\(group)' is consumed in another process: one process at a time owns a group's offsets (stop it, or use another group)")
        } catch {
            if error.code == .locked { throw SamsaError(error) }
            throw SamsaError(.storage, "cannot own group '\(group)': \(error)", underlying: error)
        }
    }

    /// Beside a writer: holds the shared lock that keeps a broker from starting while commits are
    /// staged (one descriptor for the process, however many groups); `.locked` while a broker serves.
    private func holdServed() throws(SamsaError) {
        try served.withLock { (served: inout Served) throws(SamsaError) in
            if served.lock == nil {
                do throws(StorageError) {
                    served.lock = try FileLock(
                        path: "\(directory)/\(Self.servedLockName)",
                        held: "a broker serves this directory's groups: commit through it (a Kafka client), not beside it", shared: true)
                } catch {
                    if error.code == .locked { throw SamsaError(error) }
                    throw SamsaError(.storage, "cannot stage commits in \(directory): \(error)", underlying: error)
                }
            }
            served.users += 1
        }
    }

    private func releaseServed() {
        served.withLock { served in
            served.users -= 1
            if served.users == 0 {
                served.lock?.release()
                served.lock = nil
            }
        }
    }

    private func staged(_ group: String) throws(SamsaError) -> [TopicPartition: Int64]? {
        let path = stagedPath(group)
        guard files.fileExists(path) else { return nil }
        return try storage { () throws(StorageError) in try OffsetCheckpoint.read(path, files: files) }
    }

    /// The group's offsets as the log holds them (the writer's view; beside it, a replay).
    private func fromLog(_ group: String) throws(SamsaError) -> [TopicPartition: Int64] {
        switch role {
        case .writer: return logged.withLock { $0[group] } ?? [:]
        case .beside(let log, _): return try log.replay(logger: logger)[group] ?? [:]
        }
    }

    /// The group's offsets from the files: a staged map if there is one, else the log's. A group id
    /// that cannot name a file (a broker's clients may use any) has no staged file.
    private func read(_ group: String) throws(SamsaError) -> [TopicPartition: Int64] {
        if Self.isValidGroup(group), let staged = try staged(group) { return staged }
        return try fromLog(group)
    }

    /// The writer, holding the group's lock: moves a staged map into the log (then renames the file).
    private func fold(_ group: String, into log: ConsumerOffsetsLog) throws(SamsaError) {
        guard let staged = try staged(group) else { return }
        // Upserts only: a stager only ever adds to the map it read, so a partition it does not list was
        // not deleted by it (its view of the log may have been short), and stays.
        try append(group, staged.mapValues { $0 }, to: log)
        try storage { () throws(StorageError) in
            try files.rename(stagedPath(group), to: "\(directory)/\(group)\(Self.foldedSuffix)")
            try files.syncDirectory(directory)
        }
    }

    /// Writes the group's changes to the log, then to the writer's view (the caller holds the group's state lock).
    private func append(_ group: String, _ changes: [TopicPartition: Int64?], to log: ConsumerOffsetsLog) throws(SamsaError) {
        var offsets = logged.withLock { $0[group] } ?? [:]
        for (partition, offset) in changes { offsets[partition] = offset }
        try log.append(group: group, changes)
        logged.withLock { $0[group] = offsets.isEmpty ? nil : offsets }
    }

    /// Folds every staged group no other process holds (the writer's open of an older directory, or
    /// after consumers beside it). Groups held elsewhere are left for their next fold.
    func foldStaged() throws(SamsaError) {
        guard case .writer(let log) = role, files.fileExists(directory) else { return }
        let names = try storage { () throws(StorageError) in try files.listDirectory(directory) }
        for name in names.sorted() where name.hasSuffix(Self.stagedSuffix) {
            let group = String(name.dropLast(Self.stagedSuffix.count))
            guard Self.isValidGroup(group) else { continue }
            try self.group(group).state.withLock { state throws(SamsaError) in
                let lock: FileLock
                if let held = state.lock {
                    lock = held
                } else {
                    do throws(SamsaError) {
                        lock = try takeLock(group)
                    } catch where error.code == .locked {
                        return
                    }
                }
                defer { if state.lock == nil { lock.release() } }
                try fold(group, into: log)
            }
        }
    }

    /// Opens the group for one more user in this process, taking its lock for the first.
    func open(_ group: String) throws(SamsaError) {
        try self.group(group).state.withLock { state throws(SamsaError) in
            if state.users == 0 {
                let lock = try takeLock(group)
                do throws(SamsaError) {
                    switch role {
                    case .writer(let log):
                        try fold(group, into: log)
                    case .beside(_, let commits):
                        if commits {
                            try holdServed()
                            state.holdsServed = true
                        }
                        state.offsets = try read(group)
                    }
                } catch {
                    if state.holdsServed { releaseServed() }
                    state.holdsServed = false
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
            if state.users == 0 { release(&state) }
        }
    }

    /// Releases every group's lock (the directory closes).
    func closeAll() {
        for group in groups.withLock({ Array($0.values) }) {
            group.state.withLock { state in
                state.users = 0
                release(&state)
            }
        }
    }

    private func release(_ state: inout Group.State) {
        if state.holdsServed { releaseServed() }
        state.holdsServed = false
        state.lock?.release()
        state.lock = nil
        state.offsets = nil
    }

    /// The group's committed offsets. A file that cannot be read as written is an error (`corrupt`),
    /// never taken as "nothing committed".
    func offsets(of group: String) throws(SamsaError) -> [TopicPartition: Int64] {
        try self.group(group).state.withLock { state throws(SamsaError) in
            if let offsets = state.offsets { return offsets }
            // The writer holding the group folded it: the log is its truth.
            if case .writer = role, state.lock != nil { return try fromLog(group) }
            return try read(group)
        }
    }

    /// Every group with committed offsets: in the log, or staged.
    func allGroups() throws(SamsaError) -> [String] {
        var names: Set<String>
        switch role {
        case .writer: names = Set(logged.withLock { $0.keys })
        case .beside(let log, _): names = Set(try log.replay(logger: logger).keys)
        }
        if files.fileExists(directory) {
            for name in try storage({ () throws(StorageError) in try files.listDirectory(directory) }) where name.hasSuffix(Self.stagedSuffix) {
                let group = String(name.dropLast(Self.stagedSuffix.count))
                if Self.isValidGroup(group) { names.insert(group) }
            }
        }
        return names.sorted()
    }

    /// Merges `offsets` into the group's and writes them durably before returning, if `admit` (asked
    /// in the group's write order, so a commit admitted later is also written later) allows it. A
    /// group not open here is locked for this commit only. Returns whether it was admitted.
    @discardableResult
    func commit(_ offsets: [TopicPartition: Int64], group: String, admit: () -> Bool = { true }) throws(SamsaError) -> Bool {
        guard !offsets.isEmpty else { return true }
        return try self.group(group).state.withLock { state throws(SamsaError) -> Bool in
            var taken: FileLock?
            var heldServed = false
            defer {
                if heldServed { releaseServed() }
                taken?.release()
            }
            if state.lock == nil { taken = try takeLock(group) }
            switch role {
            case .writer(let log):
                if taken != nil { try fold(group, into: log) }
                guard admit() else { return false }
                try append(group, offsets.mapValues { $0 }, to: log)
            case .beside(_, let commits):
                guard commits else { throw SamsaError(.readOnly, "\(directory) was opened read-only: cannot commit offsets") }
                if !state.holdsServed {
                    try holdServed()
                    heldServed = true
                }
                let current: [TopicPartition: Int64]
                if let known = state.offsets { current = known } else { current = try read(group) }
                guard admit() else { return false }
                let changed = current.merging(offsets) { _, new in new }
                try storage { () throws(StorageError) in try OffsetCheckpoint.write(changed, to: stagedPath(group), files: files) }
                if taken == nil { state.offsets = changed }
            }
            return true
        }
    }

    /// Drops every group's offsets for a deleted topic (the writer's). A staged group another
    /// process holds is left as it is (its owner may write them back), with a warning: a topic of
    /// that name created later finds them, and a consumer resets those outside the log.
    func forget(topic: String) throws(SamsaError) {
        guard case .writer(let log) = role else { return }
        try foldStaged()
        let staged = files.fileExists(directory)
            ? try storage { () throws(StorageError) in try files.listDirectory(directory) }.filter { $0.hasSuffix(Self.stagedSuffix) } : []
        for name in staged {
            let group = String(name.dropLast(Self.stagedSuffix.count))
            logger.warning(
                "group '\(group)' is consumed in another process: its committed offsets of deleted topic '\(topic)' are kept",
                metadata: ["group": "\(group)", "topic": "\(topic)"])
        }
        for (group, offsets) in logged.withLock({ $0 }) {
            let gone = offsets.keys.filter { $0.topic == topic }
            guard !gone.isEmpty else { continue }
            try self.group(group).state.withLock { _ throws(SamsaError) in
                try append(group, Dictionary(uniqueKeysWithValues: gone.map { ($0, nil) }), to: log)
            }
        }
    }
}
