import SamsaProtocol

extension RequestDispatcher {
    /// AlterConfigs (the legacy, whole-set form): each resource's dynamic configs become exactly the
    /// given ones; all of a resource's entries are checked before anything changes.
    func alterConfigs(_ request: AlterConfigsRequest) async -> AlterConfigsResponse {
        let changes = request.resources.map { resource in
            ConfigChange(
                type: resource.resourceType, name: resource.resourceName,
                operations: resource.configs.map { ConfigOperation(name: $0.name, kind: .set, value: $0.value) })
        }
        var response = AlterConfigsResponse()
        for outcome in await applyConfigChanges(changes, replacing: true, validateOnly: request.validateOnly) {
            var entry = AlterConfigsResponse.AlterConfigsResourceResponse()
            (entry.resourceType, entry.resourceName, entry.errorCode, entry.errorMessage) = outcome
            response.responses.append(entry)
        }
        return response
    }

    /// One resource's requested change, as both AlterConfigs forms give it.
    struct ConfigChange: Sendable {
        var type: Int8
        var name: String
        var operations: [ConfigOperation]
    }

    /// Applies each resource's change in turn (a resource named twice is INVALID_REQUEST, both times,
    /// and unchanged); the answer per resource: type, name, error code, message (nil on success).
    func applyConfigChanges(_ changes: [ConfigChange], replacing: Bool, validateOnly: Bool) async
        -> [(type: Int8, name: String, code: Int16, message: String?)]
    {
        var counts: [String: Int] = [:]
        for change in changes { counts["\(change.type)/\(change.name)", default: 0] += 1 }
        var outcomes: [(type: Int8, name: String, code: Int16, message: String?)] = []
        for change in changes {
            do throws(ConfigChangeError) {
                if counts["\(change.type)/\(change.name)", default: 0] > 1 {
                    throw .invalidRequest("resource \(TopicTable.quoted(change.name)) of type \(change.type) appears more than once")
                }
                try await applyConfigChange(change, replacing: replacing, validateOnly: validateOnly)
                outcomes.append((change.type, change.name, ErrorCode.none.rawValue, nil))
            } catch {
                let (code, message) = ConfigResource.answer(error)
                outcomes.append((change.type, change.name, code.rawValue, message))
                configuration.logger.info(
                    "config change refused",
                    metadata: ["resource": "\(TopicTable.quoted(change.name))", "type": "\(change.type)", "error": "\(code)", "reason": "\(message)"])
            }
        }
        return outcomes
    }

    private func applyConfigChange(_ change: ConfigChange, replacing: Bool, validateOnly: Bool) async throws(ConfigChangeError) {
        let operations = change.operations
        switch try ConfigResource.parse(type: change.type, name: change.name, brokerId: BrokerID(configuration.brokerId)) {
        case .topic(let name):
            let altered = try await configStore.alterTopic(name, validateOnly: validateOnly) { current throws(ConfigChangeError) in
                TopicConfig(overrides: try ConfigOperation.apply(operations, to: current.overrides, replacing: replacing, keys: ConfigKeys.byName, kind: "topic"))
            }
            guard let altered else { throw .unknownTopic("topic '\(TopicTable.quoted(name))' does not exist") }
            if !validateOnly {
                configuration.logger.info("topic configs changed", metadata: ["topic": "\(name)", "configs": "\(altered.overrides.sorted { $0.key < $1.key })"])
            }
        case .broker(let entity):
            try await configStore.alterBroker(entity, validateOnly: validateOnly) { current throws(ConfigChangeError) in
                try ConfigOperation.apply(operations, to: current, replacing: replacing, keys: ConfigKeys.byBrokerName, kind: "dynamic broker")
            }
            if !validateOnly { configuration.logger.info("dynamic broker configs changed", metadata: ["entity": "\(entity)"]) }
        }
    }
}
