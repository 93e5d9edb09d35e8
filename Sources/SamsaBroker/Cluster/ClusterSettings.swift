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
    /// Test seam: whether this broker may talk to broker `to` now (false cuts the link: the fetcher
    /// closes its connection and retries until it is true again).
    public var linkOpen: @Sendable (_ to: Int32) -> Bool

    public init(
        connect: @escaping @Sendable () async throws -> any CoordinationSession, root: String = "", replicaLagTimeMaxMs: Int = 30_000,
        replicaFetchWaitMaxMs: Int = 500, linkOpen: @escaping @Sendable (_ to: Int32) -> Bool = { _ in true }
    ) {
        self.connect = connect
        self.root = root
        self.replicaLagTimeMaxMs = replicaLagTimeMaxMs
        self.replicaFetchWaitMaxMs = replicaFetchWaitMaxMs
        self.linkOpen = linkOpen
    }
}
