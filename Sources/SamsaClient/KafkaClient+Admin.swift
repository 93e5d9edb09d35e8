import SamsaProtocol

/// A topic to create.
public struct NewTopic: Sendable, Hashable {
    public var name: String
    /// -1: the broker's default.
    public var partitions: Int32
    /// -1: the broker's default.
    public var replicationFactor: Int16
    /// Topic configuration (`retention.ms`, `cleanup.policy`, ...).
    public var configs: [String: String]

    public init(name: String, partitions: Int32 = -1, replicationFactor: Int16 = -1, configs: [String: String] = [:]) {
        self.name = name
        self.partitions = partitions
        self.replicationFactor = replicationFactor
        self.configs = configs
    }
}

extension KafkaClient {
    /// Creates topics (on the controller); throws the first topic's error.
    public func createTopics(_ topics: [NewTopic], timeoutMilliseconds: Int32 = 30_000) async throws {
        var request = CreateTopicsRequest()
        request.timeoutMs = timeoutMilliseconds
        request.topics = topics.map { topic in
            var entry = CreateTopicsRequest.CreatableTopic()
            entry.name = topic.name
            entry.numPartitions = topic.partitions
            entry.replicationFactor = topic.replicationFactor
            entry.configs = topic.configs.sorted { $0.key < $1.key }.map { key, value in
                var config = CreateTopicsRequest.CreatableTopicConfig()
                config.name = key
                config.value = value
                return config
            }
            return entry
        }
        let response = try await withController { connection in
            try await connection.request(request, api: .createTopics, expecting: CreateTopicsResponse.self, timeout: requestTimeout(plus: Int64(timeoutMilliseconds)))
        }
        for result in response.topics {
            if let failure = (ErrorCode(rawValue: result.errorCode) ?? .unknown).failure(result.errorMessage ?? "topic \(result.name)") {
                throw failure
            }
        }
        for topic in topics { invalidate(topic: topic.name) }
    }

    /// Deletes topics (on the controller); throws the first topic's error.
    public func deleteTopics(_ names: [String], timeoutMilliseconds: Int32 = 30_000) async throws {
        var request = DeleteTopicsRequest()
        request.timeoutMs = timeoutMilliseconds
        request.topicNames = names
        let response = try await withController { connection in
            try await connection.request(request, api: .deleteTopics, expecting: DeleteTopicsResponse.self, timeout: requestTimeout(plus: Int64(timeoutMilliseconds)))
        }
        for result in response.responses {
            if let failure = (ErrorCode(rawValue: result.errorCode) ?? .unknown).failure(result.errorMessage ?? "topic \(result.name ?? "?")") {
                throw failure
            }
        }
        for name in names { invalidate(topic: name) }
    }

    /// Every topic's metadata, fresh from a broker.
    public func listTopics() async throws -> [TopicMetadata] {
        try await refreshMetadata(topics: nil).topics.values.sorted { $0.name < $1.name }
    }

    /// Runs `body` on the controller's connection (Metadata's controller id), or on any broker when none
    /// is reported.
    func withController<T: Sendable>(_ body: (BrokerConnection) async throws -> T) async throws -> T {
        let metadata = try await refreshMetadata(topics: [])
        guard metadata.controllerId >= 0, metadata.brokers[metadata.controllerId] != nil else { return try await withAnyConnection(body) }
        return try await body(try await connection(node: metadata.controllerId))
    }
}
