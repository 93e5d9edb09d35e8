import SamsaProtocol
import SamsaStorage
import Synchronization

/// One partition's replication state on this broker (Kafka's `Partition`): its role from the
/// coordination state node, and as leader the followers' progress, the ISR, the high watermark and
/// the acks=all produces waiting for it.
///
/// Role changes, leader appends and follower appends all run on the partition's writer queue, so an
/// append is admitted and written under one role. The high watermark is the log's own (readers with
/// `.highWatermark` stop there); as leader it only rises, to the smallest log end of the ISR.
final class Replica: Sendable {
    enum Role: Sendable, Equatable {
        case none
        case leader
        case follower(leader: Int32)
    }

    /// What applying a state node changed.
    enum Transition: Sendable, Equatable {
        case unchanged
        case becameLeader(epoch: Int32)
        case becameFollower(leader: Int32, epoch: Int32)
        case wentOffline
    }

    struct FollowerProgress {
        /// The follower has every offset below this (its last fetch offset); -1 until it fetches.
        var logEnd: Int64 = -1
        var lastCaughtUp: ContinuousClock.Instant
        /// The leader's log end when the follower last fetched, and when (Kafka's lag rule).
        var lastFetchLeaderEnd: Int64 = -1
        var lastFetchTime: ContinuousClock.Instant
    }

    struct State {
        var role = Role.none
        var leaderEpoch: Int32 = -1
        var replicas: [Int32] = []
        var isr: [Int32] = []
        /// The version of the state node this state came from (ISR writes are checked against it).
        var stateVersion: Int32 = -1
        var controllerEpoch: Int32 = 0
        /// Where the current leader epoch began in this log (a follower joins the ISR only past it).
        var epochStartOffset: Int64 = 0
        var followers: [Int32: FollowerProgress] = [:]
        var waiters: [Int: Waiter] = [:]
        var nextWaiter = 0
        var isrChangeInFlight = false
    }

    struct Waiter {
        /// Resumed once the high watermark reaches this.
        var offset: Int64
        var continuation: CheckedContinuation<ErrorCode?, Never>
    }

    let partition: TopicPartition
    let log: PartitionLog
    let brokerId: Int32
    private let state = Mutex(State())
    /// Called when the high watermark moved (wakes fetches waiting for it).
    private let highWatermarkMoved: @Sendable (TopicPartition) -> Void
    /// Where this partition's ISR changes are counted while it is led here.
    private let isrChanges: IsrChangeCounts

    init(
        partition: TopicPartition, log: PartitionLog, brokerId: Int32, isrChanges: IsrChangeCounts = IsrChangeCounts(),
        highWatermarkMoved: @escaping @Sendable (TopicPartition) -> Void
    ) {
        self.partition = partition
        self.log = log
        self.brokerId = brokerId
        self.isrChanges = isrChanges
        self.highWatermarkMoved = highWatermarkMoved
    }

    var snapshot: State { state.withLock { $0 } }
    var role: Role { state.withLock { $0.role } }
    var leaderEpoch: Int32 { state.withLock { $0.leaderEpoch } }

    // MARK: - Role

    /// Applies a state node read from coordination (an older version than the one applied is
    /// ignored). Run on the partition's writer queue.
    func apply(_ node: PartitionStateNode, version: Int32, replicas: [Int32], now: ContinuousClock.Instant = .now) -> Transition {
        let (transition, failed) = state.withLock { state -> (Transition, [Waiter]) in
            guard version > state.stateVersion || node.leaderEpoch > state.leaderEpoch else { return (.unchanged, []) }
            let sameEpoch = node.leaderEpoch == state.leaderEpoch
            state.stateVersion = version
            state.controllerEpoch = node.controllerEpoch
            state.replicas = replicas
            // Still leading at the same epoch: an ISR change written by the controller.
            if sameEpoch && state.role == .leader { isrChanges.changed(from: state.isr, to: node.isr) }
            state.isr = node.isr
            if sameEpoch && state.role != .none { return (.unchanged, []) }
            state.leaderEpoch = node.leaderEpoch
            var failed: [Waiter] = []
            let transition: Transition
            if node.leader == brokerId {
                state.role = .leader
                state.epochStartOffset = log.logEndOffset
                state.followers = Dictionary(uniqueKeysWithValues: replicas.filter { $0 != brokerId }.map {
                    ($0, FollowerProgress(lastCaughtUp: now, lastFetchTime: now))
                })
                transition = .becameLeader(epoch: node.leaderEpoch)
            } else {
                state.role = node.leader < 0 ? .none : .follower(leader: node.leader)
                state.followers = [:]
                failed = Array(state.waiters.values)
                state.waiters = [:]
                transition = node.leader < 0 ? .wentOffline : .becameFollower(leader: node.leader, epoch: node.leaderEpoch)
            }
            return (transition, failed)
        }
        for waiter in failed { waiter.continuation.resume(returning: .notLeaderForPartition) }
        // Also when only the ISR changed (the controller removed a dead follower): the high watermark
        // may rise at once, answering the acks=all produces that waited for that follower.
        advanceHighWatermark()
        return transition
    }

    /// Leaves every role (the broker is stopping or lost its coordination session).
    func resign() {
        let failed = state.withLock { state -> [Waiter] in
            state.role = .none
            state.stateVersion = -1
            defer { state.waiters = [:] }
            return Array(state.waiters.values)
        }
        for waiter in failed { waiter.continuation.resume(returning: .notLeaderForPartition) }
    }

    /// Whether a request that names `epoch` (-1: none) may be served by the leader: nil if so.
    func checkLeader(epoch: Int32) -> ErrorCode? {
        state.withLock { state in
            guard state.role == .leader else { return .notLeaderForPartition }
            if epoch >= 0 && epoch < state.leaderEpoch { return .fencedLeaderEpoch }
            if epoch > state.leaderEpoch { return .unknownLeaderEpoch }
            return nil
        }
    }

    /// Admits a produce (run on the writer queue, just before the append): the leader epoch to stamp
    /// the batches with, or the error to answer.
    func admitProduce(acks: Int16, minInsyncReplicas: Int) -> Result<Int32?, BatchValidation.Failure> {
        state.withLock { state in
            guard state.role == .leader else { return .failure(BatchValidation.Failure(code: .notLeaderForPartition, message: "not the leader")) }
            if acks == -1 && state.isr.count < minInsyncReplicas {
                return .failure(BatchValidation.Failure(
                    code: .notEnoughReplicas, message: "in-sync replicas \(state.isr) are fewer than min.insync.replicas \(minInsyncReplicas)"))
            }
            return .success(state.leaderEpoch)
        }
    }

    // MARK: - High watermark

    /// Waits until the high watermark reaches `offset` while this broker leads at `epoch`: nil then,
    /// NOT_LEADER_OR_FOLLOWER if leadership goes first, REQUEST_TIMED_OUT after `timeout`,
    /// NOT_ENOUGH_REPLICAS_AFTER_APPEND if the ISR shrank below `minInsyncReplicas` meanwhile.
    func waitForHighWatermark(_ offset: Int64, epoch: Int32, minInsyncReplicas: Int, timeout: Duration) async -> ErrorCode? {
        let outcome = await withCheckedContinuation { (continuation: CheckedContinuation<ErrorCode?, Never>) in
            let registered = state.withLock { state -> Int? in
                guard state.role == .leader, state.leaderEpoch == epoch else {
                    continuation.resume(returning: .notLeaderForPartition)
                    return nil
                }
                if log.highWatermark >= offset {
                    continuation.resume(returning: nil)
                    return nil
                }
                let id = state.nextWaiter
                state.nextWaiter += 1
                state.waiters[id] = Waiter(offset: offset, continuation: continuation)
                return id
            }
            guard let registered else { return }
            // The timeout is a sleeping task per waiting request, not a poll.
            Task { [self] in
                try? await Task.sleep(for: timeout)
                state.withLock { $0.waiters.removeValue(forKey: registered) }?.continuation.resume(returning: .requestTimedOut)
            }
        }
        if outcome == nil, state.withLock({ $0.isr.count }) < minInsyncReplicas { return .notEnoughReplicasAfterAppend }
        return outcome
    }

    /// Raises the high watermark to the smallest log end of the ISR (leader only; never lowers it)
    /// and answers the produces it satisfies.
    func advanceHighWatermark() {
        let (moved, satisfied) = state.withLock { state -> (Bool, [Waiter]) in
            guard state.role == .leader else { return (false, []) }
            var end = log.logEndOffset
            for member in state.isr where member != brokerId {
                end = min(end, state.followers[member]?.logEnd ?? -1)
            }
            guard end > log.highWatermark else { return (false, []) }
            log.updateHighWatermark(end)
            let reached = log.highWatermark
            let done = state.waiters.filter { $0.value.offset <= reached }
            for id in done.keys { state.waiters.removeValue(forKey: id) }
            return (true, Array(done.values))
        }
        for waiter in satisfied { waiter.continuation.resume(returning: nil) }
        if moved { highWatermarkMoved(partition) }
    }

    /// A follower fetched from `offset` (so it holds everything below): updates its progress and the
    /// high watermark. Returns the ISR to propose if the follower has caught up and may join it.
    func followerFetched(_ follower: Int32, offset: Int64, now: ContinuousClock.Instant = .now) -> [Int32]? {
        let expansion = state.withLock { state -> [Int32]? in
            guard state.role == .leader, var progress = state.followers[follower] else { return nil }
            let leaderEnd = log.logEndOffset
            // Kafka's rule: caught up now if at the log end, or as of the previous fetch if it reached
            // the log end that fetch saw.
            if offset >= leaderEnd {
                progress.lastCaughtUp = now
            } else if progress.lastFetchLeaderEnd >= 0 && offset >= progress.lastFetchLeaderEnd {
                progress.lastCaughtUp = max(progress.lastCaughtUp, progress.lastFetchTime)
            }
            progress.logEnd = offset
            progress.lastFetchLeaderEnd = leaderEnd
            progress.lastFetchTime = now
            state.followers[follower] = progress
            guard !state.isr.contains(follower), !state.isrChangeInFlight, offset >= log.highWatermark, offset >= state.epochStartOffset else {
                return nil
            }
            return state.isr + [follower]
        }
        advanceHighWatermark()
        return expansion
    }

    /// The ISR without the followers that have not caught up within `maxLag`, if that removes any.
    func shrunkIsr(maxLag: Duration, now: ContinuousClock.Instant = .now) -> [Int32]? {
        state.withLock { state -> [Int32]? in
            guard state.role == .leader, !state.isrChangeInFlight else { return nil }
            let kept = state.isr.filter { member in
                member == brokerId || state.followers[member].map { now - $0.lastCaughtUp <= maxLag } ?? false
            }
            return kept.count < state.isr.count ? kept : nil
        }
    }

    /// Starts an ISR write: the node to write and the version it must replace, or nil if another
    /// write is under way or this broker no longer leads.
    func beginIsrChange(_ isr: [Int32]) -> (node: PartitionStateNode, version: Int32)? {
        state.withLock { state in
            guard state.role == .leader, !state.isrChangeInFlight else { return nil }
            state.isrChangeInFlight = true
            return (PartitionStateNode(leader: brokerId, leaderEpoch: state.leaderEpoch, isr: isr, controllerEpoch: state.controllerEpoch), state.stateVersion)
        }
    }

    /// Ends an ISR write; with the new node's version when it was accepted.
    func endIsrChange(_ isr: [Int32], epoch: Int32, acceptedVersion: Int32?) {
        state.withLock { state in
            state.isrChangeInFlight = false
            guard let acceptedVersion, state.role == .leader, state.leaderEpoch == epoch, acceptedVersion > state.stateVersion else { return }
            isrChanges.changed(from: state.isr, to: isr)
            state.isr = isr
            state.stateVersion = acceptedVersion
        }
        advanceHighWatermark()
    }

    // MARK: - Follower

    /// Raises a follower's high watermark to what its leader sent (never past its own log end, never
    /// lowered).
    func followerHighWatermark(_ leaderHighWatermark: Int64) {
        let target = min(leaderHighWatermark, log.logEndOffset)
        if target > log.highWatermark { log.updateHighWatermark(target) }
    }
}
