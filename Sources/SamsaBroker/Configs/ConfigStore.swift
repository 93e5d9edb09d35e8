import Dispatch
import SamsaStorage

/// Where topic and broker configs are read and changed for AlterConfigs, IncrementalAlterConfigs and
/// DescribeConfigs: `LocalConfigStore` keeps them in the data directory and applies them at once (a
/// single broker is a cluster of one); `CoordinationConfigStore` writes them to coordination, from
/// where every broker's `ConfigWatcher` applies them. Each change is a read-modify-write that
/// concurrent changes cannot lose.
protocol ConfigStore: Sendable {
    /// The topic's overrides, or nil if there is no such topic.
    func topicOverrides(_ name: String) async throws(ConfigChangeError) -> TopicConfig?
    /// Replaces each topic's overrides by `change(current)`; with `validateOnly` only checks. Per
    /// change, in order: nil if there is no such topic, else the new overrides, or why not.
    func alterTopics(_ changes: [(topic: String, change: TopicTable.ConfigChange)], validateOnly: Bool) async -> [Result<TopicConfig?, ConfigChangeError>]
    /// Replaces `entity`'s dynamic broker configs (broker config names) by `change(current)`.
    func alterBroker(
        _ entity: BrokerConfigs.Entity, validateOnly: Bool,
        _ change: @escaping @Sendable ([String: String]) throws(ConfigChangeError) -> [String: String]
    ) async throws(ConfigChangeError)
}

/// A single broker's configs: topics' in `topics.json` (through `TopicTable.alterConfigs`), the
/// broker's in `DynamicBrokerConfigFile`; both applied to the open logs before the answer.
struct LocalConfigStore: ConfigStore {
    let topics: TopicTable
    let dataDirectory: String
    /// Broker config changes, one at a time (each writes the whole file).
    private let queue = DispatchQueue(label: "samsa.broker.dynamic-configs")

    init(topics: TopicTable, dataDirectory: String) {
        self.topics = topics
        self.dataDirectory = dataDirectory
    }

    func topicOverrides(_ name: String) -> TopicConfig? {
        topics.topic(name) == nil ? nil : topics.config(name)
    }

    func alterTopics(_ changes: [(topic: String, change: TopicTable.ConfigChange)], validateOnly: Bool) async -> [Result<TopicConfig?, ConfigChangeError>] {
        await topics.alterConfigs(changes, validateOnly: validateOnly)
    }

    func alterBroker(
        _ entity: BrokerConfigs.Entity, validateOnly: Bool,
        _ change: @escaping @Sendable ([String: String]) throws(ConfigChangeError) -> [String: String]
    ) async throws(ConfigChangeError) {
        let configs = topics.brokerConfigs
        let result: Result<Bool, ConfigChangeError> = await withCheckedContinuation { continuation in
            queue.async { [dataDirectory] in
                continuation.resume(returning: Result { () throws(ConfigChangeError) -> Bool in
                    let updated = try change(configs.dynamicValues(entity))
                    if validateOnly { return false }
                    var stored: [String: [String: String]] = [:]
                    for known in [BrokerConfigs.Entity.clusterDefault, .broker(configs.brokerId)] {
                        let values = known == entity ? updated : configs.dynamicValues(known)
                        if !values.isEmpty { stored[known.storedName] = values }
                    }
                    do throws(StorageError) {
                        try DynamicBrokerConfigFile.write(stored, dataDirectory: dataDirectory)
                    } catch {
                        throw .storage(error)
                    }
                    return configs.replace(entity, with: updated)
                })
            }
        }
        if try result.get() { await topics.reapplyBrokerConfigs() }
    }
}
