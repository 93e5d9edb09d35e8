import SamsaWaiting
import NIOCore
import SamsaProtocol
import SamsaStorage
import Synchronization

/// One partition on this broker (Kafka's `Partition`): the one owner of everything about it — its
/// log, its serial writer and producer state (`PartitionWriter`), its role, leader epoch and ISR,
/// its followers' progress, its leader-epoch history and the acks=all produces waiting for its high
/// watermark. Held in the `TopicTable`, one per log.
///
/// A single broker is a cluster of one (`Leadership.local`): every partition leads at once, with
/// itself as the only replica, and produce, fetch and the high watermark take the same paths as in
/// a cluster. In a cluster (`Leadership.replicated`) the replica manager applies the controller's
/// state nodes (`apply`).
///
/// Rules this type enforces: role changes, leader appends and follower writes run on the writer's
/// queue, so an append is admitted and written under one role; the high watermark only rises (the
/// log refuses to lower it), never past the log end, and drops only with an explicit truncation of
/// a follower's log; a follower writes only through `whileFollowing`, under the leader and epoch it
/// was told to follow.
final class Partition: Sendable {
    enum Role: Sendable, Equatable {
        case none
        case leader
        case follower(leader: BrokerID)
    }

    /// What applying a state node changed.
    enum Transition: Sendable, Equatable {
        case unchanged
        case becameLeader(epoch: LeaderEpoch)
        case becameFollower(leader: BrokerID, epoch: LeaderEpoch)
        case wentOffline
    }

    struct FollowerProgress {
        /// The follower has every offset below this (its last fetch offset); -1 until it fetches.
        var logEnd: Int64 = -1
        var lastCaughtUp: ContinuousClock.Instant
        /// The leader's log end when the follower last fetched, and when (Kafka's lag rule).
        var lastFetchLeaderEnd: Int64 = -1
        var lastFetchTime: ContinuousClock.Instant
        /// The follower's log start as its last fetch said (-1 until then): DeleteRecords' low watermark.
        var logStart: Int64 = -1
    }

    struct State {
        var role = Role.none
        var leaderEpoch = LeaderEpoch.none
        var replicas: [BrokerID] = []
        var isr: [BrokerID] = []
        /// The version of the state node this state came from (ISR writes are checked against it).
        var stateVersion: Int32 = -1
        var controllerEpoch: Int32 = 0
        /// Where the current leader epoch began in this log (a follower joins the ISR only past it).
        var epochStartOffset: Int64 = 0
        var followers: [BrokerID: FollowerProgress] = [:]
        var isrChangeInFlight = false
    }

    let id: TopicPartition
    let log: PartitionLog
    private let context: PartitionContext
    private let writer: PartitionWriter
    private let state = Mutex(State())
    /// Bytes appended here (leader and follower), for waiting fetches' growth (`FetchInterest`).
    private let appended = Atomic<Int>(0)

    var appendedBytes: Int { appended.load(ordering: .acquiring) }

    /// Counts bytes just appended (before the event that wakes fetches).
    func countAppended(_ bytes: Int) { appended.add(bytes, ordering: .releasing) }

    init(_ id: TopicPartition, log: PartitionLog, context: PartitionContext) {
        self.id = id
        self.log = log
        self.context = context
        writer = PartitionWriter(partition: id, log: log, producerIdExpiration: context.producerIdExpiration, decompression: context.decompression)
        if case .local = context.leadership { leadAlone() }
    }

    var brokerId: BrokerID { context.brokerId }
    var snapshot: State { state.withLock { $0 } }
    var role: Role { state.withLock { $0.role } }
    var leaderEpoch: LeaderEpoch { state.withLock { $0.leaderEpoch } }

    /// This partition's leader-epoch history (nil on a cluster of one, which keeps none).
    var epochs: LeaderEpochs? {
        if case .replicated(let epochs) = context.leadership { return epochs }
        return nil
    }

    // MARK: - Role

    /// A cluster of one: the leader at epoch 0, the only replica and ISR member.
    private func leadAlone() {
        state.withLock { state in
            state.role = .leader
            state.leaderEpoch = 0
            state.replicas = [brokerId]
            state.isr = [brokerId]
        }
        advanceHighWatermark()
        context.roleEvents.changed(self)
    }

    /// Applies a state node read from coordination (an older version than the one applied is
    /// ignored), on the writer's queue so no append straddles the change: records a new epoch led
    /// here (not leading without it on disk: the error is thrown and the state left), and forgets
    /// the producer state when the log may change under another leader.
    func apply(_ node: PartitionStateNode, version: Int32, replicas: [BrokerID]) async throws -> Transition {
        try await writer.perform { () throws -> Transition in
            let transition = self.applyNow(node, version: version, replicas: replicas)
            switch transition {
            case .becameLeader(let epoch):
                do {
                    try self.epochs?.assign(self.id, epoch: epoch, startOffset: self.log.logEndOffset)
                } catch {
                    self.resign()
                    throw error
                }
                self.writer.forgetProducerStateNow()
            case .becameFollower, .wentOffline:
                self.writer.forgetProducerStateNow()
            case .unchanged:
                break
            }
            return transition
        }
    }

    /// `apply`'s state change (tests call it directly).
    func applyNow(_ node: PartitionStateNode, version: Int32, replicas: [BrokerID], now: ContinuousClock.Instant = .now) -> Transition {
        let transition = state.withLock { state -> Transition in
            guard version > state.stateVersion || node.leaderEpoch > state.leaderEpoch else { return .unchanged }
            let sameEpoch = node.leaderEpoch == state.leaderEpoch
            state.stateVersion = version
            state.controllerEpoch = node.controllerEpoch
            state.replicas = replicas
            // Still leading at the same epoch: an ISR change written by the controller.
            if sameEpoch && state.role == .leader { context.isrChanges.changed(from: state.isr, to: node.isr) }
            state.isr = node.isr
            if sameEpoch && state.role != .none { return .unchanged }
            state.leaderEpoch = node.leaderEpoch
            if node.leader == brokerId {
                state.role = .leader
                state.epochStartOffset = log.logEndOffset
                state.followers = Dictionary(uniqueKeysWithValues: replicas.filter { $0 != brokerId }.map {
                    ($0, FollowerProgress(lastCaughtUp: now, lastFetchTime: now))
                })
                return .becameLeader(epoch: node.leaderEpoch)
            }
            state.role = node.leader == .none ? .none : .follower(leader: node.leader)
            state.followers = [:]
            return node.leader == .none ? .wentOffline : .becameFollower(leader: node.leader, epoch: node.leaderEpoch)
        }
        // Produces waiting for the high watermark learn of a lost leadership at once. Also when only
        // the ISR changed (the controller removed a dead follower): the high watermark may rise.
        context.produceWaits.checkAndComplete(id)
        advanceHighWatermark()
        if transition != .unchanged { context.roleEvents.changed(self) }
        return transition
    }

    /// Takes the partition's replica set from its assignment (it changes while a reassignment adds
    /// and removes replicas): a leader starts tracking a replica that joins (so it can catch up and
    /// join the ISR the usual way) and forgets one that left.
    func assign(replicas: [BrokerID], now: ContinuousClock.Instant = .now) {
        state.withLock { state in
            guard state.replicas != replicas else { return }
            state.replicas = replicas
            guard state.role == .leader else { return }
            for member in replicas where member != brokerId && state.followers[member] == nil {
                state.followers[member] = FollowerProgress(lastCaughtUp: now, lastFetchTime: now)
            }
            for member in state.followers.keys where !replicas.contains(member) { state.followers[member] = nil }
        }
    }

    /// Leaves every role (the broker is stopping or lost its coordination session).
    func resign() {
        state.withLock { state in
            state.role = .none
            state.stateVersion = -1
        }
        context.produceWaits.checkAndComplete(id)
        context.roleEvents.changed(self)
    }

    /// Whether a request that names `epoch` (-1: none) may be served by the leader: nil if so.
    func checkLeader(epoch: Int32) -> ErrorCode? {
        checkLeader(epoch: LeaderEpoch(epoch))
    }

    /// Whether a request that names `epoch` (`.none`: none) may be served by the leader: nil if so.
    func checkLeader(epoch: LeaderEpoch) -> ErrorCode? {
        state.withLock { state in
            guard state.role == .leader else { return .notLeaderOrFollower }
            if epoch != .none && epoch < state.leaderEpoch { return .fencedLeaderEpoch }
            if epoch > state.leaderEpoch { return .unknownLeaderEpoch }
            return nil
        }
    }

    // MARK: - High watermark

    /// Raises the high watermark to the smallest log end of the ISR (leader only; the log never
    /// lowers it) and wakes what waits for it.
    func advanceHighWatermark() {
        if raiseHighWatermark() { context.fetchWaits.checkAndComplete(id) }
    }

    /// `advanceHighWatermark` without waking fetches (the caller reports one event for its append and
    /// the move together): true if it moved. acks=all produces are woken here.
    private func raiseHighWatermark() -> Bool {
        let moved = state.withLock { state -> Bool in
            guard state.role == .leader else { return false }
            var end = log.logEndOffset
            for member in state.isr where member != brokerId {
                end = min(end, state.followers[member]?.logEnd ?? -1)
            }
            return log.raiseHighWatermark(to: end)
        }
        if moved { context.produceWaits.checkAndComplete(id) }
        return moved
    }

    /// What an acks=all produce waiting for the high watermark is told.
    enum Replicated: Sendable, Equatable {
        case reached
        case notLeader
        case timedOut
    }

    /// Waits until the high watermark reaches `offset` while this broker leads at `epoch`: nil then,
    /// NOT_LEADER_OR_FOLLOWER if leadership goes first, REQUEST_TIMED_OUT after `timeout`,
    /// NOT_ENOUGH_REPLICAS_AFTER_APPEND if the ISR shrank below `minInsyncReplicas` meanwhile.
    func waitForHighWatermark(_ offset: Int64, epoch: LeaderEpoch, minInsyncReplicas: Int, timeout: Duration) async -> ErrorCode? {
        let check: @Sendable (Int?) -> Replicated? = { [self] _ in
            let (role, current) = state.withLock { ($0.role, $0.leaderEpoch) }
            guard role == .leader, current == epoch else { return .notLeader }
            return log.highWatermark >= offset ? .reached : nil
        }
        // Already there (every acks=all produce on a cluster of one): no operation to register.
        let outcome = if let now = check(nil) { now } else {
            await context.produceWaits.wait(on: [id], until: .now + timeout, expired: Replicated.timedOut, check: check)
        }
        switch outcome {
        case .notLeader: return .notLeaderOrFollower
        case .timedOut: return .requestTimedOut
        case .reached: return state.withLock({ $0.isr.count }) < minInsyncReplicas ? .notEnoughReplicasAfterAppend : nil
        }
    }

    // MARK: - Leader: produce

    /// A produce's outcome on this partition.
    struct Produced: Sendable {
        var error: ErrorCode = .none
        var message: String?
        var baseOffset: Int64 = -1
    }

    /// Validates and appends a produce request's records as the leader and answers per its acks: 0
    /// and 1 once written, -1 once the flush policy is satisfied and the high watermark passed them
    /// (or REQUEST_TIMED_OUT after `timeout`). acks=-1 is refused before writing while the ISR is
    /// below `minInsyncReplicas`. With `requiredEpoch` (a coordinator's own writes) only that leader
    /// epoch may append: a coordinator loaded under an epoch since lost never writes under a later one.
    /// Batches are stored in the topic's `compression` codec (`producer`: as written; coordinators'
    /// own writes, as Kafka's internal topics are `producer`). Throws what the log throws (the caller
    /// reports storage failures).
    func append(
        _ records: ByteBuffer, acks: Int16, timeout: Duration, minInsyncReplicas: Int, maxMessageBytes: Int, transactionalId: String?,
        compression: BrokerCompressionType = .producer, requiredEpoch: LeaderEpoch? = nil
    ) async throws -> Produced {
        let stamps = context.leadership.stampsEpochs
        let outcome = try await writer.append(records, maxMessageBytes: maxMessageBytes, transactionalId: transactionalId, compression: compression) { [self] in
            admitProduce(acks: acks, minInsyncReplicas: minInsyncReplicas, requiredEpoch: requiredEpoch).map { stamps ? $0.rawValue : nil }
        }
        switch outcome {
        case .rejected(let failure):
            return Produced(error: failure.code, message: failure.message)
        case .duplicate(let baseOffset):
            // An idempotent producer's retry: the original offsets, nothing written again.
            guard acks == -1 else { return Produced(baseOffset: baseOffset) }
            let error = await waitForHighWatermark(baseOffset + 1, epoch: leaderEpoch, minInsyncReplicas: minInsyncReplicas, timeout: timeout)
            return Produced(error: error ?? .none, baseOffset: baseOffset)
        case .appended(let baseOffset, let last, let stamped, let bytes):
            countAppended(bytes)
            // One event for the append and the high watermark it moved: followers read to the log
            // end, consumers to the high watermark.
            _ = raiseHighWatermark()
            context.fetchWaits.checkAndComplete(id)
            guard acks == -1 else { return Produced(baseOffset: baseOffset) }
            try await log.waitForFlushPolicy(last)
            // Unstamped only on a cluster of one, whose epoch never changes.
            let epoch = stamped.map { LeaderEpoch($0) } ?? leaderEpoch
            if let error = await waitForHighWatermark(last.nextOffset, epoch: epoch, minInsyncReplicas: minInsyncReplicas, timeout: timeout) {
                return Produced(error: error)
            }
            return Produced(baseOffset: baseOffset)
        }
    }

    /// Admits a produce (on the writer's queue, just before the append): the leader epoch, or the
    /// error to answer.
    private func admitProduce(acks: Int16, minInsyncReplicas: Int, requiredEpoch: LeaderEpoch?) -> Result<LeaderEpoch, BatchValidation.Failure> {
        state.withLock { state in
            guard state.role == .leader, requiredEpoch.map({ $0 == state.leaderEpoch }) ?? true else {
                return .failure(BatchValidation.Failure(code: .notLeaderOrFollower, message: "not the leader"))
            }
            if acks == -1 && state.isr.count < minInsyncReplicas {
                return .failure(BatchValidation.Failure(
                    code: .notEnoughReplicas, message: "in-sync replicas \(state.isr) are fewer than min.insync.replicas \(minInsyncReplicas)"))
            }
            return .success(state.leaderEpoch)
        }
    }

    // MARK: - For the extensions

    func withState<Value>(_ body: (inout State) -> Value) -> Value { state.withLock { body(&$0) } }

    var isrChanges: IsrChangeCounts { context.isrChanges }

    func activeProducers() async throws -> [Int64: ProducerState.Entry] { try await writer.activeProducers() }

    /// Runs `body` on the writer's queue, in order with appends.
    func perform<Value: Sendable>(_ body: @escaping @Sendable () throws -> Value) async throws -> Value {
        try await writer.perform(body)
    }
}

/// What every partition of a broker shares.
struct PartitionContext: Sendable {
    let brokerId: BrokerID
    let leadership: Leadership
    /// Long-polling fetches, completed by appends and high-watermark moves.
    let fetchWaits: Purgatory<TopicPartition>
    /// acks=all produces, completed by high-watermark moves and leadership changes.
    let produceWaits: Purgatory<TopicPartition>
    /// ISR shrinks and expands of the partitions led here (for the metrics).
    let isrChanges: IsrChangeCounts
    let producerIdExpiration: Duration
    /// Decompression during validation, bounded broker-wide.
    let decompression: DecompressionPermits
    /// Role changes of internal topics' partitions, for their coordinators.
    var roleEvents = PartitionRoleEvents()
}

/// Who decides a partition's leader.
enum Leadership: Sendable {
    /// A single broker: a cluster of one, leading every partition at epoch 0. Batches keep the leader
    /// epoch their producer wrote (as before clusters existed), and no epoch history is kept.
    case local
    /// The controller, through state nodes in coordination; leader epochs are recorded here.
    case replicated(LeaderEpochs)

    var stampsEpochs: Bool {
        if case .replicated = self { return true }
        return false
    }
}
