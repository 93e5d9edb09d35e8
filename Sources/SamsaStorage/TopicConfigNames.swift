/// The embedded queue's topic settings under Kafka's topic config names, as `topics.json` stores
/// them, so the broker opens an embedded topic with the same durability and limits, and the embedded
/// queue reads a broker's topic. One mapping, used by the embedded queue and by the conversion of its
/// first registry layout.
public enum TopicConfigNames {
    public static let flushMessages = "flush.messages"
    public static let flushMs = "flush.ms"
    public static let compressionType = "compression.type"
    public static let maxMessageBytes = "max.message.bytes"
    public static let segmentBytes = "segment.bytes"
    public static let retentionBytes = "retention.bytes"
    public static let retentionMs = "retention.ms"
    public static let segmentMs = "segment.ms"
    public static let cleanupPolicy = "cleanup.policy"
    public static let deleteRetentionMs = "delete.retention.ms"
    public static let minCleanableDirtyRatio = "min.cleanable.dirty.ratio"
    public static let minCompactionLagMs = "min.compaction.lag.ms"
    public static let maxCompactionLagMs = "max.compaction.lag.ms"
    /// Samsa's own (no Kafka name): zeros kept written ahead of appends.
    public static let writeAheadBytes = "samsa.write.ahead.bytes"

    /// Kafka's "never" for the flush settings (`Long.MAX_VALUE`).
    static let never = String(Int64.max)

    /// Both flush settings, so the policy reads the same whatever a broker's defaults are.
    public static func flushConfigs(_ policy: FlushPolicy) -> [String: String] {
        switch policy {
        case .everyAppend: [flushMessages: "1", flushMs: never]
        case .messages(let count): [flushMessages: String(count), flushMs: never]
        case .interval(let milliseconds): [flushMessages: never, flushMs: String(milliseconds)]
        case .never: [flushMessages: never, flushMs: never]
        }
    }

    /// The flush policy the settings give (Kafka's rule: a sync per message, then a time bound, then a
    /// count); `fallback` when neither is set or a value does not read.
    public static func flushPolicy(_ configs: [String: String], fallback: FlushPolicy) -> FlushPolicy {
        let messages = configs[flushMessages].flatMap { Int64($0) }
        let ms = configs[flushMs].flatMap { Int64($0) }
        guard messages != nil || ms != nil else { return fallback }
        if let messages, messages <= 1 { return .everyAppend }
        if let ms, ms <= 0 { return .everyAppend }
        if let ms, ms < Int64.max { return .interval(milliseconds: Int(clamping: ms)) }
        if let messages, messages < Int64.max { return .messages(count: Int(clamping: messages)) }
        return .never
    }

    /// A size or time where Kafka's -1 (or anything negative) means "no limit": nil then.
    public static func limit(_ configs: [String: String], _ name: String) -> Int64?? {
        guard let text = configs[name], let value = Int64(text) else { return .none }
        return .some(value < 0 ? nil : value)
    }

    /// `limit`'s inverse: -1 for none.
    public static func limitText(_ value: Int64?) -> String { String(value ?? -1) }
}
