import SamsaWaiting
import SamsaProtocol
import SamsaStorage

extension RequestDispatcher {
    /// DeleteRecords (v0-2, KIP-107; Kafka's `ReplicaManager.deleteRecords`): each partition's leader
    /// moves its log start to the requested offset (-1: the high watermark), deleting the whole
    /// segments below it, and the log starts are checkpointed (one durable write for the request)
    /// before anything is answered, so a crash after the answer never brings the records back. The
    /// answer then waits, as Kafka's `DelayedDeleteRecords`, until every ISR replica's log start
    /// reached the offset (followers take it from their fetch responses), answering that low
    /// watermark; REQUEST_TIMED_OUT at the request's timeout. On a cluster of one it answers at once.
    ///
    /// Errors per partition: UNKNOWN_TOPIC_OR_PARTITION (no such partition), NOT_LEADER_OR_FOLLOWER
    /// (not led here, or leadership lost while waiting), OFFSET_OUT_OF_RANGE (below -1 or above the
    /// high watermark; nothing changes), KAFKA_STORAGE_ERROR; low_watermark -1 with each.
    /// A partition named twice is answered once, with the last offset named (Kafka's request map).
    /// Bounds: work and response grow with the entries, which the request size limit bounds; one
    /// wait (one purgatory operation) per request, whatever its partition count.
    func deleteRecords(_ request: DeleteRecordsRequest) async -> DeleteRecordsResponse {
        var order: [TopicPartition] = []
        var offsets: [TopicPartition: Int64] = [:]
        for topic in request.topics {
            for entry in topic.partitions {
                let id = TopicPartition(topic: topic.name, partition: entry.partitionIndex)
                if offsets.updateValue(entry.offset, forKey: id) == nil { order.append(id) }
            }
        }
        var answers: [TopicPartition: (error: ErrorCode, lowWatermark: Int64)] = [:]
        var pending: [TopicPartition: (partition: Partition, requested: Int64)] = [:]
        var known: [String: Int32?] = [:]
        for id in order {
            // Kafka's rule: an internal topic's records are its coordinator's state.
            guard id.topic != GroupPlacement.topic else {
                answers[id] = (.invalidTopic, -1)
                continue
            }
            guard let partition = topics.partition(id) else {
                answers[id] = (await missingPartitionError(id, known: &known), -1)
                continue
            }
            do {
                switch try await partition.deleteRecords(before: offsets[id]!) {
                case .refused(let error):
                    answers[id] = (error, -1)
                case .deleted(let requested, let lowWatermark):
                    answers[id] = (.none, lowWatermark)
                    if lowWatermark < requested { pending[id] = (partition, requested) }
                }
            } catch {
                storageFailed(id, error)
                answers[id] = (.kafkaStorageError, -1)
            }
        }
        await checkpointLogStarts(&answers)
        let waiting = pending.filter { answers[$0.key]?.error == ErrorCode.none }
        if !waiting.isEmpty {
            let deadline = ContinuousClock.now + .milliseconds(max(0, Int(request.timeoutMs)))
            let check: @Sendable (Int?) -> Bool? = { _ in
                waiting.values.allSatisfy { entry in entry.partition.lowWatermark.map { $0 >= entry.requested } ?? true } ? true : nil
            }
            _ = await recordDeletionWaits.wait(on: Array(waiting.keys), until: deadline, expired: false, check: check)
            // Each as it is now: reached, no longer led here, or still waiting at the deadline.
            for (id, entry) in waiting {
                switch entry.partition.lowWatermark {
                case nil: answers[id] = (.notLeaderOrFollower, -1)
                case let low? where low >= entry.requested: answers[id] = (.none, low)
                case let low?: answers[id] = (.requestTimedOut, low)
                }
            }
        }
        var response = DeleteRecordsResponse()
        response.topics = groupedByTopic(order, topic: \.topic) { name in
            var topic = DeleteRecordsResponse.DeleteRecordsTopicResult()
            topic.name = name
            return topic
        } add: { topic, id in
            var result = DeleteRecordsResponse.DeleteRecordsPartitionResult()
            result.partitionIndex = id.partition
            result.errorCode = answers[id]!.error.rawValue
            result.lowWatermark = answers[id]!.lowWatermark
            topic.partitions.append(result)
        }
        return response
    }

    /// Makes the moved log starts durable before they are answered; if that fails, the moved
    /// partitions are answered KAFKA_STORAGE_ERROR (their reads below the new start are refused
    /// already, but a crash could bring the records back). Nothing is written when every answered
    /// start is durable already (a request that moved nothing costs no fsync).
    private func checkpointLogStarts(_ answers: inout [TopicPartition: (error: ErrorCode, lowWatermark: Int64)]) async {
        let moved = answers.contains { id, answer in
            answer.error == .none && topics.partition(id).map { $0.log.durableLogStart < $0.log.logStartOffset } ?? false
        }
        guard moved else { return }
        do {
            try await onIOThread { [logs] in try logs.checkpointLogStarts() }
        } catch {
            configuration.logger.error("writing the log start checkpoint failed", metadata: ["error": "\(error)"])
            for (id, answer) in answers where answer.error == .none { answers[id] = (.kafkaStorageError, -1) }
        }
    }

    /// DeleteRecords waiting for followers' log starts: they share the produce purgatory, whose events
    /// (leadership changes) they also need, and get their own from follower fetches (`followerLogStart`).
    var recordDeletionWaits: Purgatory<TopicPartition> { topics.context.produceWaits }

    /// The error for a partition this broker holds no replica of: NOT_LEADER_OR_FOLLOWER if the
    /// cluster has it (Kafka's metadata-cache check), else UNKNOWN_TOPIC_OR_PARTITION. `known` keeps
    /// each topic's partition count (nil: no such topic) for the rest of the request.
    func missingPartitionError(_ id: TopicPartition, known: inout [String: Int32?]) async -> ErrorCode {
        if known[id.topic] == nil {
            let partitions = try? await catalog.partitions(of: id.topic)
            known[id.topic] = .some(partitions.map { Int32($0.count) })
        }
        guard let count = known[id.topic] ?? nil, id.partition >= 0, id.partition < count else { return .unknownTopicOrPartition }
        return .notLeaderOrFollower
    }
}
