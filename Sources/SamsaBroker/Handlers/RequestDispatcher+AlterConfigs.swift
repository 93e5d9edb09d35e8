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

    /// One resource's answer: type, name, error code, message (nil on success).
    typealias ConfigChangeOutcome = (type: Int8, name: String, code: Int16, message: String?)

    /// Applies each resource's change: all topics' in one batch (one stored write on a single broker),
    /// then the broker entities'. A resource named twice is INVALID_REQUEST, both times, and unchanged.
    /// Answers in request order.
    func applyConfigChanges(_ changes: [ConfigChange], replacing: Bool, validateOnly: Bool) async -> [ConfigChangeOutcome] {
        var counts: [String: Int] = [:]
        for change in changes { counts["\(change.type)/\(change.name)", default: 0] += 1 }
        var failures: [Int: ConfigChangeError] = [:]
        var topicChanges: [(index: Int, topic: String, change: TopicTable.ConfigChange)] = []
        var brokerChanges: [(index: Int, entity: BrokerConfigs.Entity)] = []
        for (index, change) in changes.enumerated() {
            do throws(ConfigChangeError) {
                if counts["\(change.type)/\(change.name)", default: 0] > 1 {
                    throw .invalidRequest("resource \(TopicTable.quoted(change.name)) of type \(change.type) appears more than once")
                }
                let operations = change.operations
                switch try ConfigResource.parse(type: change.type, name: change.name, brokerId: BrokerID(configuration.brokerId)) {
                case .topic(let name):
                    topicChanges.append((index, name, { current throws(ConfigChangeError) in
                        TopicConfig(overrides: try ConfigOperation.apply(operations, to: current.overrides, replacing: replacing, keys: ConfigKeys.byName, kind: "topic"))
                    }))
                case .broker(let entity):
                    brokerChanges.append((index, entity))
                }
            } catch {
                failures[index] = error
            }
        }
        let altered = await configStore.alterTopics(topicChanges.map { ($0.topic, $0.change) }, validateOnly: validateOnly)
        for ((index, name, _), outcome) in zip(topicChanges, altered) {
            switch outcome {
            case .success(nil): failures[index] = .unknownTopic("topic '\(TopicTable.quoted(name))' does not exist")
            case .success(let config?):
                if !validateOnly {
                    configuration.logger.info("topic configs changed", metadata: ["topic": "\(name)", "configs": "\(config.overrides.sorted { $0.key < $1.key })"])
                }
            case .failure(let error): failures[index] = error
            }
        }
        for (index, entity) in brokerChanges {
            let operations = changes[index].operations
            do throws(ConfigChangeError) {
                try await configStore.alterBroker(entity, validateOnly: validateOnly) { current throws(ConfigChangeError) in
                    try ConfigOperation.apply(operations, to: current, replacing: replacing, keys: ConfigKeys.byBrokerName, kind: "dynamic broker")
                }
                if !validateOnly { configuration.logger.info("dynamic broker configs changed", metadata: ["entity": "\(entity)"]) }
            } catch {
                failures[index] = error
            }
        }
        let outcomes: [ConfigChangeOutcome] = changes.enumerated().map { index, change in
            guard let failure = failures[index] else { return (change.type, change.name, ErrorCode.none.rawValue, nil) }
            let (code, message) = ConfigResource.answer(failure)
            return (change.type, change.name, code.rawValue, message)
        }
        // One line per request however many resources it names (each refusal is in the answer).
        if let first = outcomes.first(where: { $0.code != 0 }) {
            configuration.logger.info(
                "config changes refused",
                metadata: [
                    "refused": "\(failures.count)", "of": "\(changes.count)", "first": "\(TopicTable.quoted(first.name))",
                    "error": "\(ErrorCode(rawValue: first.code) ?? .unknown)", "reason": "\(first.message ?? "")",
                ])
        }
        return outcomes
    }
}
