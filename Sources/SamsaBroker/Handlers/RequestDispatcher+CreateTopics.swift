import SamsaProtocol

extension RequestDispatcher {
    /// Creates each topic with its partition count (-1: the default), replication factor (-1: the
    /// default, 1) and its configs (see `TopicConfig`) through the broker's catalog: on a single broker
    /// its own logs, in a cluster replicas assigned over the live brokers in coordination, whose
    /// brokers then make their logs. A name listed more than once gets one result, INVALID_REQUEST,
    /// and is not created (as Kafka does).
    func createTopics(_ request: CreateTopicsRequest) async -> CreateTopicsResponse {
        var response = CreateTopicsResponse()
        var seen: [String: Int] = [:]
        for topic in request.topics { seen[topic.name, default: 0] += 1 }
        var answered: Set<String> = []
        for topic in request.topics where answered.insert(topic.name).inserted {
            var result = CreateTopicsResponse.CreatableTopicResult()
            result.name = topic.name
            result.errorMessage = nil
            let partitions = topic.numPartitions == -1 ? configuration.defaultPartitions : topic.numPartitions
            let config = TopicConfig.validate(topic.configs.map { ($0.name, $0.value) })
            if seen[topic.name, default: 0] > 1 {
                result.errorCode = ErrorCode.invalidRequest.rawValue
                result.errorMessage = "found multiple entries for this topic"
            } else if !topic.assignments.isEmpty {
                result.errorCode = ErrorCode.invalidReplicaAssignment.rawValue
                result.errorMessage = "manual replica assignment is not supported"
            } else if let problem = TopicTable.validate(topic.name) {
                result.errorCode = ErrorCode.invalidTopic.rawValue
                result.errorMessage = problem
            } else if topic.name == GroupPlacement.topic {
                // Made by the group coordinator on first use, with its own settings (a client's would
                // have the default retention and RF, and lose every group's offsets).
                result.errorCode = ErrorCode.invalidRequest.rawValue
                result.errorMessage = "\(GroupPlacement.topic) is internal: the group coordinator makes it on first use"
            } else if partitions <= 0 {
                result.errorCode = ErrorCode.invalidPartitions.rawValue
                result.errorMessage = "number of partitions must be larger than 0"
            } else if Int(partitions) > configuration.maxBrokerPartitions {
                result.errorCode = ErrorCode.policyViolation.rawValue
                result.errorMessage = "\(partitions) partitions exceed max.broker.partitions (\(configuration.maxBrokerPartitions))"
            } else if case .failure(let invalid) = config {
                result.errorCode = ErrorCode.invalidConfig.rawValue
                result.errorMessage = invalid.message
            } else if case .success(let config) = config {
                do {
                    (result.replicationFactor, result.topicId) = try await catalog.createTopic(
                        topic.name, partitions: partitions, replicationFactor: topic.replicationFactor, config: config, validateOnly: request.validateOnly)
                    result.numPartitions = partitions
                } catch {
                    if error.code == .kafkaStorageError || error.code == .unknown {
                        configuration.logger.error("creating a topic failed", metadata: ["topic": "\(topic.name)", "error": "\(error.message)"])
                    }
                    result.errorCode = error.code.rawValue
                    result.errorMessage = error.message
                }
            }
            response.topics.append(result)
        }
        return response
    }
}
