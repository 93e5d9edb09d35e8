import SamsaStorage

/// A topic's own settings (CreateTopics' configs), under Kafka's topic config names. Only the names
/// below are accepted; everything else is INVALID_CONFIG, as is compaction (not implemented), so a
/// topic is never created with a setting it would silently ignore.
struct TopicConfig: Sendable, Hashable, Codable {
    /// Validated name → value.
    var overrides: [String: String] = [:]

    struct Invalid: Error, Sendable {
        var message: String
    }

    /// The names a topic may set, with the rule its value must satisfy.
    static let rules: [String: @Sendable (String) -> String?] = [
        "cleanup.policy": { value in
            if value == "delete" { return nil }
            if value.split(separator: ",").contains(where: { $0.filter { $0 != " " } == "compact" }) {
                return "cleanup.policy=compact is not supported (log compaction is not implemented)"
            }
            return "cleanup.policy must be delete"
        },
        "retention.ms": { atLeast(-1, $0) },
        "retention.bytes": { atLeast(-1, $0) },
        "segment.bytes": { atLeast(14, $0) },
        "segment.ms": { atLeast(1, $0) },
        // Capped at the largest batch a log can read back (BatchValidation.maxBatchBytes): a larger
        // batch, once acknowledged, would be cut by recovery.
        "max.message.bytes": { between(0, Int64(BatchValidation.maxBatchBytes), $0) },
        "min.insync.replicas": { atLeast(1, $0) },
        "flush.messages": { atLeast(1, $0) },
        "flush.ms": { atLeast(0, $0) },
        "message.timestamp.type": { $0 == "CreateTime" ? nil : "message.timestamp.type must be CreateTime (LogAppendTime is not implemented)" },
    ]

    private static func between(_ minimum: Int64, _ maximum: Int64, _ value: String) -> String? {
        guard let number = Int64(value), number >= minimum, number <= maximum else { return "must be an integer from \(minimum) to \(maximum)" }
        return nil
    }

    private static func atLeast(_ minimum: Int64, _ value: String) -> String? {
        guard let number = Int64(value), number >= minimum else { return "must be an integer of at least \(minimum)" }
        return nil
    }

    /// Checks CreateTopics' name/value pairs.
    static func validate(_ pairs: [(name: String, value: String?)]) -> Result<TopicConfig, Invalid> {
        var config = TopicConfig()
        for (name, value) in pairs {
            let quotedName = TopicTable.quoted(name)
            guard let rule = rules[name] else { return .failure(Invalid(message: "unknown topic config name '\(quotedName)'")) }
            guard let value else { return .failure(Invalid(message: "topic config '\(quotedName)' has a null value")) }
            if let problem = rule(value) {
                return .failure(Invalid(message: "invalid value '\(TopicTable.quoted(value))' for '\(quotedName)': \(problem)"))
            }
            config.overrides[name] = value
        }
        return .success(config)
    }

    private func number(_ name: String) -> Int64? { overrides[name].flatMap { Int64($0) } }

    /// The broker's log settings with this topic's overrides applied.
    func logConfiguration(base: LogConfiguration) -> LogConfiguration {
        var log = base
        if let bytes = number("segment.bytes") { log.segmentBytes = Int(clamping: bytes) }
        if let ms = number("segment.ms") { log.segmentMilliseconds = ms }
        if let ms = number("retention.ms") { log.retentionMilliseconds = ms < 0 ? nil : ms }
        if let bytes = number("retention.bytes") { log.retentionBytes = bytes < 0 ? nil : bytes }
        if overrides["flush.messages"] != nil || overrides["flush.ms"] != nil {
            let (baseMessages, baseMs) = Self.flushSettings(base.flushPolicy)
            let messages = number("flush.messages") ?? baseMessages
            let ms = number("flush.ms") ?? baseMs
            // One policy per log: a sync per append wins, then a time bound, then a count bound.
            if messages <= 1 || ms == 0 {
                log.flushPolicy = .everyAppend
            } else if ms < Int64.max {
                log.flushPolicy = .interval(milliseconds: Int(clamping: ms))
            } else if messages < Int64.max {
                log.flushPolicy = .messages(count: Int(clamping: messages))
            } else {
                log.flushPolicy = .never
            }
        }
        return log
    }

    /// Kafka's `flush.messages` and `flush.ms` for a flush policy (Int64.max: never).
    static func flushSettings(_ policy: FlushPolicy) -> (messages: Int64, ms: Int64) {
        switch policy {
        case .everyAppend: (1, Int64.max)
        case .messages(let count): (Int64(count), Int64.max)
        case .interval(let milliseconds): (Int64.max, Int64(milliseconds))
        case .never: (Int64.max, Int64.max)
        }
    }

    func maxMessageBytes(default value: Int) -> Int { number("max.message.bytes").map { Int(clamping: $0) } ?? value }

    var minInsyncReplicas: Int { number("min.insync.replicas").map { Int(clamping: $0) } ?? 1 }
}
