import Logging
import SamsaCoordination
import SamsaProtocol
import SamsaStorage
import SamsaWaiting
import Synchronization

/// Partition reassignment (KIP-455; Kafka's ZooKeeper-era `KafkaController.onPartitionReassignment`),
/// run by the controller with its epoch.
///
/// A request writes the partition's full replica set (target, then the origin replicas leaving) and
/// its adding/removing replicas into the topic's assignment node (`TopicAssignment.reassign`). Every
/// broker follows that node: an adding broker makes the partition's log and follows the leader, the
/// leader tracks it and adds it to the ISR once caught up (the usual ISR expansion). When every target
/// replica is in the ISR, the controller (watching the state nodes of the partitions being moved)
/// writes the state first — the ISR cut to the target, and, if the leader is leaving or not live, the
/// first live target ISR member leading at the next epoch — then the assignment at the target; the
/// brokers no longer assigned the partition stop following it and delete its log. A crash between
/// the two writes leaves the reassignment in the node, and the next controller finishes it.
extension ClusterController {
    /// One partition's answer to AlterPartitionReassignments: nil error means accepted.
    struct ReassignmentOutcome: Sendable, Equatable {
        var partition: TopicPartition
        var error: ErrorCode?
        var message: String?
    }

    /// A partition being reassigned, as ListPartitionReassignments shows it.
    struct OngoingReassignment: Sendable, Equatable {
        var partition: TopicPartition
        var replicas: [BrokerID]
        var adding: [BrokerID]
        var removing: [BrokerID]
    }

    /// Starts, redirects (a new target) or cancels (nil: back to the origin replicas) reassignments;
    /// one answer per partition, in the order first named. Nothing is written for a partition whose
    /// target is refused. NOT_CONTROLLER unless this broker controls.
    func reassign(_ requests: [(TopicPartition, [BrokerID]?)], allowReplicationFactorChange: Bool) async throws(CatalogError) -> [ReassignmentOutcome] {
        guard controllerEpoch != nil, await ownsController() else { throw Self.notController(brokerId) }
        do {
            let live = Set(try await session.children(paths.brokerIds).compactMap(BrokerID.init(name:)))
            let distinct = Self.lastPerPartition(requests)
            var byTopic: [String: [(Int32, [BrokerID]?)]] = [:]
            for (partition, target) in distinct { byTopic[partition.topic, default: []].append((partition.partition, target)) }
            var outcomes: [TopicPartition: ReassignmentOutcome] = [:]
            for (topic, changes) in byTopic {
                for outcome in try await reassign(topic, changes, live: live, allowReplicationFactorChange: allowReplicationFactorChange) {
                    outcomes[outcome.partition] = outcome
                }
            }
            reassignmentWork.wake()
            return distinct.compactMap { outcomes[$0.0] }
        } catch let error as CatalogError {
            throw error
        } catch {
            throw CoordinationCatalog.coordinationFailed(error)
        }
    }

    /// One topic's changes, written in one versioned write of its assignment node (a conflict reads
    /// it again).
    private func reassign(_ topic: String, _ changes: [(Int32, [BrokerID]?)], live: Set<BrokerID>, allowReplicationFactorChange: Bool) async throws
        -> [ReassignmentOutcome]
    {
        for _ in 0..<CoordinationCatalog.maxConflicts {
            let read: ([UInt8], NodeStat)
            do {
                read = try await session.data(paths.topic(topic))
            } catch let error as CoordinationError where error.code == .noNode {
                return changes.map { ReassignmentOutcome(partition: TopicPartition(topic: topic, partition: $0.0), error: .unknownTopicOrPartition, message: Self.unknown(topic, $0.0)) }
            }
            var assignment = try ClusterJSON.decode(TopicAssignment.self, read.0)
            let before = assignment
            var outcomes: [ReassignmentOutcome] = []
            for (index, target) in changes {
                let partition = TopicPartition(topic: topic, partition: index)
                guard index >= 0, index < assignment.partitionCount else {
                    outcomes.append(ReassignmentOutcome(partition: partition, error: .unknownTopicOrPartition, message: Self.unknown(topic, index)))
                    continue
                }
                guard let target else {
                    guard assignment.isReassigning(index) else {
                        outcomes.append(ReassignmentOutcome(partition: partition, error: .noReassignmentInProgress, message: Self.noReassignment(topic, index)))
                        continue
                    }
                    assignment.reassign(index, to: assignment.origin(index))
                    outcomes.append(ReassignmentOutcome(partition: partition))
                    continue
                }
                if let refusal = Self.refusal(of: target, origin: assignment.origin(index), live: live, allowReplicationFactorChange: allowReplicationFactorChange) {
                    outcomes.append(ReassignmentOutcome(partition: partition, error: refusal.0, message: refusal.1))
                    continue
                }
                assignment.reassign(index, to: target)
                outcomes.append(ReassignmentOutcome(partition: partition))
            }
            // Replicas a redirect or cancel drops leave the ISR (and the lead) first, as Kafka's
            // controller stops them before it writes the assignment.
            for outcome in outcomes where outcome.error == nil {
                let index = outcome.partition.partition
                let kept = assignment.replicas(index)
                guard before.replicas(index).contains(where: { !kept.contains($0) }), let controllerEpoch else { continue }
                _ = try await narrowState(topic, index, to: kept, requireAll: false, live: live, controllerEpoch: controllerEpoch)
            }
            do {
                _ = try await session.setData(paths.topic(topic), data: ClusterJSON.encode(assignment), version: read.1.version)
                for outcome in outcomes where outcome.error == nil {
                    logger.info(
                        "reassigning a partition",
                        metadata: ["topic": "\(topic)", "partition": "\(outcome.partition.partition)", "replicas": "\(assignment.replicas(outcome.partition.partition))",
                                   "adding": "\(assignment.adding(outcome.partition.partition))", "removing": "\(assignment.removing(outcome.partition.partition))"])
                }
                return outcomes
            } catch let error as CoordinationError where error.code == .badVersion || error.code == .noNode {
                continue
            }
        }
        throw CatalogError(code: .unknown, message: "topic '\(topic)' kept changing during the request; try again")
    }

    /// Each partition once, in the order first named, with the last target named for it (a request
    /// naming a partition twice gets one answer).
    static func lastPerPartition(_ requests: [(TopicPartition, [BrokerID]?)]) -> [(TopicPartition, [BrokerID]?)] {
        var last: [TopicPartition: [BrokerID]?] = [:]
        var order: [TopicPartition] = []
        for (partition, target) in requests {
            if last.updateValue(target, forKey: partition) == nil { order.append(partition) }
        }
        return order.map { ($0, last[$0]!) }
    }

    static func unknown(_ topic: String, _ partition: Int32) -> String {
        "The partition \(TopicTable.quoted(topic))-\(partition) does not exist."
    }

    static func noReassignment(_ topic: String, _ partition: Int32) -> String {
        "No ongoing reassignment for partition \(TopicTable.quoted(topic))-\(partition)."
    }

    static func notController(_ id: BrokerID) -> CatalogError {
        CatalogError(code: .notController, message: "broker \(id) is not the controller")
    }

    /// Why a target replica list is refused (Kafka's checks, in its order), or nil.
    static func refusal(of target: [BrokerID], origin: [BrokerID], live: Set<BrokerID>, allowReplicationFactorChange: Bool) -> (ErrorCode, String)? {
        if target.isEmpty { return (.invalidReplicaAssignment, "Empty replica list specified in partition reassignment.") }
        if Set(target).count != target.count {
            return (.invalidReplicaAssignment, "Duplicate replica ids in partition reassignment replica list: \(Self.listed(target))")
        }
        if target.contains(where: { $0.rawValue < 0 }) { return (.invalidReplicaAssignment, "Invalid broker id in replica list: \(Self.listed(target))") }
        let missing = target.filter { !live.contains($0) }
        if !missing.isEmpty {
            return (.invalidReplicaAssignment, "The proposed assignment contains non-existent brokerIDs: \(Self.listed(missing))")
        }
        if !allowReplicationFactorChange && target.count != origin.count {
            return (.invalidReplicationFactor, "The replication factor is changed from \(origin.count) to \(target.count) but allowReplicationFactorChange is false")
        }
        return nil
    }

    /// A client's replica list as a message quotes it: at most 20 ids, so a message never grows with
    /// what a client sent.
    private static func listed(_ ids: [BrokerID]) -> String {
        let shown = ids.prefix(20).map { "\($0.rawValue)" }.joined(separator: ",")
        return ids.count > 20 ? "[\(shown),... (\(ids.count) ids)]" : "[\(shown)]"
    }

    /// The partitions being reassigned: of `partitions`, or every one (nil). Partitions that do not
    /// exist or are not being reassigned are left out, as Kafka does. NOT_CONTROLLER unless this
    /// broker controls.
    func ongoingReassignments(_ partitions: [TopicPartition]?) async throws(CatalogError) -> [OngoingReassignment] {
        guard controllerEpoch != nil, await ownsController() else { throw Self.notController(brokerId) }
        do {
            var wanted: [String: Set<Int32>]?
            if let partitions { wanted = Dictionary(grouping: partitions, by: \.topic).mapValues { Set($0.map(\.partition)) } }
            var names: [String]
            if let wanted { names = Array(wanted.keys) } else { names = try await session.children(paths.topics) }
            var ongoing: [OngoingReassignment] = []
            names.sort()
            for topic in names {
                guard let assignment = try? ClusterJSON.decode(TopicAssignment.self, try await session.data(paths.topic(topic)).data) else { continue }
                for index in assignment.reassigning where wanted?[topic]?.contains(index) ?? true {
                    ongoing.append(OngoingReassignment(
                        partition: TopicPartition(topic: topic, partition: index), replicas: assignment.replicas(index),
                        adding: assignment.adding(index), removing: assignment.removing(index)))
                }
            }
            return ongoing
        } catch {
            throw CoordinationCatalog.coordinationFailed(error)
        }
    }

    // MARK: - Completion

    /// While this broker controls: finishes each reassignment whose target replicas are all in the
    /// ISR, woken by the state nodes of the partitions being moved, by new requests and by winning
    /// the controller; idle otherwise.
    func completeReassignments() async {
        while !Task.isCancelled {
            var watches: [Watch] = []
            if let controllerEpoch {
                do {
                    watches = try await advanceReassignments(controllerEpoch: controllerEpoch)
                } catch {
                    if !Task.isCancelled { logger.warning("advancing the partition reassignments failed (retrying)", metadata: ["error": "\(error)"]) }
                    try? await Task.sleep(for: .milliseconds(200))
                    continue
                }
            }
            await reassignmentWork.wait(orAny: watches)
        }
    }

    /// One pass over the reassignments: completes those whose target is in the ISR; the state-node
    /// watches of the others.
    private func advanceReassignments(controllerEpoch: Int32) async throws -> [Watch] {
        var watches: [Watch] = []
        let live = Set(try await session.children(paths.brokerIds).compactMap(BrokerID.init(name:)))
        for topic in try await session.children(paths.topics) {
            let (data, stat): ([UInt8], NodeStat)
            do {
                (data, stat) = try await session.data(paths.topic(topic))
            } catch let error as CoordinationError where error.code == .noNode {
                continue
            }
            guard var assignment = try? ClusterJSON.decode(TopicAssignment.self, data), !assignment.reassigning.isEmpty else { continue }
            var completed: [Int32] = []
            for index in assignment.reassigning {
                if let watch = try await narrowState(topic, index, to: assignment.target(index), requireAll: true, live: live, controllerEpoch: controllerEpoch) {
                    watches.append(watch)
                } else {
                    completed.append(index)
                }
            }
            guard !completed.isEmpty else { continue }
            for index in completed { assignment.completeReassignment(index) }
            do {
                _ = try await session.setData(paths.topic(topic), data: ClusterJSON.encode(assignment), version: stat.version)
                logger.info("completed partition reassignments", metadata: ["topic": "\(topic)", "partitions": "\(completed)"])
            } catch let error as CoordinationError where error.code == .badVersion || error.code == .noNode {
                reassignmentWork.wake()  // changed meanwhile: look again at once
            }
        }
        return watches
    }

    /// Writes the state with the ISR cut to `target` and, when the leader is leaving (or not live),
    /// the first live target ISR member leading at the next epoch; returns nil once written (or if
    /// nothing changes). With `requireAll`, only when every target replica is in the ISR. Returns the
    /// state node's watch when it cannot (yet).
    private func narrowState(
        _ topic: String, _ index: Int32, to target: [BrokerID], requireAll: Bool, live: Set<BrokerID>, controllerEpoch: Int32
    ) async throws -> Watch? {
        let path = paths.state(topic, index)
        while true {
            let (data, stat, watch) = try await session.data(path, watch: true)
            let current = try ClusterJSON.decode(PartitionStateNode.self, data)
            if current.controllerEpoch > controllerEpoch {
                throw CoordinationError(.badVersion, "a newer controller (epoch \(current.controllerEpoch)) wrote \(path)")
            }
            guard !requireAll || Set(target).isSubset(of: current.isr) else { return watch }
            var next = current
            next.isr = current.isr.filter { target.contains($0) }
            if !target.contains(current.leader) || !live.contains(current.leader) {
                guard let leader = target.first(where: { next.isr.contains($0) && live.contains($0) }) else { return watch }
                next.leader = leader
                next.leaderEpoch = current.leaderEpoch.next
            }
            guard next != current else { return nil }
            next.controllerEpoch = controllerEpoch
            do {
                _ = try await session.setData(path, data: ClusterJSON.encode(next), version: stat.version)
                logger.info(
                    "moved a reassigned partition to its target replicas",
                    metadata: ["topic": "\(topic)", "partition": "\(index)", "leader": "\(next.leader)", "epoch": "\(next.leaderEpoch)", "isr": "\(next.isr)"])
                return nil
            } catch let error as CoordinationError where error.code == .badVersion {
                continue
            }
        }
    }
}

/// Wakes the controller's reassignment task: a request or a new controller epoch (`wake`), or a watch.
final class ReassignmentWork: Sendable {
    private let pending = Atomic<Bool>(false)
    private let events = Purgatory<Int>()

    func wake() {
        pending.store(true, ordering: .sequentiallyConsistent)
        events.checkAndComplete(0)
    }

    /// Returns at the next `wake` (at once if one came since the last wait), when a watch fires, or
    /// when the task is cancelled.
    func wait(orAny watches: [Watch]) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                _ = await self.events.wait(on: [0], until: nil, expired: ()) { [self] _ in
                    pending.exchange(false, ordering: .sequentiallyConsistent) ? () : nil
                }
            }
            for watch in watches { group.addTask { _ = try? await watch.event() } }
            await group.next()
            group.cancelAll()
        }
    }
}
