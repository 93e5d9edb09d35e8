import NIOCore
import SamsaProtocol

/// A group's durable metadata, as one record of its coordinator partition keeps it (Kafka's
/// `GroupMetadataValue`): what a new coordinator needs to carry the group on after a failover, so
/// its members just heartbeat to the new one (same generation, same assignment).
struct GroupSnapshot: Sendable, Equatable {
    struct Member: Sendable, Equatable {
        var memberId: String
        /// `group.instance.id` of a static member (KIP-345), nil for a dynamic one.
        var instanceId: String?
        var clientId: String
        var clientHost: String
        var rebalanceTimeoutMs: Int32
        var sessionTimeoutMs: Int32
        /// The member's metadata for the group's chosen protocol (its subscription).
        var subscription: ByteBuffer
        var assignment: ByteBuffer
    }

    var groupId: String
    var generation: Int32
    /// Nil for a group known only by its committed offsets (simple consumers).
    var protocolType: String?
    var protocolName: String?
    var leader: String?
    /// When the group last changed state, in milliseconds since the epoch (Kafka's currentStateTimestamp;
    /// an empty group's offsets expire `offsets.retention.minutes` after it).
    var stateTimestampMs: Int64
    /// In join order (the first is the leader of a new generation).
    var members: [Member]
}

/// Where a group coordinator makes its groups' metadata durable (Kafka's `storeGroup`): the leader
/// of the group's coordinator partition appends a record and answers once the partition's high
/// watermark has passed it.
protocol GroupMetadataStore: Sendable {
    /// Writes `group`'s metadata; returns `.none` once it is committed, else the error for the
    /// requests that waited on it (NOT_COORDINATOR when this broker stopped leading the partition,
    /// COORDINATOR_NOT_AVAILABLE when the write failed or too few replicas are in sync).
    func store(_ group: GroupSnapshot) async -> ErrorCode
}

/// A store that keeps nothing (tests of the protocol alone).
struct NoGroupMetadataStore: GroupMetadataStore {
    func store(_ group: GroupSnapshot) async -> ErrorCode { .none }
}
