import NIOCore
import SamsaProtocol
import SamsaRecords

extension KafkaClient {
    /// Fetches from `offset` of one partition: the broker answers once `minBytes` are there or after
    /// `maxWaitMilliseconds`. Stale leaders and lost connections are retried after a metadata refresh;
    /// other errors (OFFSET_OUT_OF_RANGE, ...) are thrown.
    public func fetch(
        topic: String, partition: Int32, offset: Int64, maxWaitMilliseconds: Int32 = 500, minBytes: Int32 = 1, maxBytes: Int32 = 1 << 20
    ) async throws -> FetchedPartition {
        try await withLeader(topic: topic, partition: partition) { connection, leader in
            var wanted = FetchRequest.FetchPartition()
            wanted.partition = partition
            wanted.fetchOffset = offset
            wanted.partitionMaxBytes = maxBytes
            wanted.currentLeaderEpoch = -1
            var entry = FetchRequest.FetchTopic()
            entry.topic = topic
            entry.partitions = [wanted]
            var request = FetchRequest()
            request.replicaId = -1
            request.maxWaitMs = maxWaitMilliseconds
            request.minBytes = minBytes
            request.maxBytes = maxBytes
            request.topics = [entry]
            let response = try await connection.request(request, api: .fetch, expecting: FetchResponse.self, timeout: requestTimeout(plus: Int64(maxWaitMilliseconds)))
            if let failure = ErrorCode(rawValue: response.errorCode)?.failure("fetch") { throw failure }
            guard let data = response.responses.first(where: { $0.topic == topic })?.partitions.first(where: { $0.partitionIndex == partition })
            else { throw KafkaClientError.badResponse("fetch response without \(topic)-\(partition)") }
            if let failure = (ErrorCode(rawValue: data.errorCode) ?? .unknown).failure("fetch \(topic)-\(partition) at \(offset)") { throw failure }
            let batches: [RecordBatch]
            do {
                batches = try FetchedPartition.batches(in: data.records)
            } catch {
                throw KafkaClientError.badResponse("\(topic)-\(partition) at \(offset): \(error)")
            }
            return FetchedPartition(
                topic: topic, partition: partition, fetchOffset: offset, highWatermark: data.highWatermark,
                lastStableOffset: data.lastStableOffset, logStartOffset: data.logStartOffset, batches: batches)
        }
    }

    /// Looks up an offset of one partition with ListOffsets.
    public func listOffset(topic: String, partition: Int32, _ spec: OffsetSpec) async throws -> Int64 {
        try await withLeader(topic: topic, partition: partition) { connection, _ in
            var wanted = ListOffsetsRequest.ListOffsetsPartition()
            wanted.partitionIndex = partition
            wanted.timestamp = spec.wireValue
            wanted.currentLeaderEpoch = -1
            var entry = ListOffsetsRequest.ListOffsetsTopic()
            entry.name = topic
            entry.partitions = [wanted]
            var request = ListOffsetsRequest()
            request.replicaId = -1
            request.topics = [entry]
            let response = try await connection.request(request, api: .listOffsets, expecting: ListOffsetsResponse.self, timeout: requestTimeout())
            guard let data = response.topics.first(where: { $0.name == topic })?.partitions.first(where: { $0.partitionIndex == partition })
            else { throw KafkaClientError.badResponse("list offsets response without \(topic)-\(partition)") }
            if let failure = (ErrorCode(rawValue: data.errorCode) ?? .unknown).failure("list offsets \(topic)-\(partition)") { throw failure }
            return data.offset
        }
    }
}
