import SamsaProtocol
import SamsaStorage

extension RequestDispatcher {
    /// Each topic config's value for a topic, or each broker config's for this broker, with where the
    /// value comes from (its source) and, when asked (v1+), every layer that sets it, first wins
    /// (Kafka's synonyms: the topic's own, this broker's dynamic, the cluster's dynamic default, the
    /// broker's static, Kafka's default). A broker resource named "" describes the cluster-wide dynamic
    /// defaults that are set, as Kafka does.
    ///
    /// A resource named again in the same request is answered INVALID_REQUEST with no configs: the
    /// answer then grows with the distinct resources named, not with the request's repetitions (a
    /// 2 MB request naming one topic 300,000 times asked for a 500 MB answer).
    func describeConfigs(_ request: DescribeConfigsRequest) async -> DescribeConfigsResponse {
        var response = DescribeConfigsResponse()
        var described: Set<String> = []
        for resource in request.resources {
            var result = DescribeConfigsResponse.DescribeConfigsResult()
            result.resourceType = resource.resourceType
            result.resourceName = resource.resourceName
            result.errorMessage = nil
            do throws(ConfigChangeError) {
                guard described.insert("\(resource.resourceType)/\(resource.resourceName)").inserted else {
                    throw .invalidRequest("resource \(TopicTable.quoted(resource.resourceName)) of type \(resource.resourceType) is named more than once")
                }
                let wanted = resource.configurationKeys.map(Set.init)
                result.configs = try await describedConfigs(resource.resourceType, resource.resourceName).filter { wanted?.contains($0.name) ?? true }.map {
                    entry(for: $0, synonyms: request.includeSynonyms, documentation: request.includeDocumentation)
                }
            } catch {
                let (code, message) = ConfigResource.answer(error)
                result.errorCode = code.rawValue
                result.errorMessage = message
            }
            response.results.append(result)
        }
        return response
    }

    /// One config as described: its name for the resource, its resolution and definition.
    private struct Described {
        var name: String
        var resolved: BrokerConfigs.Resolved
        var readOnly: Bool
        var key: ConfigKey?
    }

    private func describedConfigs(_ type: Int8, _ name: String) async throws(ConfigChangeError) -> [Described] {
        let brokerConfigs = topics.brokerConfigs
        switch try ConfigResource.parse(type: type, name: name, brokerId: brokerConfigs.brokerId) {
        case .topic(let topic):
            guard let own = try await configStore.topicOverrides(topic) else { throw .unknownTopic("topic '\(TopicTable.quoted(topic))' does not exist") }
            return ConfigKeys.all.map { key in
                Described(name: key.name, resolved: brokerConfigs.resolve(key, topicOverrides: own.overrides), readOnly: false, key: key)
            }
        case .broker(.clusterDefault):
            return brokerConfigs.dynamicValues(.clusterDefault).sorted { $0.key < $1.key }.compactMap { name, value in
                let layer = BrokerConfigs.Resolved.Layer(name: name, value: value, source: .dynamicDefaultBroker)
                return Described(name: name, resolved: .init(value: value, source: .dynamicDefaultBroker, layers: [layer]), readOnly: false, key: ConfigKeys.byBrokerName[name])
            }
        case .broker:
            let dynamic = ConfigKeys.all.map { key in Described(name: key.brokerName, resolved: brokerConfigs.resolve(key), readOnly: false, key: key) }
            let fixed = staticBrokerConfigs.map { name, value in
                Described(
                    name: name, resolved: .init(value: value, source: .staticBroker, layers: [.init(name: name, value: value, source: .staticBroker)]),
                    readOnly: true, key: nil)
            }
            return dynamic + fixed
        }
    }

    /// Broker configs that only the broker's own configuration sets (read-only here).
    private var staticBrokerConfigs: [(String, String)] {
        [
            ("broker.id", "\(configuration.brokerId)"), ("log.dirs", configuration.dataDirectory),
            ("auto.create.topics.enable", "\(configuration.autoCreateTopics)"), ("num.partitions", "\(configuration.defaultPartitions)"),
            ("socket.request.max.bytes", "\(configuration.maxRequestBytes)"), ("max.broker.partitions", "\(configuration.maxBrokerPartitions)"),
            // The log cleaner (Kafka's names; its default rate is Double.MAX_VALUE, "no limit").
            ("log.cleaner.enable", "\(configuration.cleaner.enabled)"), ("log.cleaner.threads", "\(configuration.cleaner.threads)"),
            ("log.cleaner.dedupe.buffer.size", "\(configuration.cleaner.dedupeBufferBytes)"),
            ("log.cleaner.io.max.bytes.per.second", configuration.cleaner.ioMaxBytesPerSecond.map { "\(Double($0))" } ?? "\(Double.greatestFiniteMagnitude)"),
            ("log.cleaner.backoff.ms", "\(configuration.cleaner.backoffMilliseconds)"),
        ]
    }

    /// The type of a read-only broker config, from its value.
    private static func inferredType(_ value: String) -> ConfigKey.ConfigType {
        if Bool(value) != nil { return .boolean }
        if Int32(value) != nil { return .int }
        if Int64(value) != nil { return .long }
        return Double(value) != nil ? .double : .string
    }

    private func entry(for config: Described, synonyms: Bool, documentation: Bool) -> DescribeConfigsResponse.DescribeConfigsResourceResult {
        var entry = DescribeConfigsResponse.DescribeConfigsResourceResult()
        entry.name = config.name
        entry.value = config.resolved.value
        entry.readOnly = config.readOnly
        entry.configSource = config.resolved.source.rawValue
        // v0's only notion of a source: whether the value is this resource's own.
        entry.isDefault = config.resolved.source != .topic && config.resolved.source != .dynamicBroker && config.resolved.source != .dynamicDefaultBroker
        entry.configType = (config.key?.type ?? Self.inferredType(config.resolved.value)).rawValue
        entry.documentation = documentation ? config.key?.documentation : nil
        if synonyms {
            entry.synonyms = config.resolved.layers.map { layer in
                var synonym = DescribeConfigsResponse.DescribeConfigsSynonym()
                synonym.name = layer.name
                synonym.value = layer.value
                synonym.source = layer.source.rawValue
                return synonym
            }
        }
        return entry
    }
}
