import SamsaProtocol
import SamsaStorage

extension RequestDispatcher {
    static let topicResource: Int8 = 2
    static let brokerResource: Int8 = 4

    /// A topic's settings (the broker's, with the topic's own overrides marked as not default) and the
    /// broker's own, under Kafka's names.
    func describeConfigs(_ request: DescribeConfigsRequest) -> DescribeConfigsResponse {
        var response = DescribeConfigsResponse()
        for resource in request.resources {
            var result = DescribeConfigsResponse.DescribeConfigsResult()
            result.resourceType = resource.resourceType
            result.resourceName = resource.resourceName
            result.errorMessage = nil
            let entries: [(String, String)]
            var overridden: Set<String> = []
            switch resource.resourceType {
            case Self.topicResource where topics.topic(resource.resourceName) != nil:
                let own = topics.config(resource.resourceName).overrides
                overridden = Set(own.keys)
                entries = topicConfigs.map { name, value in (name, own[name] ?? value) }
            case Self.topicResource:
                result.errorCode = ErrorCode.unknownTopicOrPartition.rawValue
                entries = []
            case Self.brokerResource:
                entries = topicConfigs + [
                    ("auto.create.topics.enable", "\(configuration.autoCreateTopics)"), ("num.partitions", "\(configuration.defaultPartitions)"),
                    ("socket.request.max.bytes", "\(configuration.maxRequestBytes)"), ("message.max.bytes", "\(configuration.maxMessageBytes)"),
                ]
            default:
                result.errorCode = ErrorCode.invalidRequest.rawValue
                result.errorMessage = "resource type \(resource.resourceType) is not described"
                entries = []
            }
            let keys = resource.configurationKeys.map(Set.init)
            result.configs = entries.filter { keys?.contains($0.0) ?? true }.map { name, value in
                var config = DescribeConfigsResponse.DescribeConfigsResourceResult()
                config.name = name
                config.value = value
                let own = overridden.contains(name)
                config.readOnly = true  // no AlterConfigs
                config.isDefault = !own
                config.configSource = own ? 1 : 5  // DYNAMIC_TOPIC_CONFIG : DEFAULT_CONFIG
                config.documentation = nil
                return config
            }
            response.results.append(result)
        }
        return response
    }

    /// Kafka's topic config names for the log settings in force.
    private var topicConfigs: [(String, String)] {
        let log = configuration.logConfiguration
        var flushMessages = Int64.max
        var flushMilliseconds = Int64.max
        switch log.flushPolicy {
        case .everyAppend: flushMessages = 1
        case .messages(let count): flushMessages = Int64(count)
        case .interval(let milliseconds): flushMilliseconds = Int64(milliseconds)
        case .never: break
        }
        return [
            ("cleanup.policy", "delete"),
            ("retention.ms", "\(log.retentionMilliseconds ?? -1)"),
            ("retention.bytes", "\(log.retentionBytes ?? -1)"),
            ("segment.bytes", "\(log.segmentBytes)"),
            ("segment.ms", "\(log.segmentMilliseconds ?? 604_800_000)"),
            ("max.message.bytes", "\(configuration.maxMessageBytes)"),
            ("min.insync.replicas", "1"),
            ("unclean.leader.election.enable", "false"),
            ("flush.messages", "\(flushMessages)"),
            ("flush.ms", "\(flushMilliseconds)"),
            ("message.timestamp.type", "CreateTime"),
        ]
    }
}
