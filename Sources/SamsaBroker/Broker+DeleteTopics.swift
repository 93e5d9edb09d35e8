import SamsaProtocol
import SamsaStorage

extension RequestDispatcher {
    /// Deletes topics by name (v1-5) or by name or id (v6): their partition logs and files go at once.
    func deleteTopics(_ request: DeleteTopicsRequest, version: Int16) async -> DeleteTopicsResponse {
        let wanted: [(name: String?, id: KafkaUUID)] = version >= 6 ? request.topics.map { ($0.name, $0.topicId) } : request.topicNames.map { ($0, .zero) }
        var response = DeleteTopicsResponse()
        for entry in wanted {
            var result = DeleteTopicsResponse.DeletableTopicResult()
            let name = entry.name ?? topics.topic(id: entry.id)?.name
            result.name = name
            result.topicId = entry.id
            guard let name, let topic = topics.topic(name) else {
                result.errorCode = (entry.name == nil ? ErrorCode.unknownTopicId : .unknownTopicOrPartition).rawValue
                response.responses.append(result)
                continue
            }
            result.topicId = topic.id
            if cluster != nil {
                result.errorCode = ErrorCode.invalidRequest.rawValue
                result.errorMessage = "deleting a replicated topic is not supported yet"
                response.responses.append(result)
                continue
            }
            do {
                if try await !topics.delete(name) {
                    result.errorCode = ErrorCode.unknownTopicOrPartition.rawValue
                }
            } catch {
                configuration.log("deleting topic \(name) failed: \(error)")
                result.errorCode = ErrorCode.kafkaStorageError.rawValue
                result.errorMessage = "\(error)"
            }
            response.responses.append(result)
        }
        return response
    }
}
