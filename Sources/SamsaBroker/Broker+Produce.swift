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
                    group.addTask { (position, await self.produce(partition, topic: topic.name, acks: request.acks)) }
                }
                var results: [(Int, ProduceResponse.PartitionProduceResponse)] = []
                for await result in group { results.append(result) }
                return results.sorted { $0.0 < $1.0 }.map(\.1)
            }
            response.responses.append(entry)
        }
        return response
    }

    private func produce(_ data: ProduceRequest.PartitionProduceData, topic: String, acks: Int16) async -> ProduceResponse.PartitionProduceResponse {
        var result = ProduceResponse.PartitionProduceResponse()
        result.index = data.index
        guard let log = topics.log(topic, data.index) else {
            result.errorCode = ErrorCode.unknownTopicOrPartition.rawValue
            return result
        }
        let records = data.records ?? ByteBuffer()
        let partition = TopicPartition(topic: topic, partition: data.index)
        let config = topics.config(topic)
        // This broker is the only in-sync replica: a topic asking for more refuses acks=all before writing.
        if acks == -1 && config.minInsyncReplicas > 1 {
            result.errorCode = ErrorCode.notEnoughReplicas.rawValue
            result.errorMessage = "min.insync.replicas is \(config.minInsyncReplicas) but the in-sync replicas are 1"
            return result
        }
        do {
            switch try await writers.writer(for: partition, log: log).append(records, maxMessageBytes: config.maxMessageBytes(default: configuration.maxMessageBytes)) {
            case .rejected(let failure):
                result.errorCode = failure.code.rawValue
                result.errorMessage = failure.message
            case .duplicate(let baseOffset):
                // An idempotent producer's retry: the original offsets, nothing written again.
                result.baseOffset = baseOffset
            case .appended(let baseOffset, let last):
                notifier.appended(to: partition)
                if acks == -1 { try await log.waitForFlushPolicy(last) }
                result.baseOffset = baseOffset
            }
            result.logStartOffset = log.logStartOffset
        } catch {
            configuration.log("produce to \(partition) failed: \(error)")
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
