public import SamsaProtocol

/// A broker of the cluster, as Metadata lists it.
public struct BrokerNode: Sendable, Hashable {
    public var id: Int32
    public var host: String
    public var port: Int
    public var rack: String?
}

/// One partition: its leader and replicas as the cluster reports them.
public struct PartitionMetadata: Sendable, Hashable {
    public var partition: Int32
    public var error: ErrorCode
    /// The leader's node id; -1 when there is none.
    public var leader: Int32
    public var leaderEpoch: Int32
    public var replicas: [Int32]
    public var isr: [Int32]
    public var offlineReplicas: [Int32]
}

/// One topic with its partitions in index order.
public struct TopicMetadata: Sendable, Hashable {
    public var name: String
    public var error: ErrorCode
    public var isInternal: Bool
    public var partitions: [PartitionMetadata]
}

/// What a Metadata response says about the cluster.
public struct ClusterMetadata: Sendable, Hashable {
    public var clusterId: String?
    public var controllerId: Int32
    public var brokers: [Int32: BrokerNode]
    public var topics: [String: TopicMetadata]

    public init(clusterId: String? = nil, controllerId: Int32 = -1, brokers: [Int32: BrokerNode] = [:], topics: [String: TopicMetadata] = [:]) {
        self.clusterId = clusterId
        self.controllerId = controllerId
        self.brokers = brokers
        self.topics = topics
    }

    init(_ response: MetadataResponse) {
        var brokers: [Int32: BrokerNode] = [:]
        for broker in response.brokers {
            brokers[broker.nodeId] = BrokerNode(id: broker.nodeId, host: broker.host, port: Int(broker.port), rack: broker.rack)
        }
        var topics: [String: TopicMetadata] = [:]
        for topic in response.topics {
            guard let name = topic.name else { continue }
            let partitions = topic.partitions.map { p in
                PartitionMetadata(
                    partition: p.partitionIndex, error: ErrorCode(rawValue: p.errorCode) ?? .unknown, leader: p.leaderId,
                    leaderEpoch: p.leaderEpoch, replicas: p.replicaNodes, isr: p.isrNodes, offlineReplicas: p.offlineReplicas)
            }.sorted { $0.partition < $1.partition }
            topics[name] = TopicMetadata(
                name: name, error: ErrorCode(rawValue: topic.errorCode) ?? .unknown, isInternal: topic.isInternal, partitions: partitions)
        }
        self.init(clusterId: response.clusterId, controllerId: response.controllerId, brokers: brokers, topics: topics)
    }

    /// The partition's metadata when the cluster knows a leader for it.
    public func leader(topic: String, partition: Int32) -> PartitionMetadata? {
        guard let entry = topics[topic], entry.error == .none, partition >= 0, Int(partition) < entry.partitions.count else { return nil }
        let metadata = entry.partitions[Int(partition)]
        guard metadata.partition == partition, metadata.leader >= 0, brokers[metadata.leader] != nil else { return nil }
        return metadata
    }

    /// Merges a response about some topics into what was known (the brokers are replaced).
    mutating func merge(_ newer: ClusterMetadata) {
        clusterId = newer.clusterId
        controllerId = newer.controllerId
        brokers = newer.brokers
        for (name, topic) in newer.topics { topics[name] = topic }
    }
}
