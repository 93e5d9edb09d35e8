import NIOCore
import NIOPosix
import SamsaCoordination
import SamsaStorage
import Synchronization

/// This broker's part in the cluster's replication (Kafka's `ReplicaManager`): follows the topics
/// and partition state nodes in coordination, gives each partition it replicates its role (leader,
/// follower, none) and runs the followers' fetchers, the ISR expiry and the high-watermark
/// checkpoint (`<data>/replication-offset-checkpoint`).
final class ReplicaManager: Sendable {
    static let checkpointFile = "replication-offset-checkpoint"

    let brokerId: Int32
    let settings: ClusterSettings
    let paths: ClusterPaths
    let session: any CoordinationSession
    let topics: TopicTable
    let writers: PartitionWriters
    let epochs: LeaderEpochs
    let group: any EventLoopGroup
    private let io: NIOThreadPool
    private let notifier: AppendNotifier
    private let dataDirectory: String
    private let replicas = Mutex<[TopicPartition: Replica]>([:])
    private let fetchers = Mutex<[Int32: ReplicaFetcher]>([:])
    private let tasks = Mutex<[Task<Void, Never>]>([])
    private let followedTopics = Mutex<Set<String>>([])
    let log: @Sendable (String) -> Void
    /// ISR shrinks and expands of the partitions led here (for the metrics).
    let isrChanges = IsrChangeCounts()

    init(
        brokerId: Int32, settings: ClusterSettings, session: any CoordinationSession, topics: TopicTable, writers: PartitionWriters,
        epochs: LeaderEpochs, group: any EventLoopGroup, io: NIOThreadPool, notifier: AppendNotifier, dataDirectory: String,
        log: @escaping @Sendable (String) -> Void
    ) {
        self.brokerId = brokerId
        self.settings = settings
        self.paths = ClusterPaths(root: settings.root)
        self.session = session
        self.topics = topics
        self.writers = writers
        self.epochs = epochs
        self.group = group
        self.io = io
        self.notifier = notifier
        self.dataDirectory = dataDirectory
        self.log = log
    }

    /// Sets every log's high watermark from the checkpoint (0 for a partition not in it), before the
    /// broker serves anything. Blocking: call it off the event loops.
    static func loadHighWatermarks(dataDirectory: String, logs: LogManager) throws {
        let checkpoint = try OffsetCheckpoint.read("\(dataDirectory)/\(checkpointFile)", files: PosixFileSystem())
        for partition in logs.partitions {
            logs.log(partition)?.updateHighWatermark(checkpoint[partition] ?? 0)
        }
    }

    func replica(_ partition: TopicPartition) -> Replica? { replicas.withLock { $0[partition] } }

    var allReplicas: [Replica] { replicas.withLock { Array($0.values) } }

    func start() {
        spawn { await self.followTopics() }
        spawn { await self.expireIsrMembers() }
        spawn { await self.checkpointHighWatermarks() }
    }

    /// Stops following coordination and fetching, gives up every role and checkpoints.
    func stop() async {
        let running = tasks.withLock { table in
            defer { table.removeAll() }
            return table
        }
        for task in running { task.cancel() }
        for task in running { await task.value }
        let all = fetchers.withLock { table in
            defer { table.removeAll() }
            return Array(table.values)
        }
        for fetcher in all { await fetcher.stop() }
        for replica in allReplicas { replica.resign() }
        // A later `start` (after a new session) follows every topic again.
        followedTopics.withLock { $0.removeAll() }
        try? await writeCheckpoint()
    }

    private func spawn(_ body: @escaping @Sendable () async -> Void) {
        let task = Task { await body() }
        tasks.withLock { $0.append(task) }
    }

    // MARK: - Following coordination

    private func followTopics() async {
        while !Task.isCancelled {
            do {
                let (names, _, watch) = try await session.children(paths.topics, watch: true)
                for name in names where followedTopics.withLock({ $0.insert(name).inserted }) {
                    spawn { await self.followTopic(name) }
                }
                _ = try await watch?.event()
            } catch {
                if sessionEnded { return }
                await pause(.milliseconds(200))
            }
        }
    }

    /// Makes the topic's logs here (all partitions, so a broker can take any later) and follows the
    /// state of each partition this broker replicates.
    private func followTopic(_ name: String) async {
        var assignment: TopicAssignment?
        while assignment == nil && !Task.isCancelled {
            do {
                let assigned = try ClusterJSON.decode(TopicAssignment.self, try await session.data(paths.topic(name)).data)
                var config = TopicConfig()
                if let node = try? ClusterJSON.decode(TopicConfigNode.self, try await session.data(paths.topicConfig(name)).data) {
                    config.overrides = node.config
                }
                if topics.topic(name) == nil {
                    do {
                        _ = try await topics.create(name, partitions: assigned.partitionCount, config: config)
                    } catch {
                        guard case .alreadyExists = error else { throw error }
                    }
                }
                assignment = assigned
            } catch {
                if sessionEnded { return }
                log("broker \(brokerId): following topic \(name): \(error)")
                await pause(.milliseconds(200))
            }
        }
        guard let assignment else { return }
        for index in 0..<assignment.partitionCount where assignment.replicas(index).contains(brokerId) {
            let partition = TopicPartition(topic: name, partition: index)
            guard let log = topics.log(name, index) else { continue }
            let notifier = notifier
            let replica = Replica(partition: partition, log: log, brokerId: brokerId, isrChanges: isrChanges) { notifier.appended(to: $0) }
            replicas.withLock { $0[partition] = replica }
            let members = assignment.replicas(index)
            spawn { await self.followState(of: replica, replicas: members) }
        }
    }

    private func followState(of replica: Replica, replicas members: [Int32]) async {
        let path = paths.state(replica.partition.topic, replica.partition.partition)
        while !Task.isCancelled {
            do {
                let (data, stat, watch) = try await session.data(path, watch: true)
                try await apply(try ClusterJSON.decode(PartitionStateNode.self, data), version: stat.version, to: replica, replicas: members)
                _ = try await watch?.event()
            } catch let error as CoordinationError where error.code == .noNode {
                return
            } catch {
                if sessionEnded { return }
                if !Task.isCancelled { log("broker \(brokerId): following \(replica.partition): \(error)") }
                await pause(.milliseconds(100))
            }
        }
    }

    /// Applies a state node on the partition's writer queue (so no append straddles the change), then
    /// starts or stops fetching.
    private func apply(_ node: PartitionStateNode, version: Int32, to replica: Replica, replicas members: [Int32]) async throws {
        let partition = replica.partition
        let writer = writers.writer(for: partition, log: replica.log)
        let epochs = epochs
        let transition = try await writer.perform {
            let transition = replica.apply(node, version: version, replicas: members)
            switch transition {
            case .becameLeader(let epoch):
                try epochs.assign(partition, epoch: epoch, startOffset: replica.log.logEndOffset)
                writer.forgetProducerStateNow()
            case .becameFollower, .wentOffline:
                writer.forgetProducerStateNow()
            case .unchanged:
                break
            }
            return transition
        }
        switch transition {
        case .becameLeader(let epoch):
            log("broker \(brokerId): leader of \(partition) at epoch \(epoch), isr \(node.isr)")
            stopFetching(partition, except: nil)
        case .becameFollower(let leader, let epoch):
            log("broker \(brokerId): follower of \(leader) for \(partition) at epoch \(epoch)")
            stopFetching(partition, except: leader)
            fetcher(for: leader).follow(partition, epoch: epoch)
        case .wentOffline:
            log("broker \(brokerId): \(partition) has no leader")
            stopFetching(partition, except: nil)
        case .unchanged:
            break
        }
    }

    private func fetcher(for leader: Int32) -> ReplicaFetcher {
        let (fetcher, created) = fetchers.withLock { table -> (ReplicaFetcher, Bool) in
            if let existing = table[leader] { return (existing, false) }
            let fetcher = ReplicaFetcher(leader: leader, manager: self)
            table[leader] = fetcher
            return (fetcher, true)
        }
        if created { fetcher.start() }
        return fetcher
    }

    private func stopFetching(_ partition: TopicPartition, except leader: Int32?) {
        for (id, fetcher) in fetchers.withLock({ $0 }) where id != leader { fetcher.unfollow(partition) }
    }

    // MARK: - Controlled shutdown

    /// Hands every partition this broker leads to its next live ISR member (assignment order), with
    /// the leader epoch bumped and this broker out of the ISR, before it stops: clients then only need
    /// a metadata refresh. Each write is checked against the state node's version (a partition whose
    /// state changed meanwhile is left to the controller). Produces still waiting get
    /// NOT_LEADER_OR_FOLLOWER when the state watch applies the change.
    func handOverLeadership() async {
        guard let live = try? await session.children(paths.brokerIds).compactMap({ Int32($0) }) else { return }
        for replica in allReplicas {
            let state = replica.snapshot
            guard state.role == .leader,
                let next = state.replicas.first(where: { $0 != brokerId && state.isr.contains($0) && live.contains($0) })
            else { continue }
            let node = PartitionStateNode(
                leader: next, leaderEpoch: state.leaderEpoch + 1, isr: state.isr.filter { $0 != brokerId }, controllerEpoch: state.controllerEpoch)
            let path = paths.state(replica.partition.topic, replica.partition.partition)
            do {
                _ = try await session.setData(path, data: ClusterJSON.encode(node), version: state.stateVersion)
                log("broker \(brokerId): handed \(replica.partition) to \(next) at epoch \(node.leaderEpoch)")
            } catch {
                log("broker \(brokerId): handing \(replica.partition) over refused: \(error)")
            }
            replica.resign()
        }
    }

    // MARK: - ISR

    /// Writes a new ISR for a partition this broker leads, checked against the state node's version
    /// (a rejected write means the controller or another leader changed it: the state watch then
    /// brings the newer state; nothing is overwritten).
    func proposeIsr(_ isr: [Int32], for replica: Replica) async {
        guard let (node, version) = replica.beginIsrChange(isr) else { return }
        let path = paths.state(replica.partition.topic, replica.partition.partition)
        var accepted: Int32?
        do {
            accepted = try await session.setData(path, data: ClusterJSON.encode(node), version: version).version
            log("broker \(brokerId): isr of \(replica.partition) is now \(isr)")
        } catch {
            log("broker \(brokerId): isr change of \(replica.partition) to \(isr) refused: \(error)")
        }
        replica.endIsrChange(isr, epoch: node.leaderEpoch, acceptedVersion: accepted)
    }

    /// Removes followers that have not caught up within `replica.lag.time.max.ms` (checked every half
    /// of it, as Kafka's isr-expiration task).
    private func expireIsrMembers() async {
        let maxLag = Duration.milliseconds(settings.replicaLagTimeMaxMs)
        while !Task.isCancelled {
            await pause(.milliseconds(max(10, settings.replicaLagTimeMaxMs / 2)))
            for replica in allReplicas {
                if let isr = replica.shrunkIsr(maxLag: maxLag) { await proposeIsr(isr, for: replica) }
            }
        }
    }

    // MARK: - High-watermark checkpoint

    private func checkpointHighWatermarks() async {
        while !Task.isCancelled {
            await pause(.seconds(1))
            if Task.isCancelled { return }  // `stop` writes the last one
            do {
                try await writeCheckpoint()
            } catch {
                log("broker \(brokerId): writing the high-watermark checkpoint failed: \(error)")
            }
        }
    }

    private func writeCheckpoint() async throws {
        let offsets = Dictionary(uniqueKeysWithValues: allReplicas.map { ($0.partition, $0.log.highWatermark) })
        let path = "\(dataDirectory)/\(Self.checkpointFile)"
        try await io.runIfActive { try OffsetCheckpoint.write(offsets, to: path, files: PosixFileSystem()) }
    }

    private func pause(_ duration: Duration) async {
        try? await Task.sleep(for: duration)
    }

    /// Whether the session can no longer serve (its loops then end).
    private var sessionEnded: Bool { session.state == .expired || session.state == .closed }

    /// Connects to another broker's listener as registered in coordination.
    func connect(to broker: Int32) async throws -> BrokerLink {
        let registration = try ClusterJSON.decode(BrokerRegistration.self, try await session.data(paths.broker(broker)).data)
        return try await BrokerLink.connect(host: registration.host, port: Int(registration.port), group: group, clientId: "samsa-replica-\(brokerId)")
    }
}
