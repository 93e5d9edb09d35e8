/// The `__consumer_offsets` topic and its coordinator, with Kafka's names and defaults.
public struct OffsetsTopicSettings: Sendable, Hashable {
    /// `offsets.topic.num.partitions` (50): used when the topic is made; an existing topic keeps its count.
    public var partitions: Int32 = 50
    /// `offsets.topic.replication.factor` (3), capped by the live brokers when the topic is made (with a warning).
    public var replicationFactor: Int16 = 3
    /// The topic's `min.insync.replicas` (2, at most the replication factor): a commit is acknowledged
    /// only once that many replicas have it.
    public var minInsyncReplicas = 2
    /// `offsets.topic.segment.bytes` (100 MiB).
    public var segmentBytes = 100 << 20
    /// `offsets.retention.minutes` (7 days): an Empty group's offsets are deleted that long after it
    /// became Empty; a simple consumer's offset that long after its commit.
    public var retention = Duration.seconds(7 * 24 * 3600)
    /// `offsets.retention.check.interval.ms` (10 minutes).
    public var retentionCheckInterval = Duration.seconds(600)

    public init() {}
}
