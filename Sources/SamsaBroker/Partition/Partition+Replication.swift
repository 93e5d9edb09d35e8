import SamsaRecords
import SamsaStorage

extension Partition {
    // MARK: - Leader: followers and the ISR

    /// A follower fetched from `offset` (so it holds everything below): updates its progress and the
    /// high watermark. Returns the ISR to propose if the follower has caught up and may join it.
    func followerFetched(_ follower: BrokerID, offset: Int64, now: ContinuousClock.Instant = .now) -> [BrokerID]? {
        let expansion = withState { state -> [BrokerID]? in
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
    func shrunkIsr(maxLag: Duration, now: ContinuousClock.Instant = .now) -> [BrokerID]? {
        withState { state -> [BrokerID]? in
            guard state.role == .leader, !state.isrChangeInFlight else { return nil }
            let kept = state.isr.filter { member in
                member == brokerId || state.followers[member].map { now - $0.lastCaughtUp <= maxLag } ?? false
            }
            return kept.count < state.isr.count ? kept : nil
        }
    }

    /// Whether this leader has followers and none of them has fetched within `silence`: another
    /// leader may have been elected (its followers fetch there), or they are all gone.
    func followersSilent(for silence: Duration, now: ContinuousClock.Instant = .now) -> Bool {
        withState { state in
            state.role == .leader && !state.followers.isEmpty && state.followers.values.allSatisfy { now - $0.lastFetchTime > silence }
        }
    }

    /// The ISR followers no fetch has come from within `silence` (a live follower sends its next
    /// fetch as soon as the last is answered, within `replica.fetch.wait.max.ms`).
    func silentIsrFollowers(silence: Duration, now: ContinuousClock.Instant = .now) -> Set<BrokerID> {
        withState { state in
            guard state.role == .leader else { return [] }
            return Set(state.isr.filter { member in member != brokerId && state.followers[member].map { now - $0.lastFetchTime > silence } ?? false })
        }
    }

    /// The ISR without `gone`, if that removes any.
    func isr(without gone: Set<BrokerID>) -> [BrokerID]? {
        withState { state in
            guard state.role == .leader, !state.isrChangeInFlight else { return nil }
            let kept = state.isr.filter { !gone.contains($0) }
            return kept.count < state.isr.count ? kept : nil
        }
    }

    /// Starts an ISR write: the node to write and the version it must replace, or nil if another
    /// write is under way or this broker no longer leads.
    func beginIsrChange(_ isr: [BrokerID]) -> (node: PartitionStateNode, version: Int32)? {
        withState { state in
            guard state.role == .leader, !state.isrChangeInFlight else { return nil }
            state.isrChangeInFlight = true
            return (PartitionStateNode(leader: brokerId, leaderEpoch: state.leaderEpoch, isr: isr, controllerEpoch: state.controllerEpoch), state.stateVersion)
        }
    }

    /// Ends the ISR write begun for `node`; with the new node's version when it was accepted.
    func endIsrChange(_ node: PartitionStateNode, acceptedVersion: Int32?) {
        withState { state in
            state.isrChangeInFlight = false
            guard let acceptedVersion, state.role == .leader, state.leaderEpoch == node.leaderEpoch, acceptedVersion > state.stateVersion else { return }
            isrChanges.changed(from: state.isr, to: node.isr)
            state.isr = node.isr
            state.stateVersion = acceptedVersion
        }
        advanceHighWatermark()
    }

    // MARK: - Follower

    /// Runs a follower's write (a truncation, fetched batches) on the writer's queue, only while this
    /// broker still follows `leader` at `epoch`: nil (nothing run) otherwise. The one way a follower
    /// changes its log.
    func whileFollowing<Value: Sendable>(
        _ leader: BrokerID, epoch: LeaderEpoch, _ body: @escaping @Sendable (FollowerLog) throws -> Value
    ) async throws -> Value? {
        try await perform { [self] () throws -> Value? in
            guard role == .follower(leader: leader), leaderEpoch == epoch else { return nil }
            return try body(FollowerLog(partition: self))
        }
    }
}

/// What a follower may do to its log, inside `Partition.whileFollowing`.
struct FollowerLog {
    fileprivate let partition: Partition

    var log: PartitionLog { partition.log }
    var latestEpoch: LeaderEpoch { partition.epochs?.latest(partition.id)?.epoch ?? .none }

    /// Appends a batch as the leader sent it, at the leader's offsets (past the log end when the
    /// leader's cleaner removed the offsets between: `PartitionLog.appendAsFollower`), recording its
    /// leader epoch where a new one starts.
    func append(_ batch: RecordBatch) throws -> AppendResult {
        if LeaderEpoch(batch.partitionLeaderEpoch) > latestEpoch {
            try partition.epochs?.assign(partition.id, epoch: LeaderEpoch(batch.partitionLeaderEpoch), startOffset: batch.baseOffset)
        }
        let appended = try log.appendAsFollower(batch)
        partition.countAppended(batch.sizeInBytes)
        return appended
    }

    /// Cuts the log at `offset` (if it is shorter, nothing) and the epochs that began there or later.
    func truncate(to offset: Int64) throws {
        guard offset < log.logEndOffset else { return }
        try log.truncate(to: max(offset, log.logStartOffset))
        try partition.epochs?.truncate(partition.id, from: log.logEndOffset)
    }

    /// Empties the log and restarts it at `offset` (the leader's log start), with no epoch history.
    func restart(at offset: Int64) throws {
        try log.truncateFully(startingAt: offset)
        try partition.epochs?.truncate(partition.id, from: 0)
    }

    /// Raises the high watermark to what the leader sent (never past this log's end, never lowered).
    func leaderHighWatermark(_ offset: Int64) {
        _ = log.raiseHighWatermark(to: offset)
    }
}
