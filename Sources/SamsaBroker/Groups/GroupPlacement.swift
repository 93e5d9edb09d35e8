/// Which `__consumer_offsets` partition keeps a group, by Kafka's own rule
/// (`Utils.abs(groupId.hashCode) % offsets.topic.num.partitions`), so Kafka's tools and Samsa agree.
enum GroupPlacement {
    static let topic = "__consumer_offsets"

    /// Java's `String.hashCode`: over the UTF-16 code units, `h = 31 * h + unit`, wrapping.
    static func javaHashCode(_ text: String) -> Int32 {
        text.utf16.reduce(Int32(0)) { hash, unit in hash &* 31 &+ Int32(unit) }
    }

    /// Kafka's `Utils.abs(groupId.hashCode) % partitions` (its abs maps Int32.min to 0).
    static func partition(of groupId: String, partitions: Int32) -> Int32 {
        let hash = javaHashCode(groupId)
        return (hash == .min ? 0 : abs(hash)) % max(1, partitions)
    }
}
