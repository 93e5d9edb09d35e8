import SamsaCoordination
import SamsaProtocol

/// Reads and writes the cluster's metadata in coordination for clients' requests: the live brokers,
/// each partition's leader / replicas / ISR (Metadata), and new topics' replica assignments
/// (CreateTopics). Read straight from coordination on each request (no metadata cache).
struct CoordinationCatalog: TopicCatalog {
    let paths: ClusterPaths
    let session: any CoordinationSession

    func liveBrokers() async throws -> [BrokerID: BrokerRegistration] {
        var brokers: [BrokerID: BrokerRegistration] = [:]
        for name in try await session.children(paths.brokerIds) {
            guard let id = BrokerID(name: name) else { continue }
            if let data = try? await session.data(paths.broker(id)).data, let registration = try? ClusterJSON.decode(BrokerRegistration.self, data) {
                brokers[id] = registration
            }
        }
        return brokers
    }

    func controller() async -> BrokerID? {
        guard let data = try? await session.data(paths.controller).data else { return nil }
        return (try? ClusterJSON.decode(ControllerNode.self, data))?.brokerid
    }

    func topicNames() async throws -> [String] { try await session.children(paths.topics).sorted() }

    /// The topic's partitions, or nil if it does not exist.
    func partitions(of topic: String) async throws -> [PartitionView]? {
        let data: [UInt8]
        do {
            data = try await session.data(paths.topic(topic)).data
        } catch let error as CoordinationError where error.code == .noNode {
            return nil
        }
        let assignment = try ClusterJSON.decode(TopicAssignment.self, data)
        var views: [PartitionView] = []
        for index in 0..<assignment.partitionCount {
            let state = try? ClusterJSON.decode(PartitionStateNode.self, try await session.data(paths.state(topic, index)).data)
            views.append(PartitionView(index: index, replicas: assignment.replicas(index), state: state))
        }
        return views
    }

    /// Assigns replicas over the live brokers (partition p's replicas start at the (p + offset)-th
    /// broker, so leaders and copies spread) and writes the assignment, each partition's first state
    /// (the first replica leads at epoch 0, every replica in the ISR) and the configs in one multi.
    func createTopic(_ name: String, partitions: Int32, replicationFactor: Int16, config: TopicConfig, validateOnly: Bool) async throws(CatalogError)
        -> Int16
    {
        let live: [BrokerID]
        let controllerEpoch: Int32
        do {
            live = try await session.children(paths.brokerIds).compactMap(BrokerID.init(name:)).sorted()
            controllerEpoch = (try? await session.data(paths.controllerEpoch).data).flatMap { Int32(String(decoding: $0, as: UTF8.self)) } ?? 0
        } catch {
            throw Self.coordinationFailed(error)
        }
        let factor = replicationFactor == -1 ? 1 : Int(replicationFactor)
        guard factor >= 1, factor <= live.count else {
            throw CatalogError(
                code: .invalidReplicationFactor, message: "replication factor \(replicationFactor) is larger than the \(live.count) live brokers")
        }
        let offset = Int(TopicTable.id(for: name).low % UInt64(live.count))
        var assignment = TopicAssignment(partitions: [:])
        for partition in 0..<Int(partitions) {
            assignment.partitions["\(partition)"] = (0..<factor).map { live[(partition + offset + $0) % live.count] }
        }
        if validateOnly { return Int16(factor) }
        var operations: [Operation] = [
            .create(path: paths.topicConfig(name), data: ClusterJSON.encode(TopicConfigNode(config: config.overrides)), mode: .persistent),
            .create(path: paths.topic(name), data: ClusterJSON.encode(assignment), mode: .persistent),
            .create(path: paths.partitions(name), data: [], mode: .persistent),
        ]
        for partition in Int32(0)..<partitions {
            let replicas = assignment.replicas(partition)
            let state = PartitionStateNode(leader: replicas[0], leaderEpoch: 0, isr: replicas, controllerEpoch: controllerEpoch)
            operations.append(.create(path: paths.partition(name, partition), data: [], mode: .persistent))
            operations.append(.create(path: paths.state(name, partition), data: ClusterJSON.encode(state), mode: .persistent))
        }
        do {
            _ = try await session.multi(operations)
        } catch let error as CoordinationError where error.code == .nodeExists {
            throw .alreadyExists(name)
        } catch {
            throw Self.coordinationFailed(error)
        }
        return Int16(factor)
    }

    private static func coordinationFailed(_ error: any Error) -> CatalogError {
        CatalogError(code: .unknown, message: "\(error)")
    }

    /// Not yet: a replicated topic's deletion must reach every replica's broker (issue 19).
    func deleteTopic(_ name: String) async throws(CatalogError) {
        throw CatalogError(code: .invalidRequest, message: "deleting a replicated topic is not supported yet")
    }
}
