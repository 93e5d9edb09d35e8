import Dispatch
import Synchronization

/// A data directory of partition logs (`<topic>-<partition>/`), with Kafka's layout: the
/// `recovery-point-offset-checkpoint` and `log-start-offset-checkpoint` files and a `.clean-shutdown`
/// marker present only after an orderly close.
///
/// Opening removes the marker first, so a crash at any later moment is seen as unclean by the next
/// open. Partitions are opened (and recovered) in parallel.
public final class LogManager: Sendable {
    public static let cleanShutdownMarker = ".clean-shutdown"
    public static let recoveryPointFile = "recovery-point-offset-checkpoint"
    public static let logStartFile = "log-start-offset-checkpoint"

    public let directory: String
    public let defaultConfiguration: LogConfiguration
    private let files: any FileSystem
    /// Open segment files of every partition: one bounded set for the whole directory.
    public let descriptors: DescriptorCache
    private let logs: Mutex<[TopicPartition: PartitionLog]>
    private let closed = Atomic<Bool>(false)
    private let checkpointTimer = Mutex<(any DispatchSourceTimer)?>(nil)
    /// Serialises checkpoint writes (the timer and `close` share the temp files).
    private let checkpointLock = Mutex(())

    /// What opening found, per partition, and whether the last shutdown was clean.
    public struct OpenReport: Sendable {
        public var cleanShutdown: Bool
        public var partitions: [TopicPartition: RecoveryReport]
    }

    private init(
        directory: String, configuration: LogConfiguration, files: any FileSystem, descriptors: DescriptorCache,
        logs: [TopicPartition: PartitionLog]
    ) {
        self.directory = directory
        self.defaultConfiguration = configuration
        self.files = files
        self.descriptors = descriptors
        self.logs = Mutex(logs)
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
    public static func open(
        directory: String, configuration: LogConfiguration = LogConfiguration(),
        configurations: [TopicPartition: LogConfiguration] = [:], checkpointInterval: Duration? = .seconds(5),
        maxOpenFiles: Int = 256, maxMappedIndexes: Int = 2048, files: any FileSystem = PosixFileSystem()
    ) throws(StorageError) -> (manager: LogManager, report: OpenReport) {
        let descriptors = DescriptorCache(capacity: maxOpenFiles, maxMappings: maxMappedIndexes, files: files)
        try files.makeDirectory(directory)
        let marker = "\(directory)/\(cleanShutdownMarker)"
        let clean = files.fileExists(marker)
        let recoveryPoints = try OffsetCheckpoint.read("\(directory)/\(recoveryPointFile)", files: files)
        let logStarts = try OffsetCheckpoint.read("\(directory)/\(logStartFile)", files: files)
        if clean {
            try files.unlink(marker)
            try files.syncDirectory(directory)
        }
        let partitions = try files.listDirectory(directory).compactMap(TopicPartition.init(directoryName:)).sorted()

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
        let manager = LogManager(directory: directory, configuration: configuration, files: files, descriptors: descriptors, logs: logs)
        for log in logs.values { manager.watchTruncations(of: log) }
        // Record where recovery left each partition, so the next recovery starts from here.
        try manager.checkpoint()
        if let checkpointInterval { manager.startCheckpoints(every: checkpointInterval) }
        return (manager, OpenReport(cleanShutdown: clean, partitions: reports))
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
        guard TopicPartition.isValidTopic(partition.topic), partition.partition >= 0 else {
            throw StorageError(.invalidArgument, path: directory, "invalid topic or partition '\(partition)'")
        }
        return try logs.withLock { logs throws(StorageError) -> PartitionLog in
            if let existing = logs[partition] { return existing }
            let log = try PartitionLog.open(
                directory: "\(directory)/\(partition.directoryName)", configuration: configuration ?? defaultConfiguration, files: files,
                descriptors: descriptors
            ).log
            try files.syncDirectory(directory)
            logs[partition] = log
            watchTruncations(of: log)
            return log
        }
    }

    /// Closes and deletes a partition's log and its files.
    public func deleteLog(_ partition: TopicPartition) throws(StorageError) {
        guard let log = logs.withLock({ $0.removeValue(forKey: partition) }) else { return }
        try log.close()
        let path = "\(directory)/\(partition.directoryName)"
        for name in try files.listDirectory(path) { try files.unlink("\(path)/\(name)") }
        try files.removeDirectory(path)
        try files.syncDirectory(directory)
    }

    /// A truncation lowers a log's recovery point: write it at once, so a crash before the next periodic
    /// checkpoint cannot leave recovery starting past appends made after the truncation.
    private func watchTruncations(of log: PartitionLog) {
        log.observeTruncation { [weak self] () throws(StorageError) in try self?.checkpoint() }
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
        let current = logs.withLock { $0 }
        try checkpointLock.withLock { _ in
            Result { () throws(StorageError) in
                try OffsetCheckpoint.write(current.mapValues(\.recoveryCheckpoint), to: "\(directory)/\(Self.recoveryPointFile)", files: files)
                try OffsetCheckpoint.write(current.mapValues(\.logStartOffset), to: "\(directory)/\(Self.logStartFile)", files: files)
            }
        }.get()
    }

    /// Closes every log (flushing it), writes the checkpoints, then the clean-shutdown marker.
    public func close() throws(StorageError) {
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        checkpointTimer.withLock { $0?.cancel() }
        for log in logs.withLock({ Array($0.values) }) { try log.close() }
        try checkpoint()
        try files.writeFileAtomically("\(directory)/\(Self.cleanShutdownMarker)", [])
    }
}

/// Lets the checkpoint timer reach its manager without keeping it alive.
private final class WeakManager: @unchecked Sendable {
    // @unchecked: set once before the timer starts.
    weak var manager: LogManager?
    init(_ manager: LogManager) { self.manager = manager }
}
