import SamsaProtocol
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
                guard let log = topics.log(topic.name, partition.partitionIndex) else {
                    result.errorCode = ErrorCode.unknownTopicOrPartition.rawValue
                    entry.partitions.append(result)
                    continue
                }
                result.leaderEpoch = 0
                switch partition.timestamp {
                case Self.latestTimestamp:
                    result.offset = log.logEndOffset
                case Self.earliestTimestamp:
                    result.offset = log.logStartOffset
                case let timestamp where timestamp >= 0:
                    do {
                        // -1 with no timestamp when no record is that recent, as Kafka answers.
                        let found = try await onIOThread { try log.offset(forTimestamp: timestamp) }
                        result.offset = found ?? -1
                        result.timestamp = found == nil ? -1 : timestamp
                    } catch {
                        configuration.log("list offsets of \(topic.name)-\(partition.partitionIndex) failed: \(error)")
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
}
