import SamsaProtocol

/// What AlterConfigs and IncrementalAlterConfigs name: a topic, or the dynamic configs of a broker
/// (resource name "<id>", which must be this broker's, as Kafka's `getBrokerId` requires) or of every
/// broker (resource name "").
enum ConfigResource: Hashable, Sendable {
    case topic(String)
    case broker(BrokerConfigs.Entity)

    static let topicType: Int8 = 2
    static let brokerType: Int8 = 4
    static let brokerLoggerType: Int8 = 8

    /// The resource a request names, or why it names none this broker can change.
    static func parse(type: Int8, name: String, brokerId: BrokerID) throws(ConfigChangeError) -> ConfigResource {
        switch type {
        case topicType:
            return .topic(name)
        case brokerType:
            if name.isEmpty { return .broker(.clusterDefault) }
            guard let id = Int32(name) else { throw .invalidRequest("broker id must be an integer, but it is: \(TopicTable.quoted(name))") }
            guard id == brokerId.rawValue else {
                throw .invalidRequest("unexpected broker id, expected \(brokerId.rawValue) or empty string, but received \(id)")
            }
            return .broker(.broker(brokerId))
        case brokerLoggerType:
            throw .invalidRequest("broker loggers are not configurable here (swift-log levels are set at start)")
        default:
            throw .invalidRequest("configs can be changed only for topics (2) and brokers (4), not resource type \(type)")
        }
    }

    /// The error code and message a failed change is answered with (Kafka's for each kind).
    static func answer(_ error: ConfigChangeError) -> (ErrorCode, String) {
        switch error {
        case .invalidConfig(let message): (.invalidConfig, message)
        case .invalidRequest(let message): (.invalidRequest, message)
        case .unknownTopic(let message): (.unknownTopicOrPartition, message)
        case .storage(let failure): (.kafkaStorageError, "\(failure)")
        case .unavailable(let message): (.unknown, message)
        }
    }
}

/// One config operation: IncrementalAlterConfigs' SET / DELETE / APPEND / SUBTRACT (Kafka's
/// `AlterConfigOp.OpType` 0-3); AlterConfigs' entries are SETs of a whole new set.
struct ConfigOperation: Sendable, Hashable {
    enum Kind: Int8, Sendable {
        case set = 0, delete = 1, append = 2, subtract = 3
    }

    var name: String
    var kind: Kind
    var value: String?

    /// The configs after `operations` (Kafka's `prepareIncrementalConfigs`, then validation): names
    /// are the topic names for a topic, the broker names for a broker. With `replacing` (AlterConfigs)
    /// the result is exactly the SETs. Throws for a duplicated name or a null value (INVALID_REQUEST,
    /// as Kafka), an unknown name or invalid value (INVALID_CONFIG), APPEND/SUBTRACT on a config that
    /// is not a list (INVALID_REQUEST).
    static func apply(
        _ operations: [ConfigOperation], to current: [String: String], replacing: Bool, keys: [String: ConfigKey], kind: String
    ) throws(ConfigChangeError) -> [String: String] {
        var seen: Set<String> = []
        let duplicated = operations.filter { !seen.insert($0.name).inserted }.map(\.name)
        if !duplicated.isEmpty {
            throw .invalidRequest("duplicate config keys: \(Set(duplicated).sorted().map(TopicTable.quoted).joined(separator: ","))")
        }
        var result = replacing ? [:] : current
        for operation in operations {
            guard let key = keys[operation.name] else {
                throw .invalidConfig("unknown \(kind) config name '\(TopicTable.quoted(operation.name))'")
            }
            if operation.kind == .delete {
                result[operation.name] = nil
                continue
            }
            guard let value = operation.value else { throw .invalidRequest("null value not supported for \(operation.name)") }
            switch operation.kind {
            case .set, .delete:
                result[operation.name] = value
            case .append, .subtract:
                guard key.type == .list else {
                    throw .invalidRequest("config value \(operation.kind == .append ? "append" : "subtract") is not allowed for config key: \(operation.name)")
                }
                let old = (result[operation.name] ?? key.kafkaDefault).split(separator: ",").map(String.init)
                let given = value.split(separator: ",").map(String.init)
                let list = operation.kind == .append ? old + given.filter { !old.contains($0) } : old.filter { !given.contains($0) }
                result[operation.name] = list.joined(separator: ",")
            }
            if let problem = TopicConfig.check(operation.name, result[operation.name]!, key: key, kind: kind) {
                throw .invalidConfig(problem.message)
            }
            // Stored in canonical form: a number as digits ("+0086400000" is "86400000"), a list once
            // per entry ("delete,delete,..." of any length is "delete"), so what a request can make the
            // broker store stays as small as the valid values.
            if key.type == .int || key.type == .long, let value = result[operation.name], let number = Int64(value) {
                result[operation.name] = String(number)
            }
            if key.type == .list, let value = result[operation.name] {
                var seen: Set<Substring> = []
                result[operation.name] = value.split(separator: ",").map { $0.filter { $0 != " " } }.filter { seen.insert($0).inserted }.joined(separator: ",")
            }
        }
        if kind == "topic", let problem = TopicConfig(overrides: result).conflict(base: [:]) { throw .invalidConfig(problem.message) }
        return result
    }
}
