import Dispatch
import Glibc
public import Logging
import SamsaRecords
public import SamsaStorage
import Synchronization

/// An open data directory: topics of partitioned logs, producers, consumers and consumer groups, in
/// one process. The type an app embeds instead of SQLite.
///
/// ```swift
/// let samsa = try Samsa.open(directory: path)
/// try samsa.createTopic("events", TopicConfiguration(partitions: 4))
/// let producer = samsa.makeProducer()
/// let metadata = try await producer.send(ProducerRecord(topic: "events", key: "user-1", value: "signed up"))
/// for try await record in samsa.records(topic: "events", partition: metadata.partition, from: 0) { ... }
/// ```
///
/// Threads: every method may be called from any task or thread. One process at a time may open a
/// directory for writing (an exclusive `flock` on `<dir>/.lock`); any number may open it read-only
/// (`openReadOnly`) or to consume as groups (`openForConsuming`) beside it, in other processes,
/// without that lock. A consumer group belongs to one process at a time (`groups/<group>.lock`).
/// Durability: a producer's send is acknowledged when the topic's flush policy is satisfied; consumers
/// never see a record before its producer could have been told it is committed.
public final class Samsa: Sendable {
    /// Settings of an open data directory.
    public struct Options: Sendable {
        /// How often retention deletes old segments (Kafka's `log.retention.check.interval.ms`).
        public var retentionCheckInterval: Duration
        /// Bound on open segment files across all partitions.
        public var maxOpenFiles: Int
        /// Where Samsa logs what it noticed and worked around, at `.warning` with metadata (a
        /// partition directory no topic owns: `directory`; a committed offset outside the log that was
        /// reset: `group`, `topic`, `partition`, `offset`, `reset`). The default, `Logger(label:
        /// "samsa")`, goes wherever the app's `LoggingSystem` sends logs (standard error with
        /// swift-log's own handler).
        public var logger: Logger
        /// Modes of the files and directories Samsa creates: private to the owner (0600/0700) by
        /// default, as databases keep their data; `.group` or `.everyone` to share them. The lock file
        /// stays 0600 whatever this says: anyone who can open it can lock the owner out.
        public var permissions: FilePermissions
        /// How often a read-only open looks for what the writer appended (`openReadOnly`).
        public var refreshInterval: Duration
        /// Partitions of `__consumer_offsets`, where the groups' committed offsets are kept, when a
        /// directory's writer makes it (1...1000; Kafka's `offsets.topic.num.partitions`, whose broker
        /// default is 50). A broker serving the directory later keeps the count it finds.
        public var offsetsTopicPartitions: Int

        public init(
            retentionCheckInterval: Duration = .seconds(60), maxOpenFiles: Int = 256, permissions: FilePermissions = .owner,
            refreshInterval: Duration = .milliseconds(100), offsetsTopicPartitions: Int = 1, logger: Logger = Logger(label: "samsa")
        ) {
            self.offsetsTopicPartitions = offsetsTopicPartitions
            self.refreshInterval = refreshInterval
            self.retentionCheckInterval = retentionCheckInterval
            self.maxOpenFiles = maxOpenFiles
            self.permissions = permissions
            self.logger = logger
        }
    }


    public let directory: String
    let logs: LogManager
    let registry: TopicRegistry
    let offsets: OffsetStore
    let options: Options
    /// Nil for a read-only open.
    private let lock: DirectoryLock?
    /// Opened with `openReadOnly` or `openForConsuming`: every change to topics and records is refused
    /// with `.readOnly`.
    public let isReadOnly: Bool
    /// Its consumer groups commit offsets: a writer, or opened with `openForConsuming`.
    let commitsGroups: Bool
    private let topicSignals = Mutex<[String: Signal]>([:])
    private let groups = Mutex<[String: LocalGroupCoordinator]>([:])
    /// Retention for a writer, following the writer for a read-only open.
    let retentionTimer = Mutex<(any DispatchSourceTimer)?>(nil)
    private let isClosed = Atomic<Bool>(false)

    /// What opening found: whether the last close was clean, and what recovery did per partition
    /// (nil for a read-only open, which recovers nothing).
    public let openReport: LogManager.OpenReport?
    /// Partition logs of no topic, found at open and left alone (logged to `Options.logger`, as
    /// are directories named like partitions that hold no segments, which are not even opened):
    /// Samsa never deletes what its registry does not name.
    public let unregisteredPartitions: [TopicPartition]

    init(
        directory: String, logs: LogManager, report: LogManager.OpenReport?, registry: TopicRegistry, offsets: OffsetStore, lock: DirectoryLock?,
        commitsGroups: Bool, options: Options, unregistered: [TopicPartition]
    ) {
        self.isReadOnly = lock == nil
        self.commitsGroups = commitsGroups
        self.directory = directory
        self.logs = logs
        self.openReport = report
        self.registry = registry
        self.offsets = offsets
        self.lock = lock
        self.options = options
        self.unregisteredPartitions = unregistered
    }

    /// Opens (creating it if needed) the data directory at `directory`, recovering every partition
    /// if the last process did not close it.
    ///
    /// A directory that exists must be a Samsa data directory (it has `meta.properties` and a
    /// `topics.json`) or be empty: any other is refused with `.notADataDirectory` and left exactly as
    /// it was. Nothing is ever deleted at open but partition directories whose deletion was under way
    /// (renamed `<topic>-<n>.<id>-delete`); a partition directory no topic names is reported to
    /// `Options.logger` and left alone.
    public static func open(directory: String, options: Options = Options()) throws(SamsaError) -> Samsa {
        try open(directory: directory, options: options, files: PosixFileSystem(permissions: options.permissions))
    }

    /// `open` with `files` for every file call (a test hook).
    package static func open(directory: String, options: Options, files: any FileSystem) throws(SamsaError) -> Samsa {
        // Both checks read before anything is written (the lock file included): Samsa's (its
        // topics.json, or nothing yet), then the storage engine's (meta.properties), which also marks a
        // new directory.
        let isNew = try SamsaDataDirectory.recognise(directory, files: files)
        try storage { () throws(StorageError) in try DataDirectory.prepare(directory, files: files) }
        let lock = try storage { () throws(StorageError) in try DirectoryLock(directory: directory) }
        do throws(SamsaError) {
            // An older registry (the embedded queue's first, a broker's) becomes the one registry, once.
            if let conversion = try storage({ () throws(StorageError) in try TopicsConversion.convert(directory, files: files) }) {
                options.logger.notice("\(directory): \(conversion)", metadata: ["directory": "\(directory)"])
            }
            let registry = try TopicRegistry(directory: directory, files: files)
            try ConsumerOffsetsLog.register(in: registry, partitions: options.offsetsTopicPartitions)
            let topics = registry.all
            try DescriptorBudget.check(partitions: topics.values.reduce(0) { $0 + $1.partitions }, directory: directory)
            var configurations: [TopicPartition: LogConfiguration] = [:]
            for (topic, configuration) in topics {
                for partition in 0..<configuration.partitions {
                    configurations[TopicPartition(topic: topic, partition: Int32(partition))] = configuration.logConfiguration
                }
            }
            let (logs, report) = try storage { () throws(StorageError) in
                try LogManager.open(directory: directory, configurations: configurations, maxOpenFiles: options.maxOpenFiles, files: files)
            }
            // The registry is written after the storage engine marked the directory as a data directory.
            if isNew { try registry.save() }
            let unregistered = logs.partitions.filter { topics[$0.topic] == nil }
            for name in unregistered.map(\.directoryName) + report.ignoredDirectories {
                options.logger.warning(
                    "\(directory)/\(name) belongs to no topic in \(TopicRegistry.fileName); left alone", metadata: ["directory": "\(directory)/\(name)"])
            }
            // A creation interrupted before its logs were made (or a deletion interrupted before the
            // registry was saved) leaves partitions to create.
            for (partition, configuration) in configurations where logs.log(partition) == nil {
                _ = try storage { () throws(StorageError) in try logs.createLog(partition, configuration: configuration) }
            }
            let offsets = try OffsetStore(
                directory: "\(directory)/groups", files: files,
                role: .writer(ConsumerOffsetsLog(logs: logs, partitions: registry.stored(ConsumerOffsetsLog.topic)?.partitions ?? 1)),
                logger: options.logger)
            // Commits staged beside the writer (or kept in `groups/` by an older Samsa) go into the log.
            try offsets.foldStaged()
            let samsa = Samsa(
                directory: directory, logs: logs, report: report, registry: registry, offsets: offsets, lock: lock, commitsGroups: true,
                options: options, unregistered: unregistered)
            samsa.startRetention(every: options.retentionCheckInterval)
            return samsa
        } catch {
            lock.release()
            throw error
        }
    }

    /// Flushes and closes every partition and marks the directory cleanly closed. Producers should be
    /// closed first (`await producer.close()`): records they still hold are not written. Tailing
    /// consumers end; groups' locks are released (members still open commit nothing more).
    public func close() throws(SamsaError) {
        guard !isClosed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        retentionTimer.withLock { $0?.cancel() }
        defer {
            offsets.closeAll()
            lock?.release()
            for signal in topicSignals.withLock({ Array($0.values) }) { signal.notify() }
            for group in groups.withLock({ Array($0.values) }) { group.signal.notify() }
        }
        try storage { () throws(StorageError) in try logs.close() }
    }

    var closed: Bool { isClosed.load(ordering: .acquiring) }

    func checkOpen() throws(SamsaError) {
        if closed { throw SamsaError(.closed, "\(directory) is closed") }
    }

    /// Refuses a change to a directory opened read-only.
    func checkWritable(_ what: String) throws(SamsaError) {
        try checkOpen()
        if isReadOnly { throw SamsaError(.readOnly, "\(directory) was opened read-only: cannot \(what)") }
    }

    /// Refuses a group's commits in a directory opened only to read (`openReadOnly`).
    func checkCommits(_ what: String) throws(SamsaError) {
        try checkOpen()
        if !commitsGroups { throw SamsaError(.readOnly, "\(directory) was opened read-only: cannot \(what)") }
    }

    // MARK: - Topics

    /// Creates a topic with `configuration.partitions` empty partitions.
    public func createTopic(_ name: String, _ configuration: TopicConfiguration = TopicConfiguration()) throws(SamsaError) {
        try checkWritable("create a topic")
        try Self.refuseInternal(name, "create")
        guard TopicPartition.isValidTopic(name) else {
            throw SamsaError(.invalidArgument, "invalid topic name '\(name)': use 1-249 of a-z A-Z 0-9 . _ -")
        }
        try configuration.validate()
        try DescriptorBudget.check(partitions: registry.all.values.reduce(configuration.partitions) { $0 + $1.partitions }, directory: directory)
        try registry.add(name, configuration)
        for partition in 0..<configuration.partitions {
            _ = try storage { () throws(StorageError) in
                try logs.createLog(TopicPartition(topic: name, partition: Int32(partition)), configuration: configuration.logConfiguration)
            }
        }
    }

    /// Deletes a topic, its partitions' files (through the storage engine, which renames a partition
    /// directory aside before removing it) and its groups' committed offsets for it.
    public func deleteTopic(_ name: String) throws(SamsaError) {
        try checkWritable("delete a topic")
        try Self.refuseInternal(name, "delete")
        guard let configuration = registry.configuration(of: name) else { throw SamsaError(.unknownTopic, "no topic '\(name)'") }
        // Partitions first, registry last: a crash in between leaves the topic with partitions to
        // recreate (empty) at the next open, never partition directories that no topic names.
        for partition in 0..<configuration.partitions {
            try storage { () throws(StorageError) in try logs.deleteLog(TopicPartition(topic: name, partition: Int32(partition))) }
        }
        _ = try registry.remove(name)
        try offsets.forget(topic: name)
        signal(for: name).notify()
    }

    /// Names of every topic, sorted; the internal `__consumer_offsets` (the groups' committed
    /// offsets) is left out, as Kafka's admin client leaves it out of its topic list.
    public var topics: [String] { registry.all.keys.filter { $0 != ConsumerOffsetsLog.topic }.sorted() }

    /// Refuses what only Samsa may do to its internal topic.
    static func refuseInternal(_ topic: String, _ what: String) throws(SamsaError) {
        if topic == ConsumerOffsetsLog.topic {
            throw SamsaError(.invalidArgument, "cannot \(what) '\(topic)': it is internal (the groups' committed offsets)")
        }
    }

    /// A topic's configuration and the state of its partitions.
    public func describeTopic(_ name: String) throws(SamsaError) -> TopicDescription {
        let configuration = try configuration(of: name)
        let partitions = (0..<configuration.partitions).map { partition -> TopicDescription.Partition in
            let log = logs.log(TopicPartition(topic: name, partition: Int32(partition)))
            return TopicDescription.Partition(
                partition: partition, logStartOffset: log?.logStartOffset ?? 0, logEndOffset: log?.logEndOffset ?? 0,
                flushedOffset: log?.flushedOffset ?? 0, sizeInBytes: log?.sizeInBytes ?? 0, segments: log?.segmentCount ?? 0,
                cleaning: logs.cleaningState(TopicPartition(topic: name, partition: Int32(partition))))
        }
        return TopicDescription(name: name, configuration: configuration, partitions: partitions)
    }

    func configuration(of topic: String) throws(SamsaError) -> TopicConfiguration {
        guard let configuration = registry.configuration(of: topic) else { throw SamsaError(.unknownTopic, "no topic '\(topic)'") }
        return configuration
    }

    func log(_ topic: String, _ partition: Int) throws(SamsaError) -> PartitionLog {
        try checkOpen()
        let configuration = try configuration(of: topic)
        guard (0..<configuration.partitions).contains(partition), let log = logs.log(TopicPartition(topic: topic, partition: Int32(partition))) else {
            throw SamsaError(.unknownPartition, "topic '\(topic)' has no partition \(partition) (it has \(configuration.partitions))")
        }
        return log
    }

    /// Bumped whenever records of `topic` become visible to consumers.
    func signal(for topic: String) -> Signal {
        topicSignals.withLock { signals in
            if let signal = signals[topic] { return signal }
            let signal = Signal()
            signals[topic] = signal
            return signal
        }
    }

    func coordinator(for group: String) -> LocalGroupCoordinator {
        groups.withLock { groups in
            if let coordinator = groups[group] { return coordinator }
            let coordinator = LocalGroupCoordinator(group: group)
            groups[group] = coordinator
            return coordinator
        }
    }

    // MARK: - Retention

    /// Applies every topic's retention now (it also runs every `retentionCheckInterval`).
    public func applyRetention() throws(SamsaError) {
        try checkWritable("apply retention")
        let now = WallClock.nowMilliseconds
        for (topic, configuration) in registry.all where configuration.retentionBytes != nil || configuration.retentionMilliseconds != nil {
            for partition in 0..<configuration.partitions {
                if let log = logs.log(TopicPartition(topic: topic, partition: Int32(partition))) {
                    _ = try storage { () throws(StorageError) in try log.applyRetention(nowMilliseconds: now) }
                }
            }
        }
    }

    private func startRetention(every interval: Duration) {
        let milliseconds = Int(interval.components.seconds * 1000 + interval.components.attoseconds / 1_000_000_000_000_000)
        guard milliseconds > 0 else { return }
        let weak = WeakSamsa(self)
        retentionTimer.withLock { slot in
            let timer = DispatchSource.makeTimerSource(queue: DispatchQueue.global(qos: .utility))
            timer.schedule(deadline: .now() + .milliseconds(milliseconds), repeating: .milliseconds(milliseconds))
            timer.setEventHandler {
                // A failure here is retried on the next tick; appends report real disk trouble.
                try? weak.samsa?.applyRetention()
            }
            timer.resume()
            slot = timer
        }
    }
}

/// A topic's configuration and partitions, as `describeTopic` returns it.
public struct TopicDescription: Sendable, Hashable {
    public struct Partition: Sendable, Hashable {
        public var partition: Int
        public var logStartOffset: Int64
        public var logEndOffset: Int64
        /// Every offset below this is on disk.
        public var flushedOffset: Int64
        public var sizeInBytes: Int
        public var segments: Int
        /// A compacted partition's dirty ratio and clean point (with the last clean's time when this
        /// process cleaned it); nil when the topic is not compacted.
        public var cleaning: PartitionCleaningState?
    }

    public var name: String
    public var configuration: TopicConfiguration
    public var partitions: [Partition]
}

/// Lets a timer reach its Samsa without keeping it alive.
final class WeakSamsa: @unchecked Sendable {
    // @unchecked: set once before the timer starts.
    weak var samsa: Samsa?
    init(_ samsa: Samsa) { self.samsa = samsa }
}

