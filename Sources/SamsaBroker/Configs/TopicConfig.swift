import SamsaStorage

/// A topic's own settings (CreateTopics' and AlterConfigs' configs), under Kafka's topic config names.
/// Only the names in `ConfigKeys` are accepted; everything else is INVALID_CONFIG, so a topic never
/// holds a setting it would silently ignore.
struct TopicConfig: Sendable, Hashable, Codable {
    /// Validated name → value.
    var overrides: [String: String] = [:]

    struct Invalid: Error, Sendable {
        var message: String
    }

    /// Checks CreateTopics' name/value pairs.
    static func validate(_ pairs: [(name: String, value: String?)]) -> Result<TopicConfig, Invalid> {
        var config = TopicConfig()
        for (name, value) in pairs {
            guard let value else { return .failure(Invalid(message: "topic config '\(TopicTable.quoted(name))' has a null value")) }
            if let problem = check(name, value, key: ConfigKeys.byName[name], kind: "topic") { return .failure(problem) }
            config.overrides[name] = value
        }
        if let problem = config.conflict(base: [:]) { return .failure(problem) }
        return .success(config)
    }

    /// Kafka's `LogConfig.validateValues` across configs: `min.compaction.lag.ms` may not exceed
    /// `max.compaction.lag.ms`. `base` holds the values the topic falls back to (topic names).
    func conflict(base: [String: String]) -> Invalid? {
        let minimum = Int64(overrides["min.compaction.lag.ms"] ?? base["min.compaction.lag.ms"] ?? "0") ?? 0
        let maximum = Int64(overrides["max.compaction.lag.ms"] ?? base["max.compaction.lag.ms"] ?? "\(Int64.max)") ?? .max
        guard minimum > maximum else { return nil }
        return Invalid(message: "conflict topic config setting min.compaction.lag.ms (\(minimum)) > max.compaction.lag.ms (\(maximum))")
    }

    /// Why `value` is not valid for the config `name` (`key` is its definition, nil for an unknown
    /// name), or nil when it is.
    static func check(_ name: String, _ value: String, key: ConfigKey?, kind: String) -> Invalid? {
        guard let key else { return Invalid(message: "unknown \(kind) config name '\(TopicTable.quoted(name))'") }
        guard let problem = key.check(value) else { return nil }
        return Invalid(message: "invalid value '\(TopicTable.quoted(value))' for '\(name)': \(problem)")
    }

    private func number(_ name: String) -> Int64? { overrides[name].flatMap { Int64($0) } }

    /// The broker's log settings with this topic's overrides applied.
    func logConfiguration(base: LogConfiguration) -> LogConfiguration {
        var log = base
        if let bytes = number("segment.bytes") { log.segmentBytes = Int(clamping: bytes) }
        if let ms = number("segment.ms") { log.segmentMilliseconds = ms }
        if let ms = number("retention.ms") { log.retentionMilliseconds = ms < 0 ? nil : ms }
        if let bytes = number("retention.bytes") { log.retentionBytes = bytes < 0 ? nil : bytes }
        if let policy = overrides["cleanup.policy"].flatMap({ CleanupPolicy($0) }) { log.cleanupPolicy = policy }
        if let ms = number("delete.retention.ms") { log.deleteRetentionMilliseconds = ms }
        if let ratio = overrides["min.cleanable.dirty.ratio"].flatMap({ Double($0) }) { log.minCleanableDirtyRatio = ratio }
        if let ms = number("min.compaction.lag.ms") { log.minCompactionLagMilliseconds = ms }
        if let ms = number("max.compaction.lag.ms") { log.maxCompactionLagMilliseconds = ms }
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

}

/// Why a config change was not made; `ConfigResource.answer` gives each its Kafka error code.
enum ConfigChangeError: Error, Sendable {
    case invalidConfig(String)
    case invalidRequest(String)
    case unknownTopic(String)
    case storage(StorageError)
    /// Coordination could not be read or written.
    case unavailable(String)
}
