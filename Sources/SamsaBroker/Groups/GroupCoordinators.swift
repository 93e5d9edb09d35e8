import Foundation
import Logging
import NIOCore
import NIOPosix
import SamsaProtocol
import SamsaRecords
import SamsaStorage
import Synchronization

/// Every group's coordinator, cluster-wide (Kafka's group coordinator over `__consumer_offsets`):
/// a group belongs to the partition `GroupPlacement` gives it, and the leader of that partition
/// coordinates it, in a `GroupShard` the coordinator runtime loads by replaying the partition when
/// this broker becomes its leader. FindCoordinator answers that leader; group and offset requests
/// here for a partition led elsewhere get NOT_COORDINATOR, and COORDINATOR_LOAD_IN_PROGRESS while
/// the replay runs. A single broker is a cluster of one: it leads every partition (RF 1).
///
/// The topic is made on first use (a FindCoordinator or a group request), as Kafka makes it, with
/// `OffsetsTopicSettings` and `cleanup.policy=compact` (the log cleaner bounds its partitions; an
/// older topic without it gets it, `OffsetsTopicCompaction`). Committed offsets from a broker's local offsets log of an earlier
/// version (`<data>/__consumer_offsets/offsets-0`) are moved into it when a partition is loaded
/// here (only those the partition lacks); once every partition has taken its share the old log is
/// renamed `__consumer_offsets.migrated`.
final class GroupCoordinators: Sendable {
    let runtime: CoordinatorRuntime<GroupShard>
    let settings: OffsetsTopicSettings
    private let catalog: any TopicCatalog
    private let topics: TopicTable
    private let io: NIOThreadPool
    private let logger: Logger
    private let tasks = BackgroundTasks()
    /// One creation of the topic at a time.
    private let creating = Mutex<Task<ErrorCode, Never>?>(nil)
    private let legacy: LegacyOffsets?
    private let staged: StagedOffsets?
    /// How long a partition led here may go without a fetch from any of its followers before its
    /// coordinator stops answering (nil: a cluster of one, which has none). See `shard(for:)`.
    private let isolation: Duration?

    init(
        configuration: BrokerConfiguration, catalog: any TopicCatalog, topics: TopicTable, configStore: any ConfigStore, io: NIOThreadPool,
        group: any EventLoopGroup, legacy: LegacyOffsets?, staged: StagedOffsets?
    ) {
        // Followers fetch again as soon as they are answered, at most replica.fetch.wait.max.ms later.
        isolation = configuration.cluster.map { .milliseconds(max(2000, 4 * $0.replicaFetchWaitMaxMs)) }
        settings = configuration.offsetsTopic
        self.catalog = catalog
        self.topics = topics
        self.io = io
        self.legacy = legacy
        self.staged = staged
        var named = configuration.logger
        named[metadataKey: "topic"] = "\(GroupPlacement.topic)"
        let logger = named
        self.logger = logger
        let limits = configuration.groupLimits
        let settings = configuration.offsetsTopic
        let runtime = Mutex<CoordinatorRuntime<GroupShard>?>(nil)
        let compaction = OffsetsTopicCompaction(configStore: configStore, topics: topics, logger: logger)
        self.runtime = CoordinatorRuntime(topic: GroupPlacement.topic, timers: group.any(), logger: logger) { [topics] partition, epoch in
            let count = topics.topic(GroupPlacement.topic)?.partitionCount ?? settings.partitions
            let maps = staged?.maps(partition: partition.id.partition, of: count) ?? [:]
            let (shard, migrated) = try await GroupShard.load(
                partition, epoch: epoch, io: { work in try await io.runIfActive(work) }, limits: limits, loop: group.any(),
                minInsyncReplicas: { topics.brokerConfigs.minInsyncReplicas(topics.config(GroupPlacement.topic)) },
                legacy: legacy?.commits(partition: partition.id.partition, of: count) ?? [], staged: maps,
                failed: { shard in runtime.withLock { $0 }?.reload(shard) }, logger: logger)
            do {
                // Renamed before the partition serves: a later load must not write them over newer commits.
                try await staged?.folded(Array(maps.keys), io: io)
            } catch {
                await shard.unload()
                throw error
            }
            if let legacy, migrated { await legacy.migrated(partition: partition.id.partition, of: count, io: io, logger: logger) }
            await compaction.ensure()
            return shard
        }
        runtime.withLock { $0 = self.runtime }
    }

    /// Follows the roles of this broker's `__consumer_offsets` partitions (before the cluster side
    /// starts applying states), and expires offsets every `retentionCheckInterval`.
    func start() {
        runtime.start(roleEvents: topics.context.roleEvents, existing: topics.allPartitions)
        tasks.start { [self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: settings.retentionCheckInterval)
                if Task.isCancelled { return }
                await expireOffsets(nowMs: WallClock.nowMilliseconds)
            }
        }
    }

    func stop() async {
        await tasks.stop()
        await runtime.stop()
        staged?.close()
    }

    // MARK: - Finding a group's coordinator

    /// The topic's partition count, making the topic if it does not exist (nil: it could not be
    /// made or read now: COORDINATOR_NOT_AVAILABLE). Read each time (this broker's table, else the
    /// cluster's metadata cache): a topic deleted by an operator is made again on next use.
    func partitionCount() async -> Int32? {
        if let count = topics.topic(GroupPlacement.topic)?.partitionCount { return count }
        if let count = try? await catalog.topic(GroupPlacement.topic)?.partitions.count, count > 0 { return Int32(count) }
        guard await createTopic() == .none else { return nil }
        return settings.partitions
    }

    /// Makes `__consumer_offsets` (once, however many requests ask at the same time).
    private func createTopic() async -> ErrorCode {
        let task = creating.withLock { running in
            if let running { return running }
            let task = Task { [self] in await makeTopic() }
            running = task
            return task
        }
        let code = await task.value
        creating.withLock { if $0 == task { $0 = nil } }
        return code
    }

    private func makeTopic() async -> ErrorCode {
        let live = (try? await catalog.liveBrokers().count) ?? 0
        guard live > 0 else { return .coordinatorNotAvailable }
        let factor = min(Int(settings.replicationFactor), live)
        if factor < settings.replicationFactor {
            logger.warning(
                "making __consumer_offsets with fewer replicas than offsets.topic.replication.factor: too few live brokers",
                metadata: ["replication_factor": "\(factor)", "wanted": "\(settings.replicationFactor)", "live_brokers": "\(live)"])
        }
        var config = TopicConfig()
        // Kafka's: compacted (the latest record per group and offset key), never deleted by retention;
        // here also every commit synced before it is acknowledged (a cluster of one has no other copy).
        config.overrides = [
            "cleanup.policy": "compact", "segment.bytes": "\(settings.segmentBytes)",
            "min.insync.replicas": "\(min(settings.minInsyncReplicas, factor))", "flush.messages": "1",
        ]
        do {
            _ = try await catalog.createTopic(
                GroupPlacement.topic, partitions: settings.partitions, replicationFactor: Int16(factor), config: config, validateOnly: false)
            logger.info("made __consumer_offsets", metadata: ["partitions": "\(settings.partitions)", "replication_factor": "\(factor)"])
            return .none
        } catch where error.code == .topicAlreadyExists {
            return .none
        } catch {
            logger.warning("making __consumer_offsets failed", metadata: ["error": "\(error.message)"])
            return .coordinatorNotAvailable
        }
    }

    /// The broker that coordinates `groupId`: its partition's leader (COORDINATOR_NOT_AVAILABLE
    /// while it has none or the topic cannot be made).
    func coordinator(of groupId: String) async -> Result<(id: BrokerID, registration: BrokerRegistration), ErrorCode> {
        guard let count = await partitionCount() else { return .failure(.coordinatorNotAvailable) }
        let index = GroupPlacement.partition(of: groupId, partitions: count)
        guard let view = try? await catalog.topic(GroupPlacement.topic)?.partitions.first(where: { $0.index == index }),
            let leader = view.state?.leader, leader != .none,
            let registration = try? await catalog.liveBrokers()[leader]
        else { return .failure(.coordinatorNotAvailable) }
        return .success((leader, registration))
    }

    /// The shard coordinating `groupId` here, or NOT_COORDINATOR / COORDINATOR_LOAD_IN_PROGRESS /
    /// COORDINATOR_NOT_AVAILABLE. A partition led here whose replay is running or about to (this
    /// broker leads it, or coordination says it does and the state is on its way: a topic just made,
    /// a failover FindCoordinator already answered) is waited for, up to a few seconds.
    ///
    /// A partition none of whose followers has fetched from this leader for 4 x
    /// `replica.fetch.wait.max.ms` (at least 2 s) is isolated: the controller may have elected another leader it could not tell this broker about
    /// (a broker cut off from coordination keeps leading, see README), whose followers no longer fetch
    /// here. Its writes could not commit anyway; its heartbeats and fetches must not go on either (two
    /// coordinators would give a partition two owners), so it answers NOT_COORDINATOR.
    func shard(for groupId: String) async -> Result<GroupShard, ErrorCode> {
        guard let count = await partitionCount() else { return .failure(.coordinatorNotAvailable) }
        let index = GroupPlacement.partition(of: groupId, partitions: count)
        var found = runtime.shard(index)
        if case .failure = found {
            if topics.partition(GroupPlacement.topic, index)?.role != .leader {
                let view = try? await catalog.topic(GroupPlacement.topic)?.partitions.first { $0.index == index }
                guard view?.state?.leader == topics.context.brokerId else { return found }
            }
            found = await runtime.shard(index, waitingUpTo: .seconds(5))
        }
        if case .success(let shard) = found, let isolation, shard.partition.followersSilent(for: isolation) { return .failure(.notCoordinator) }
        return found
    }

    // MARK: - Across the shards led here

    var shards: [GroupShard] { runtime.activeShards }

    /// Every shard of the partitions led here, once loaded (each waited for up to a few seconds);
    /// COORDINATOR_LOAD_IN_PROGRESS if one is still loading then, as Kafka's ListGroups answers.
    func loadedShards() async -> Result<[GroupShard], ErrorCode> {
        var loaded: [GroupShard] = []
        for partition in topics.allPartitions where partition.id.topic == GroupPlacement.topic && partition.role == .leader {
            switch await runtime.shard(partition.id.partition, waitingUpTo: .seconds(5)) {
            case .success(let shard): loaded.append(shard)
            case .failure(.notCoordinator): continue  // no longer led here
            case .failure(let code): return .failure(code)
            }
        }
        return .success(loaded)
    }

    /// Runs now the group deadlines due within `duration` on every shard (tests).
    func expire(after duration: Duration) async {
        for shard in shards { await shard.coordinator.expire(after: duration) }
    }

    /// Groups, member ids issued and not used, and timers, summed over the shards (tests, metrics).
    var counts: (groups: Int, pendingMembers: Int, timers: Int) {
        get async {
            var total = (groups: 0, pendingMembers: 0, timers: 0)
            for shard in shards {
                let counts = await shard.coordinator.counts
                total = (total.groups + counts.groups, total.pendingMembers + counts.pendingMembers, total.timers + counts.timers)
            }
            return total
        }
    }

    /// Expires offsets on every shard (`offsets.retention.minutes`).
    func expireOffsets(nowMs: Int64) async {
        for shard in shards {
            await shard.expireOffsets(nowMs: nowMs, retentionMs: Int64(settings.retention / .milliseconds(1)))
        }
    }
}
