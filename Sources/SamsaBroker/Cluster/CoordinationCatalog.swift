import SamsaCoordination
import SamsaProtocol
import SamsaStorage

/// Reads and writes the cluster's metadata in coordination for clients' requests: the live brokers,
/// each partition's leader / replicas / ISR (Metadata), read from the broker's `MetadataCache`, and
/// new topics' replica assignments (CreateTopics), written to coordination and then held in the
/// cache, so a request through this broker sees its own change at once.
struct CoordinationCatalog: TopicCatalog {
    let paths: ClusterPaths
    let session: any CoordinationSession
    let cache: MetadataCache
    /// This broker's controller side: elections and reassignments on request run there (NOT_CONTROLLER elsewhere).
    let elections: ClusterController

    func electLeaders(_ partitions: [TopicPartition]?, unclean: Bool) async throws(CatalogError) -> [ClusterController.Election] {
        try await elections.elect(partitions, unclean: unclean)
    }

    func reassignPartitions(_ requests: [(TopicPartition, [BrokerID]?)], allowReplicationFactorChange: Bool) async throws(CatalogError)
        -> [ClusterController.ReassignmentOutcome]
    {
        try await elections.reassign(requests, allowReplicationFactorChange: allowReplicationFactorChange)
    }

    func ongoingReassignments(_ partitions: [TopicPartition]?) async throws(CatalogError) -> [ClusterController.OngoingReassignment] {
        try await elections.ongoingReassignments(partitions)
    }

    func liveBrokers() async throws -> [BrokerID: BrokerRegistration] { try await cache.liveBrokers() }

    func controller() async -> BrokerID? { await cache.controller() }

    func topicNames() async throws -> [String] { try await cache.topicNames() }

    func topic(_ name: String) async throws -> TopicView? { try await cache.topic(name) }

    /// The topic's assignment node and its version, or nil if it does not exist.
    private func assignment(of name: String) async throws -> (assignment: TopicAssignment, version: Int32)? {
        do {
            let (data, stat) = try await session.data(paths.topic(name))
            return (try ClusterJSON.decode(TopicAssignment.self, data), stat.version)
        } catch let error as CoordinationError where error.code == .noNode {
            return nil
        }
    }

    func topicName(id: KafkaUUID) async throws -> String? { try await cache.topicName(id: id) }

    /// Where a new topic's replicas start among the live brokers: from the name (FNV-1a), so
    /// leaders spread over topics and a test can tell where a topic's leader will be.
    static func placementOffset(for name: String, brokers: Int) -> Int {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in name.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01B3
        }
        return Int(hash % UInt64(max(1, brokers)))
    }

    private func liveBrokerIds() async throws(CatalogError) -> [BrokerID] {
        do {
            return try await session.children(paths.brokerIds).compactMap(BrokerID.init(name:)).sorted()
        } catch {
            throw Self.coordinationFailed(error)
        }
    }

    private func controllerEpoch() async -> Int32 {
        (try? await session.data(paths.controllerEpoch).data).flatMap { Int32(String(decoding: $0, as: UTF8.self)) } ?? 0
    }

    /// The nodes of new partitions: each one's first replica leads at epoch 0, every replica in the ISR.
    private func partitionNodes(_ name: String, _ partitions: Range<Int32>, of assignment: TopicAssignment, controllerEpoch: Int32) -> [Operation] {
        partitions.flatMap { partition -> [Operation] in
            let replicas = assignment.replicas(partition)
            let state = PartitionStateNode(leader: replicas[0], leaderEpoch: 0, isr: replicas, controllerEpoch: controllerEpoch)
            return [
                .create(path: paths.partition(name, partition), data: [], mode: .persistent),
                .create(path: paths.state(name, partition), data: ClusterJSON.encode(state), mode: .persistent),
            ]
        }
    }

    /// Assigns replicas over the live brokers (partition p's replicas start at the (p + offset)-th
    /// broker, so leaders and copies spread) and writes the assignment with a new random id, each
    /// partition's first state and the configs in one multi.
    func createTopic(_ name: String, partitions: Int32, replicationFactor: Int16, config: TopicConfig, validateOnly: Bool) async throws(CatalogError)
        -> (replicationFactor: Int16, id: KafkaUUID)
    {
        let live = try await liveBrokerIds()
        let factor = replicationFactor == -1 ? 1 : Int(replicationFactor)
        guard factor >= 1, factor <= live.count else {
            throw CatalogError(
                code: .invalidReplicationFactor, message: "replication factor \(replicationFactor) is larger than the \(live.count) live brokers")
        }
        let offset = Self.placementOffset(for: name, brokers: live.count)
        let id = KafkaUUID.random()
        var assignment = TopicAssignment(topicId: id.text, partitions: [:])
        for partition in 0..<Int(partitions) {
            assignment.partitions["\(partition)"] = (0..<factor).map { live[(partition + offset + $0) % live.count] }
        }
        if validateOnly { return (Int16(factor), id) }
        let operations: [Operation] =
            [
                .create(path: paths.topicConfig(name), data: ClusterJSON.encode(TopicConfigNode(config: config.overrides)), mode: .persistent),
                .create(path: paths.topic(name), data: ClusterJSON.encode(assignment), mode: .persistent),
                .create(path: paths.partitions(name), data: [], mode: .persistent),
            ] + partitionNodes(name, 0..<partitions, of: assignment, controllerEpoch: await controllerEpoch())
        do {
            _ = try await session.multi(operations)
        } catch let error as CoordinationError where error.code == .nodeExists {
            throw .alreadyExists(name)
        } catch {
            throw Self.coordinationFailed(error)
        }
        _ = try? await cache.refresh(name)
        return (Int16(factor), id)
    }

    /// Writes the grown assignment (checked against the version read, so a concurrent change is
    /// read again) and the new partitions' nodes in one multi; every broker then makes their logs.
    func createPartitions(_ name: String, count: Int32, manual: [[BrokerID]]?, validateOnly: Bool) async throws(CatalogError) {
        for _ in 0..<Self.maxConflicts {
            let live = try await liveBrokerIds()
            let read: (assignment: TopicAssignment, version: Int32)?
            do {
                read = try await assignment(of: name)
            } catch {
                throw Self.coordinationFailed(error)
            }
            guard let (readAssignment, version) = read else { throw .unknownTopic(name) }
            var assignment = readAssignment
            let old = assignment.partitionCount
            let existing = (0..<old).map { assignment.replicas($0) }
            let added = try PartitionGrowth.replicas(of: name, existing: existing, count: count, manual: manual, brokers: live)
            if validateOnly { return }
            for (offset, replicas) in added.enumerated() { assignment.partitions["\(old + Int32(offset))"] = replicas }
            let operations =
                [Operation.setData(path: paths.topic(name), data: ClusterJSON.encode(assignment), version: version)]
                + partitionNodes(name, old..<count, of: assignment, controllerEpoch: await controllerEpoch())
            do {
                _ = try await session.multi(operations)
                _ = try? await cache.refresh(name)
                return
            } catch let error as CoordinationError where error.code == .badVersion || error.code == .noNode || error.code == .nodeExists {
                continue  // changed or deleted meanwhile: decide again on what is there now
            } catch {
                throw Self.coordinationFailed(error)
            }
        }
        throw Self.contended(name)
    }

    /// How often a write that lost a race with another change is decided again before giving up.
    static let maxConflicts = 20

    private static func contended(_ name: String) -> CatalogError {
        CatalogError(code: .unknown, message: "topic '\(name)' kept changing during the request; try again")
    }

    static func coordinationFailed(_ error: any Error) -> CatalogError {
        CatalogError(code: .unknown, message: "\(error)")
    }

    /// Deletes the topic's nodes (state, partitions, assignment, configs) in one multi, checked
    /// against the assignment's version read. Each broker holding the topic sees its assignment go
    /// and deletes its logs; one that is down deletes them when it comes back (see
    /// `ReplicaManager.followTopic` and its stray-topic sweep).
    func deleteTopic(_ name: String) async throws(CatalogError) {
        for _ in 0..<Self.maxConflicts {
            do {
                guard let (assignment, version) = try await assignment(of: name) else { throw CatalogError.unknownTopic(name) }
                var operations: [Operation] = (0..<assignment.partitionCount).flatMap { partition -> [Operation] in
                    [.delete(path: paths.state(name, partition), version: -1), .delete(path: paths.partition(name, partition), version: -1)]
                }
                operations += [.delete(path: paths.partitions(name), version: -1), .delete(path: paths.topic(name), version: version)]
                if try await session.exists(paths.topicConfig(name)) != nil {
                    operations.append(.delete(path: paths.topicConfig(name), version: -1))
                }
                _ = try await session.multi(operations)
                cache.forget(name)
                return
            } catch let error as CatalogError {
                throw error
            } catch let error as CoordinationError where error.code == .badVersion || error.code == .noNode || error.code == .notEmpty {
                continue
            } catch {
                throw Self.coordinationFailed(error)
            }
        }
        throw Self.contended(name)
    }
}
