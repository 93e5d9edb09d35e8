import SamsaProtocol

/// One config of a topic or broker as DescribeConfigs shows it.
public struct ConfigDescription: Sendable, Hashable {
    /// Kafka's `ConfigSource`: where a value comes from, first wins.
    public enum Source: Int8, Sendable, Hashable, CustomStringConvertible {
        case unknown = 0
        case topic = 1
        case dynamicBroker = 2
        case dynamicDefaultBroker = 3
        case staticBroker = 4
        case kafkaDefault = 5
        case dynamicBrokerLogger = 6

        /// Kafka's name (kafka-configs.sh prints these).
        public var description: String {
            switch self {
            case .unknown: "UNKNOWN"
            case .topic: "DYNAMIC_TOPIC_CONFIG"
            case .dynamicBroker: "DYNAMIC_BROKER_CONFIG"
            case .dynamicDefaultBroker: "DYNAMIC_DEFAULT_BROKER_CONFIG"
            case .staticBroker: "STATIC_BROKER_CONFIG"
            case .kafkaDefault: "DEFAULT_CONFIG"
            case .dynamicBrokerLogger: "DYNAMIC_BROKER_LOGGER_CONFIG"
            }
        }
    }

    public var name: String
    public var value: String?
    public var source: Source
    public var readOnly: Bool
    /// Every layer that sets it, first wins: (name, value, source).
    public var synonyms: [Synonym]

    public struct Synonym: Sendable, Hashable {
        public var name: String
        public var value: String?
        public var source: Source
    }
}

/// Whose configs: a topic, one broker, or every broker's dynamic default.
public enum ConfigTarget: Sendable, Hashable {
    case topic(String)
    case broker(Int32)
    case brokerDefault

    var resource: (type: Int8, name: String) {
        switch self {
        case .topic(let name): (2, name)
        case .broker(let id): (4, "\(id)")
        case .brokerDefault: (4, "")
        }
    }
}

extension KafkaClient {
    /// The configs of a topic or broker with their sources and synonyms (DescribeConfigs); a broker's
    /// are asked of that broker.
    public func describeConfigs(_ target: ConfigTarget) async throws -> [ConfigDescription] {
        var resource = DescribeConfigsRequest.DescribeConfigsResource()
        (resource.resourceType, resource.resourceName) = target.resource
        resource.configurationKeys = nil
        var request = DescribeConfigsRequest()
        request.resources = [resource]
        request.includeSynonyms = true
        let response = try await onBrokerOf(target) { connection in
            try await connection.request(request, api: .describeConfigs, expecting: DescribeConfigsResponse.self, timeout: requestTimeout())
        }
        guard let result = response.results.first else { throw KafkaClientError.badResponse("DescribeConfigs answered no resource") }
        if let failure = (ErrorCode(rawValue: result.errorCode) ?? .unknown).failure(result.errorMessage ?? "\(target)") { throw failure }
        return result.configs.map { config in
            ConfigDescription(
                name: config.name, value: config.value, source: ConfigDescription.Source(rawValue: config.configSource) ?? .unknown,
                readOnly: config.readOnly,
                synonyms: config.synonyms.map { .init(name: $0.name, value: $0.value, source: ConfigDescription.Source(rawValue: $0.source) ?? .unknown) })
        }
    }

    /// Sets and removes configs of a topic or broker (IncrementalAlterConfigs); with `validateOnly`
    /// the broker only checks them. Throws the broker's error (INVALID_CONFIG for an unknown name or a
    /// bad value: then nothing changed).
    public func alterConfigs(_ target: ConfigTarget, set: [String: String] = [:], delete: [String] = [], validateOnly: Bool = false) async throws {
        var resource = IncrementalAlterConfigsRequest.AlterConfigsResource()
        (resource.resourceType, resource.resourceName) = target.resource
        resource.configs = set.sorted { $0.key < $1.key }.map { name, value in
            var config = IncrementalAlterConfigsRequest.AlterableConfig()
            config.name = name
            config.configOperation = 0  // SET
            config.value = value
            return config
        }
        resource.configs += delete.map { name in
            var config = IncrementalAlterConfigsRequest.AlterableConfig()
            config.name = name
            config.configOperation = 1  // DELETE
            config.value = nil
            return config
        }
        var request = IncrementalAlterConfigsRequest()
        request.resources = [resource]
        request.validateOnly = validateOnly
        let response = try await onBrokerOf(target) { connection in
            try await connection.request(request, api: .incrementalAlterConfigs, expecting: IncrementalAlterConfigsResponse.self, timeout: requestTimeout())
        }
        guard let result = response.responses.first else { throw KafkaClientError.badResponse("IncrementalAlterConfigs answered no resource") }
        if let failure = (ErrorCode(rawValue: result.errorCode) ?? .unknown).failure(result.errorMessage ?? "\(target)") { throw failure }
    }

    /// A broker's own configs go to that broker (Kafka's rule); the rest to any.
    private func onBrokerOf<T: Sendable>(_ target: ConfigTarget, _ body: (BrokerConnection) async throws -> T) async throws -> T {
        if case .broker(let id) = target { return try await body(try await connection(node: id)) }
        return try await withAnyConnection(body)
    }
}
