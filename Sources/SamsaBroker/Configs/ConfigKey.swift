import SamsaStorage

/// A topic config Samsa serves, under Kafka's names: the topic's name, the broker-level config it
/// falls back to (Kafka's `LogConfig.TopicConfigSynonyms`), its type, Kafka's default and the rule a
/// value must satisfy. Only these can be set on a topic or (under the broker name) on a broker; any
/// other name is INVALID_CONFIG, so no setting is ever accepted and silently ignored.
struct ConfigKey: Sendable {
    let name: String
    let brokerName: String
    let type: ConfigType
    /// Kafka's default (the DEFAULT_CONFIG source).
    let kafkaDefault: String
    let documentation: String
    /// nil when the value is valid, else why not.
    let check: @Sendable (String) -> String?

    /// DescribeConfigs' `ConfigType` (v3+).
    enum ConfigType: Int8, Sendable {
        case boolean = 1, string = 2, int = 3, long = 5, double = 6, list = 7
    }
}

/// DescribeConfigs' `ConfigSource`, in the order a value is looked up.
enum ConfigSource: Int8, Sendable, Comparable {
    case topic = 1
    case dynamicBroker = 2
    case dynamicDefaultBroker = 3
    case staticBroker = 4
    case kafkaDefault = 5

    static func < (a: ConfigSource, b: ConfigSource) -> Bool { a.rawValue < b.rawValue }
}

enum ConfigKeys {
    static let all: [ConfigKey] = [
        // Kafka's `ValidList.in("compact", "delete")`: either, or both in either order.
        ConfigKey(
            name: "cleanup.policy", brokerName: "log.cleanup.policy", type: .list, kafkaDefault: "delete",
            documentation: "What happens to old segments: delete (by retention), compact (the latest record per key is kept), or both.",
            check: { value in
                let policies = value.split(separator: ",", omittingEmptySubsequences: false).map { $0.filter { $0 != " " } }
                guard let bad = policies.first(where: { $0 != "delete" && $0 != "compact" }) else { return nil }
                return "String must be one of: compact, delete (not '\(bad)')"
            }),
        ConfigKey(
            name: "delete.retention.ms", brokerName: "log.cleaner.delete.retention.ms", type: .long, kafkaDefault: "86400000",
            documentation: "How long a tombstone stays in a compacted log after the cleaner first kept it.", check: { atLeast(0, $0) }),
        ConfigKey(
            name: "min.cleanable.dirty.ratio", brokerName: "log.cleaner.min.cleanable.ratio", type: .double, kafkaDefault: "0.5",
            documentation: "Clean a compacted log once this share of it has not been cleaned.", check: { ratio($0) }),
        ConfigKey(
            name: "min.compaction.lag.ms", brokerName: "log.cleaner.min.compaction.lag.ms", type: .long, kafkaDefault: "0",
            documentation: "Records younger than this are never compacted.", check: { atLeast(0, $0) }),
        ConfigKey(
            name: "max.compaction.lag.ms", brokerName: "log.cleaner.max.compaction.lag.ms", type: .long, kafkaDefault: "9223372036854775807",
            documentation: "A record is compacted at the latest this long after it was written, whatever the dirty ratio.", check: { atLeast(1, $0) }),
        ConfigKey(
            name: "retention.ms", brokerName: "log.retention.ms", type: .long, kafkaDefault: "604800000",
            documentation: "Delete segments whose newest record is older than this (-1: keep forever).", check: { atLeast(-1, $0) }),
        ConfigKey(
            name: "retention.bytes", brokerName: "log.retention.bytes", type: .long, kafkaDefault: "-1",
            documentation: "Delete the oldest segments while a partition is larger than this (-1: no bound).", check: { atLeast(-1, $0) }),
        ConfigKey(
            name: "segment.bytes", brokerName: "log.segment.bytes", type: .int, kafkaDefault: "1073741824",
            documentation: "Roll to a new segment past this many bytes.", check: { between(14, Int64(Int32.max), $0) }),
        ConfigKey(
            name: "segment.ms", brokerName: "log.roll.ms", type: .long, kafkaDefault: "604800000",
            documentation: "Roll a segment this old (milliseconds) on the next append.", check: { atLeast(1, $0) }),
        // Capped at the largest batch a log can read back (BatchValidation.maxBatchBytes): a larger
        // batch, once acknowledged, would be cut by recovery.
        ConfigKey(
            name: "max.message.bytes", brokerName: "message.max.bytes", type: .int, kafkaDefault: "1048588",
            documentation: "The largest record batch a producer may append.", check: { between(0, Int64(BatchValidation.maxBatchBytes), $0) }),
        ConfigKey(
            name: "min.insync.replicas", brokerName: "min.insync.replicas", type: .int, kafkaDefault: "1",
            documentation: "With acks=all, the fewest in-sync replicas a write needs.", check: { between(1, Int64(Int32.max), $0) }),
        ConfigKey(
            name: "unclean.leader.election.enable", brokerName: "unclean.leader.election.enable", type: .boolean, kafkaDefault: "false",
            documentation: "Whether a replica outside the ISR may lead (never: unclean election is not implemented).",
            check: { $0 == "false" ? nil : "unclean.leader.election.enable must be false (unclean leader election is not implemented)" }),
        ConfigKey(
            name: "flush.messages", brokerName: "log.flush.interval.messages", type: .long, kafkaDefault: "9223372036854775807",
            documentation: "Sync a partition after this many appended records (1: every append, with group commit).", check: { atLeast(1, $0) }),
        ConfigKey(
            name: "flush.ms", brokerName: "log.flush.interval.ms", type: .long, kafkaDefault: "9223372036854775807",
            documentation: "Sync a partition this often (milliseconds; 0: every append).", check: { atLeast(0, $0) }),
        // Kafka's `compression.type` (topic and broker, the same name): the codec batches are stored
        // in; gzip and snappy are Kafka values Samsa cannot write (BrokerCompressionType).
        ConfigKey(
            name: "compression.type", brokerName: "compression.type", type: .string, kafkaDefault: BrokerCompressionType.kafkaDefault.configValue,
            documentation: "The codec batches are stored in: producer (each as its producer wrote it), uncompressed, lz4 or zstd (a batch in another codec is recompressed when appended).",
            check: { BrokerCompressionType.problem($0) }),
        ConfigKey(
            name: "message.timestamp.type", brokerName: "log.message.timestamp.type", type: .string, kafkaDefault: "CreateTime",
            documentation: "Which timestamp records keep: CreateTime (LogAppendTime is not implemented).",
            check: { $0 == "CreateTime" ? nil : "message.timestamp.type must be CreateTime (LogAppendTime is not implemented)" }),
    ]

    static let byName: [String: ConfigKey] = Dictionary(uniqueKeysWithValues: all.map { ($0.name, $0) })
    static let byBrokerName: [String: ConfigKey] = Dictionary(uniqueKeysWithValues: all.map { ($0.brokerName, $0) })

    private static func between(_ minimum: Int64, _ maximum: Int64, _ value: String) -> String? {
        guard let number = Int64(value), number >= minimum, number <= maximum else { return "must be an integer from \(minimum) to \(maximum)" }
        return nil
    }

    /// Kafka's `Range.between(0, 1)` on a DOUBLE.
    private static func ratio(_ value: String) -> String? {
        guard let number = Double(value), number.isFinite, number >= 0, number <= 1 else { return "must be a number from 0 to 1" }
        return nil
    }

    private static func atLeast(_ minimum: Int64, _ value: String) -> String? {
        guard let number = Int64(value), number >= minimum else { return "must be an integer of at least \(minimum)" }
        return nil
    }
}
