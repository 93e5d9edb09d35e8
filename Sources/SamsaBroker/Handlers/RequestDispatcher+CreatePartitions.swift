import SamsaProtocol

extension RequestDispatcher {
    /// Grows each topic to its new partition count (Kafka's `createPartitions`) through the broker's
    /// catalog: on a single broker its own new logs; in a cluster the grown assignment and the new
    /// partitions' states in one multi, whose brokers then make their logs. Existing partitions are
    /// untouched. A topic listed more than once gets INVALID_REQUEST for each entry and is not
    /// changed; a count past `max.broker.partitions` gets POLICY_VIOLATION before anything is
    /// computed for it (so no request makes the broker build a huge assignment).
    func createPartitions(_ request: CreatePartitionsRequest) async -> CreatePartitionsResponse {
        var response = CreatePartitionsResponse()
        var seen: [String: Int] = [:]
        for topic in request.topics { seen[topic.name, default: 0] += 1 }
        for topic in request.topics {
            var result = CreatePartitionsResponse.CreatePartitionsTopicResult()
            result.name = topic.name
            if seen[topic.name, default: 0] > 1 {
                result.errorCode = ErrorCode.invalidRequest.rawValue
                result.errorMessage = "Duplicate topic in request."
            } else if topic.name == GroupPlacement.topic {
                // A group's partition is its hash modulo the count: more partitions would move groups
                // away from their offsets.
                result.errorCode = ErrorCode.invalidRequest.rawValue
                result.errorMessage = "The partitions of \(GroupPlacement.topic) cannot change: every group's place depends on their count."
            } else if Int(topic.count) > configuration.maxBrokerPartitions {
                result.errorCode = ErrorCode.policyViolation.rawValue
                result.errorMessage = "\(topic.count) partitions exceed max.broker.partitions (\(configuration.maxBrokerPartitions))"
            } else {
                do {
                    try await catalog.createPartitions(
                        topic.name, count: topic.count, manual: topic.assignments?.map { $0.brokerIds.map { BrokerID($0) } }, validateOnly: request.validateOnly)
                } catch {
                    if error.code == .kafkaStorageError || error.code == .unknown {
                        configuration.logger.error("creating partitions failed", metadata: ["topic": "\(topic.name)", "error": "\(error.message)"])
                    }
                    result.errorCode = error.code.rawValue
                    result.errorMessage = error.message
                }
            }
            response.results.append(result)
        }
        return response
    }
}
