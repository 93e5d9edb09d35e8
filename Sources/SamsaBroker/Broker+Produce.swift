import Logging
import NIOCore
import SamsaProtocol
import SamsaRecords
import SamsaStorage

extension RequestDispatcher {
    /// Validates each partition's batches, appends them (offsets assigned by the log) and answers per
    /// the request's acks: 0 and 1 once written, -1 once the topic's flush policy is satisfied (this
    /// broker is the only replica). A partition with an invalid batch writes nothing.
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

    private func produce(_ data: ProduceRequest.PartitionProduceData, topic: String, request: ProduceRequest) async
        -> ProduceResponse.PartitionProduceResponse
    {
        let acks = request.acks
        var result = ProduceResponse.PartitionProduceResponse()
        result.index = data.index
        guard let log = topics.log(topic, data.index) else {
            result.errorCode = ErrorCode.unknownTopicOrPartition.rawValue
            return result
        }
        let records = data.records ?? ByteBuffer()
        let partition = TopicPartition(topic: topic, partition: data.index)
        let config = topics.config(topic)
        if let cluster {
            return await replicatedProduce(
                data, partition: partition, log: log, replica: cluster.replicas.replica(partition), request: request, config: config)
        }
        // This broker is the only in-sync replica: a topic asking for more refuses acks=all before writing.
        if acks == -1 && config.minInsyncReplicas > 1 {
            result.errorCode = ErrorCode.notEnoughReplicas.rawValue
            result.errorMessage = "min.insync.replicas is \(config.minInsyncReplicas) but the in-sync replicas are 1"
            return result
        }
        do {
            switch try await writers.writer(for: partition, log: log).append(
                records, maxMessageBytes: config.maxMessageBytes(default: configuration.maxMessageBytes), transactionalId: request.transactionalId)
            {
            case .rejected(let failure):
                result.errorCode = failure.code.rawValue
                result.errorMessage = failure.message
            case .duplicate(let baseOffset):
                // An idempotent producer's retry: the original offsets, nothing written again.
                result.baseOffset = baseOffset
            case .appended(let baseOffset, let last, _):
                notifier.appended(to: partition)
                if acks == -1 { try await log.waitForFlushPolicy(last) }
                result.baseOffset = baseOffset
            }
            result.logStartOffset = log.logStartOffset
        } catch {
            logProduceFailure(partition, error)
            result.errorCode = ErrorCode.kafkaStorageError.rawValue
            result.errorMessage = "\(error)"
        }
        return result
    }
}

extension RequestDispatcher {
    /// Produce to a partition of a cluster: only its leader appends (stamping its leader epoch), with
    /// acks=-1 refused while the ISR is below `min.insync.replicas` and answered once the high
    /// watermark passes the last offset (or REQUEST_TIMED_OUT after the request's timeout).
    private func replicatedProduce(
        _ data: ProduceRequest.PartitionProduceData, partition: TopicPartition, log: PartitionLog, replica: Replica?, request: ProduceRequest,
        config: TopicConfig
    ) async -> ProduceResponse.PartitionProduceResponse {
        let acks = request.acks
        var result = ProduceResponse.PartitionProduceResponse()
        result.index = data.index
        guard let replica else {
            result.errorCode = ErrorCode.notLeaderForPartition.rawValue
            return result
        }
        let minInsync = config.minInsyncReplicas
        let timeout = Duration.milliseconds(max(0, Int(request.timeoutMs)))
        do {
            let outcome = try await writers.writer(for: partition, log: log).append(
                data.records ?? ByteBuffer(), maxMessageBytes: config.maxMessageBytes(default: configuration.maxMessageBytes),
                transactionalId: request.transactionalId
            ) { replica.admitProduce(acks: acks, minInsyncReplicas: minInsync) }
            switch outcome {
            case .rejected(let failure):
                result.errorCode = failure.code.rawValue
                result.errorMessage = failure.message
            case .duplicate(let baseOffset):
                result.baseOffset = baseOffset
                if acks == -1, let code = await replica.waitForHighWatermark(
                    baseOffset + 1, epoch: replica.leaderEpoch, minInsyncReplicas: minInsync, timeout: timeout)
                {
                    result.errorCode = code.rawValue
                }
            case .appended(let baseOffset, let last, let epoch):
                notifier.appended(to: partition)
                replica.advanceHighWatermark()
                result.baseOffset = baseOffset
                if acks == -1 {
                    try await log.waitForFlushPolicy(last)
                    if let code = await replica.waitForHighWatermark(
                        last.nextOffset, epoch: epoch ?? -1, minInsyncReplicas: minInsync, timeout: timeout)
                    {
                        result.errorCode = code.rawValue
                        result.baseOffset = -1
                    }
                }
            }
            result.logStartOffset = log.logStartOffset
        } catch let error as StorageError {
            // The leader's own storage failed (a full disk, a failed sync): as for a follower, this broker
            // leaves the ISR and hands leadership to the next live ISR member (KIP-112's offline replica),
            // logged once at error there; clients find the new leader instead of failing here until the
            // disk has room. It rejoins once its writes work again.
            cluster?.replicas.replicaFailed(partition, error)
            result.errorCode = ErrorCode.kafkaStorageError.rawValue
            result.errorMessage = "\(error)"
        } catch {
            logProduceFailure(partition, error)
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
    /// A produce that failed in storage: at debug, and at warning at most once a minute with how many
    /// failed since (on a full disk every produce fails; the log must not fill with them).
    func logProduceFailure(_ partition: TopicPartition, _ error: any Error) {
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
