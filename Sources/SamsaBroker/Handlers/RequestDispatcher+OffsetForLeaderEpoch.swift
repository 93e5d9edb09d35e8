import SamsaProtocol
import SamsaStorage

extension RequestDispatcher {
    /// The end offset of the asked-for leader epoch, from the leader's epoch history (KIP-101), at
    /// the epoch the asker names. A cluster of one keeps no history: every partition has had one
    /// epoch (0), ending at the log end.
    func offsetForLeaderEpoch(_ request: OffsetForLeaderEpochRequest) -> OffsetForLeaderEpochResponse {
        var response = OffsetForLeaderEpochResponse()
        response.topics = request.topics.map { topic in
            var result = OffsetForLeaderEpochResponse.OffsetForLeaderTopicResult()
            result.topic = topic.topic
            result.partitions = topic.partitions.map { asked in
                var entry = OffsetForLeaderEpochResponse.EpochEndOffset()
                entry.partition = asked.partition
                guard let partition = topics.partition(topic.topic, asked.partition) else {
                    entry.errorCode = ErrorCode.unknownTopicOrPartition.rawValue
                    return entry
                }
                if let refusal = partition.checkLeader(epoch: asked.currentLeaderEpoch) {
                    entry.errorCode = refusal.rawValue
                } else if let epochs = partition.epochs {
                    let found = epochs.endOffset(partition.id, for: LeaderEpoch(asked.leaderEpoch), logEnd: partition.log.logEndOffset)
                    entry.leaderEpoch = found.epoch.rawValue
                    entry.endOffset = found.endOffset
                } else if asked.leaderEpoch <= 0 {
                    // An epoch after ours is unknown: Kafka answers -1 / -1 for it.
                    entry.leaderEpoch = 0
                    entry.endOffset = partition.log.logEndOffset
                }
                return entry
            }
            return result
        }
        return response
    }
}
