import Glibc
import Dispatch
import Synchronization
import SamsaRecords

/// A data directory of partition logs (`<topic>-<partition>/`), with Kafka's layout: the
/// `recovery-point-offset-checkpoint` and `log-start-offset-checkpoint` files and a `.clean-shutdown`
/// marker present only after an orderly close.
///
/// Opening removes the marker first, so a crash at any later moment is seen as unclean by the next
/// open. Partitions are opened (and recovered) in parallel.
///
/// The directory must be a Samsa data directory (`meta.properties`, see `DataDirectory`); a new or
/// empty one becomes one. Nothing in it that Samsa did not create is removed: a partition is deleted
/// by renaming it to `<topic>-<partition>.<id>-delete` first (as Kafka does), and only such
/// directories are removed at open; a `<name>-<n>` directory without segment files is left alone
/// and reported (`OpenReport.ignoredDirectories`).
public final class LogManager: Sendable {
    public static let cleanShutdownMarker = ".clean-shutdown"
    public static let recoveryPointFile = "recovery-point-offset-checkpoint"
    public static let logStartFile = "log-start-offset-checkpoint"

    public let directory: String
    public let defaultConfiguration: LogConfiguration
    let files: any FileSystem
    /// Open segment files of every partition: one bounded set for the whole directory.
    public let descriptors: DescriptorCache
    private let logs: Mutex<[TopicPartition: PartitionLog]>
    private let closed = Atomic<Bool>(false)
    private let checkpointTimer = Mutex<(any DispatchSourceTimer)?>(nil)
    /// Serialises checkpoint writes (the timer and `close` share the temp files).
    private let checkpointLock = Mutex(())
    /// Opened with `openReadOnly`: nothing is written; `refresh` follows a writer in another process.
    public let isReadOnly: Bool
    /// Compacts the logs whose cleanup policy includes `compact` (started by `open` unless its
    /// configuration says otherwise, stopped by `close`); its `statistics` are the cleaner metrics.
    public let cleaner: LogCleaner

    /// What opening found, per partition, and whether the last shutdown was clean.
    public struct OpenReport: Sendable {
        public var cleanShutdown: Bool
        public var partitions: [TopicPartition: RecoveryReport]
        /// Directories named like partitions but holding no segment files: not opened, not changed.
        public var ignoredDirectories: [String] = []
        /// Partitions whose recovery found damage it refused to repair (see `LogDamage`).
        public var damaged: [TopicPartition: LogDamage] { partitions.compactMapValues(\.damage) }
    }

    private init(
        directory: String, configuration: LogConfiguration, files: any FileSystem, descriptors: DescriptorCache,
        logs: [TopicPartition: PartitionLog], readOnly: Bool = false,
        cleaner: LogCleanerConfiguration = LogCleanerConfiguration(enabled: false), clock: (@Sendable () -> Int64)? = nil
    ) {
        self.isReadOnly = readOnly
        self.cleaner = LogCleaner(directory: directory, files: files, configuration: cleaner, clock: clock ?? { WallClock.nowMilliseconds })
        self.directory = directory
        self.defaultConfiguration = configuration
        self.files = files
        self.descriptors = descriptors
        self.logs = Mutex(logs)
        let box = WeakManager(nil)
        box.manager = self
        self.cleaner.attach { box.manager?.logs.withLock { $0 } ?? [:] }
    }

    deinit {
        checkpointTimer.withLock { $0?.cancel() }
    }

    /// Opens the data directory, creating it if needed, and every partition log in it.
    /// - Parameters:
    ///   - configurations: per-partition settings; `configuration` for the rest.
    ///   - checkpointInterval: how often the recovery points are written (Kafka's
    ///     `log.flush.offset.checkpoint.interval.ms`); after a crash, recovery scans what was appended
    ///     since the last one. Nil writes them only at open and close.
    ///   - maxOpenFiles, maxMappedIndexes: bounds on open segment files and on mapped sealed indexes
    ///     (active segments' are always open and mapped), so many thousands of segments fit the
    ///     process's descriptor limit and `vm.max_map_count`.
    ///   - cleaner: the log cleaner's settings; it starts now unless `enabled` is false.
    ///   - clock: wall-clock milliseconds for the cleaner (tombstone horizons, compaction lags).
    public static func open(
        directory: String, configuration: LogConfiguration = LogConfiguration(),
        configurations: [TopicPartition: LogConfiguration] = [:], checkpointInterval: Duration? = .seconds(5),
        maxOpenFiles: Int = 256, maxMappedIndexes: Int = 2048, files: any FileSystem = PosixFileSystem(),
        cleaner: LogCleanerConfiguration = LogCleanerConfiguration(), clock: (@Sendable () -> Int64)? = nil
    ) throws(StorageError) -> (manager: LogManager, report: OpenReport) {
        let descriptors = DescriptorCache(capacity: maxOpenFiles, maxMappings: maxMappedIndexes, files: files)
        try DataDirectory.prepare(directory, files: files)
        try finishPendingDeletes(in: directory, files: files)
        try PendingRemovals.finish(in: directory, files: files) { path throws(StorageError) in try removePartitionFiles(path, files: files) }
        let marker = "\(directory)/\(cleanShutdownMarker)"
        let clean = files.fileExists(marker)
        let recoveryPoints = try OffsetCheckpoint.read("\(directory)/\(recoveryPointFile)", files: files)
        let logStarts = try OffsetCheckpoint.read("\(directory)/\(logStartFile)", files: files)
        if clean {
            try files.unlink(marker)
            try files.syncDirectory(directory)
        }
        let (partitions, ignored) = try partitionDirectories(in: directory, files: files)

        // Recover partitions in parallel: each is independent, and recovery is disk- and CRC-bound.
        let results = Mutex<[TopicPartition: Result<(PartitionLog, RecoveryReport), StorageError>]>([:])
        DispatchQueue.concurrentPerform(iterations: partitions.count) { index in
            let partition = partitions[index]
            let outcome = Result { () throws(StorageError) in
                try PartitionLog.open(
                    directory: "\(directory)/\(partition.directoryName)", configuration: configurations[partition] ?? configuration,
                    cleanShutdown: clean, recoveryPoint: recoveryPoints[partition] ?? 0, logStartOffset: logStarts[partition], files: files,
                    descriptors: descriptors)
            }
            results.withLock { $0[partition] = outcome.map { ($0.log, $0.report) } }
        }
        var logs: [TopicPartition: PartitionLog] = [:]
        var reports: [TopicPartition: RecoveryReport] = [:]
        for (partition, outcome) in results.withLock({ $0 }) {
            let (log, report) = try outcome.get()
            logs[partition] = log
            reports[partition] = report
        }
        let manager = LogManager(
            directory: directory, configuration: configuration, files: files, descriptors: descriptors, logs: logs, cleaner: cleaner, clock: clock)
        for log in logs.values { manager.watchTruncations(of: log) }
        // Record where recovery left each partition, so the next recovery starts from here. On a full
        // disk this may fail: the checkpoints on disk are still true (recovery only cuts past them), so
        // the open goes on and the next checkpoint tries again.
        do throws(StorageError) {
            try manager.checkpoint()
        } catch where error.errno == ENOSPC || error.errno == EDQUOT {}
        if let checkpointInterval { manager.startCheckpoints(every: checkpointInterval) }
        manager.cleaner.start()
        return (manager, OpenReport(cleanShutdown: clean, partitions: reports, ignoredDirectories: ignored))
    }

    /// Opens the data directory for reading only: nothing is written, recovered or locked, so it works
    /// on a read-only copy, on a full disk and beside a live writer in another process (see
    /// `PartitionLog.openReadOnly`). Every change is refused with `.readOnly`; `refresh` follows a writer.
    public static func openReadOnly(
        directory: String, configuration: LogConfiguration = LogConfiguration(), configurations: [TopicPartition: LogConfiguration] = [:],
        maxOpenFiles: Int = 256, maxMappedIndexes: Int = 2048, files: any FileSystem = PosixFileSystem()
    ) throws(StorageError) -> LogManager {
        let files: any FileSystem = files.isReadOnly ? files : ReadOnlyFileSystem(base: files)
        try DataDirectory.check(directory, files: files)
        let descriptors = DescriptorCache(capacity: maxOpenFiles, maxMappings: maxMappedIndexes, files: files)
        // Only for where each log starts; a damaged checkpoint costs nothing but that.
        let logStarts = (try? OffsetCheckpoint.read("\(directory)/\(logStartFile)", files: files)) ?? [:]
        // Only to tell damage (durable records missing) from a torn tail; none read, none assumed.
        let recoveryPoints = (try? OffsetCheckpoint.read("\(directory)/\(recoveryPointFile)", files: files)) ?? [:]
        var logs: [TopicPartition: PartitionLog] = [:]
        for partition in try partitionDirectories(in: directory, files: files).partitions {
            logs[partition] = try PartitionLog.openReadOnly(
                directory: "\(directory)/\(partition.directoryName)", configuration: configurations[partition] ?? configuration,
                logStartOffset: logStarts[partition], recoveryPoint: recoveryPoints[partition] ?? 0, files: files, descriptors: descriptors)
        }
        return LogManager(directory: directory, configuration: configuration, files: files, descriptors: descriptors, logs: logs, readOnly: true)
    }

    /// Read-only managers: picks up what a writer in another process appended, and partitions it
    /// created. Returns true when anything moved.
    @discardableResult
    public func refresh() throws(StorageError) -> Bool {
        guard isReadOnly else { return false }
        var moved = false
        for log in logs.withLock({ Array($0.values) }) where try log.refresh() { moved = true }
        let known = Set(logs.withLock { $0.keys })
        for partition in try Self.partitionDirectories(in: directory, files: files, skipping: known).partitions {
            let path = "\(directory)/\(partition.directoryName)"
            // A partition the writer is creating this moment may have no segment yet: next time.
            guard let log = try? PartitionLog.openReadOnly(directory: path, configuration: defaultConfiguration, files: files, descriptors: descriptors)
            else { continue }
            logs.withLock { $0[partition] = log }
            moved = true
        }
        return moved
    }

    /// Partition directories (`<topic>-<n>` holding segment files, or empty) and the names that look
    /// like partitions but hold other files (left alone).
    /// `known` partitions are not looked into again (a reader's refresh looks only for new ones).
    static func partitionDirectories(
        in directory: String, files: any FileSystem, skipping known: Set<TopicPartition> = []
    ) throws(StorageError) -> (partitions: [TopicPartition], ignored: [String]) {
        var partitions: [TopicPartition] = []
        var ignored: [String] = []
        for name in try files.listDirectory(directory) {
            guard let partition = TopicPartition(directoryName: name), TopicPartition.isValidTopic(partition.topic), partition.partition >= 0,
                !known.contains(partition)
            else { continue }
            // A partition number no topic can have (a registry holds at most a million): not ours to open.
            guard partition.partition < TopicsFile.maxPartitions else {
                ignored.append(name)
                continue
            }
            let path = "\(directory)/\(name)"
            guard let contents = try? files.listDirectory(path) else { continue }  // a file, not a directory
            if contents.isEmpty || contents.contains(where: { SegmentFiles.baseOffset(ofLogFile: $0) != nil }) {
                partitions.append(partition)
            } else {
                ignored.append(name)
            }
        }
        return (partitions.sorted(), ignored.sorted())
    }

    /// Suffix of a partition directory being deleted (after a random id, as Kafka names them).
    static let deleteSuffix = "-delete"

    /// `<topic>-<n>.<id>-delete`, with the topic shortened as much as the file system's 255-byte name
    /// limit needs (a legal topic name has up to 249 characters); the name still parses as a partition
    /// directory before the dot, which is all `finishPendingDeletes` asks of it.
    static func deletedName(of partition: TopicPartition) -> String {
        let id = String(UInt64.random(in: 0...UInt64.max), radix: 16)
        let tail = "-\(partition.partition).\(id)\(deleteSuffix)"
        return String(partition.topic.prefix(255 - tail.utf8.count)) + tail
    }

    /// Removes partition directories whose deletion was under way (renamed to `...-delete`).
    private static func finishPendingDeletes(in directory: String, files: any FileSystem) throws(StorageError) {
        for name in try files.listDirectory(directory) where name.hasSuffix(deleteSuffix) && name.contains(".") {
            guard let dot = name.lastIndex(of: "."), TopicPartition(directoryName: String(name[..<dot])) != nil else { continue }
            try removePartitionFiles("\(directory)/\(name)", files: files)
        }
    }

    /// Removes a partition directory's segment, index and temp files, then the directory: only the
    /// kinds of files Samsa writes there. Anything else stays, and so does the directory then.
    private static func removePartitionFiles(_ path: String, files: any FileSystem) throws(StorageError) {
        var foreign = false
        for name in try files.listDirectory(path) {
            if SegmentFiles.isSamsaFile(name) { try files.unlink("\(path)/\(name)") } else { foreign = true }
        }
        if !foreign { try files.removeDirectory(path) }
    }

    /// The log of a partition, if it exists.
    public func log(_ partition: TopicPartition) -> PartitionLog? {
        logs.withLock { $0[partition] }
    }

    /// Every partition, sorted.
    public var partitions: [TopicPartition] { logs.withLock { $0.keys.sorted() } }

    /// Returns the partition's log, creating it (with `configuration`, or the default) if absent.
    @discardableResult
    public func createLog(_ partition: TopicPartition, configuration: LogConfiguration? = nil) throws(StorageError) -> PartitionLog {
        guard !isReadOnly else { throw StorageError(.readOnly, path: directory, "the data directory was opened read-only") }
        guard TopicPartition.isValidTopic(partition.topic), partition.partition >= 0 else {
            throw StorageError(.invalidArgument, path: directory, "invalid topic or partition '\(partition)'")
        }
        return try logs.withLock { logs throws(StorageError) -> PartitionLog in
            if let existing = logs[partition] { return existing }
            let path = "\(directory)/\(partition.directoryName)"
            let isNew = !files.fileExists(path)
            let log: PartitionLog
            do throws(StorageError) {
                log = try PartitionLog.open(directory: path, configuration: configuration ?? defaultConfiguration, files: files, descriptors: descriptors).log
            } catch {
                // A partition this call began to create leaves nothing behind (a full disk, say).
                if isNew { try? Self.removePartitionFiles(path, files: files) }
                throw error
            }
            try files.syncDirectory(directory)
            logs[partition] = log
            watchTruncations(of: log)
            return log
        }
    }

    /// Creates the logs of several partitions (a topic's), all or none: a failure part-way (a full disk)
    /// removes those already made, and a crash part-way leaves a journal (`PendingRemovals`) by which
    /// the next open removes them. Partitions that exist already are an error, and nothing is made.
    @discardableResult
    public func createLogs(_ partitions: [TopicPartition], configuration: LogConfiguration? = nil) throws(StorageError) -> [PartitionLog] {
        guard !isReadOnly else { throw StorageError(.readOnly, path: directory, "the data directory was opened read-only") }
        if let existing = partitions.first(where: { log($0) != nil || files.fileExists("\(directory)/\($0.directoryName)") }) {
            throw StorageError(.invalidArgument, path: directory, "partition \(existing) exists already")
        }
        let journal = try PendingRemovals.begin(partitions, in: directory, files: files)
        var created: [PartitionLog] = []
        do throws(StorageError) {
            for partition in partitions { created.append(try createLog(partition, configuration: configuration)) }
        } catch {
            // Undone now if possible; if not, the journal stays and the next open finishes the job.
            var undone = true
            for partition in partitions.prefix(created.count) where (try? deleteLog(partition)) == nil { undone = false }
            if undone { try? PendingRemovals.end(journal, files: files) }
            throw error
        }
        try PendingRemovals.end(journal, files: files)
        return created
    }

    /// Deletes the logs of several partitions (a topic's), all of them even across a crash: a journal
    /// (`PendingRemovals`) written first makes the next open finish a deletion a crash interrupted.
    public func deleteLogs(_ partitions: [TopicPartition]) throws(StorageError) {
        guard !isReadOnly else { throw StorageError(.readOnly, path: directory, "the data directory was opened read-only") }
        let journal = try PendingRemovals.begin(partitions, in: directory, files: files)
        for partition in partitions { try deleteLog(partition) }
        try PendingRemovals.end(journal, files: files)
    }

    /// Closes and deletes a partition's log and its files.
    ///
    /// The directory is first renamed to `<topic>-<n>.<id>-delete` (durably), so a crash part-way
    /// leaves a name that the next open finishes deleting, never a half-deleted partition.
    public func deleteLog(_ partition: TopicPartition) throws(StorageError) {
        guard !isReadOnly else { throw StorageError(.readOnly, path: directory, "the data directory was opened read-only") }
        guard let log = logs.withLock({ $0.removeValue(forKey: partition) }) else { return }
        cleaner.forget(partition)
        try log.close()
        let path = "\(directory)/\(partition.directoryName)"
        let doomed = "\(directory)/\(Self.deletedName(of: partition))"
        try files.rename(path, to: doomed)
        try files.syncDirectory(directory)
        try Self.removePartitionFiles(doomed, files: files)
        try files.syncDirectory(directory)
    }

    /// A truncation lowers a log's recovery point: write it at once, so a crash before the next periodic
    /// checkpoint cannot leave recovery starting past appends made after the truncation.
    private func watchTruncations(of log: PartitionLog) {
        log.observeTruncation { [weak self, weak log] () throws(StorageError) in
            guard let self else { return }
            // The cleaner's clean point may not stay past the new end.
            if let log, let partition = self.logs.withLock({ logs in logs.first { $0.value === log }?.key }) {
                self.cleaner.truncated(partition, logEnd: log.logEndOffset)
            }
            try self.checkpoint()
        }
    }

    private func startCheckpoints(every interval: Duration) {
        let milliseconds = Int(interval.components.seconds * 1000 + interval.components.attoseconds / 1_000_000_000_000_000)
        guard milliseconds > 0 else { return }
        let box = WeakManager(self)
        checkpointTimer.withLock { slot in
            let timer = DispatchSource.makeTimerSource(queue: DispatchQueue.global(qos: .utility))
            timer.schedule(deadline: .now() + .milliseconds(milliseconds), repeating: .milliseconds(milliseconds))
            timer.setEventHandler {
                // A failed checkpoint only makes the next recovery scan more; the next tick retries.
                try? box.manager?.checkpoint()
            }
            timer.resume()
            slot = timer
        }
    }

    /// Writes the recovery points (flushed offsets) and log start offsets of every partition.
    public func checkpoint() throws(StorageError) {
        try writeCheckpoints(recoveryPoints: true)
    }

    /// Writes the log start offsets of every partition (`log-start-offset-checkpoint`) and returns once
    /// they are durable: what makes a moved log start (`PartitionLog.advanceLogStart`, DeleteRecords)
    /// survive a crash. Blocks on fsyncs: call it off the event loops. One write covers every move
    /// made before it, so a caller moving many logs writes once.
    public func checkpointLogStarts() throws(StorageError) {
        try writeCheckpoints(recoveryPoints: false)
    }

    /// The offsets are read under the lock, so of two writers the later one writes the later values.
    private func writeCheckpoints(recoveryPoints: Bool) throws(StorageError) {
        guard !isReadOnly else { return }
        let current = logs.withLock { $0 }
        try checkpointLock.withLock { _ in
            Result { () throws(StorageError) in
                if recoveryPoints {
                    try OffsetCheckpoint.write(current.mapValues(\.recoveryCheckpoint), to: "\(directory)/\(Self.recoveryPointFile)", files: files)
                }
                let starts = current.mapValues(\.logStartOffset)
                try OffsetCheckpoint.write(starts, to: "\(directory)/\(Self.logStartFile)", files: files)
                for (partition, start) in starts { current[partition]?.logStartCheckpointed(start) }
            }
        }.get()
    }

    /// Closes every log (flushing it), writes the checkpoints, then the clean-shutdown marker.
    public func close() throws(StorageError) {
        guard !closed.exchange(true, ordering: .acquiringAndReleasing), !isReadOnly else { return }
        checkpointTimer.withLock { $0?.cancel() }
        cleaner.stop()
        for log in logs.withLock({ Array($0.values) }) { try log.close() }
        try checkpoint()
        try files.writeFileAtomically("\(directory)/\(Self.cleanShutdownMarker)", [])
    }
}

/// Lets the checkpoint timer reach its manager without keeping it alive.
private final class WeakManager: @unchecked Sendable {
    // @unchecked: set once before the timer (or the cleaner) starts.
    weak var manager: LogManager?
    init(_ manager: LogManager?) { self.manager = manager }
}
