import Dispatch
import SamsaProtocol
import SamsaStorage
import Synchronization

/// The topics the broker serves and their partitions (one `Partition` per log): each topic is the
/// partition logs `<topic>-0 ... <topic>-(n-1)` in the data directory, so the set survives restarts;
/// its id, partition count and own settings are in the directory's one registry, `topics.json`
/// (`TopicsFile`, shared with the embedded queue and every `samsa` command). Creation
/// runs on one serial queue (it makes directories and syncs them: never on an event loop), so two
/// creates of one name cannot interleave.
final class TopicTable: Sendable {
    struct Topic: Sendable, Hashable {
        var name: String
        /// Random at creation (KIP-516), so a topic re-created under the same name is another topic.
        /// Zero on a cluster's broker for a topic from before ids, until coordination's is adopted.
        var id: KafkaUUID
        var partitionCount: Int32
    }

    enum CreateError: Error {
        case invalidTopic(String)
        case alreadyExists
        case invalidPartitions
        /// Adding partitions to a topic that does not exist.
        case unknownTopic
        /// The broker would hold more than `max.broker.partitions`.
        case partitionLimit(String)
        case storage(StorageError)
    }

    private let logs: LogManager
    private let topics: Mutex<TopicIndex>
    private let partitions: Mutex<[TopicPartition: Partition]>
    /// What every partition made here shares.
    let context: PartitionContext
    /// Every topic held here as `topics.json` records it; changed only on `administration`.
    private let registry: Mutex<[String: StoredTopic]>
    private let dataDirectory: String
    /// The broker-level settings, which a topic's overrides change.
    let brokerConfigs: BrokerConfigs
    /// The log settings a topic without overrides has now.
    var baseConfiguration: LogConfiguration { brokerConfigs.logConfiguration }
    private let administration = DispatchQueue(label: "samsa.broker.topics")
    /// The most partitions this broker holds (`max.broker.partitions`, KIP-578): a create past it is
    /// refused whole, so no request can fill the disk or the descriptor table with partitions.
    let maxPartitions: Int

    init(
        logs: LogManager, dataDirectory: String, brokerConfigs: BrokerConfigs, stored: [String: StoredTopic],
        context: PartitionContext, maxPartitions: Int = BrokerConfiguration.defaultMaxBrokerPartitions
    ) {
        self.maxPartitions = maxPartitions
        self.context = context
        partitions = Mutex(Dictionary(uniqueKeysWithValues: logs.partitions.compactMap { id in
            logs.log(id).map { (id, Partition(id, log: $0, context: context)) }
        }))
        self.logs = logs
        self.dataDirectory = dataDirectory
        self.brokerConfigs = brokerConfigs
        var counts: [String: Int32] = [:]
        for partition in logs.partitions {
            counts[partition.topic] = Int32(clamping: max(Int(counts[partition.topic] ?? 0), Int(partition.partition) + 1))
        }
        // Read with the logs, off the event loops and the cooperative pool (`Broker.start`). Every topic
        // with logs here is in the registry (a directory the embedded queue made lists its topics; a
        // partition directory from before the registry adds its topic), none without (a creation a
        // crash cut short before its logs is made again on request).
        var registry = stored.filter { counts[$0.key] != nil }
        for (name, count) in counts {
            var entry = registry[name] ?? StoredTopic(id: nil, partitions: count)
            entry.partitions = max(entry.partitions, count)
            // Topics from before ids: a single broker gives them one now; a cluster's broker adopts coordination's.
            if case .local = context.leadership, entry.id.flatMap(KafkaUUID.init(text:)) == nil { entry.id = KafkaUUID.random().text }
            registry[name] = entry
        }
        self.registry = Mutex(registry)
        topics = Mutex(counts.reduce(into: TopicIndex()) { table, entry in
            let id = registry[entry.key]?.id.flatMap(KafkaUUID.init(text:)) ?? .zero
            table[entry.key] = Topic(name: entry.key, id: id, partitionCount: entry.value)
        })
        if registry != stored {
            administration.async { [self] in try? store(force: true) { _ in } }
        }
    }

    func topic(_ name: String) -> Topic? { topics.withLock { $0[name] } }

    /// The topic's own settings (empty when it has none).
    func config(_ name: String) -> TopicConfig { TopicConfig(overrides: registry.withLock { $0[name]?.configs } ?? [:]) }

    /// Each partition's log settings from the registry: the topic's overrides over `base`.
    static func logConfigurations(_ stored: [String: StoredTopic], base: LogConfiguration) -> [TopicPartition: LogConfiguration] {
        var configurations: [TopicPartition: LogConfiguration] = [:]
        for (topic, entry) in stored where !entry.configs.isEmpty {
            let configuration = TopicConfig(overrides: entry.configs).logConfiguration(base: base)
            for partition in 0..<entry.partitions { configurations[TopicPartition(topic: topic, partition: partition)] = configuration }
        }
        return configurations
    }

    var all: [Topic] { topics.withLock { $0.byName.values.sorted { $0.name < $1.name } } }

    func partition(_ id: TopicPartition) -> Partition? { partitions.withLock { $0[id] } }

    func partition(_ topic: String, _ index: Int32) -> Partition? { partition(TopicPartition(topic: topic, partition: index)) }

    var allPartitions: [Partition] { partitions.withLock { Array($0.values) } }

    func log(_ topic: String, _ partition: Int32) -> PartitionLog? { self.partition(topic, partition)?.log }

    /// Makes every log's start durable (`LogManager.checkpointLogStarts`). Blocks on fsyncs: call it on the I/O pool.
    func checkpointLogStarts() throws(StorageError) { try logs.checkpointLogStarts() }

    /// Kafka's topic name rule, plus names the data directory layout cannot hold.
    static func validate(_ name: String) -> String? {
        if !TopicPartition.isValidTopic(name) { return "topic name '\(quoted(name))' is not 1-249 characters of [a-zA-Z0-9._-]" }
        return nil
    }

    /// A client's string as quoted in an error message: at most 256 characters, so a message never
    /// grows with what a client sent.
    static func quoted(_ text: String) -> String {
        text.count <= 256 ? text : "\(text.prefix(256))... (\(text.utf8.count) bytes)"
    }

    /// Partitions held now (every topic's).
    var partitionCount: Int { partitions.withLock { $0.count } }

    /// Creates the topic's partition logs, or throws if it exists or cannot be made.
    /// `id`: the topic's id (a cluster's, from coordination); nil makes a random one. `holding`: the
    /// partitions whose logs are made here (a cluster's broker holds those assigned to it); nil: all.
    func create(
        _ name: String, partitions: Int32, config: TopicConfig = TopicConfig(), validateOnly: Bool = false, id: KafkaUUID? = nil,
        holding: Set<Int32>? = nil
    ) async throws(CreateError) -> Topic {
        if let problem = Self.validate(name) { throw .invalidTopic(problem) }
        guard partitions > 0 else { throw .invalidPartitions }
        return try await administer { [self] () throws(CreateError) -> Topic in
            try createNow(name, partitions, config, validateOnly, id ?? .random(), holding: holding)
        }
    }

    /// Runs `work` on `administration`.
    private func administer<Value: Sendable, Failure: Error>(_ work: @escaping @Sendable () throws(Failure) -> Value) async throws(Failure) -> Value {
        let result: Result<Value, Failure> = await withCheckedContinuation { continuation in
            administration.async { continuation.resume(returning: Result(catching: work)) }
        }
        return try result.get()
    }

    /// Refused unless `more` partitions fit under `max.broker.partitions`.
    private func checkLimit(adding more: Int32) throws(CreateError) {
        let held = partitionCount
        guard held + Int(more) <= maxPartitions else {
            throw .partitionLimit("\(more) more partitions would exceed max.broker.partitions (\(maxPartitions)); this broker holds \(held)")
        }
    }

    /// Runs on `administration`.
    private func createNow(
        _ name: String, _ partitions: Int32, _ config: TopicConfig, _ validateOnly: Bool, _ id: KafkaUUID, holding: Set<Int32>?
    ) throws(CreateError) -> Topic {
        guard topic(name) == nil else { throw .alreadyExists }
        let held = (0..<partitions).filter { holding?.contains($0) ?? true }
        try checkLimit(adding: Int32(held.count))
        let topic = Topic(name: name, id: id, partitionCount: partitions)
        if validateOnly { return topic }
        let configuration = config.logConfiguration(base: baseConfiguration)
        do {
            // The id and settings first: a crash before the logs exist leaves an entry a later create replaces.
            try store { $0[name] = StoredTopic(id: id.text, partitions: partitions, configs: config.overrides) }
            // All partitions or none, also across a crash (see `LogManager.createLogs`).
            let ids = held.map { TopicPartition(topic: name, partition: $0) }
            try logs.createLogs(ids, configuration: configuration)
            let made = ids.compactMap { id in logs.log(id).map { (id, Partition(id, log: $0, context: context)) } }
            self.partitions.withLock { $0.merge(made) { _, new in new } }
        } catch {
            throw .storage(error)
        }
        topics.withLock { $0[name] = topic }
        return topic
    }

    /// Grows the topic to `count` partitions (Kafka's CreatePartitions): the new partitions' logs are
    /// made with the topic's settings, all or none; the existing ones are untouched. INVALID_PARTITIONS
    /// unless `count` is larger than today's. `holding`: as for `create`.
    func addPartitions(_ name: String, to count: Int32, validateOnly: Bool = false, holding: Set<Int32>? = nil) async throws(CreateError) -> Topic {
        try await administer { [self] () throws(CreateError) -> Topic in
            guard var topic = topic(name) else { throw .unknownTopic }
            guard count > topic.partitionCount else { throw .invalidPartitions }
            let held = (topic.partitionCount..<count).filter { holding?.contains($0) ?? true }
            try checkLimit(adding: Int32(held.count))
            if validateOnly { return topic }
            let config = self.config(name)
            let ids = held.map { TopicPartition(topic: name, partition: $0) }
            do throws(StorageError) {
                // The settings' partition count first, so a restart opens the new logs with them.
                try store { $0[name]?.partitions = count }
                try logs.createLogs(ids, configuration: config.logConfiguration(base: baseConfiguration))
            } catch {
                throw .storage(error)
            }
            let made = ids.compactMap { id in logs.log(id).map { (id, Partition(id, log: $0, context: context)) } }
            partitions.withLock { $0.merge(made) { _, new in new } }
            topic.partitionCount = count
            topics.withLock { [topic] in $0[name] = topic }
            return topic
        }
    }

    /// Makes the log of one partition of a topic held here (a replica assigned to this broker later,
    /// by a reassignment), empty and with the topic's settings; nothing if it is here already.
    func hold(_ name: String, _ index: Int32) async throws(CreateError) {
        try await administer { [self] () throws(CreateError) in
            guard let topic = topic(name), index >= 0, index < topic.partitionCount else { throw .unknownTopic }
            let id = TopicPartition(topic: name, partition: index)
            guard partition(id) == nil else { return }
            try checkLimit(adding: 1)
            let log: PartitionLog
            do throws(StorageError) {
                log = try logs.createLog(id, configuration: config(name).logConfiguration(base: baseConfiguration))
            } catch {
                throw .storage(error)
            }
            partitions.withLock { $0[id] = Partition(id, log: log, context: context) }
        }
    }

    /// Deletes one partition's log here (a replica a reassignment moved away): it is out of the table
    /// first and leaves its role, so no new request finds it and waiting ones are answered; the
    /// topic and its other partitions stay. False if it was not here.
    func release(_ id: TopicPartition) async throws(StorageError) -> Bool {
        guard let removed = partitions.withLock({ $0.removeValue(forKey: id) }) else { return false }
        removed.resign()
        // Writes already queued on its writer finish first (they then fail or find no role).
        _ = try? await removed.perform {}
        try await administer { [self] () throws(StorageError) in try logs.deleteLog(id) }
        return true
    }

    /// Records the id coordination gives a topic held here from before ids (see `Topic.id`).
    func adoptId(_ name: String, _ id: KafkaUUID) async throws(StorageError) {
        try await administer { [self] () throws(StorageError) in
            guard topic(name)?.id == .zero else { return }
            try store { $0[name]?.id = id.text }
            topics.withLock { $0[name]?.id = id }
        }
    }

    /// Writes the registry as `change` makes it (nothing when it is unchanged, unless `force`), then
    /// keeps it. Runs on `administration`.
    private func store(force: Bool = false, _ change: (inout [String: StoredTopic]) -> Void) throws(StorageError) {
        let current = registry.withLock { $0 }
        var updated = current
        change(&updated)
        guard force || updated != current else { return }
        try TopicsFile.write(updated, dataDirectory, files: PosixFileSystem())
        registry.withLock { $0 = updated }
    }

    /// A change of one topic's settings: turns the current ones into the new ones, or throws.
    typealias ConfigChange = @Sendable (TopicConfig) throws(ConfigChangeError) -> TopicConfig

    /// Puts topics' new settings in force: each change turns a topic's current settings into its new
    /// ones (or throws, and that topic is left as it was; with `validateOnly` nothing is stored
    /// either). The new settings are stored first, in one write of `topics.json` for all of them
    /// (so a request naming thousands of topics costs one file write, not thousands), so a restart
    /// opens the logs with them; then applied to each topic's open logs at once
    /// (`PartitionLog.reconfigure`). The settings checked per request (`max.message.bytes`,
    /// `min.insync.replicas`) are read from here on the next one. On one queue with creation and
    /// deletion, so concurrent changes of one topic apply in turn, none lost. Per change, in order: nil
    /// if there is no such topic, else the new settings, or why not.
    func alterConfigs(_ changes: [(topic: String, change: ConfigChange)], validateOnly: Bool = false) async -> [Result<TopicConfig?, ConfigChangeError>] {
        await administer { [self] () -> [Result<TopicConfig?, ConfigChangeError>] in
            var outcomes: [Result<TopicConfig?, ConfigChangeError>] = []
            var entries = registry.withLock { $0 }
            for (name, change) in changes {
                guard let topic = topic(name) else {
                    outcomes.append(.success(nil))
                    continue
                }
                let outcome = Result { () throws(ConfigChangeError) -> TopicConfig in
                    try change(TopicConfig(overrides: entries[name]?.configs ?? [:]))
                }
                if case .success(let config) = outcome {
                    entries[name, default: StoredTopic(id: topic.id == .zero ? nil : topic.id.text, partitions: topic.partitionCount)].configs = config.overrides
                }
                outcomes.append(outcome.map { $0 })
            }
            if validateOnly { return outcomes }
            do throws(StorageError) {
                try store { $0 = entries }
            } catch {
                return outcomes.map { outcome in outcome.flatMap { $0 == nil ? .success(nil) : .failure(.storage(error)) } }
            }
            let base = baseConfiguration
            for (index, (name, _)) in changes.enumerated() {
                guard case .success(let config?) = outcomes[index], let topic = topic(name) else { continue }
                let configuration = config.logConfiguration(base: base)
                for partition in 0..<topic.partitionCount { log(name, partition)?.reconfigure(configuration) }
            }
            return outcomes
        }
    }

    /// Reconfigures every open log after the broker-level settings changed (`brokerConfigs`), on the
    /// queue config changes take, so a topic's change and a broker's apply in turn.
    func reapplyBrokerConfigs() async {
        await administer { [self] () -> Void in
            let base = baseConfiguration
            for topic in all {
                let configuration = config(topic.name).logConfiguration(base: base)
                for index in 0..<topic.partitionCount { log(topic.name, index)?.reconfigure(configuration) }
            }
        }
    }

    /// Deletes the topic's partition logs and files; false if there is no such topic (or, with `id`,
    /// none with that id: a topic re-created meanwhile stays). Its partitions leave their roles first,
    /// so waiting produces and fetches are answered.
    func delete(_ name: String, id: KafkaUUID? = nil) async throws(StorageError) -> Bool {
        try await administer { [self] () throws(StorageError) -> Bool in
            guard let topic = topic(name), id == nil || topic.id == id else { return false }
            // Gone from the table first, so no new request finds a log being deleted.
            topics.withLock { $0[name] = nil }
            let members = (0..<topic.partitionCount).map { TopicPartition(topic: name, partition: $0) }
            let removed = partitions.withLock { table in members.compactMap { table.removeValue(forKey: $0) } }
            for partition in removed { partition.resign() }
            // Every partition, also across a crash (see `LogManager.deleteLogs`).
            try logs.deleteLogs(members)
            try store { $0[name] = nil }
            return true
        }
    }

    /// The topic with this id (Fetch v13+ asks on every request: an index, not a scan).
    func topic(id: KafkaUUID) -> Topic? { topics.withLock { $0.topic(id: id) } }
}

/// The topics by name, with an index by id kept with it.
private struct TopicIndex {
    private(set) var byName: [String: TopicTable.Topic] = [:]
    private var names: [KafkaUUID: String] = [:]

    subscript(name: String) -> TopicTable.Topic? {
        get { byName[name] }
        set {
            if let old = byName[name], names[old.id] == name { names[old.id] = nil }
            byName[name] = newValue
            if let newValue, newValue.id != .zero { names[newValue.id] = name }
        }
    }

    func topic(id: KafkaUUID) -> TopicTable.Topic? { names[id].flatMap { byName[$0] } }
}
