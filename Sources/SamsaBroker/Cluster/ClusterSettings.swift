public import SamsaCoordination

/// How a broker joins a cluster (set `BrokerConfiguration.cluster`; nil is a single broker).
public struct ClusterSettings: Sendable {
    /// Opens the broker's coordination session (ZooKeeper, or an embedded coordinator shared by
    /// brokers in one process). Called again after a session ended.
    public var connect: @Sendable () async throws -> any CoordinationSession
    /// Prefix of every node (ZooKeeper's chroot: "/samsa"); "" uses the root.
    public var root: String
    /// A follower not caught up for this long leaves the ISR (`replica.lag.time.max.ms`).
    public var replicaLagTimeMaxMs: Int
    /// A follower's fetch waits at most this long for data (`replica.fetch.wait.max.ms`).
    public var replicaFetchWaitMaxMs: Int
    /// After a replica's storage fails (its log cannot be made, or what it fetched cannot be appended:
    /// a full disk), it is retried after this long (`replica.fetch.backoff.ms`, 1,000), then after
    /// twice as long per further failure, up to `replicaFetchBackoffMaxMs`.
    public var replicaFetchBackoffMs: Int
    /// The longest wait between two retries of a failing replica (30,000; Kafka has no such setting:
    /// it takes a failed log directory offline until a restart).
    public var replicaFetchBackoffMaxMs: Int
    /// The controller moves each partition's leadership back to its preferred replica (the first
    /// assigned) when a broker leads too few of the partitions it prefers (`auto.leader.rebalance.enable`).
    public var autoLeaderRebalanceEnable: Bool
    /// How often the controller checks the leaders' balance (`leader.imbalance.check.interval.seconds`, 300).
    public var leaderImbalanceCheckInterval: Duration
    /// A broker's share of preferred partitions led elsewhere above which they move back
    /// (`leader.imbalance.per.broker.percentage`, 10).
    public var leaderImbalancePerBrokerPercentage: Int
    /// Bytes per second this broker fetches, all together, for the partitions a reassignment is
    /// adding to it (Kafka's `follower.replication.throttled.rate` with
    /// `follower.replication.throttled.replicas` set to the adding replicas); nil: unthrottled.
    public var followerReplicationThrottledRate: Int?
    /// Test seam: whether this broker may talk to broker `to` now (false cuts the link: the fetcher
    /// closes its connection and retries until it is true again).
    public var linkOpen: @Sendable (_ to: Int32) -> Bool

    public init(
        connect: @escaping @Sendable () async throws -> any CoordinationSession, root: String = "", replicaLagTimeMaxMs: Int = 30_000,
        replicaFetchWaitMaxMs: Int = 500, replicaFetchBackoffMs: Int = 1000, replicaFetchBackoffMaxMs: Int = 30_000,
        autoLeaderRebalanceEnable: Bool = true, leaderImbalanceCheckInterval: Duration = .seconds(300), leaderImbalancePerBrokerPercentage: Int = 10,
        followerReplicationThrottledRate: Int? = nil, linkOpen: @escaping @Sendable (_ to: Int32) -> Bool = { _ in true }
    ) {
        self.followerReplicationThrottledRate = followerReplicationThrottledRate
        self.connect = connect
        self.root = root
        self.replicaLagTimeMaxMs = replicaLagTimeMaxMs
        self.replicaFetchWaitMaxMs = replicaFetchWaitMaxMs
        self.replicaFetchBackoffMs = replicaFetchBackoffMs
        self.replicaFetchBackoffMaxMs = replicaFetchBackoffMaxMs
        self.autoLeaderRebalanceEnable = autoLeaderRebalanceEnable
        self.leaderImbalanceCheckInterval = leaderImbalanceCheckInterval
        self.leaderImbalancePerBrokerPercentage = leaderImbalancePerBrokerPercentage
        self.linkOpen = linkOpen
    }
}
