import Logging
import Foundation
import SamsaCoordination
import Synchronization

/// The controller (Kafka's ZooKeeper-era `KafkaController`, kept thin): the broker whose ephemeral
/// `/controller` node exists. On winning it bumps `/controller_epoch`; then on every change of the
/// live brokers (`/brokers/ids` children) it elects, for each partition whose leader is gone, the
/// first live ISR member in assignment order, with the leader epoch bumped and the ISR cut to live
/// members; a partition whose leader lives loses its dead followers from the ISR (same epoch). With no live ISR member the partition goes offline (leader -1): no unclean election.
/// Partition reassignments are completed here too (`ClusterController+Reassignments`).
/// Every state write is checked against the node's version; a node written by a newer controller
/// epoch fences this one.
final class ClusterController: Sendable {
    let brokerId: BrokerID
    let paths: ClusterPaths
    let session: any CoordinationSession
    private let tasks = BackgroundTasks()
    /// The controller epoch while this broker is the controller.
    private let epoch = Mutex<Int32?>(nil)
    let logger: Logger
    let settings: ClusterSettings
    /// Wakes the task that completes partition reassignments.
    let reassignmentWork = ReassignmentWork()

    init(brokerId: BrokerID, paths: ClusterPaths, session: any CoordinationSession, settings: ClusterSettings, logger: Logger) {
        self.brokerId = brokerId
        self.settings = settings
        self.paths = paths
        self.session = session
        self.logger = logger
    }

    var controllerEpoch: Int32? { epoch.withLock { $0 } }

    func start() {
        tasks.start { await self.run() }
        tasks.start { await self.completeReassignments() }
        if settings.autoLeaderRebalanceEnable { tasks.start { await self.rebalanceLeaders() } }
    }

    func stop() async {
        await tasks.stop()
        epoch.withLock { $0 = nil }
    }

    private func run() async {
        while !Task.isCancelled {
            do {
                guard try await becomeController() else { continue }
                try await control()
            } catch {
                epoch.withLock { $0 = nil }
                if !Task.isCancelled { try? await Task.sleep(for: .milliseconds(100)) }
            }
        }
    }

    /// Tries to create `/controller`; if another broker holds it, waits until it is gone (false).
    private func becomeController() async throws -> Bool {
        let node = ControllerNode(brokerid: brokerId, timestamp: "\(Int64(Date().timeIntervalSince1970 * 1000))")
        do {
            _ = try await session.create(paths.controller, data: ClusterJSON.encode(node), mode: .ephemeral)
        } catch let error as CoordinationError where error.code == .nodeExists {
            let (stat, watch) = try await session.exists(paths.controller, watch: true)
            if stat != nil { _ = try await watch?.event() }
            return false
        }
        let next = try await bumpControllerEpoch()
        epoch.withLock { $0 = next }
        logger.info("became the controller", metadata: ["controller_epoch": "\(next)"])
        reassignmentWork.wake()  // finish the reassignments a previous controller left
        return true
    }

    private func bumpControllerEpoch() async throws -> Int32 {
        while true {
            do {
                let (data, stat) = try await session.data(paths.controllerEpoch)
                let next = (Int32(String(decoding: data, as: UTF8.self)) ?? 0) + 1
                _ = try await session.setData(paths.controllerEpoch, data: Array("\(next)".utf8), version: stat.version)
                return next
            } catch let error as CoordinationError where error.code == .noNode {
                do {
                    _ = try await session.create(paths.controllerEpoch, data: Array("1".utf8), mode: .persistent)
                    return 1
                } catch let error as CoordinationError where error.code == .nodeExists {
                    continue
                }
            } catch let error as CoordinationError where error.code == .badVersion {
                continue
            }
        }
    }

    /// Elects leaders whenever the live brokers change, while `/controller` is still this session's.
    private func control() async throws {
        while !Task.isCancelled {
            guard let stat = try await session.exists(paths.controller), stat.ephemeralOwner == session.sessionID else {
                epoch.withLock { $0 = nil }
                return
            }
            let (ids, _, watch) = try await session.children(paths.brokerIds, watch: true)
            let live = Set(ids.compactMap(BrokerID.init(name:)))
            try await electLeaders(live: live)
            // Also wake when /controller goes (the session lost it): the loop then re-checks.
            let (_, controllerWatch) = try await session.exists(paths.controller, watch: true)
            await Self.first(watch, controllerWatch)
        }
    }

    /// Returns when either watch fires.
    private static func first(_ a: Watch?, _ b: Watch?) async {
        await withTaskGroup(of: Void.self) { group in
            for watch in [a, b].compactMap({ $0 }) { group.addTask { _ = try? await watch.event() } }
            await group.next()
            group.cancelAll()
        }
    }

    private func electLeaders(live: Set<BrokerID>) async throws {
        guard let controllerEpoch = controllerEpoch else { return }
        for topic in try await session.children(paths.topics) {
            guard let assignment = try? ClusterJSON.decode(TopicAssignment.self, try await session.data(paths.topic(topic)).data) else { continue }
            for partition in 0..<assignment.partitionCount {
                try await elect(topic, partition, replicas: assignment.replicas(partition), live: live, controllerEpoch: controllerEpoch)
            }
        }
    }

    /// One partition: a new leader if its leader is not live; retried on a version conflict.
    private func elect(_ topic: String, _ partition: Int32, replicas: [BrokerID], live: Set<BrokerID>, controllerEpoch: Int32) async throws {
        let path = paths.state(topic, partition)
        while !Task.isCancelled {
            let (data, stat) = try await session.data(path)
            let current = try ClusterJSON.decode(PartitionStateNode.self, data)
            if current.controllerEpoch > controllerEpoch {
                throw CoordinationError(.badVersion, "a newer controller (epoch \(current.controllerEpoch)) wrote \(path)")
            }
            let candidates = replicas.filter { current.isr.contains($0) && live.contains($0) }
            var next = current
            if live.contains(current.leader) {
                // Dead followers leave the ISR at once (Kafka's OfflineReplica transition), so acks=all
                // waits for no dead broker until replica.lag.time.max.ms: the leader and its epoch stay.
                let kept = current.isr.filter { live.contains($0) }
                guard kept != current.isr else { return }
                next.isr = kept
                next.controllerEpoch = controllerEpoch
                do {
                    _ = try await session.setData(path, data: ClusterJSON.encode(next), version: stat.version)
                    logger.info(
                        "removed dead replicas from the isr", metadata: ["topic": "\(topic)", "partition": "\(partition)", "isr": "\(next.isr)"])
                    return
                } catch let error as CoordinationError where error.code == .badVersion {
                    continue
                }
            } else if let leader = candidates.first {
                next.leader = leader
                next.isr = current.isr.filter { live.contains($0) }
            } else if current.leader >= 0 {
                next.leader = -1  // offline until an ISR member comes back
            } else {
                return
            }
            next.leaderEpoch = current.leaderEpoch.next
            next.controllerEpoch = controllerEpoch
            do {
                _ = try await session.setData(path, data: ClusterJSON.encode(next), version: stat.version)
                logger.info(
                    "elected a leader",
                    metadata: ["topic": "\(topic)", "partition": "\(partition)", "leader": "\(next.leader)", "epoch": "\(next.leaderEpoch)", "isr": "\(next.isr)"])
                return
            } catch let error as CoordinationError where error.code == .badVersion {
                continue  // the leader changed the ISR meanwhile: decide again on the new state
            }
        }
    }
}
