import SamsaProtocol

extension RequestDispatcher {
    /// Creates each topic with its partition count (-1: the default) and its configs (see `TopicConfig`);
    /// one replica only. A name listed more than once gets one result, INVALID_REQUEST, and is not
    /// created (as Kafka does).
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
            if seen[topic.name, default: 0] > 1 {
                result.errorCode = ErrorCode.invalidRequest.rawValue
                result.errorMessage = "found multiple entries for this topic"
            } else if !topic.assignments.isEmpty {
                result.errorCode = ErrorCode.invalidReplicationAssignment.rawValue
                result.errorMessage = "manual replica assignment is not supported"
            } else if let cluster {
                let config = (try? TopicConfig.validate(topic.configs.map { ($0.name, $0.value) }).get())
                if let problem = TopicTable.validate(topic.name) {
                    result.errorCode = ErrorCode.invalidTopic.rawValue
                    result.errorMessage = problem
                } else if partitions <= 0 {
                    result.errorCode = ErrorCode.invalidPartitions.rawValue
                    result.errorMessage = "number of partitions must be larger than 0"
                } else if Int(partitions) > configuration.maxBrokerPartitions {
                    result.errorCode = ErrorCode.policyViolation.rawValue
                    result.errorMessage = "\(partitions) partitions exceed max.broker.partitions (\(configuration.maxBrokerPartitions))"
                } else if let config {
                    await createReplicated(topic, partitions: partitions, config: config, validateOnly: request.validateOnly, cluster: cluster, into: &result)
                } else {
                    result.errorCode = ErrorCode.invalidConfig.rawValue
                    if case .failure(let invalid) = TopicConfig.validate(topic.configs.map { ($0.name, $0.value) }) { result.errorMessage = invalid.message }
                }
            } else if topic.replicationFactor != -1 && topic.replicationFactor != 1 {
                result.errorCode = ErrorCode.invalidReplicationFactor.rawValue
                result.errorMessage = "replication factor \(topic.replicationFactor) is larger than the 1 available broker"
            } else if case .failure(let invalid) = TopicConfig.validate(topic.configs.map { ($0.name, $0.value) }) {
                result.errorCode = ErrorCode.invalidConfig.rawValue
                result.errorMessage = invalid.message
            } else {
                let config = (try? TopicConfig.validate(topic.configs.map { ($0.name, $0.value) }).get()) ?? TopicConfig()
                do {
                    let created = try await topics.create(topic.name, partitions: partitions, config: config, validateOnly: request.validateOnly)
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
                    case .partitionLimit(let message):
                        result.errorCode = ErrorCode.policyViolation.rawValue
                        result.errorMessage = message
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

    /// A cluster's topic: replicas assigned over the live brokers, written to coordination; every
    /// replica's broker then makes its logs and takes its role from the partition's state.
    private func createReplicated(
        _ topic: CreateTopicsRequest.CreatableTopic, partitions: Int32, config: TopicConfig, validateOnly: Bool, cluster: Cluster,
        into result: inout CreateTopicsResponse.CreatableTopicResult
    ) async {
        do {
            let assignment = try await cluster.metadata.createTopic(
                topic.name, partitions: partitions, replicationFactor: topic.replicationFactor, config: config, validateOnly: validateOnly)
            result.topicId = TopicTable.id(for: topic.name)
            result.numPartitions = partitions
            result.replicationFactor = Int16(assignment.replicas(0).count)
        } catch {
            switch error {
            case .invalidReplicationFactor(let message):
                result.errorCode = ErrorCode.invalidReplicationFactor.rawValue
                result.errorMessage = message
            case .alreadyExists:
                result.errorCode = ErrorCode.topicAlreadyExists.rawValue
                result.errorMessage = "topic '\(topic.name)' already exists"
            case .coordination(let failure):
                configuration.log("creating topic \(topic.name) failed: \(failure)")
                result.errorCode = ErrorCode.unknown.rawValue
                result.errorMessage = "\(failure)"
            }
        }
    }
}
