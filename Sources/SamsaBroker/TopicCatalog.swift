import SamsaProtocol

/// The cluster's brokers, topics and partition states as Metadata and CreateTopics see them, and
/// where new topics are made: `CoordinationCatalog` reads and writes coordination; `LocalCatalog` is a
/// single broker's view of itself, a cluster of one. Handlers take whichever the broker has
/// (`RequestDispatcher.catalog`) and have one code path.
protocol TopicCatalog: Sendable {
    func liveBrokers() async throws -> [BrokerID: BrokerRegistration]
    func controller() async -> BrokerID?
    func topicNames() async throws -> [String]
    /// The topic's partitions, or nil if it does not exist.
    func partitions(of topic: String) async throws -> [PartitionView]?
    /// Makes a topic whose name, partition count and configs are valid; the replication factor
    /// it got.
    func createTopic(_ name: String, partitions: Int32, replicationFactor: Int16, config: TopicConfig, validateOnly: Bool) async throws(CatalogError)
        -> Int16
    /// Deletes a topic this broker holds: its partitions and files go at once.
    func deleteTopic(_ name: String) async throws(CatalogError)
}

/// A partition as Metadata shows it: its replicas and its state (nil while it has none).
struct PartitionView: Sendable {
    var index: Int32
    var replicas: [BrokerID]
    var state: PartitionStateNode?
}

/// Why a topic was not made or deleted: the error code and message the request is answered with.
struct CatalogError: Error {
    var code: ErrorCode
    var message: String

    static func alreadyExists(_ name: String) -> CatalogError {
        CatalogError(code: .topicAlreadyExists, message: "topic '\(name)' already exists")
    }
}

/// A single broker, as the only broker of its cluster: controller, and leader and only replica of
/// every partition at epoch 0 (the `Partition`s say so).
struct LocalCatalog: TopicCatalog {
    let brokerId: BrokerID
    let advertised: BrokerRegistration
    let topics: TopicTable

    func liveBrokers() -> [BrokerID: BrokerRegistration] { [brokerId: advertised] }

    func controller() -> BrokerID? { brokerId }

    func topicNames() -> [String] { topics.all.map(\.name) }

    func partitions(of name: String) -> [PartitionView]? {
        guard let topic = topics.topic(name) else { return nil }
        return (0..<topic.partitionCount).map { index in
            let state = topics.partition(name, index)?.snapshot
            return PartitionView(
                index: index, replicas: state?.replicas ?? [brokerId],
                state: state.map { PartitionStateNode(leader: $0.role == .leader ? brokerId : .none, leaderEpoch: $0.leaderEpoch, isr: $0.isr, controllerEpoch: 0) })
        }
    }

    func createTopic(_ name: String, partitions: Int32, replicationFactor: Int16, config: TopicConfig, validateOnly: Bool) async throws(CatalogError)
        -> Int16
    {
        guard replicationFactor == -1 || replicationFactor == 1 else {
            throw CatalogError(code: .invalidReplicationFactor, message: "replication factor \(replicationFactor) is larger than the 1 available broker")
        }
        do {
            _ = try await topics.create(name, partitions: partitions, config: config, validateOnly: validateOnly)
            return 1
        } catch {
            switch error {
            case .invalidTopic(let message): throw CatalogError(code: .invalidTopic, message: message)
            case .alreadyExists: throw .alreadyExists(name)
            case .invalidPartitions: throw CatalogError(code: .invalidPartitions, message: "number of partitions must be larger than 0")
            case .partitionLimit(let message): throw CatalogError(code: .policyViolation, message: message)
            case .storage(let failure): throw CatalogError(code: .kafkaStorageError, message: "\(failure)")
            }
        }
    }

    func deleteTopic(_ name: String) async throws(CatalogError) {
        let deleted: Bool
        do {
            deleted = try await topics.delete(name)
        } catch {
            throw CatalogError(code: .kafkaStorageError, message: "\(error)")
        }
        guard deleted else { throw CatalogError(code: .unknownTopicOrPartition, message: "topic '\(name)' does not exist") }
    }
}
