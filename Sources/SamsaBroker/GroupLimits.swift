/// Bounds of the group coordinator, with Kafka's names and defaults where Kafka has them.
public struct GroupLimits: Sendable, Hashable {
    /// `group.min.session.timeout.ms` (6,000) and `group.max.session.timeout.ms` (1,800,000): a JoinGroup
    /// asking for a session timeout outside them gets INVALID_SESSION_TIMEOUT (a member that never
    /// heartbeats would otherwise stay, and stall its group's rebalances, for up to 24 days).
    public var minSessionTimeout: Duration = .milliseconds(6000)
    public var maxSessionTimeout: Duration = .milliseconds(1_800_000)
    /// Member ids handed out with MEMBER_ID_REQUIRED (JoinGroup v4+, KIP-394) and not yet used, across
    /// all groups. Each expires after the session timeout its join asked for, as in Kafka; Samsa also
    /// caps their number (Kafka has no such bound): past it the oldest is forgotten, and its client, if
    /// it ever comes back with it, gets UNKNOWN_MEMBER_ID and asks for a new one.
    public var maxPendingMembers = 100_000
    /// `group.max.size` (KIP-389): the most members one group may have; a new member past it gets
    /// GROUP_MAX_SIZE_REACHED, members already in it go on. Kafka's default is unbounded; Samsa's bounds
    /// what one group's member list (each with its protocol metadata, all of it in the leader's
    /// JoinGroup answer) can hold.
    public var maxGroupSize = 10_000
    /// `group.initial.rebalance.delay.ms` (3,000, Kafka's InitialDelayedJoin): the first rebalance of
    /// an Empty group completes no sooner than this, and each member joining meanwhile extends it by
    /// this again, up to the rebalance timeout, so members started together form one generation
    /// instead of one rebalance each. Zero completes it as soon as every member has joined.
    public var initialRebalanceDelay: Duration = .milliseconds(3000)

    public init() {}

    var sessionTimeouts: ClosedRange<Duration> { minSessionTimeout...maxSessionTimeout }
}
