import Logging
import SamsaStorage
import Synchronization

/// Puts an `__consumer_offsets` made before log compaction existed (with retention disabled and the
/// coordinator's own compaction instead) under `cleanup.policy=compact`, Kafka's config for it, so the
/// log cleaner keeps its partitions bounded. Done through the config store (the registry on a single
/// broker, coordination in a cluster, from where every broker applies it) by the first partition load
/// that finds the config missing; a failure is retried at the next load.
final class OffsetsTopicCompaction: Sendable {
    private let configStore: any ConfigStore
    private let topics: TopicTable
    private let logger: Logger
    private let done = Atomic<Bool>(false)

    init(configStore: any ConfigStore, topics: TopicTable, logger: Logger) {
        self.configStore = configStore
        self.topics = topics
        self.logger = logger
    }

    /// Whether the topic's own config compacts it.
    static func compacts(_ config: TopicConfig) -> Bool {
        config.overrides["cleanup.policy"].flatMap { CleanupPolicy($0) }?.compacts == true
    }

    /// Sets `cleanup.policy=compact` on the topic unless it compacts already.
    func ensure() async {
        guard !done.load(ordering: .acquiring) else { return }
        guard topics.topic(GroupPlacement.topic) != nil else { return }
        if Self.compacts(topics.config(GroupPlacement.topic)) {
            done.store(true, ordering: .releasing)
            return
        }
        let change: TopicTable.ConfigChange = { config in
            guard !Self.compacts(config) else { return config }
            var updated = config
            updated.overrides["cleanup.policy"] = "compact"
            return updated
        }
        switch await configStore.alterTopics([(GroupPlacement.topic, change)], validateOnly: false).first {
        case .success(.some(_))?:
            done.store(true, ordering: .releasing)
            logger.notice("__consumer_offsets is now compacted by the log cleaner (cleanup.policy=compact)")
        case .success(nil)?, nil:
            break  // deleted meanwhile: made again, with the policy, on next use
        case .failure(let error)?:
            logger.warning("setting cleanup.policy=compact on __consumer_offsets failed; retried at the next partition load", metadata: ["error": "\(error)"])
        }
    }
}
