import Logging
import NIOCore
import SamsaProtocol
import SamsaRecords
import SamsaStorage

extension RequestDispatcher {
    /// Validates each partition's batches, appends them (offsets assigned by the log) and answers per
    /// the request's acks: 0 and 1 once written, -1 once the topic's flush policy is satisfied and the
    /// ISR has them. A partition with an invalid batch writes nothing.
    func produce(_ request: ProduceRequest) async -> ProduceResponse {
        guard [0, 1, -1].contains(request.acks) else {
            return ProduceResponse.failing(request, .invalidRequiredAcks)
        }
        var response = ProduceResponse()
        for topic in request.topicData {
            var entry = ProduceResponse.TopicProduceResponse()
            entry.name = topic.name
            entry.topicId = topic.topicId
            entry.partitionResponses = await withTaskGroup(of: (Int, ProduceResponse.PartitionProduceResponse).self) { group in
                for (position, partition) in topic.partitionData.enumerated() {
                    group.addTask { (position, await self.produce(partition, topic: topic.name, request: request)) }
                }
                var results: [(Int, ProduceResponse.PartitionProduceResponse)] = []
                for await result in group { results.append(result) }
                return results.sorted { $0.0 < $1.0 }.map(\.1)
            }
            response.responses.append(entry)
        }
        return response
    }

    /// One partition's produce: its leader validates, appends and waits as the acks ask
    /// (`Partition.append`); the same on a single broker (a cluster of one) as in a cluster.
    private func produce(_ data: ProduceRequest.PartitionProduceData, topic: String, request: ProduceRequest) async
        -> ProduceResponse.PartitionProduceResponse
    {
        var result = ProduceResponse.PartitionProduceResponse()
        result.index = data.index
        // Kafka's rule: only the coordinator writes to an internal topic (its records are its state).
        guard topic != GroupPlacement.topic else {
            result.errorCode = ErrorCode.invalidTopic.rawValue
            result.errorMessage = "Cannot append to internal topic \(topic)"
            return result
        }
        guard let partition = topics.partition(topic, data.index) else {
            result.errorCode = ErrorCode.unknownTopicOrPartition.rawValue
            return result
        }
        let config = topics.config(topic)
        do {
            let produced = try await partition.append(
                data.records ?? ByteBuffer(), acks: request.acks, timeout: .milliseconds(max(0, Int(request.timeoutMs))),
                minInsyncReplicas: topics.brokerConfigs.minInsyncReplicas(config), maxMessageBytes: topics.brokerConfigs.maxMessageBytes(config),
                transactionalId: request.transactionalId, compression: topics.brokerConfigs.compressionType(config))
            result.errorCode = produced.error.rawValue
            result.errorMessage = produced.message
            result.baseOffset = produced.baseOffset
            result.logStartOffset = partition.log.logStartOffset
        } catch {
            storageFailed(partition.id, error)
            result.errorCode = ErrorCode.kafkaStorageError.rawValue
            result.errorMessage = "\(error)"
        }
        return result
    }
}

extension ProduceResponse {
    /// Every partition of the request failing with one error.
    static func failing(_ request: ProduceRequest, _ code: ErrorCode) -> ProduceResponse {
        var response = ProduceResponse()
        response.responses = request.topicData.map { topic in
            var entry = TopicProduceResponse()
            entry.name = topic.name
            entry.topicId = topic.topicId
            entry.partitionResponses = topic.partitionData.map { partition in
                var result = PartitionProduceResponse()
                result.index = partition.index
                result.errorCode = code.rawValue
                return result
            }
            return entry
        }
        return response
    }
}

extension RequestDispatcher {
    /// A produce that failed in storage. In a cluster, a failure of the leader's own storage (a full
    /// disk, a failed sync) takes it out of the ISR and hands leadership to the next live ISR member
    /// (KIP-112's offline replica; logged once at error there), so clients find the new leader instead
    /// of failing here until the disk has room; it rejoins once its writes work again. Otherwise it
    /// is logged at debug, and at warning at most once a minute with how many failed since (on a full
    /// disk every produce fails; the log must not fill with them).
    func storageFailed(_ partition: TopicPartition, _ error: any Error) {
        if let cluster, let error = error as? StorageError {
            cluster.replicas.replicaFailed(partition, error)
            return
        }
        let metadata: Logger.Metadata = ["topic": "\(partition.topic)", "partition": "\(partition.partition)", "error": "\(error)"]
        if let count = produceFailures.admit() {
            configuration.logger.warning(
                "produce failed in storage (at most one such warning a minute; the rest at debug)",
                metadata: metadata.merging(["failed_since_last_warning": "\(count)"]) { $1 })
        } else {
            configuration.logger.debug("produce failed in storage", metadata: metadata)
        }
    }
}
