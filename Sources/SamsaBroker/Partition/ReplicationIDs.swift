/// A broker's id (Kafka's `broker.id`, a node id on the wire), so a broker and an epoch cannot be
/// swapped by mistake where both were `Int32`. Encoded as its number (JSON nodes, the wire).
struct BrokerID: RawRepresentable, Hashable, Comparable, Sendable, Codable, ExpressibleByIntegerLiteral, CustomStringConvertible {
    let rawValue: Int32

    init(rawValue: Int32) { self.rawValue = rawValue }
    init(_ value: Int32) { rawValue = value }
    init(integerLiteral value: Int32) { rawValue = value }

    /// The id a registration node is named by (`/brokers/ids/<id>`).
    init?(name: String) {
        guard let value = Int32(name) else { return nil }
        rawValue = value
    }

    /// No broker (a partition without a leader is led by -1).
    static let none = BrokerID(-1)

    static func < (lhs: BrokerID, rhs: BrokerID) -> Bool { lhs.rawValue < rhs.rawValue }
    var description: String { "\(rawValue)" }
}

/// A partition's leader epoch: raised by each change of leader, stamped into the batches the leader
/// writes, and named by requests so a stale leader or follower is fenced (KIP-101, KIP-320).
struct LeaderEpoch: RawRepresentable, Hashable, Comparable, Sendable, Codable, ExpressibleByIntegerLiteral, CustomStringConvertible {
    let rawValue: Int32

    init(rawValue: Int32) { self.rawValue = rawValue }
    init(_ value: Int32) { rawValue = value }
    init(integerLiteral value: Int32) { rawValue = value }

    /// No epoch: a request that names none (-1), a partition never led.
    static let none = LeaderEpoch(-1)

    /// The epoch after this one.
    var next: LeaderEpoch { LeaderEpoch(rawValue + 1) }

    static func < (lhs: LeaderEpoch, rhs: LeaderEpoch) -> Bool { lhs.rawValue < rhs.rawValue }
    var description: String { "\(rawValue)" }
}

extension Array where Element == BrokerID {
    /// The ids as the wire carries them.
    var wire: [Int32] { map(\.rawValue) }
}
