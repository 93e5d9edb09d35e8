import SamsaProtocol

/// A partition being reassigned (KIP-455): its full replica set and the replicas joining and leaving.
public struct PartitionReassignment: Sendable, Hashable {
    public var topic: String
    public var partition: Int32
    public var replicas: [Int32]
    public var adding: [Int32]
    public var removing: [Int32]
}

extension KafkaClient {
    /// Moves a partition's replicas to `replicas` (the first the preferred leader), or with nil
    /// cancels its ongoing move, on the controller (AlterPartitionReassignments); throws the
    /// broker's error (INVALID_REPLICA_ASSIGNMENT, NO_REASSIGNMENT_IN_PROGRESS, ...).
    public func alterPartitionReassignment(topic: String, partition: Int32, replicas: [Int32]?, timeoutMilliseconds: Int32 = 30_000) async throws {
        var entry = AlterPartitionReassignmentsRequest.ReassignablePartition()
        entry.partitionIndex = partition
        entry.replicas = replicas
        var reassignable = AlterPartitionReassignmentsRequest.ReassignableTopic()
        reassignable.name = topic
        reassignable.partitions = [entry]
        var request = AlterPartitionReassignmentsRequest()
        request.timeoutMs = timeoutMilliseconds
        request.topics = [reassignable]
        let response = try await withController { connection in
            try await connection.request(
                request, api: .alterPartitionReassignments, expecting: AlterPartitionReassignmentsResponse.self,
                timeout: requestTimeout(plus: Int64(timeoutMilliseconds)))
        }
        if let failure = (ErrorCode(rawValue: response.errorCode) ?? .unknown).failure(response.errorMessage ?? "reassignment") { throw failure }
        for result in response.responses.flatMap(\.partitions) {
            if let failure = (ErrorCode(rawValue: result.errorCode) ?? .unknown).failure(result.errorMessage ?? "\(topic)-\(partition)") { throw failure }
        }
        invalidate(topic: topic)
    }

    /// The ongoing reassignments (ListPartitionReassignments, on the controller): of the named
    /// partitions per topic, or every one (nil).
    public func listPartitionReassignments(_ partitions: [String: [Int32]]? = nil, timeoutMilliseconds: Int32 = 30_000) async throws -> [PartitionReassignment] {
        var request = ListPartitionReassignmentsRequest()
        request.timeoutMs = timeoutMilliseconds
        request.topics = partitions.map { table in
            table.sorted { $0.key < $1.key }.map { name, indexes in
                var topic = ListPartitionReassignmentsRequest.ListPartitionReassignmentsTopics()
                topic.name = name
                topic.partitionIndexes = indexes
                return topic
            }
        }
        let response = try await withController { connection in
            try await connection.request(
                request, api: .listPartitionReassignments, expecting: ListPartitionReassignmentsResponse.self,
                timeout: requestTimeout(plus: Int64(timeoutMilliseconds)))
        }
        if let failure = (ErrorCode(rawValue: response.errorCode) ?? .unknown).failure(response.errorMessage ?? "reassignments") { throw failure }
        return response.topics.flatMap { topic in
            topic.partitions.map {
                PartitionReassignment(topic: topic.name, partition: $0.partitionIndex, replicas: $0.replicas, adding: $0.addingReplicas, removing: $0.removingReplicas)
            }
        }
    }
}
