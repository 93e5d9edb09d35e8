import Dispatch
import SamsaProtocol
import SamsaStorage
import Synchronization

/// The topics the broker serves and their partitions (one `Partition` per log): each topic is the
/// partition logs `<topic>-0 ... <topic>-(n-1)` in the data directory, so the set survives restarts;
/// a topic's own settings are in `TopicConfigFile`. Creation
/// runs on one serial queue (it makes directories and syncs them: never on an event loop), so two
/// creates of one name cannot interleave.
final class TopicTable: Sendable {
    struct Topic: Sendable, Hashable {
        var name: String
        /// Stable for the name (derived from it), as the data directory stores no ids.
        var id: KafkaUUID
        var partitionCount: Int32
    }

    enum CreateError: Error {
        case invalidTopic(String)
        case alreadyExists
        case invalidPartitions
        /// The broker would hold more than `max.broker.partitions`.
        case partitionLimit(String)
        case storage(StorageError)
    }

    private let logs: LogManager
    private let topics: Mutex<[String: Topic]>
    private let partitions: Mutex<[TopicPartition: Partition]>
    /// What every partition made here shares.
    let context: PartitionContext
    /// Topics with config overrides (as stored in `TopicConfigFile`); changed only on `administration`.
    private let configs: Mutex<[String: TopicConfigFile.Entry]>
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
        logs: LogManager, dataDirectory: String, brokerConfigs: BrokerConfigs, configs: [String: TopicConfigFile.Entry],
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
        self.configs = Mutex(configs)
        var counts: [String: Int32] = [:]
        for partition in logs.partitions { counts[partition.topic, default: 0] = max(counts[partition.topic, default: 0], partition.partition + 1) }
        topics = Mutex(counts.reduce(into: [:]) { table, entry in
            table[entry.key] = Topic(name: entry.key, id: Self.id(for: entry.key), partitionCount: entry.value)
        })
    }

    func topic(_ name: String) -> Topic? { topics.withLock { $0[name] } }

    /// The topic's own settings (empty when it has none).
    func config(_ name: String) -> TopicConfig { configs.withLock { $0[name]?.config } ?? TopicConfig() }

    var all: [Topic] { topics.withLock { $0.values.sorted { $0.name < $1.name } } }

    func partition(_ id: TopicPartition) -> Partition? { partitions.withLock { $0[id] } }

    func partition(_ topic: String, _ index: Int32) -> Partition? { partition(TopicPartition(topic: topic, partition: index)) }

    var allPartitions: [Partition] { partitions.withLock { Array($0.values) } }

    func log(_ topic: String, _ partition: Int32) -> PartitionLog? { self.partition(topic, partition)?.log }

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
    var partitionCount: Int { topics.withLock { $0.values.reduce(0) { $0 + Int($1.partitionCount) } } }

    /// Creates the topic's partition logs, or throws if it exists or cannot be made.
    func create(_ name: String, partitions: Int32, config: TopicConfig = TopicConfig(), validateOnly: Bool = false) async throws(CreateError) -> Topic {
        if let problem = Self.validate(name) { throw .invalidTopic(problem) }
        guard partitions > 0 else { throw .invalidPartitions }
        let result: Result<Topic, CreateError> = await withCheckedContinuation { continuation in
            administration.async { [self] in
                continuation.resume(returning: Result { () throws(CreateError) -> Topic in try createNow(name, partitions, config, validateOnly) })
            }
        }
        return try result.get()
    }

    /// Runs on `administration`.
    private func createNow(_ name: String, _ partitions: Int32, _ config: TopicConfig, _ validateOnly: Bool) throws(CreateError) -> Topic {
        guard topic(name) == nil else { throw .alreadyExists }
        let held = partitionCount
        guard held + Int(partitions) <= maxPartitions else {
            throw .partitionLimit(
                "\(partitions) more partitions would exceed max.broker.partitions (\(maxPartitions)); this broker holds \(held)")
        }
        let topic = Topic(name: name, id: Self.id(for: name), partitionCount: partitions)
        if validateOnly { return topic }
        let configuration = config.logConfiguration(base: baseConfiguration)
        do {
            // The settings first: a crash before the logs exist leaves an entry a later create replaces.
            try storeConfig(name, config.overrides.isEmpty ? nil : TopicConfigFile.Entry(partitions: partitions, config: config))
            // All partitions or none, also across a crash (see `LogManager.createLogs`).
            let ids = (0..<partitions).map { TopicPartition(topic: name, partition: $0) }
            try logs.createLogs(ids, configuration: configuration)
            let made = ids.compactMap { id in logs.log(id).map { (id, Partition(id, log: $0, context: context)) } }
            self.partitions.withLock { $0.merge(made) { _, new in new } }
        } catch {
            throw .storage(error)
        }
        topics.withLock { $0[name] = topic }
        return topic
    }

    /// A change of one topic's settings: turns the current ones into the new ones, or throws.
    typealias ConfigChange = @Sendable (TopicConfig) throws(ConfigChangeError) -> TopicConfig

    /// Puts topics' new settings in force: each change turns a topic's current settings into its new
    /// ones (or throws, and that topic is left as it was; with `validateOnly` nothing is stored
    /// either). The new settings are stored first, in one write of `TopicConfigFile` for all of them
    /// (so a request naming thousands of topics costs one file write, not thousands), so a restart
    /// opens the logs with them; then applied to each topic's open logs at once
    /// (`PartitionLog.reconfigure`). The settings checked per request (`max.message.bytes`,
    /// `min.insync.replicas`) are read from here on the next one. On one queue with creation and
    /// deletion, so concurrent changes of one topic apply in turn, none lost. Per change, in order: nil
    /// if there is no such topic, else the new settings, or why not.
    func alterConfigs(_ changes: [(topic: String, change: ConfigChange)], validateOnly: Bool = false) async -> [Result<TopicConfig?, ConfigChangeError>] {
        await withCheckedContinuation { continuation in
            administration.async { [self] in
                var outcomes: [Result<TopicConfig?, ConfigChangeError>] = []
                var entries = configs.withLock { $0 }
                for (name, change) in changes {
                    guard let topic = topic(name) else {
                        outcomes.append(.success(nil))
                        continue
                    }
                    let outcome = Result { () throws(ConfigChangeError) -> TopicConfig in
                        try change(entries[name]?.config ?? TopicConfig())
                    }
                    if case .success(let config) = outcome {
                        entries[name] = config.overrides.isEmpty ? nil : TopicConfigFile.Entry(partitions: topic.partitionCount, config: config)
                    }
                    outcomes.append(outcome.map { $0 })
                }
                if validateOnly { return continuation.resume(returning: outcomes) }
                do throws(StorageError) {
                    try storeConfigs(entries)
                } catch {
                    return continuation.resume(returning: outcomes.map { outcome in outcome.flatMap { $0 == nil ? .success(nil) : .failure(.storage(error)) } })
                }
                let base = baseConfiguration
                for (index, (name, _)) in changes.enumerated() {
                    guard case .success(let config?) = outcomes[index], let topic = topic(name) else { continue }
                    let configuration = config.logConfiguration(base: base)
                    for partition in 0..<topic.partitionCount { log(name, partition)?.reconfigure(configuration) }
                }
                continuation.resume(returning: outcomes)
            }
        }
    }

    /// Reconfigures every open log after the broker-level settings changed (`brokerConfigs`), on the
    /// queue config changes take, so a topic's change and a broker's apply in turn.
    func reapplyBrokerConfigs() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            administration.async { [self] in
                let base = baseConfiguration
                for topic in all {
                    let configuration = config(topic.name).logConfiguration(base: base)
                    for index in 0..<topic.partitionCount { log(topic.name, index)?.reconfigure(configuration) }
                }
                continuation.resume()
            }
        }
    }

    /// Replaces (nil: removes) the topic's stored settings. Runs on `administration`.
    private func storeConfig(_ name: String, _ entry: TopicConfigFile.Entry?) throws(StorageError) {
        var updated = configs.withLock { $0 }
        updated[name] = entry
        try storeConfigs(updated)
    }

    /// Replaces every topic's stored settings (nothing is written when they are unchanged). Runs on `administration`.
    private func storeConfigs(_ updated: [String: TopicConfigFile.Entry]) throws(StorageError) {
        guard configs.withLock({ $0 }) != updated else { return }
        do {
            try TopicConfigFile.write(updated, dataDirectory: dataDirectory)
        } catch let error as StorageError {
            throw error
        } catch {
            throw StorageError(.io, path: dataDirectory, "writing \(TopicConfigFile.name): \(error)")
        }
        configs.withLock { $0 = updated }
    }

    /// Deletes the topic's partition logs and files; false if there is no such topic.
    func delete(_ name: String) async throws(StorageError) -> Bool {
        let result: Result<Bool, StorageError> = await withCheckedContinuation { continuation in
            administration.async { [self] in
                continuation.resume(returning: Result { () throws(StorageError) -> Bool in
                    guard let topic = topic(name) else { return false }
                    // Gone from the table first, so no new request finds a log being deleted.
                    topics.withLock { _ = $0.removeValue(forKey: name) }
                    let ids = (0..<topic.partitionCount).map { TopicPartition(topic: name, partition: $0) }
                    partitions.withLock { table in for id in ids { table[id] = nil } }
                    // Every partition, also across a crash (see `LogManager.deleteLogs`).
                    try logs.deleteLogs(ids)
                    try storeConfig(name, nil)
                    return true
                })
            }
        }
        return try result.get()
    }

    func topic(id: KafkaUUID) -> Topic? { topics.withLock { $0.values.first { $0.id == id } } }

    /// A UUID derived from the name (FNV-1a, two seeds), never the zero UUID.
    static func id(for name: String) -> KafkaUUID {
        func fnv(_ seed: UInt64) -> UInt64 {
            var hash = seed
            for byte in name.utf8 {
                hash ^= UInt64(byte)
                hash = hash &* 0x0000_0100_0000_01B3
            }
            return hash
        }
        return KafkaUUID(high: fnv(0xcbf2_9ce4_8422_2325) | 1, low: fnv(0x8422_2325_cbf2_9ce4))
    }
}
