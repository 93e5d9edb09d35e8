import SamsaProtocol
import SamsaStorage

extension RequestDispatcher {
    /// Deletes topics by name (v1-5) or by name or id (v6, UNKNOWN_TOPIC_ID for an id no topic has)
    /// through the broker's catalog: on a single broker its logs go at once; in a cluster the topic
    /// leaves coordination and every broker holding it deletes its logs. A topic named twice (or named
    /// and given by id), or an entry with both a name and an id, gets INVALID_REQUEST and is not
    /// deleted, as Kafka's controller answers.
    func deleteTopics(_ request: DeleteTopicsRequest, version: Int16) async -> DeleteTopicsResponse {
        let wanted: [(name: String?, id: KafkaUUID)] = version >= 6 ? request.topics.map { ($0.name, $0.topicId) } : request.topicNames.map { ($0, .zero) }
        var response = DeleteTopicsResponse()
        var resolved: [(name: String?, id: KafkaUUID)] = []
        for entry in wanted {
            if entry.name != nil && entry.id != .zero {
                resolved.append((nil, entry.id))
            } else if let name = entry.name {
                resolved.append((name, entry.id))
            } else {
                resolved.append(((try? await catalog.topicName(id: entry.id)) ?? nil, entry.id))
            }
        }
        var seen: [String: Int] = [:]
        for entry in resolved { if let name = entry.name { seen[name, default: 0] += 1 } }
        for entry in resolved {
            var result = DeleteTopicsResponse.DeletableTopicResult()
            result.name = entry.name
            result.topicId = entry.id
            guard let name = entry.name else {
                let both = wanted[response.responses.count].name != nil
                result.name = wanted[response.responses.count].name
                result.errorCode = (both ? ErrorCode.invalidRequest : .unknownTopicId).rawValue
                result.errorMessage = both ? "You may not specify both topic name and topic id." : "no topic has id \(entry.id.text)"
                response.responses.append(result)
                continue
            }
            if seen[name, default: 0] > 1 {
                result.errorCode = ErrorCode.invalidRequest.rawValue
                result.errorMessage = "Duplicate topic name."
                response.responses.append(result)
                continue
            }
            // Kafka's tools refuse it ("a kafka internal topic ... not allowed to be marked for deletion"):
            // it holds every group's committed offsets.
            if name == GroupPlacement.topic {
                result.errorCode = ErrorCode.invalidRequest.rawValue
                result.errorMessage = "\(GroupPlacement.topic) is internal: it holds every group's committed offsets and cannot be deleted"
                response.responses.append(result)
                continue
            }
            do {
                if let id = try await catalog.topic(name)?.id, id != .zero { result.topicId = id }
                try await catalog.deleteTopic(name)
            } catch let error as CatalogError {
                if error.code == .kafkaStorageError || error.code == .unknown {
                    configuration.logger.error("deleting a topic failed", metadata: ["topic": "\(name)", "error": "\(error.message)"])
                }
                result.errorCode = error.code.rawValue
                result.errorMessage = error.code == .unknownTopicOrPartition ? nil : error.message
            } catch {
                result.errorCode = ErrorCode.unknown.rawValue
                result.errorMessage = "\(error)"
            }
            response.responses.append(result)
        }
        return response
    }
}
