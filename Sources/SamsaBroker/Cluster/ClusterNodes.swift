import Foundation
import SamsaProtocol

/// Kafka's ZooKeeper layout (the model for what the cluster stores), under `root`:
/// `/brokers/ids/N` (ephemeral, the broker's listener), `/brokers/topics/T` (replica assignment),
/// `/brokers/topics/T/partitions/P/state` (leader, leader epoch, ISR, controller epoch; written only
/// with a version check), `/controller` (ephemeral, the controller's id), `/controller_epoch`,
/// `/config/topics/T` (the topic's configs).
struct ClusterPaths: Sendable {
    let root: String

    var brokerIds: String { "\(root)/brokers/ids" }
    func broker(_ id: BrokerID) -> String { "\(brokerIds)/\(id)" }
    var topics: String { "\(root)/brokers/topics" }
    func topic(_ name: String) -> String { "\(topics)/\(name)" }
    func partitions(_ topic: String) -> String { "\(self.topic(topic))/partitions" }
    func partition(_ topic: String, _ partition: Int32) -> String { "\(partitions(topic))/\(partition)" }
    func state(_ topic: String, _ partition: Int32) -> String { "\(self.partition(topic, partition))/state" }
    var controller: String { "\(root)/controller" }
    var controllerEpoch: String { "\(root)/controller_epoch" }
    var topicConfigs: String { "\(root)/config/topics" }
    func topicConfig(_ name: String) -> String { "\(topicConfigs)/\(name)" }

    /// The persistent nodes every broker expects.
    var skeleton: [String] { [brokerIds, topics, topicConfigs] }
}

/// `/brokers/ids/N`.
struct BrokerRegistration: Codable, Sendable, Hashable {
    var version = 5
    var host: String
    var port: Int32
    var endpoints: [String]

    init(host: String, port: Int32) {
        self.host = host
        self.port = port
        self.endpoints = ["PLAINTEXT://\(host):\(port)"]
    }
}

/// `/brokers/topics/T`: the topic's id (KIP-516, Kafka's text form; nil in nodes from before ids)
/// and partition → replica broker ids, the first the preferred leader. A partition being reassigned
/// (KIP-455) has, as in Kafka's ZooKeeper node, its full replica set (target first, then the
/// original replicas leaving) under `partitions` and the difference under `adding_replicas` /
/// `removing_replicas`: every broker reads the one node it already watches, and a new controller
/// finds the reassignments it must finish there.
struct TopicAssignment: Codable, Sendable, Hashable {
    var version = 3
    var topicId: String?
    var partitions: [String: [BrokerID]]
    var addingReplicas: [String: [BrokerID]]?
    var removingReplicas: [String: [BrokerID]]?

    enum CodingKeys: String, CodingKey {
        case version, partitions
        case topicId = "topic_id"
        case addingReplicas = "adding_replicas"
        case removingReplicas = "removing_replicas"
    }

    func replicas(_ partition: Int32) -> [BrokerID] { partitions["\(partition)"] ?? [] }
    var partitionCount: Int32 { Int32(partitions.count) }
    var id: KafkaUUID? { topicId.flatMap(KafkaUUID.init(text:)) }

    func adding(_ partition: Int32) -> [BrokerID] { addingReplicas?["\(partition)"] ?? [] }
    func removing(_ partition: Int32) -> [BrokerID] { removingReplicas?["\(partition)"] ?? [] }
    func isReassigning(_ partition: Int32) -> Bool { !adding(partition).isEmpty || !removing(partition).isEmpty }
    /// The partitions being reassigned, in order.
    var reassigning: [Int32] { (0..<partitionCount).filter(isReassigning) }
    /// Where a reassignment goes: the replicas without those leaving.
    func target(_ partition: Int32) -> [BrokerID] { replicas(partition).filter { !removing(partition).contains($0) } }
    /// The replicas before the reassignment began (Kafka's origin replicas): without those joining.
    func origin(_ partition: Int32) -> [BrokerID] { replicas(partition).filter { !adding(partition).contains($0) } }

    /// Begins (or redirects) a reassignment of `partition` from its origin replicas to `target`, as
    /// Kafka's `ReplicaAssignment.reassignTo`: the full set is the target, then the origin replicas
    /// not in it. A target equal to the origin ends the reassignment (a cancel).
    mutating func reassign(_ partition: Int32, to target: [BrokerID]) {
        let origin = origin(partition)
        let key = "\(partition)"
        partitions[key] = target + origin.filter { !target.contains($0) }
        let adding = target.filter { !origin.contains($0) }
        let removing = origin.filter { !target.contains($0) }
        addingReplicas = Self.setting(addingReplicas, key, adding)
        removingReplicas = Self.setting(removingReplicas, key, removing)
    }

    /// Ends the partition's reassignment at its target.
    mutating func completeReassignment(_ partition: Int32) {
        let target = target(partition)
        let key = "\(partition)"
        partitions[key] = target
        addingReplicas = Self.setting(addingReplicas, key, [])
        removingReplicas = Self.setting(removingReplicas, key, [])
    }

    /// `table` with `key` set to `value` (removed when empty); nil when nothing is left, so a node
    /// without reassignments looks as before.
    private static func setting(_ table: [String: [BrokerID]]?, _ key: String, _ value: [BrokerID]) -> [String: [BrokerID]]? {
        var table = table ?? [:]
        table[key] = value.isEmpty ? nil : value
        return table.isEmpty ? nil : table
    }
}

/// `/brokers/topics/T/partitions/P/state`. `leader` is -1 while no ISR member is alive.
struct PartitionStateNode: Codable, Sendable, Hashable {
    var version = 1
    var leader: BrokerID
    var leaderEpoch: LeaderEpoch
    var isr: [BrokerID]
    var controllerEpoch: Int32

    enum CodingKeys: String, CodingKey {
        case version, leader, isr
        case leaderEpoch = "leader_epoch"
        case controllerEpoch = "controller_epoch"
    }
}

extension PartitionStateNode {
    /// This state with `broker` out of the ISR, and if it leads, the next live ISR member in
    /// assignment order leading at the next epoch. Nil when `broker` is not in the ISR, when it leads
    /// and no other ISR member is live, or when the partition has no leader (the controller elects
    /// one when an ISR member returns: no unclean election, so the ISR is left as it is).
    func withdrawing(_ broker: BrokerID, replicas: [BrokerID], live: Set<BrokerID>) -> PartitionStateNode? {
        guard leader != .none, isr.contains(broker) else { return nil }
        var next = self
        next.isr = isr.filter { $0 != broker }
        if leader == broker {
            guard let successor = replicas.first(where: { $0 != broker && isr.contains($0) && live.contains($0) }) else { return nil }
            next.leader = successor
            next.leaderEpoch = leaderEpoch.next
        }
        return next
    }
}

/// `/controller`.
struct ControllerNode: Codable, Sendable, Hashable {
    var version = 1
    var brokerid: BrokerID
    var timestamp: String
}

/// `/config/topics/T`.
struct TopicConfigNode: Codable, Sendable, Hashable {
    var version = 1
    var config: [String: String]
}

enum ClusterJSON {
    static func encode<Value: Encodable>(_ value: Value) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return Array((try? encoder.encode(value)) ?? Data())
    }

    static func decode<Value: Decodable>(_ type: Value.Type, _ bytes: [UInt8]) throws -> Value {
        try JSONDecoder().decode(type, from: Data(bytes))
    }
}
