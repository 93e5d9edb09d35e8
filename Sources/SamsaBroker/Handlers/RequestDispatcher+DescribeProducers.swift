import SamsaProtocol
import SamsaStorage

extension RequestDispatcher {
    /// DescribeProducers (v0, KIP-664; Kafka's `Partition.activeProducerState`): each partition's
    /// active idempotent producers from its leader's producer state — producer id, epoch, last
    /// sequence, last timestamp (when its last batch was appended here), coordinatorEpoch -1 and
    /// currentTxnStartOffset -1 (no transactions here).
    ///
    /// Errors per partition: INVALID_TOPIC (an illegal name), UNKNOWN_TOPIC_OR_PARTITION,
    /// NOT_LEADER_OR_FOLLOWER (not led here: unlike Kafka, a follower keeps no producer state to
    /// describe), KAFKA_STORAGE_ERROR (rebuilding the state from the log failed).
    /// Bound: a partition named more than once is answered once, where first named (each answer lists
    /// every producer of the partition, so repeats would multiply the response).
    func describeProducers(_ request: DescribeProducersRequest) async -> DescribeProducersResponse {
        var response = DescribeProducersResponse()
        var answered = Set<TopicPartition>()
        var known: [String: Int32?] = [:]
        for topic in request.topics {
            var entry = DescribeProducersResponse.TopicResponse()
            entry.name = topic.name
            for index in topic.partitionIndexes {
                let id = TopicPartition(topic: topic.name, partition: index)
                guard answered.insert(id).inserted else { continue }
                entry.partitions.append(await describeProducers(of: id, known: &known))
            }
            response.topics.append(entry)
        }
        return response
    }

    private func describeProducers(of id: TopicPartition, known: inout [String: Int32?]) async -> DescribeProducersResponse.PartitionResponse {
        var result = DescribeProducersResponse.PartitionResponse()
        result.partitionIndex = id.partition
        guard TopicPartition.isValidTopic(id.topic) else {
            result.errorCode = ErrorCode.invalidTopic.rawValue
            return result
        }
        guard let partition = topics.partition(id) else {
            result.errorCode = await missingPartitionError(id, known: &known).rawValue
            return result
        }
        guard partition.role == .leader else {
            result.errorCode = ErrorCode.notLeaderOrFollower.rawValue
            return result
        }
        do {
            let producers = try await partition.activeProducers()
            result.activeProducers = producers.sorted { $0.key < $1.key }.map { id, entry in
                var state = DescribeProducersResponse.ProducerState()
                state.producerId = id
                state.producerEpoch = Int32(entry.epoch)
                state.lastSequence = entry.lastSequence
                state.lastTimestamp = entry.lastAppendMs
                state.coordinatorEpoch = -1
                state.currentTxnStartOffset = -1
                return state
            }
        } catch {
            storageFailed(id, error)
            result.errorCode = ErrorCode.kafkaStorageError.rawValue
            result.errorMessage = "\(error)"
        }
        return result
    }
}
