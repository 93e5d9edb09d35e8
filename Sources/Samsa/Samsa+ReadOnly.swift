import Dispatch
import Glibc
import SamsaStorage

extension Samsa {
    /// Opens a data directory for reading only, beside its writer: no lock is taken and nothing is
    /// written (not the lock file, not a checkpoint, not a recovery), so it works while another
    /// process produces to the directory, on a read-only copy and on a full disk.
    ///
    /// Reads see what the writer's files hold: each partition up to its last whole batch (a batch
    /// being written is left out until it is whole), checked by CRC as every read is. Every
    /// `Options.refreshInterval` the partitions are looked at again, so tailing sequences
    /// (`records(topic:partition:from:)`) follow the writer across processes. Topics created after
    /// the open are not seen; reopen for them. Everything that writes (topics, producers, consumer
    /// groups, commits, retention) throws `.readOnly`.
    public static func openReadOnly(directory: String, options: Options = Options()) throws(SamsaError) -> Samsa {
        try openBesideWriter(directory: directory, options: options, commitsGroups: false)
    }

    /// Opens a data directory to consume as consumer groups beside its writer (`samsa consume
    /// --group` beside `samsa produce`): it reads as `openReadOnly` does and takes no directory lock,
    /// and its groups commit their offsets (`consumer(group:)`, `commit(group:offsets:)`). Each group
    /// is owned by one process at a time through its lock file, `groups/<group>.lock`, held while a
    /// member of the group is open here (or for one direct commit): a group another process (the
    /// writer included) consumes is refused with `.locked`, at once rather than waiting, since its
    /// owner may consume for as long as it likes. A process's death releases its groups. Topics,
    /// producers and retention throw `.readOnly`.
    public static func openForConsuming(directory: String, options: Options = Options()) throws(SamsaError) -> Samsa {
        try openBesideWriter(directory: directory, options: options, commitsGroups: true)
    }

    private static func openBesideWriter(directory: String, options: Options, commitsGroups: Bool) throws(SamsaError) -> Samsa {
        let files = ReadOnlyFileSystem(base: PosixFileSystem())
        // A directory this user may not enter (0700, another owner) is that, not "no topics.json".
        if files.fileExists(directory) && access(directory, R_OK | X_OK) != 0 {
            throw SamsaError(.invalidArgument, "cannot read \(directory): \(String(cString: strerror(errno)))")
        }
        // A broker's directory from before the one registry counts: it is read as its conversion would make it.
        guard files.fileExists("\(directory)/\(TopicRegistry.fileName)") || TopicsConversion.isNeeded(directory, files: files) else {
            let why = files.fileExists(directory) ? "it has no \(TopicRegistry.fileName)" : "it does not exist"
            throw SamsaError(.notADataDirectory, "\(directory) is not a Samsa data directory: \(why)")
        }
        let registry = try TopicRegistry(directory: directory, files: files)
        try DescriptorBudget.check(partitions: registry.all.values.reduce(0) { $0 + $1.partitions }, directory: directory)
        // A reader needs no checkpoint, but a damaged one is refused here as the writer refuses it, so
        // every command agrees (and `samsa verify` names the file).
        for name in [LogManager.recoveryPointFile, LogManager.logStartFile] {
            _ = try storage { () throws(StorageError) in try OffsetCheckpoint.read("\(directory)/\(name)", files: files) }
        }
        var configurations: [TopicPartition: LogConfiguration] = [:]
        for (topic, configuration) in registry.all {
            for partition in 0..<configuration.partitions {
                configurations[TopicPartition(topic: topic, partition: Int32(partition))] = configuration.logConfiguration
            }
        }
        let logs = try storage { () throws(StorageError) in
            try LogManager.openReadOnly(directory: directory, configurations: configurations, maxOpenFiles: options.maxOpenFiles, files: files)
        }
        // Only a group's offsets are written, each under its group's lock.
        let offsetsLog = ConsumerOffsetsLog(logs: logs, partitions: registry.stored(ConsumerOffsetsLog.topic)?.partitions ?? 1)
        let offsets = try OffsetStore(
            directory: "\(directory)/groups", files: commitsGroups ? PosixFileSystem(permissions: options.permissions) : files,
            role: .beside(offsetsLog, commits: commitsGroups), logger: options.logger)
        let samsa = Samsa(
            directory: directory, logs: logs, report: nil, registry: registry, offsets: offsets, lock: nil, commitsGroups: commitsGroups,
            options: options, unregistered: logs.partitions.filter { registry.configuration(of: $0.topic) == nil })
        samsa.startRefreshing(every: options.refreshInterval)
        return samsa
    }

    /// Looks for what the writer appended, and wakes the readers of every topic that moved.
    func refresh() {
        guard !closed, (try? logs.refresh()) == true else { return }
        for topic in topics { signal(for: topic).notify() }
    }

    private func startRefreshing(every interval: Duration) {
        let milliseconds = Int(interval.components.seconds * 1000 + interval.components.attoseconds / 1_000_000_000_000_000)
        guard milliseconds > 0 else { return }
        let weak = WeakSamsa(self)
        retentionTimer.withLock { slot in
            let timer = DispatchSource.makeTimerSource(queue: DispatchQueue.global(qos: .utility))
            timer.schedule(deadline: .now() + .milliseconds(milliseconds), repeating: .milliseconds(milliseconds))
            timer.setEventHandler { weak.samsa?.refresh() }
            timer.resume()
            slot = timer
        }
    }
}
