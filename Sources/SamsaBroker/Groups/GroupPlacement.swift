import SamsaRecords

/// Which `__consumer_offsets` partition keeps a group, by Kafka's own rule
/// (`Utils.abs(groupId.hashCode) % offsets.topic.num.partitions`), so Kafka's tools, the embedded
/// queue (which keeps its groups' offsets in the same topic) and the broker agree.
enum GroupPlacement {
    static let topic = ConsumerOffsetsRecord.topic

    /// Java's `String.hashCode`.
    static func javaHashCode(_ text: String) -> Int32 { ConsumerOffsetsRecord.javaHashCode(text) }

    /// Kafka's `Utils.abs(groupId.hashCode) % partitions` (its abs maps Int32.min to 0).
    static func partition(of groupId: String, partitions: Int32) -> Int32 {
        ConsumerOffsetsRecord.partition(of: groupId, partitions: partitions)
    }
}
