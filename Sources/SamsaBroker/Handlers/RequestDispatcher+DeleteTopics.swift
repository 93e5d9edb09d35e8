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
            do {
                try await catalog.deleteTopic(name)
            } catch {
                if error.code == .kafkaStorageError {
                    configuration.logger.error("deleting a topic failed", metadata: ["topic": "\(name)", "error": "\(error.message)"])
                }
                result.errorCode = error.code.rawValue
                result.errorMessage = error.code == .unknownTopicOrPartition ? nil : error.message
            }
            response.responses.append(result)
        }
        return response
    }
}
