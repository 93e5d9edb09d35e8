import Logging
import NIOCore
import NIOPosix
import SamsaCoordination
import SamsaStorage
import Synchronization

/// This broker's part in the cluster's replication (Kafka's `ReplicaManager`): follows the topics
/// and partition state nodes in coordination, gives each partition it replicates its role (leader,
/// follower, none) and runs the followers' fetchers, the ISR expiry and the high-watermark
/// checkpoint (`<data>/replication-offset-checkpoint`).
///
/// A replica whose storage fails (its topic's logs cannot be made here, or what its fetcher got
/// cannot be appended: a full disk) is offline on this broker, as a replica on a failed log
/// directory is in Kafka (KIP-112): this broker takes itself out of the partition's ISR at once (see
/// `withdraw`), retries after a back-off (see `ReplicaFailures`) until the work succeeds, then
/// follows the leader again and rejoins the ISR when caught up.
final class ReplicaManager: Sendable {
    static let checkpointFile = "replication-offset-checkpoint"

    let brokerId: BrokerID
    let settings: ClusterSettings
    let paths: ClusterPaths
    let session: any CoordinationSession
    let topics: TopicTable
    let epochs: LeaderEpochs
    /// The live brokers' listeners, without reading coordination (it may be unreachable).
    let metadata: MetadataCache
    /// This broker's epoch (its registration's czxid), set by `Cluster` when it registers.
    let ownEpoch = OwnBrokerEpoch()
    let group: any EventLoopGroup
    private let io: NIOThreadPool
    let dataDirectory: String
    private let fetchers = Mutex<[BrokerID: ReplicaFetcher]>([:])
    let tasks = BackgroundTasks()
    /// Topics followed here, each by its own task (see `followTopic`).
    let heldTopics = Mutex<Set<String>>([])
    /// Topics whose logs could not be made here yet (retried by `followTopic`).
    let missingTopics: ReplicaFailures<String>
    /// Followed partitions whose fetched records could not be appended (their fetcher retries them).
    let offlinePartitions: ReplicaFailures<TopicPartition>
    /// The byte rate of the partitions a reassignment is adding here.
    let throttled: ReplicationThrottle
    /// With the broker id in its metadata.
    let logger: Logger
    /// ISR shrinks and expands of the partitions led here (for the metrics).
    var isrChanges: IsrChangeCounts { topics.context.isrChanges }

    init(
        brokerId: BrokerID, settings: ClusterSettings, session: any CoordinationSession, topics: TopicTable, epochs: LeaderEpochs,
        metadata: MetadataCache, group: any EventLoopGroup, io: NIOThreadPool, dataDirectory: String, logger: Logger
    ) {
        self.metadata = metadata
        self.brokerId = brokerId
        self.settings = settings
        self.paths = ClusterPaths(root: settings.root)
        self.session = session
        self.topics = topics
        self.epochs = epochs
        self.group = group
        self.io = io
        self.dataDirectory = dataDirectory
        self.logger = logger
        let (initial, maximum) = (Duration.milliseconds(settings.replicaFetchBackoffMs), Duration.milliseconds(settings.replicaFetchBackoffMaxMs))
        missingTopics = ReplicaFailures(initialBackoff: initial, maximumBackoff: maximum)
        offlinePartitions = ReplicaFailures(initialBackoff: initial, maximumBackoff: maximum)
        throttled = ReplicationThrottle(rate: settings.followerReplicationThrottledRate)
    }

    /// The followed partitions a fetcher leaves out now: those waiting out a failed write's back-off,
    /// and those being added by a reassignment while the throttle's budget is spent.
    func fetchPaused(among partitions: some Collection<TopicPartition>) -> Set<TopicPartition> {
        offlinePartitions.waiting(among: partitions).union(throttled.paused(among: partitions) { self.partition($0)?.appendedBytes })
    }

    /// When a partition `fetchPaused` left out may be fetched again.
    func nextFetch(among partitions: some Collection<TopicPartition>) -> ContinuousClock.Instant? {
        [offlinePartitions.nextRetry(among: partitions), throttled.resumesAt].compactMap { $0 }.min()
    }

    /// Sets every log's high watermark from the checkpoint (0 for a partition not in it), before the
    /// broker serves anything. Blocking: call it off the event loops.
    static func loadHighWatermarks(dataDirectory: String, logs: LogManager) throws {
        let checkpoint = try OffsetCheckpoint.read("\(dataDirectory)/\(checkpointFile)", files: PosixFileSystem())
        for partition in logs.partitions {
            logs.log(partition)?.raiseHighWatermark(to: checkpoint[partition] ?? 0)
        }
    }

    func partition(_ id: TopicPartition) -> Partition? { topics.partition(id) }

    var allPartitions: [Partition] { topics.allPartitions }

    func start() {
        tasks.start { await self.holdAssignedReplicas() }
        tasks.start { await self.expireIsrMembers() }
        tasks.start { await self.removeGoneFollowers() }
        tasks.start { await self.checkpointHighWatermarks() }
    }

    /// Stops following coordination and fetching, gives up every role and checkpoints.
    func stop() async {
        await tasks.stop()
        let all = fetchers.withLock { table in
            defer { table.removeAll() }
            return Array(table.values)
        }
        for fetcher in all { await fetcher.stop() }
        for partition in allPartitions { partition.resign() }
        // A later `start` (after a new session) follows every topic again, and retries what failed at once.
        heldTopics.withLock { $0.removeAll() }
        missingTopics.removeAll()
        offlinePartitions.removeAll()
        try? await writeCheckpoint()
    }

    static func milliseconds(until instant: ContinuousClock.Instant) -> Int { Int(max(.zero, instant - .now) / .milliseconds(1)) }

    /// Log metadata of a replica failure.
    func metadata(topic: String, partitions: [Int32], failure: ReplicaFailure?) -> Logger.Metadata {
        var metadata: Logger.Metadata = ["broker": "\(brokerId)", "topic": "\(topic)", "partition": "\(partitions.map(String.init).joined(separator: ","))"]
        if let failure {
            metadata["errno"] = "\(failure.errno)"
            metadata["error"] = "\(failure.message)"
        }
        return metadata
    }

    /// Applies the partition's state node to it whenever it changes, until the node or the partition
    /// (a deleted topic's, or one moved away: a re-created one has new `Partition`s) is gone. The
    /// replica set is the partition's own, which the topic's assignment watch keeps current
    /// (`Partition.assign(replicas:)`).
    func followState(of partition: Partition) async {
        let id = partition.id
        let path = paths.state(id.topic, id.partition)
        while !Task.isCancelled, topics.partition(id) === partition {
            do {
                let (data, stat, watch) = try await session.data(path, watch: true)
                let node = try ClusterJSON.decode(PartitionStateNode.self, data)
                if node.leader == brokerId && ownEpoch.predates(stat.mzxid) {
                    // Elected before this broker (re)registered: the controller elects anew (BrokerEpochs).
                    logger.info("not leading from a state written before this broker registered", metadata: Self.metadata(id, ["epoch": "\(node.leaderEpoch)"]))
                    _ = try await watch?.event()
                    continue
                }
                let members = partition.snapshot.replicas
                try await apply(node, version: stat.version, to: partition, replicas: members)
                // Put back in the ISR while its appends fail (the leader saw it caught up): out again.
                if node.isr.contains(brokerId) && offlinePartitions.isFailing(id) {
                    await withdraw(from: id, replicas: members)
                }
                _ = try await watch?.event()
            } catch let error as CoordinationError where error.code == .noNode {
                return
            } catch let error as StorageError {
                // Leading needs the new epoch recorded: until it can be, another ISR member leads.
                replicaFailed(id, error)
                try? await Task.sleep(until: offlinePartitions.failure(id)?.retryAt ?? .now)
            } catch {
                if sessionEnded { return }
                if !Task.isCancelled { logger.warning("following the partition's state failed (retrying)", metadata: Self.metadata(id, ["error": "\(error)"])) }
                await pause(.milliseconds(100))
            }
        }
    }

    /// Applies a state node to the partition (on its writer's queue, so no append straddles the
    /// change), then starts or stops fetching.
    private func apply(_ node: PartitionStateNode, version: Int32, to partition: Partition, replicas members: [BrokerID]) async throws {
        let id = partition.id
        switch try await partition.apply(node, version: version, replicas: members) {
        case .becameLeader(let epoch):
            logger.info("became the leader", metadata: Self.metadata(id, ["epoch": "\(epoch)", "isr": "\(node.isr)"]))
            replicaSucceeded(id)
            stopFetching(id, except: nil)
        case .becameFollower(let leader, let epoch):
            logger.info("became a follower", metadata: Self.metadata(id, ["leader": "\(leader)", "epoch": "\(epoch)"]))
            stopFetching(id, except: leader)
            fetcher(for: leader).follow(id, epoch: epoch)
        case .wentOffline:
            logger.warning("the partition has no leader", metadata: Self.metadata(id))
            stopFetching(id, except: nil)
        case .unchanged:
            break
        }
    }

    /// Log metadata naming a partition.
    static func metadata(_ id: TopicPartition, _ more: Logger.Metadata = [:]) -> Logger.Metadata {
        more.merging(["topic": "\(id.topic)", "partition": "\(id.partition)"]) { $1 }
    }

    private func fetcher(for leader: BrokerID) -> ReplicaFetcher {
        let (fetcher, created) = fetchers.withLock { table -> (ReplicaFetcher, Bool) in
            if let existing = table[leader] { return (existing, false) }
            let fetcher = ReplicaFetcher(leader: leader, manager: self)
            table[leader] = fetcher
            return (fetcher, true)
        }
        if created { fetcher.start() }
        return fetcher
    }

    func stopFetching(_ partition: TopicPartition, except leader: BrokerID?) {
        for (id, fetcher) in fetchers.withLock({ $0 }) where id != leader { fetcher.unfollow(partition) }
    }

    // MARK: - Controlled shutdown

    /// Hands every partition this broker leads to its next live ISR member (assignment order), with
    /// the leader epoch bumped and this broker out of the ISR, before it stops: clients then only need
    /// a metadata refresh. Each write is checked against the state node's version (a partition whose
    /// state changed meanwhile is left to the controller). Produces still waiting get
    /// NOT_LEADER_OR_FOLLOWER when the state watch applies the change.
    func handOverLeadership() async {
        guard let live = try? await session.children(paths.brokerIds).compactMap(BrokerID.init(name:)) else { return }
        for partition in allPartitions {
            let id = partition.id
            let state = partition.snapshot
            let current = PartitionStateNode(leader: brokerId, leaderEpoch: state.leaderEpoch, isr: state.isr, controllerEpoch: state.controllerEpoch)
            guard state.role == .leader, let node = current.withdrawing(brokerId, replicas: state.replicas, live: Set(live)) else { continue }
            let path = paths.state(id.topic, id.partition)
            do {
                _ = try await session.setData(path, data: ClusterJSON.encode(node), version: state.stateVersion)
                logger.info("handed the leadership over", metadata: Self.metadata(id, ["leader": "\(node.leader)", "epoch": "\(node.leaderEpoch)"]))
            } catch {
                logger.warning("handing the leadership over was refused", metadata: Self.metadata(id, ["error": "\(error)"]))
            }
            partition.resign()
        }
    }

    // MARK: - ISR

    /// Takes this broker out of the ISR of a partition it cannot hold now (its log could not be made,
    /// or appending to it failed), handing leadership to the next live ISR member (assignment order,
    /// next epoch) if it leads: KIP-112's outcome for an offline replica, written by the broker
    /// itself as a leader writes its ISR, so acks=all stops waiting for it at once instead of after
    /// `replica.lag.time.max.ms`. Checked against the state node's version (a conflict reads it
    /// again); nothing if it is not in the ISR or nobody could go on without it.
    func withdraw(from partition: TopicPartition, replicas members: [BrokerID]) async {
        let path = paths.state(partition.topic, partition.partition)
        while !Task.isCancelled {
            do {
                let (data, stat) = try await session.data(path)
                let state = try ClusterJSON.decode(PartitionStateNode.self, data)
                guard state.isr.contains(brokerId) else { return }
                let live = state.leader == brokerId ? Set(try await session.children(paths.brokerIds).compactMap(BrokerID.init(name:))) : []
                guard let next = state.withdrawing(brokerId, replicas: members, live: live) else { return }
                _ = try await session.setData(path, data: ClusterJSON.encode(next), version: stat.version)
                logger.warning(
                    "left the isr: the partition's storage failed here",
                    metadata: Self.metadata(partition, ["leader": "\(next.leader)", "epoch": "\(next.leaderEpoch)", "isr": "\(next.isr)"]))
                return
            } catch let error as CoordinationError where error.code == .badVersion {
                continue
            } catch {
                // The state watch (or the next retry) tries again.
                if !sessionEnded { logger.warning("leaving the isr failed", metadata: Self.metadata(partition, ["error": "\(error)"])) }
                return
            }
        }
    }

    /// The fetcher could not write to `partition` (append or truncation): it waits out its back-off
    /// before the next try, and this broker leaves the partition's ISR at once. Logged when the
    /// failure begins or changes, not per retry.
    func replicaFailed(_ partition: TopicPartition, _ error: any Error) {
        let failure = ReplicaFailure(error)
        guard offlinePartitions.failed(partition, failure), let entry = offlinePartitions.failure(partition) else { return }
        logger.error(
            "broker \(brokerId) cannot write \(partition.topic)-\(partition.partition): \(failure); it leaves the ISR until a retry succeeds (next in \(Self.milliseconds(until: entry.retryAt)) ms)",
            metadata: metadata(topic: partition.topic, partitions: [partition.partition], failure: failure))
        guard let members = topics.partition(partition)?.snapshot.replicas, !members.isEmpty else { return }
        tasks.start { await self.withdraw(from: partition, replicas: members) }
    }

    /// The fetcher wrote to `partition` (or had nothing to write): if it was failing, it is back.
    func replicaSucceeded(_ partition: TopicPartition) {
        guard let ended = offlinePartitions.succeeded(partition) else { return }
        logger.info(
            "broker \(brokerId) writes \(partition.topic)-\(partition.partition) again after \(ended.failures) failed tries: it rejoins the ISR once caught up",
            metadata: metadata(topic: partition.topic, partitions: [partition.partition], failure: nil))
    }

    /// Writes a new ISR for a partition this broker leads, checked against the state node's version
    /// (a rejected write means the controller or another leader changed it: the state watch then
    /// brings the newer state; nothing is overwritten).
    func proposeIsr(_ isr: [BrokerID], for partition: Partition) async {
        guard let (node, version) = partition.beginIsrChange(isr) else { return }
        let id = partition.id
        var accepted: Int32?
        do {
            accepted = try await session.setData(paths.state(id.topic, id.partition), data: ClusterJSON.encode(node), version: version).version
            logger.info("changed the isr", metadata: Self.metadata(id, ["isr": "\(isr)"]))
        } catch {
            logger.info("an isr change was refused (the state watch brings the newer state)", metadata: Self.metadata(id, ["isr": "\(isr)", "error": "\(error)"]))
        }
        partition.endIsrChange(node, acceptedVersion: accepted)
    }

    /// `proposeIsr` in the background (a fetch that found a follower caught up does not wait for the
    /// write); stopping the manager waits for it.
    func proposeIsrSoon(_ isr: [BrokerID], for partition: Partition) {
        tasks.start { await self.proposeIsr(isr, for: partition) }
    }

    /// Removes followers that have not caught up within `replica.lag.time.max.ms` (checked every half
    /// of it, as Kafka's isr-expiration task).
    private func expireIsrMembers() async {
        let maxLag = Duration.milliseconds(settings.replicaLagTimeMaxMs)
        while !Task.isCancelled {
            await pause(.milliseconds(max(10, settings.replicaLagTimeMaxMs / 2)))
            for partition in allPartitions {
                if let isr = partition.shrunkIsr(maxLag: maxLag) { await proposeIsr(isr, for: partition) }
            }
        }
    }

    /// Takes a follower whose process is gone out of the ISRs of the partitions led here as soon as
    /// that is known, rather than when its session expires or after `replica.lag.time.max.ms`, so
    /// acks=all stops waiting for it: a follower that sent no fetch for twice
    /// `replica.fetch.wait.max.ms` (at least 500 ms) is probed, and out if its listener refuses
    /// connections (`ListenerProbe`). Safe whatever the cause: the ISR only shrinks through the
    /// leader's conditional write, and the follower rejoins once caught up.
    private func removeGoneFollowers() async {
        let silence = Duration.milliseconds(max(500, 2 * settings.replicaFetchWaitMaxMs))
        while !Task.isCancelled {
            await pause(silence / 2)
            var silent: Set<BrokerID> = []
            for partition in allPartitions { silent.formUnion(partition.silentIsrFollowers(silence: silence)) }
            var gone: Set<BrokerID> = []
            for follower in silent where await listenerRefuses(follower) { gone.insert(follower) }
            guard !gone.isEmpty, !Task.isCancelled else { continue }
            logger.warning("followers' listeners refuse connections: out of the isr of the partitions led here", metadata: ["followers": "\(gone.sorted())"])
            for partition in allPartitions {
                if let isr = partition.isr(without: gone) { await proposeIsr(isr, for: partition) }
            }
        }
    }

    /// Whether `broker`'s registered listener refuses connections (false if that cannot be told).
    func listenerRefuses(_ broker: BrokerID) async -> Bool {
        guard let registration = try? await metadata.liveBrokers()[broker] else { return false }
        return await ListenerProbe.refuses(host: registration.host, port: Int(registration.port), group: group)
    }

    // MARK: - High-watermark checkpoint

    private func checkpointHighWatermarks() async {
        while !Task.isCancelled {
            await pause(.seconds(1))
            if Task.isCancelled { return }  // `stop` writes the last one
            do {
                try await writeCheckpoint()
            } catch {
                logger.error("writing the high-watermark checkpoint failed", metadata: ["error": "\(error)"])
            }
        }
    }

    /// Makes the log starts durable (a follower's start moved by its leader's DeleteRecords or
    /// retention): one fsynced write on the I/O pool.
    func checkpointLogStarts() async throws {
        try await io.runIfActive { [topics] in try topics.checkpointLogStarts() }
    }

    private func writeCheckpoint() async throws {
        let offsets = Dictionary(uniqueKeysWithValues: allPartitions.map { ($0.id, $0.log.highWatermark) })
        let path = "\(dataDirectory)/\(Self.checkpointFile)"
        try await io.runIfActive { try OffsetCheckpoint.write(offsets, to: path, files: PosixFileSystem()) }
    }

    func pause(_ duration: Duration) async {
        try? await Task.sleep(for: duration)
    }

    /// Whether the session can no longer serve (its loops then end).
    var sessionEnded: Bool { session.state == .expired || session.state == .closed }

    /// Connects to another broker's listener as registered in coordination (as the metadata cache
    /// holds it, so a fetcher reconnects while coordination is unreachable).
    func connect(to broker: BrokerID) async throws -> BrokerLink {
        guard let registration = try await metadata.liveBrokers()[broker] else { throw CoordinationError(.noNode, path: paths.broker(broker)) }
        return try await BrokerLink.connect(host: registration.host, port: Int(registration.port), group: group, clientId: "samsa-replica-\(brokerId)")
    }
}
