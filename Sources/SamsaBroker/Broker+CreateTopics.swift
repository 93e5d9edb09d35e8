import SamsaProtocol

extension RequestDispatcher {
    /// Creates each topic with its partition count (-1: the default); one replica only.
    func createTopics(_ request: CreateTopicsRequest) async -> CreateTopicsResponse {
        var response = CreateTopicsResponse()
        for topic in request.topics {
            var result = CreateTopicsResponse.CreatableTopicResult()
            result.name = topic.name
            result.errorMessage = nil
            let partitions = topic.numPartitions == -1 ? configuration.defaultPartitions : topic.numPartitions
            if !topic.assignments.isEmpty {
                result.errorCode = ErrorCode.invalidReplicationAssignment.rawValue
                result.errorMessage = "manual replica assignment is not supported"
            } else if topic.replicationFactor != -1 && topic.replicationFactor != 1 {
                result.errorCode = ErrorCode.invalidReplicationFactor.rawValue
                result.errorMessage = "replication factor \(topic.replicationFactor) is larger than the 1 available broker"
            } else if let config = topic.configs.first {
                // Per-topic settings are not stored yet; refusing beats creating a topic that ignores them.
                result.errorCode = ErrorCode.invalidConfig.rawValue
                result.errorMessage = "topic config '\(config.name)' is not supported: topics take the broker's settings"
            } else {
                do {
                    let created = try await topics.create(
                        topic.name, partitions: partitions, configuration: configuration.logConfiguration, validateOnly: request.validateOnly)
                    result.topicId = created.id
                    result.numPartitions = created.partitionCount
                    result.replicationFactor = 1
                } catch {
                    switch error {
                    case .invalidTopic(let message):
                        result.errorCode = ErrorCode.invalidTopic.rawValue
                        result.errorMessage = message
                    case .alreadyExists:
                        result.errorCode = ErrorCode.topicAlreadyExists.rawValue
                        result.errorMessage = "topic '\(topic.name)' already exists"
                    case .invalidPartitions:
                        result.errorCode = ErrorCode.invalidPartitions.rawValue
                        result.errorMessage = "number of partitions must be larger than 0"
                    case .storage(let failure):
                        configuration.log("creating topic \(topic.name) failed: \(failure)")
                        result.errorCode = ErrorCode.kafkaStorageError.rawValue
                        result.errorMessage = "\(failure)"
                    }
                }
            }
            response.topics.append(result)
        }
        return response
    }
}
