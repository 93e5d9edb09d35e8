import SamsaProtocol

extension RequestDispatcher {
    /// IncrementalAlterConfigs (KIP-339): SET, DELETE, APPEND and SUBTRACT per config; all of a
    /// resource's operations are checked before anything changes.
    func incrementalAlterConfigs(_ request: IncrementalAlterConfigsRequest) async -> IncrementalAlterConfigsResponse {
        var changes: [ConfigChange] = []
        var malformed: [Int: String] = [:]
        for (index, resource) in request.resources.enumerated() {
            var operations: [ConfigOperation] = []
            for config in resource.configs {
                guard let kind = ConfigOperation.Kind(rawValue: config.configOperation) else {
                    malformed[index] = "unknown config operation \(config.configOperation) for \(TopicTable.quoted(config.name))"
                    break
                }
                operations.append(ConfigOperation(name: config.name, kind: kind, value: config.value))
            }
            changes.append(ConfigChange(type: resource.resourceType, name: resource.resourceName, operations: operations))
        }
        // A resource with an unknown operation changes nothing; the others go ahead.
        let valid = changes.indices.filter { malformed[$0] == nil }
        let applied = await applyConfigChanges(valid.map { changes[$0] }, replacing: false, validateOnly: request.validateOnly)
        var outcomes: [Int: ConfigChangeOutcome] = Dictionary(uniqueKeysWithValues: zip(valid, applied))
        for (index, message) in malformed {
            outcomes[index] = (changes[index].type, changes[index].name, ErrorCode.invalidRequest.rawValue, message)
        }
        var response = IncrementalAlterConfigsResponse()
        for index in changes.indices {
            guard let outcome = outcomes[index] else { continue }
            var entry = IncrementalAlterConfigsResponse.AlterConfigsResourceResponse()
            (entry.resourceType, entry.resourceName, entry.errorCode, entry.errorMessage) = outcome
            response.responses.append(entry)
        }
        return response
    }
}
