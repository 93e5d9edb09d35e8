import Dispatch
import Glibc
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
/// directory (an exclusive `flock` on `<dir>/.lock`).
/// Durability: a producer's send is acknowledged when the topic's flush policy is satisfied; consumers
/// never see a record before its producer could have been told it is committed.
public final class Samsa: Sendable {
    /// Settings of an open data directory.
    public struct Options: Sendable {
        /// How often retention deletes old segments (Kafka's `log.retention.check.interval.ms`).
        public var retentionCheckInterval: Duration
        /// Bound on open segment files across all partitions.
        public var maxOpenFiles: Int

        public init(retentionCheckInterval: Duration = .seconds(60), maxOpenFiles: Int = 256) {
            self.retentionCheckInterval = retentionCheckInterval
            self.maxOpenFiles = maxOpenFiles
        }
    }

    public let directory: String
    let logs: LogManager
    let registry: TopicRegistry
    let offsets: OffsetStore
    private let lockDescriptor: Int32
    private let topicSignals = Mutex<[String: Signal]>([:])
    private let groups = Mutex<[String: GroupCoordinator]>([:])
    private let retentionTimer = Mutex<(any DispatchSourceTimer)?>(nil)
    private let isClosed = Atomic<Bool>(false)

    /// What opening found: whether the last close was clean, and what recovery did per partition.
    public let openReport: LogManager.OpenReport

    private init(directory: String, logs: LogManager, report: LogManager.OpenReport, registry: TopicRegistry, offsets: OffsetStore, lock: Int32) {
        self.directory = directory
        self.logs = logs
        self.openReport = report
        self.registry = registry
        self.offsets = offsets
        self.lockDescriptor = lock
    }

    /// Opens (creating it if needed) the data directory at `directory`, recovering every partition
    /// if the last process did not close it.
    public static func open(directory: String, options: Options = Options()) throws(SamsaError) -> Samsa {
        let files = PosixFileSystem()
        // Refuses a directory that is not Samsa's before writing anything into it (the lock file too).
        try storage { () throws(StorageError) in try DataDirectory.prepare(directory, files: files) }
        let lock = try lockDirectory(directory)
        do throws(SamsaError) {
            let registry = try TopicRegistry(directory: directory, files: files)
            let topics = registry.all
            var configurations: [TopicPartition: LogConfiguration] = [:]
            for (topic, configuration) in topics {
                for partition in 0..<configuration.partitions {
                    configurations[TopicPartition(topic: topic, partition: Int32(partition))] = configuration.logConfiguration
                }
            }
            let (logs, report) = try storage { () throws(StorageError) in
                try LogManager.open(directory: directory, configurations: configurations, maxOpenFiles: options.maxOpenFiles, files: files)
            }
            // A deletion interrupted after the registry was saved leaves partitions of no topic; a
            // creation interrupted before its logs were made leaves partitions to create.
            for partition in logs.partitions where topics[partition.topic] == nil {
                try storage { () throws(StorageError) in try logs.deleteLog(partition) }
            }
            for (partition, configuration) in configurations where logs.log(partition) == nil {
                _ = try storage { () throws(StorageError) in try logs.createLog(partition, configuration: configuration) }
            }
            let offsets = try OffsetStore(directory: "\(directory)/groups", files: files)
            let samsa = Samsa(directory: directory, logs: logs, report: report, registry: registry, offsets: offsets, lock: lock)
            samsa.startRetention(every: options.retentionCheckInterval)
            return samsa
        } catch {
            Glibc.close(lock)
            throw error
        }
    }

    private static func lockDirectory(_ directory: String) throws(SamsaError) -> Int32 {
        let fd = Glibc.open("\(directory)/.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw SamsaError(.invalidArgument, "cannot open \(directory)/.lock: \(String(cString: strerror(errno)))") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            Glibc.close(fd)
            throw SamsaError(.invalidArgument, "\(directory) is open in another process (or another Samsa in this one)")
        }
        return fd
    }

    /// Flushes and closes every partition and marks the directory cleanly closed. Producers should be
    /// closed first (`await producer.close()`): records they still hold are not written. Tailing
    /// consumers end.
    public func close() throws(SamsaError) {
        guard !isClosed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        retentionTimer.withLock { $0?.cancel() }
        defer {
            flock(lockDescriptor, LOCK_UN)
            Glibc.close(lockDescriptor)
            for signal in topicSignals.withLock({ Array($0.values) }) { signal.notify() }
            for group in groups.withLock({ Array($0.values) }) { group.signal.notify() }
        }
        try storage { () throws(StorageError) in try logs.close() }
    }

    var closed: Bool { isClosed.load(ordering: .acquiring) }

    func checkOpen() throws(SamsaError) {
        if closed { throw SamsaError(.closed, "\(directory) is closed") }
    }

    // MARK: - Topics

    /// Creates a topic with `configuration.partitions` empty partitions.
    public func createTopic(_ name: String, _ configuration: TopicConfiguration = TopicConfiguration()) throws(SamsaError) {
        try checkOpen()
        guard TopicPartition.isValidTopic(name) else {
            throw SamsaError(.invalidArgument, "invalid topic name '\(name)': use 1-249 of a-z A-Z 0-9 . _ -")
        }
        try configuration.validate()
        try registry.add(name, configuration)
        for partition in 0..<configuration.partitions {
            _ = try storage { () throws(StorageError) in
                try logs.createLog(TopicPartition(topic: name, partition: Int32(partition)), configuration: configuration.logConfiguration)
            }
        }
    }

    /// Deletes a topic, its partitions' files and its groups' committed offsets for it.
    public func deleteTopic(_ name: String) throws(SamsaError) {
        try checkOpen()
        guard let configuration = registry.configuration(of: name) else { throw SamsaError(.unknownTopic, "no topic '\(name)'") }
        _ = try registry.remove(name)
        for partition in 0..<configuration.partitions {
            try storage { () throws(StorageError) in try logs.deleteLog(TopicPartition(topic: name, partition: Int32(partition))) }
        }
        try offsets.forget(topic: name)
        signal(for: name).notify()
    }

    /// Names of every topic, sorted.
    public var topics: [String] { registry.all.keys.sorted() }

    /// A topic's configuration and the state of its partitions.
    public func describeTopic(_ name: String) throws(SamsaError) -> TopicDescription {
        let configuration = try configuration(of: name)
        let partitions = (0..<configuration.partitions).map { partition -> TopicDescription.Partition in
            let log = logs.log(TopicPartition(topic: name, partition: Int32(partition)))
            return TopicDescription.Partition(
                partition: partition, logStartOffset: log?.logStartOffset ?? 0, logEndOffset: log?.logEndOffset ?? 0,
                flushedOffset: log?.flushedOffset ?? 0, sizeInBytes: log?.sizeInBytes ?? 0, segments: log?.segmentCount ?? 0)
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

    func coordinator(for group: String) -> GroupCoordinator {
        groups.withLock { groups in
            if let coordinator = groups[group] { return coordinator }
            let coordinator = GroupCoordinator(group: group)
            groups[group] = coordinator
            return coordinator
        }
    }

    // MARK: - Retention

    /// Applies every topic's retention now (it also runs every `retentionCheckInterval`).
    public func applyRetention() throws(SamsaError) {
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
    }

    public var name: String
    public var configuration: TopicConfiguration
    public var partitions: [Partition]
}

/// Lets the retention timer reach its Samsa without keeping it alive.
private final class WeakSamsa: @unchecked Sendable {
    // @unchecked: set once before the timer starts.
    weak var samsa: Samsa?
    init(_ samsa: Samsa) { self.samsa = samsa }
}

/// Wall-clock milliseconds since the epoch (record timestamps, retention).
enum WallClock {
    static var nowMilliseconds: Int64 {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        return Int64(time.tv_sec) * 1000 + Int64(time.tv_nsec) / 1_000_000
    }
}
