import Logging
import SamsaCoordination
import SamsaProtocol
import SamsaStorage

/// Leader elections clients ask for (ElectLeaders, KIP-183/KIP-460) and the automatic preferred-leader
/// rebalance (`auto.leader.rebalance.enable`), run by the controller with its epoch: each state write
/// is checked against the node's version and refused when a newer controller wrote the node.
extension ClusterController {
    /// One partition's answer: nil error means a new leader was elected.
    struct Election: Sendable {
        var partition: TopicPartition
        var error: ErrorCode?
        var message: String?
    }

    /// Elects the preferred replica (`unclean` false) of each partition, or for `unclean`, a leader
    /// of each partition that has none. `partitions` nil: every partition, answering only those that
    /// needed an election (as Kafka's controller does). NOT_CONTROLLER unless this broker controls.
    func elect(_ partitions: [TopicPartition]?, unclean: Bool) async throws(CatalogError) -> [Election] {
        guard let controllerEpoch, await ownsController() else {
            throw Self.notController(brokerId)
        }
        do {
            let live = Set(try await session.children(paths.brokerIds).compactMap(BrokerID.init(name:)))
            var assignments: [String: TopicAssignment?] = [:]
            func assignment(_ topic: String) async throws -> TopicAssignment? {
                if let known = assignments[topic] { return known }
                var read: TopicAssignment?
                do {
                    read = try ClusterJSON.decode(TopicAssignment.self, try await session.data(paths.topic(topic)).data)
                } catch let error as CoordinationError where error.code == .noNode {
                    read = nil
                }
                assignments[topic] = read
                return read
            }
            var targets = partitions ?? []
            if partitions == nil {
                for topic in try await session.children(paths.topics).sorted() {
                    guard let found = try await assignment(topic) else { continue }
                    targets += (0..<found.partitionCount).map { TopicPartition(topic: topic, partition: $0) }
                }
            }
            var results: [Election] = []
            for partition in targets {
                guard let found = try await assignment(partition.topic), partition.partition >= 0, partition.partition < found.partitionCount else {
                    results.append(Election(partition: partition, error: .unknownTopicOrPartition, message: "The partition does not exist."))
                    continue
                }
                let replicas = found.replicas(partition.partition)
                let result =
                    unclean
                    ? try await electLeaderless(partition, replicas: replicas, live: live, controllerEpoch: controllerEpoch)
                    : try await electPreferred(partition, replicas: replicas, live: live, controllerEpoch: controllerEpoch)
                if partitions == nil && result.error == .electionNotNeeded { continue }
                results.append(result)
            }
            return results
        } catch let error as CatalogError {
            throw error
        } catch {
            throw CatalogError(code: .unknown, message: "\(error)")
        }
    }

    /// Whether `/controller` is still this session's.
    func ownsController() async -> Bool {
        guard let stat = try? await session.exists(paths.controller) else { return false }
        return stat.ephemeralOwner == session.sessionID
    }

    /// The first replica leads, at the next epoch, if it is live and in the ISR.
    func electPreferred(_ partition: TopicPartition, replicas: [BrokerID], live: Set<BrokerID>, controllerEpoch: Int32) async throws -> Election {
        try await transition(partition, controllerEpoch: controllerEpoch) { current in
            guard let preferred = replicas.first else { return .failure(.preferredLeaderNotAvailable, "The partition has no replicas.") }
            if current.leader == preferred { return .failure(.electionNotNeeded, "Leader election not needed for topic partition.") }
            guard live.contains(preferred), current.isr.contains(preferred) else {
                return .failure(.preferredLeaderNotAvailable, "Failed to elect leader for partition \(partition.topic)-\(partition.partition) under strategy PreferredReplicaPartitionLeaderElectionStrategy")
            }
            return .leader(preferred)
        }
    }

    /// A partition without a live leader gets its first live ISR member; with none, it stays
    /// offline: `unclean.leader.election.enable` is false, so no replica outside the ISR leads.
    private func electLeaderless(_ partition: TopicPartition, replicas: [BrokerID], live: Set<BrokerID>, controllerEpoch: Int32) async throws -> Election {
        try await transition(partition, controllerEpoch: controllerEpoch) { current in
            if live.contains(current.leader) { return .failure(.electionNotNeeded, "Leader election not needed for topic partition.") }
            guard let leader = replicas.first(where: { current.isr.contains($0) && live.contains($0) }) else {
                return .failure(
                    .eligibleLeadersNotAvailable,
                    "No live ISR member of \(partition.topic)-\(partition.partition) can lead, and unclean.leader.election.enable is false")
            }
            return .leader(leader)
        }
    }

    private enum Decision {
        case leader(BrokerID)
        case failure(ErrorCode, String)
    }

    /// Reads the state node, decides, and writes the new leader at the next epoch (ISR cut to live
    /// members of it) checked against the version read; a conflict decides again.
    private func transition(_ partition: TopicPartition, controllerEpoch: Int32, decide: (PartitionStateNode) -> Decision) async throws -> Election {
        let path = paths.state(partition.topic, partition.partition)
        while true {
            let (data, stat): ([UInt8], NodeStat)
            do {
                (data, stat) = try await session.data(path)
            } catch let error as CoordinationError where error.code == .noNode {
                return Election(partition: partition, error: .unknownTopicOrPartition, message: "The partition does not exist.")
            }
            let current = try ClusterJSON.decode(PartitionStateNode.self, data)
            if current.controllerEpoch > controllerEpoch {
                throw CatalogError(code: .notController, message: "a newer controller (epoch \(current.controllerEpoch)) wrote \(path)")
            }
            switch decide(current) {
            case .failure(let code, let message):
                return Election(partition: partition, error: code, message: message)
            case .leader(let leader):
                var next = current
                next.leader = leader
                next.leaderEpoch = current.leaderEpoch.next
                next.controllerEpoch = controllerEpoch
                do {
                    _ = try await session.setData(path, data: ClusterJSON.encode(next), version: stat.version)
                    logger.info(
                        "elected a leader on request",
                        metadata: ["topic": "\(partition.topic)", "partition": "\(partition.partition)", "leader": "\(leader)", "epoch": "\(next.leaderEpoch)"])
                    return Election(partition: partition, error: nil, message: nil)
                } catch let error as CoordinationError where error.code == .badVersion {
                    continue
                }
            }
        }
    }
}

extension ClusterController {
    /// While this broker controls: every `leader.imbalance.check.interval.seconds`, each live broker
    /// leading at most `100 - leader.imbalance.per.broker.percentage` percent of the partitions it is
    /// the preferred replica of gets those back where it is in the ISR (Kafka's
    /// `checkAndTriggerAutoLeaderRebalance`), so leaders return after restarts.
    func rebalanceLeaders() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: settings.leaderImbalanceCheckInterval)
            guard let controllerEpoch, !Task.isCancelled else { continue }
            do {
                try await rebalance(controllerEpoch: controllerEpoch)
            } catch {
                logger.warning("the leader rebalance check failed", metadata: ["error": "\(error)"])
            }
        }
    }

    private func rebalance(controllerEpoch: Int32) async throws {
        let live = Set(try await session.children(paths.brokerIds).compactMap(BrokerID.init(name:)))
        var preferredBy: [BrokerID: [(TopicPartition, [BrokerID])]] = [:]
        for topic in try await session.children(paths.topics) {
            guard let assignment = try? ClusterJSON.decode(TopicAssignment.self, try await session.data(paths.topic(topic)).data) else { continue }
            for partition in 0..<assignment.partitionCount {
                let replicas = assignment.replicas(partition)
                if let preferred = replicas.first { preferredBy[preferred, default: []].append((TopicPartition(topic: topic, partition: partition), replicas)) }
            }
        }
        for (broker, preferred) in preferredBy where live.contains(broker) {
            var elsewhere: [(TopicPartition, [BrokerID])] = []
            for (partition, replicas) in preferred {
                let path = paths.state(partition.topic, partition.partition)
                guard let state = try? ClusterJSON.decode(PartitionStateNode.self, try await session.data(path).data) else { continue }
                if state.leader != broker { elsewhere.append((partition, replicas)) }
            }
            guard !elsewhere.isEmpty, elsewhere.count * 100 > preferred.count * settings.leaderImbalancePerBrokerPercentage else { continue }
            for (partition, replicas) in elsewhere {
                let result = try await electPreferred(partition, replicas: replicas, live: live, controllerEpoch: controllerEpoch)
                if result.error == nil {
                    logger.info("moved a leadership back to its preferred replica", metadata: ["topic": "\(partition.topic)", "partition": "\(partition.partition)", "leader": "\(broker)"])
                }
            }
        }
    }
}
