import Logging
import NIOCore
import SamsaProtocol
import SamsaWaiting
import Synchronization

/// The state machine a coordinator partition's leader runs (a group coordinator's groups and
/// offsets; a transaction coordinator's transactions next), made by replaying the partition.
protocol CoordinatorShard: AnyObject, Sendable {
    /// The partition it was loaded from, and the leader epoch it was loaded under: it writes only
    /// under that epoch (`Partition.append(requiredEpoch:)`).
    var partition: Partition { get }
    var epoch: LeaderEpoch { get }
    /// Leadership moved away (or the broker stops): waiting requests are answered NOT_COORDINATOR
    /// and the state dropped.
    func unload() async
}

/// Coordinator partitions (Kafka's `CoordinatorRuntime`): the partitions of an internal topic are
/// replicated like any other, and the leader of each runs a `Shard` that it builds by replaying
/// the partition when it becomes leader and drops when it stops leading. Requests for a key whose
/// partition is not led here get NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS while its replay
/// runs.
///
/// Role changes come from the partitions (`PartitionRoleEvents`) and are applied one at a time by
/// one task, which reads the partition's current role rather than the event: events may be
/// coalesced or arrive late without harm. A shard is active only while its partition leads at the
/// epoch it was loaded under; `shard(_:)` checks that on every lookup.
final class CoordinatorRuntime<Shard: CoordinatorShard>: Sendable {
    private enum Slot {
        case loading(LeaderEpoch)
        case active(Shard)
    }

    let topic: String
    private let slots = Mutex<[Int32: Slot]>([:])
    private let events: AsyncStream<Partition>.Continuation
    private let stream: AsyncStream<Partition>
    private let tasks = BackgroundTasks()
    /// Requests waiting for a partition's load (`awaitLoaded`).
    private let loads: Purgatory<Int32>
    private let load: @Sendable (Partition, LeaderEpoch) async throws -> Shard
    private let logger: Logger

    /// `load` replays `partition` (led here at the epoch given) into a new shard.
    init(topic: String, timers: any EventLoop, logger: Logger, load: @escaping @Sendable (Partition, LeaderEpoch) async throws -> Shard) {
        self.topic = topic
        self.load = load
        self.logger = logger
        self.loads = Purgatory(timers: timers)
        (stream, events) = AsyncStream.makeStream(of: Partition.self)
    }

    /// Follows the role changes of the topic's partitions here, starting with `existing` (those made
    /// before this started).
    func start(roleEvents: PartitionRoleEvents, existing: [Partition]) {
        roleEvents.observe(topic: topic) { [events] partition in events.yield(partition) }
        for partition in existing where partition.id.topic == topic { events.yield(partition) }
        tasks.start { [self] in
            for await partition in stream {
                guard !Task.isCancelled else { break }
                await reconcile(partition)
            }
        }
    }

    /// Stops following roles and unloads every shard.
    func stop() async {
        await tasks.stop { events.finish() }
        let all = slots.withLock { slots in
            defer { slots.removeAll() }
            return slots.values
        }
        for case .active(let shard) in all { await shard.unload() }
    }

    /// The shard of partition `index`, or why there is none here.
    func shard(_ index: Int32) -> Result<Shard, ErrorCode> {
        switch slots.withLock({ $0[index] }) {
        case nil:
            return .failure(.notCoordinator)
        case .loading:
            return .failure(.coordinatorLoadInProgress)
        case .active(let shard):
            return shard.partition.checkLeader(epoch: shard.epoch) == nil ? .success(shard) : .failure(.notCoordinator)
        }
    }

    /// `shard`, after waiting up to `timeout` for a load that is running or about to (a broker
    /// that just made the topic answers its first request once the replay is done).
    func shard(_ index: Int32, waitingUpTo timeout: Duration) async -> Result<Shard, ErrorCode> {
        let first = shard(index)
        guard case .failure = first else { return first }
        return await loads.wait(on: [index], until: .now + timeout, expired: shard(index)) { [self] _ in
            let now = shard(index)
            if case .failure(.coordinatorLoadInProgress) = now { return nil }
            if case .failure(.notCoordinator) = now { return nil }
            return now
        }
    }

    /// Drops `shard` and loads its partition again (if still led here): its memory may no longer
    /// match the partition (a write failed after its records were appended), the log is the truth.
    func reload(_ shard: Shard) {
        let index = shard.partition.id.partition
        let dropped = slots.withLock { slots -> Bool in
            guard case .active(let current) = slots[index], current === shard else { return false }
            slots[index] = nil
            return true
        }
        guard dropped else { return }
        logger.warning("reloading a coordinator partition after a failed write", metadata: ["topic": "\(topic)", "partition": "\(index)"])
        loads.checkAndComplete(index)
        tasks.start { [events] in
            await shard.unload()
            events.yield(shard.partition)
        }
    }

    /// The shards active here.
    var activeShards: [Shard] {
        slots.withLock { slots in
            slots.values.compactMap { slot in
                if case .active(let shard) = slot { return shard }
                return nil
            }
        }
    }

    /// Loads or unloads the partition's shard to match its role now.
    private func reconcile(_ partition: Partition) async {
        let index = partition.id.partition
        let state = partition.snapshot
        let current = slots.withLock { $0[index] }
        if state.role == .leader {
            if case .active(let shard) = current, shard.partition === partition, shard.epoch == state.leaderEpoch { return }
            if case .active(let shard) = current { await shard.unload() }
            slots.withLock { $0[index] = .loading(state.leaderEpoch) }
            loads.checkAndComplete(index)
            let started = ContinuousClock.now
            let loaded: Shard
            do {
                loaded = try await load(partition, state.leaderEpoch)
            } catch {
                logger.error(
                    "loading a coordinator partition failed (retrying)",
                    metadata: ["topic": "\(topic)", "partition": "\(index)", "epoch": "\(state.leaderEpoch)", "error": "\(error)"])
                slots.withLock { $0[index] = nil }
                loads.checkAndComplete(index)
                tasks.start { [events] in
                    try? await Task.sleep(for: .seconds(1))
                    if !Task.isCancelled { events.yield(partition) }
                }
                return
            }
            guard partition.checkLeader(epoch: state.leaderEpoch) == nil else {
                // Leadership moved on during the replay: the event that says so comes next.
                await loaded.unload()
                slots.withLock { $0[index] = nil }
                loads.checkAndComplete(index)
                return
            }
            slots.withLock { $0[index] = .active(loaded) }
            loads.checkAndComplete(index)
            logger.info(
                "loaded a coordinator partition",
                metadata: ["topic": "\(topic)", "partition": "\(index)", "epoch": "\(state.leaderEpoch)", "ms": "\((ContinuousClock.now - started) / .milliseconds(1))"])
        } else if let current {
            // An event of a partition removed here (its topic re-created since) leaves the new one's shard.
            if case .active(let shard) = current, shard.partition !== partition { return }
            slots.withLock { $0[index] = nil }
            loads.checkAndComplete(index)
            if case .active(let shard) = current {
                await shard.unload()
                logger.info("unloaded a coordinator partition", metadata: ["topic": "\(topic)", "partition": "\(index)"])
            }
        }
    }
}
