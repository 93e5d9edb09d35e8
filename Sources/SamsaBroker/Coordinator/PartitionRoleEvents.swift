import Synchronization

/// Tells the coordinator of an internal topic when one of its partitions here changes role (Kafka's
/// `onLeadershipChange` from the replica manager to the group coordinator). Observers must not block:
/// they are called on a partition's writer queue or a coordination watch.
final class PartitionRoleEvents: Sendable {
    private let observers = Mutex<[String: @Sendable (Partition) -> Void]>([:])

    /// Calls `observer` with each partition of `topic` whose role changed (or that was made or removed).
    func observe(topic: String, _ observer: @escaping @Sendable (Partition) -> Void) {
        observers.withLock { $0[topic] = observer }
    }

    func changed(_ partition: Partition) {
        observers.withLock { $0[partition.id.topic] }?(partition)
    }
}
