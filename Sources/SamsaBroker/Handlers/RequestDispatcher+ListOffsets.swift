import SamsaProtocol
import SamsaRecords
import SamsaStorage

extension RequestDispatcher {
    /// Kafka's special timestamps: -1 the log end (latest), -2 the log start (earliest).
    static let latestTimestamp: Int64 = -1
    static let earliestTimestamp: Int64 = -2

    /// The offset per partition for a timestamp: latest, earliest, or the first record at or after it.
    func listOffsets(_ request: ListOffsetsRequest) async -> ListOffsetsResponse {
        var response = ListOffsetsResponse()
        for topic in request.topics {
            var entry = ListOffsetsResponse.ListOffsetsTopicResponse()
            entry.name = topic.name
            for partition in topic.partitions {
                var result = ListOffsetsResponse.ListOffsetsPartitionResponse()
                result.partitionIndex = partition.partitionIndex
                guard let leader = topics.partition(topic.name, partition.partitionIndex) else {
                    result.errorCode = ErrorCode.unknownTopicOrPartition.rawValue
                    entry.partitions.append(result)
                    continue
                }
                let log = leader.log
                if let refusal = leader.checkLeader(epoch: partition.currentLeaderEpoch) {
                    result.errorCode = refusal.rawValue
                    entry.partitions.append(result)
                    continue
                }
                result.leaderEpoch = leader.leaderEpoch.rawValue
                switch partition.timestamp {
                case Self.latestTimestamp:
                    // The latest offset a consumer can read: the high watermark.
                    result.offset = log.highWatermark
                case Self.earliestTimestamp:
                    result.offset = log.logStartOffset
                case let timestamp where timestamp >= 0:
                    do {
                        // -1 with no timestamp when no record is that recent, as Kafka answers.
                        let found = try await onIOThread { () throws -> (offset: Int64, timestamp: Int64)? in
                            guard let offset = try log.offset(forTimestamp: timestamp) else { return nil }
                            return (offset, try Self.timestamp(of: offset, in: log) ?? timestamp)
                        }
                        result.offset = found?.offset ?? -1
                        result.timestamp = found?.timestamp ?? -1
                    } catch {
                        configuration.logger.warning(
                            "list offsets failed in storage", metadata: ["topic": "\(topic.name)", "partition": "\(partition.partitionIndex)", "error": "\(error)"])
                        result.errorCode = ErrorCode.kafkaStorageError.rawValue
                    }
                default:
                    result.errorCode = ErrorCode.unsupportedVersion.rawValue
                }
                entry.partitions.append(result)
            }
            response.topics.append(entry)
        }
        return response
    }

    /// The timestamp of the record at `offset` (blocking: reads its batch).
    static func timestamp(of offset: Int64, in log: PartitionLog) throws -> Int64? {
        guard let bytes = try log.read(from: offset, maxBytes: 1) else { return nil }
        var found: Int64?
        try RecordBatch(validating: bytes).forEachRecord { record in
            if record.offset == offset { found = record.timestamp }
        }
        return found
    }
}
