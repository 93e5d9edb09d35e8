import SamsaProtocol

extension RequestDispatcher {
    /// Every partition has had one leader epoch (0) on this single broker, ending at the log end.
    func offsetForLeaderEpoch(_ request: OffsetForLeaderEpochRequest) -> OffsetForLeaderEpochResponse {
        var response = OffsetForLeaderEpochResponse()
        response.topics = request.topics.map { topic in
            var result = OffsetForLeaderEpochResponse.OffsetForLeaderTopicResult()
            result.topic = topic.topic
            result.partitions = topic.partitions.map { partition in
                var entry = OffsetForLeaderEpochResponse.EpochEndOffset()
                entry.partition = partition.partition
                if let log = topics.log(topic.topic, partition.partition) {
                    // An epoch after ours is unknown: Kafka answers -1 / -1 for it.
                    if partition.leaderEpoch <= 0 {
                        entry.leaderEpoch = 0
                        entry.endOffset = log.logEndOffset
                    }
                } else {
                    entry.errorCode = ErrorCode.unknownTopicOrPartition.rawValue
                }
                return entry
            }
            return result
        }
        return response
    }
}
