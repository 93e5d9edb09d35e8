import Logging
import Foundation
import NIOCore
import NIOPosix
import SamsaCoordination
import Synchronization

/// The controller (Kafka's ZooKeeper-era `KafkaController`, kept thin): the broker whose ephemeral
/// `/controller` node exists. On winning it bumps `/controller_epoch`; then on every change of the
/// live brokers (`/brokers/ids` children) it elects, for each partition whose leader is gone, the
/// first live ISR member in assignment order, with the leader epoch bumped and the ISR cut to live
/// members; a partition whose leader lives loses its dead followers from the ISR (same epoch). With no live ISR member the partition goes offline (leader -1): no unclean election.
/// A broker counts as dead from its registration's deletion, or earlier, from the moment its
/// listener refuses connections (`ListenerWatch`) until it registers again.
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
    /// The live brokers' epochs as of the last round (a changed one is a restarted broker).
    private let brokerEpochs = Mutex<BrokerEpochs?>(nil)
    let logger: Logger
    let settings: ClusterSettings
    /// Wakes the task that completes partition reassignments.
    let reassignmentWork = ReassignmentWork()
    /// Wakes the election loop when a broker's listener starts or stops refusing connections.
    private let listenerNews = ReassignmentWork()
    /// Which registered brokers' processes are gone (their listeners refuse connections).
    let listeners: ListenerWatch

    init(
        brokerId: BrokerID, paths: ClusterPaths, session: any CoordinationSession, settings: ClusterSettings, logger: Logger,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) {
        self.brokerId = brokerId
        self.settings = settings
        self.paths = paths
        self.session = session
        self.logger = logger
        listeners = ListenerWatch(brokerId: brokerId, paths: paths, session: session, group: group, news: listenerNews, logger: logger)
    }

    var controllerEpoch: Int32? { epoch.withLock { $0 } }

    func start() {
        listeners.start()
        tasks.start { await self.run() }
        tasks.start { await self.completeReassignments() }
        if settings.autoLeaderRebalanceEnable { tasks.start { await self.rebalanceLeaders() } }
    }

    func stop() async {
        await tasks.stop()
        await listeners.stop()
        epoch.withLock { $0 = nil }
        brokerEpochs.withLock { $0 = nil }
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
            guard let stat else { return false }
            // Another broker's node: wait until it goes. Our own (made by a create whose answer a
            // lost connection took, or kept through a ZooKeeper outage the session survived): still
            // the controller, at a new epoch.
            if stat.ephemeralOwner != session.sessionID {
                _ = try await watch?.event()
                return false
            }
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

    /// Elects leaders whenever the live brokers (or their epochs, or which of them refuse
    /// connections) change, while `/controller` is still this session's.
    private func control() async throws {
        while !Task.isCancelled {
            guard let stat = try await session.exists(paths.controller), stat.ephemeralOwner == session.sessionID else {
                epoch.withLock { $0 = nil }
                return
            }
            let (_, _, watch) = try await session.children(paths.brokerIds, watch: true)
            let epochs = try await BrokerEpochs.read(session, paths: paths, previous: brokerEpochs.withLock { $0 })
            if !epochs.bounced.isEmpty {
                logger.warning("brokers re-registered since the last look (restarted): treated as failed, then joined", metadata: ["brokers": "\(epochs.bounced.sorted())"])
            }
            try await electLeaders(epochs)
            brokerEpochs.withLock { $0 = epochs }
            // Also wake when /controller goes (the session lost it): the loop then re-checks.
            let (_, controllerWatch) = try await session.exists(paths.controller, watch: true)
            await listenerNews.wait(orAny: [watch, controllerWatch].compactMap { $0 })
        }
    }

    private func electLeaders(_ epochs: BrokerEpochs) async throws {
        guard let controllerEpoch = controllerEpoch else { return }
        var epochs = epochs
        let gone = listeners.gone(epochs)
        if !gone.isEmpty {
            logger.warning("registered brokers whose listeners refuse connections count as failed", metadata: ["brokers": "\(gone.sorted())"])
            for broker in gone { epochs.live.removeValue(forKey: broker) }
        }
        for topic in try await session.children(paths.topics) {
            guard let assignment = try? ClusterJSON.decode(TopicAssignment.self, try await session.data(paths.topic(topic)).data) else { continue }
            for partition in 0..<assignment.partitionCount {
                try await elect(topic, partition, replicas: assignment.replicas(partition), epochs: epochs, controllerEpoch: controllerEpoch)
            }
        }
    }

    /// One partition: a new leader if its leader is not live, dead followers out of the ISR; retried
    /// on a version conflict. Brokers the state must not count on (`BrokerEpochs.stale`) count as
    /// dead first (Kafka's `onBrokerFailure` for a bounced broker), then as live (`onBrokerStartup`),
    /// so a restarted leader that was the only ISR member leads again, at a new epoch.
    private func elect(_ topic: String, _ partition: Int32, replicas: [BrokerID], epochs: BrokerEpochs, controllerEpoch: Int32) async throws {
        let path = paths.state(topic, partition)
        let live = Set(epochs.live.keys)
        var fencing = true
        while !Task.isCancelled {
            let (data, stat) = try await session.data(path)
            let current = try ClusterJSON.decode(PartitionStateNode.self, data)
            if current.controllerEpoch > controllerEpoch {
                throw CoordinationError(.badVersion, "a newer controller (epoch \(current.controllerEpoch)) wrote \(path)")
            }
            let stale = fencing ? epochs.stale(current, writtenAt: stat.mzxid) : []
            if var next = current.electing(replicas: replicas, live: live.subtracting(stale)) {
                next.controllerEpoch = controllerEpoch
                do {
                    _ = try await session.setData(path, data: ClusterJSON.encode(next), version: stat.version)
                } catch let error as CoordinationError where error.code == .badVersion {
                    continue  // the leader changed the ISR meanwhile: decide again on the new state
                }
                let metadata: Logger.Metadata = ["topic": "\(topic)", "partition": "\(partition)", "leader": "\(next.leader)", "epoch": "\(next.leaderEpoch)", "isr": "\(next.isr)"]
                if next.leaderEpoch == current.leaderEpoch {
                    logger.info("removed dead replicas from the isr", metadata: metadata)
                } else {
                    logger.info("elected a leader", metadata: metadata)
                }
            }
            guard !stale.isEmpty else { return }
            fencing = false
        }
    }
}

extension PartitionStateNode {
    /// The controller's decision for this state given the live brokers, nil when none is needed. A
    /// live leader keeps its epoch and loses its dead followers from the ISR (Kafka's
    /// OfflineReplica transition, so acks=all waits for no dead broker); a dead leader is replaced by
    /// the first live ISR member in assignment order at the next epoch, the ISR cut to live members;
    /// with none the partition goes offline (leader -1) until an ISR member returns: no unclean
    /// election.
    func electing(replicas: [BrokerID], live: Set<BrokerID>) -> PartitionStateNode? {
        var next = self
        if live.contains(leader) {
            next.isr = isr.filter { live.contains($0) }
            return next.isr == isr ? nil : next
        }
        if let successor = replicas.first(where: { isr.contains($0) && live.contains($0) }) {
            next.leader = successor
            next.isr = isr.filter { live.contains($0) }
        } else if leader >= 0 {
            next.leader = -1
        } else {
            return nil
        }
        next.leaderEpoch = leaderEpoch.next
        return next
    }
}
