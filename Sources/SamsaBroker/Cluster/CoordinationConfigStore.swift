import SamsaCoordination

extension ClusterPaths {
    /// `/config/brokers`: dynamic broker configs, `<default>` for every broker and `<id>` for one (Kafka's layout).
    var brokerConfigs: String { "\(root)/config/brokers" }
    func brokerConfig(_ entity: BrokerConfigs.Entity) -> String { "\(brokerConfigs)/\(entity.storedName)" }
}

/// Topic and broker configs in coordination (Kafka's ZooKeeper layout: `/config/topics/<topic>`,
/// `/config/brokers/<default>` and `/config/brokers/<id>`, each `{"version":1,"config":{...}}`).
/// A change is a read-modify-write checked against the node's version, retried on a conflict, so
/// concurrent changes from any broker are never lost. Every broker, this one included, applies what
/// is written through its `ConfigWatcher`.
struct CoordinationConfigStore: ConfigStore {
    let session: any CoordinationSession
    let paths: ClusterPaths
    let topics: TopicTable

    func topicOverrides(_ name: String) async throws(ConfigChangeError) -> TopicConfig? {
        try await read(topic: name).map { TopicConfig(overrides: $0.values) }
    }

    /// One topic at a time: each is its own node (a conflict retries only that topic).
    func alterTopics(_ changes: [(topic: String, change: TopicTable.ConfigChange)], validateOnly: Bool) async -> [Result<TopicConfig?, ConfigChangeError>] {
        var outcomes: [Result<TopicConfig?, ConfigChangeError>] = []
        for (name, change) in changes {
            do throws(ConfigChangeError) {
                outcomes.append(.success(try await alterTopic(name, validateOnly: validateOnly, change)))
            } catch {
                outcomes.append(.failure(error))
            }
        }
        return outcomes
    }

    private func alterTopic(_ name: String, validateOnly: Bool, _ change: TopicTable.ConfigChange) async throws(ConfigChangeError) -> TopicConfig? {
        guard TopicTable.validate(name) == nil else { return nil }
        while true {
            guard let current = try await read(topic: name) else { return nil }
            let updated = try change(TopicConfig(overrides: current.values))
            if validateOnly { return updated }
            if try await write(paths.topicConfig(name), updated.overrides, over: current.version, whileExists: paths.topic(name)) { return updated }
        }
    }

    func alterBroker(
        _ entity: BrokerConfigs.Entity, validateOnly: Bool,
        _ change: @escaping @Sendable ([String: String]) throws(ConfigChangeError) -> [String: String]
    ) async throws(ConfigChangeError) {
        let path = paths.brokerConfig(entity)
        while true {
            let current = try await read(path) ?? (values: [:], version: nil)
            let updated = try change(current.values)
            if validateOnly { return }
            if try await write(path, updated, over: current.version) { return }
        }
    }

    /// A topic's config node; nil if the topic does not exist (a topic without a config node has none).
    private func read(topic name: String) async throws(ConfigChangeError) -> (values: [String: String], version: Int32?)? {
        if let node = try await read(paths.topicConfig(name)) { return node }
        do {
            return try await session.exists(paths.topic(name)) == nil ? nil : ([:], nil)
        } catch {
            throw .unavailable("reading topic \(name) from coordination failed: \(error)")
        }
    }

    /// A config node's values and version, nil if it does not exist.
    private func read(_ path: String) async throws(ConfigChangeError) -> (values: [String: String], version: Int32?)? {
        do {
            let (data, stat) = try await session.data(path)
            return (try ClusterJSON.decode(TopicConfigNode.self, data).config, stat.version)
        } catch let error as CoordinationError where error.code == .noNode {
            return nil
        } catch {
            throw .unavailable("reading \(path) from coordination failed: \(error)")
        }
    }

    /// Writes a config node if it is still at `version` (nil: absent; then only while the node
    /// `whileExists` names exists, in one transaction, so a topic deleted meanwhile is not left a
    /// config node that would refuse its re-creation); false when another write came first.
    private func write(_ path: String, _ values: [String: String], over version: Int32?, whileExists owner: String? = nil) async throws(ConfigChangeError)
        -> Bool
    {
        let data = ClusterJSON.encode(TopicConfigNode(config: values))
        do {
            if let version {
                _ = try await session.setData(path, data: data, version: version)
            } else if let owner {
                _ = try await session.multi([.check(path: owner, version: -1), .create(path: path, data: data, mode: .persistent)])
            } else {
                try await session.createPath(String(path[..<path.lastIndex(of: "/")!]))
                _ = try await session.create(path, data: data, mode: .persistent)
            }
            return true
        } catch let error as CoordinationError where error.code == .badVersion || error.code == .nodeExists || error.code == .noNode {
            return false
        } catch {
            throw .unavailable("writing \(path) to coordination failed: \(error)")
        }
    }
}
