public import SamsaProtocol

/// The outcome of one partition's leader election (ElectLeaders).
public struct LeaderElection: Sendable, Hashable {
    public var topic: String
    public var partition: Int32
    /// `.none` when a new leader was elected; ELECTION_NOT_NEEDED when the preferred replica leads already.
    public var error: ErrorCode
    public var message: String?
}

extension KafkaClient {
    /// Grows a topic to `count` partitions on the controller (CreatePartitions); throws the broker's
    /// error (INVALID_PARTITIONS for a count not larger than today's, ...).
    public func createPartitions(topic: String, count: Int32, validateOnly: Bool = false, timeoutMilliseconds: Int32 = 30_000) async throws {
        var entry = CreatePartitionsRequest.CreatePartitionsTopic()
        entry.name = topic
        entry.count = count
        entry.assignments = nil
        var request = CreatePartitionsRequest()
        request.topics = [entry]
        request.timeoutMs = timeoutMilliseconds
        request.validateOnly = validateOnly
        let response = try await withController { connection in
            try await connection.request(
                request, api: .createPartitions, expecting: CreatePartitionsResponse.self, timeout: requestTimeout(plus: Int64(timeoutMilliseconds)))
        }
        for result in response.results {
            if let failure = (ErrorCode(rawValue: result.errorCode) ?? .unknown).failure(result.errorMessage ?? "topic \(result.name)") { throw failure }
        }
        invalidate(topic: topic)
    }

    /// Elects leaders on the controller (ElectLeaders): `preferred` (type 0) or `unclean` (type 1,
    /// which never picks a replica outside the ISR here); nil partitions means every partition.
    /// Per partition its outcome; throws a request-level error (NOT_CONTROLLER, ...).
    public func electLeaders(unclean: Bool = false, partitions: [String: [Int32]]? = nil, timeoutMilliseconds: Int32 = 30_000) async throws
        -> [LeaderElection]
    {
        var request = ElectLeadersRequest()
        request.electionType = unclean ? 1 : 0
        request.timeoutMs = timeoutMilliseconds
        request.topicPartitions = partitions.map { table in
            table.sorted { $0.key < $1.key }.map { name, indexes in
                var entry = ElectLeadersRequest.TopicPartitions()
                entry.topic = name
                entry.partitions = indexes
                return entry
            }
        }
        let response = try await withController { connection in
            try await connection.request(request, api: .electLeaders, expecting: ElectLeadersResponse.self, timeout: requestTimeout(plus: Int64(timeoutMilliseconds)))
        }
        if let failure = (ErrorCode(rawValue: response.errorCode) ?? .unknown).failure("leader election") { throw failure }
        for name in partitions?.keys.sorted() ?? [] { invalidate(topic: name) }
        return response.replicaElectionResults.flatMap { topic in
            topic.partitionResult.map {
                LeaderElection(topic: topic.topic, partition: $0.partitionId, error: ErrorCode(rawValue: $0.errorCode) ?? .unknown, message: $0.errorMessage)
            }
        }
    }
}
