import SamsaProtocol
import SamsaStorage

extension Partition {
    /// What the leader did with a DeleteRecords partition.
    enum RecordsDeletion: Sendable, Equatable {
        /// The log start is at or past `requested` here; `lowWatermark` is the lowest log start of the
        /// replicas now (the request waits until it reaches `requested`).
        case deleted(requested: Int64, lowWatermark: Int64)
        case refused(ErrorCode)
    }

    /// Kafka's `deleteRecordsOnLeader`: on the writer's queue, in order with appends and role changes,
    /// the leader moves its log start to `offset` (-1: the high watermark) and deletes the whole segments
    /// below it. NOT_LEADER_OR_FOLLOWER unless leading; OFFSET_OUT_OF_RANGE for an offset below -1 or
    /// above the high watermark, changing nothing. An offset at or below the log start changes nothing
    /// and answers the low watermark. The move is in memory until the caller checkpoints the log starts
    /// (`LogManager.checkpointLogStarts`). Throws what the log throws.
    func deleteRecords(before offset: Int64) async throws -> RecordsDeletion {
        try await perform { [self] () throws -> RecordsDeletion in
            guard role == .leader else { return .refused(.notLeaderOrFollower) }
            let requested = offset == -1 ? log.highWatermark : offset
            guard requested >= 0, requested <= log.highWatermark else { return .refused(.offsetOutOfRange) }
            try log.advanceLogStart(to: requested)
            return .deleted(requested: requested, lowWatermark: lowWatermark ?? log.logStartOffset)
        }
    }

    /// The lowest log start among this leader and its ISR followers (Kafka's `lowWatermarkIfLeader`,
    /// which takes every replica on a live broker; here a replica out of the ISR does not hold a
    /// deletion up); nil unless this broker leads. A follower that has not fetched since counts as -1.
    var lowWatermark: Int64? {
        withState { state in
            guard state.role == .leader else { return nil }
            var low = log.logStartOffset
            for member in state.isr where member != brokerId {
                low = min(low, state.followers[member]?.logStart ?? -1)
            }
            return low
        }
    }

    /// A follower's fetch said where its log starts: true if that rose (a waiting DeleteRecords may
    /// now be satisfied).
    func followerLogStart(_ follower: BrokerID, _ logStart: Int64) -> Bool {
        withState { state in
            guard state.role == .leader, let progress = state.followers[follower], logStart > progress.logStart else { return false }
            state.followers[follower]?.logStart = logStart
            return true
        }
    }
}

extension FollowerLog {
    /// Moves this log's start up to the leader's (Kafka's follower `maybeIncrementLogStartOffset`, which
    /// is how DeleteRecords reaches the followers), never past this log's high watermark. The fetcher
    /// checkpoints it before its next fetch, which reports only the durable start (`durableLogStart`):
    /// a deletion the leader answered is on every replica's disk.
    func leaderLogStart(_ offset: Int64) throws {
        let target = min(offset, log.highWatermark)
        guard target > log.logStartOffset else { return }
        try log.advanceLogStart(to: target)
    }
}
