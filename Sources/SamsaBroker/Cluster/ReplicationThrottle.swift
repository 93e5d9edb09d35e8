import SamsaStorage
import Synchronization

/// The follower side of Kafka's reassignment throttle (`follower.replication.throttled.rate`, bytes
/// per second, over the partitions named by `follower.replication.throttled.replicas`, which
/// Kafka's reassignment tool sets to the replicas being added): here the partitions a reassignment
/// is adding to this broker. What they fetched is charged to one broker-wide budget; while it is
/// spent, the fetchers leave them out of their requests (other partitions fetch as usual), as
/// Kafka's `ReplicaFetcherThread` leaves out throttled partitions over quota.
///
/// The budget refills at `rate` and holds no more than what the last fetch took, so a catch-up of
/// `n` bytes takes at least `(n - one fetch) / rate` seconds.
final class ReplicationThrottle: Sendable {
    /// Bytes per second; nil: no throttle.
    let rate: Int?

    private struct State {
        /// Per topic, the partitions being added here.
        var throttled: [String: Set<Int32>] = [:]
        /// Each throttled partition's appended-byte count when last charged.
        var charged: [TopicPartition: Int] = [:]
        /// When the bytes charged so far are paid for.
        var paidAt = ContinuousClock.now
    }

    private let state = Mutex(State())

    init(rate: Int?) {
        self.rate = rate.flatMap { $0 > 0 ? $0 : nil }
    }

    /// The topic's partitions being added here now (from its assignment).
    func set(topic: String, _ partitions: [Int32]) {
        state.withLock { state in
            state.throttled[topic] = partitions.isEmpty ? nil : Set(partitions)
            state.charged = state.charged.filter { state.throttled[$0.key.topic]?.contains($0.key.partition) ?? false }
        }
    }

    func isThrottled(_ partition: TopicPartition) -> Bool {
        state.withLock { $0.throttled[partition.topic]?.contains(partition.partition) ?? false }
    }

    /// Charges what the throttled ones of `partitions` appended since the last look (`appended`: a
    /// partition's appended-byte count) and returns them if the budget is spent, else nothing.
    func paused(among partitions: some Sequence<TopicPartition>, now: ContinuousClock.Instant = .now, appended: (TopicPartition) -> Int?) -> Set<TopicPartition> {
        guard let rate else { return [] }
        return state.withLock { state in
            var throttled: Set<TopicPartition> = []
            for partition in partitions where state.throttled[partition.topic]?.contains(partition.partition) ?? false {
                throttled.insert(partition)
                guard let bytes = appended(partition) else { continue }
                let delta = bytes - (state.charged[partition] ?? bytes)
                state.charged[partition] = bytes
                if delta > 0 { state.paidAt = max(state.paidAt, now) + .seconds(Double(delta) / Double(rate)) }
            }
            return now < state.paidAt ? throttled : []
        }
    }

    /// When the throttled partitions may fetch again (nil: now or never throttled).
    var resumesAt: ContinuousClock.Instant? {
        guard rate != nil else { return nil }
        let paidAt = state.withLock { $0.paidAt }
        return paidAt > .now ? paidAt : nil
    }
}
