import SamsaProtocol
import SamsaStorage

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
                if let cluster, topics.log(topic.topic, partition.partition) != nil {
                    // The leader answers from its epoch checkpoint (KIP-101), at the epoch the asker names.
                    let replica = cluster.replicas.replica(TopicPartition(topic: topic.topic, partition: partition.partition))
                    if let replica, Cluster.notLeader(replica, epoch: partition.currentLeaderEpoch) == nil {
                        let found = cluster.replicas.epochs.endOffset(replica.partition, for: partition.leaderEpoch, logEnd: replica.log.logEndOffset)
                        entry.leaderEpoch = found.epoch
                        entry.endOffset = found.endOffset
                    } else {
                        entry.errorCode = (Cluster.notLeader(replica, epoch: partition.currentLeaderEpoch) ?? .notLeaderForPartition).rawValue
                    }
                } else if let log = topics.log(topic.topic, partition.partition) {
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
