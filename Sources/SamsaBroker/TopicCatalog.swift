import SamsaProtocol
import SamsaStorage

/// The cluster's brokers, topics and partition states as Metadata and CreateTopics see them, and
/// where new topics are made: `CoordinationCatalog` reads and writes coordination; `LocalCatalog` is a
/// single broker's view of itself, a cluster of one. Handlers take whichever the broker has
/// (`RequestDispatcher.catalog`) and have one code path.
protocol TopicCatalog: Sendable {
    func liveBrokers() async throws -> [BrokerID: BrokerRegistration]
    func controller() async -> BrokerID?
    func topicNames() async throws -> [String]
    /// The topic's id and partitions, or nil if it does not exist.
    func topic(_ name: String) async throws -> TopicView?
    /// The name of the topic with this id, or nil if there is none.
    func topicName(id: KafkaUUID) async throws -> String?
    /// Makes a topic whose name, partition count and configs are valid (with a new random id); the
    /// replication factor and id it got.
    func createTopic(_ name: String, partitions: Int32, replicationFactor: Int16, config: TopicConfig, validateOnly: Bool) async throws(CatalogError)
        -> (replicationFactor: Int16, id: KafkaUUID)
    /// Grows the topic to `count` partitions, their replicas `manual` (one list per new partition)
    /// or spread over the brokers; checked by `PartitionGrowth`.
    func createPartitions(_ name: String, count: Int32, manual: [[BrokerID]]?, validateOnly: Bool) async throws(CatalogError)
    /// Elects leaders (ElectLeaders): the preferred replica, or for `unclean` a leader of partitions
    /// without one (never outside the ISR); nil partitions: all, answering only those that needed one.
    func electLeaders(_ partitions: [TopicPartition]?, unclean: Bool) async throws(CatalogError) -> [ClusterController.Election]
    /// Deletes the topic: every replica's logs go (at once here; on other brokers when they see it).
    func deleteTopic(_ name: String) async throws(CatalogError)
    /// Starts, redirects or (nil replicas) cancels partition reassignments (KIP-455); one answer per
    /// partition. NOT_CONTROLLER on a broker that is not the controller.
    func reassignPartitions(_ requests: [(TopicPartition, [BrokerID]?)], allowReplicationFactorChange: Bool) async throws(CatalogError)
        -> [ClusterController.ReassignmentOutcome]
    /// The ongoing reassignments of `partitions` (nil: all).
    func ongoingReassignments(_ partitions: [TopicPartition]?) async throws(CatalogError) -> [ClusterController.OngoingReassignment]
}

extension TopicCatalog {
    /// The topic's partitions, or nil if it does not exist.
    func partitions(of topic: String) async throws -> [PartitionView]? { try await self.topic(topic)?.partitions }
}

/// A topic as Metadata shows it.
struct TopicView: Sendable {
    var id: KafkaUUID
    var partitions: [PartitionView]
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

    static func unknownTopic(_ name: String) -> CatalogError {
        CatalogError(code: .unknownTopicOrPartition, message: "The topic '\(TopicTable.quoted(name))' does not exist.")
    }
}

extension CatalogError {
    /// A topic table's refusal, as the request is answered.
    init(_ error: TopicTable.CreateError, topic name: String) {
        switch error {
        case .invalidTopic(let message): self.init(code: .invalidTopic, message: message)
        case .alreadyExists: self = .alreadyExists(name)
        case .invalidPartitions: self.init(code: .invalidPartitions, message: "number of partitions must be larger than 0")
        case .unknownTopic: self = .unknownTopic(name)
        case .partitionLimit(let message): self.init(code: .policyViolation, message: message)
        case .storage(let failure): self.init(code: .kafkaStorageError, message: "\(failure)")
        }
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

    func topic(_ name: String) -> TopicView? {
        guard let topic = topics.topic(name) else { return nil }
        let partitions = (0..<topic.partitionCount).map { index in
            let state = topics.partition(name, index)?.snapshot
            return PartitionView(
                index: index, replicas: state?.replicas ?? [brokerId],
                state: state.map { PartitionStateNode(leader: $0.role == .leader ? brokerId : .none, leaderEpoch: $0.leaderEpoch, isr: $0.isr, controllerEpoch: 0) })
        }
        return TopicView(id: topic.id, partitions: partitions)
    }

    func topicName(id: KafkaUUID) -> String? { topics.topic(id: id)?.name }

    func createTopic(_ name: String, partitions: Int32, replicationFactor: Int16, config: TopicConfig, validateOnly: Bool) async throws(CatalogError)
        -> (replicationFactor: Int16, id: KafkaUUID)
    {
        guard replicationFactor == -1 || replicationFactor == 1 else {
            throw CatalogError(code: .invalidReplicationFactor, message: "replication factor \(replicationFactor) is larger than the 1 available broker")
        }
        do {
            return (1, try await topics.create(name, partitions: partitions, config: config, validateOnly: validateOnly).id)
        } catch {
            throw CatalogError(error, topic: name)
        }
    }

    func createPartitions(_ name: String, count: Int32, manual: [[BrokerID]]?, validateOnly: Bool) async throws(CatalogError) {
        guard let topic = topics.topic(name) else { throw .unknownTopic(name) }
        let existing = Array(repeating: [brokerId], count: Int(topic.partitionCount))
        _ = try PartitionGrowth.replicas(of: name, existing: existing, count: count, manual: manual, brokers: [brokerId])
        do {
            _ = try await topics.addPartitions(name, to: count, validateOnly: validateOnly)
        } catch {
            throw CatalogError(error, topic: name)
        }
    }

    /// The one broker leads every partition and is its preferred replica: no election is ever needed.
    func electLeaders(_ partitions: [TopicPartition]?, unclean: Bool) -> [ClusterController.Election] {
        (partitions ?? []).map { partition in
            guard let topic = topics.topic(partition.topic), partition.partition >= 0, partition.partition < topic.partitionCount else {
                return ClusterController.Election(partition: partition, error: .unknownTopicOrPartition, message: "The partition does not exist.")
            }
            return ClusterController.Election(partition: partition, error: .electionNotNeeded, message: "Leader election not needed for topic partition.")
        }
    }

    /// The one broker is every partition's only possible replica: the only valid target is [itself],
    /// already in place, so nothing is ever being reassigned.
    func reassignPartitions(_ requests: [(TopicPartition, [BrokerID]?)], allowReplicationFactorChange: Bool) -> [ClusterController.ReassignmentOutcome] {
        ClusterController.lastPerPartition(requests).map { partition, target in
            guard let topic = topics.topic(partition.topic), partition.partition >= 0, partition.partition < topic.partitionCount else {
                return .init(partition: partition, error: .unknownTopicOrPartition, message: ClusterController.unknown(partition.topic, partition.partition))
            }
            guard let target else {
                return .init(partition: partition, error: .noReassignmentInProgress, message: ClusterController.noReassignment(partition.topic, partition.partition))
            }
            let refusal = ClusterController.refusal(of: target, origin: [brokerId], live: [brokerId], allowReplicationFactorChange: allowReplicationFactorChange)
            return .init(partition: partition, error: refusal?.0, message: refusal?.1)
        }
    }

    func ongoingReassignments(_ partitions: [TopicPartition]?) -> [ClusterController.OngoingReassignment] { [] }

    func deleteTopic(_ name: String) async throws(CatalogError) {
        let deleted: Bool
        do {
            deleted = try await topics.delete(name)
        } catch {
            throw CatalogError(code: .kafkaStorageError, message: "\(error)")
        }
        guard deleted else { throw .unknownTopic(name) }
    }
}
