import SamsaStorage
import Synchronization

/// How often the ISR of a partition this broker leads shrank or grew (Kafka's IsrShrinksPerSec and
/// IsrExpandsPerSec, as totals): by the leader's own writes and by the controller's (a dead follower
/// removed). Read by the metrics when scraped.
final class IsrChangeCounts: Sendable {
    private let shrinks = Atomic<Int>(0)
    private let expands = Atomic<Int>(0)

    var shrinkCount: Int { shrinks.load(ordering: .relaxed) }
    var expandCount: Int { expands.load(ordering: .relaxed) }

    /// Counts one change of a led partition's ISR from `old` to `new` (a reordering counts nothing).
    func changed(from old: [BrokerID], to new: [BrokerID]) {
        if new.count < old.count {
            shrinks.add(1, ordering: .relaxed)
        } else if new.count > old.count {
            expands.add(1, ordering: .relaxed)
        }
    }
}

/// A partition this broker leads, as the metrics show it.
struct LedPartitionStatus: Sendable {
    var partition: TopicPartition
    var replicas: Int
    var isr: Int
    /// Per follower: the leader's log end minus the follower's fetched offset (the whole log end
    /// before its first fetch).
    var followerLag: [BrokerID: Int64]

    var isUnderReplicated: Bool { isr < replicas }
}

extension Partition {
    /// This partition's replication status if this broker leads it.
    var ledStatus: LedPartitionStatus? {
        let state = snapshot
        guard state.role == .leader else { return nil }
        let end = log.logEndOffset
        return LedPartitionStatus(
            partition: id, replicas: state.replicas.count, isr: state.isr.count,
            followerLag: state.followers.mapValues { max(0, end - max(0, $0.logEnd)) })
    }
}

extension ReplicaManager {
    /// Every partition this broker leads now.
    var ledPartitions: [LedPartitionStatus] { allPartitions.compactMap(\.ledStatus) }
}
