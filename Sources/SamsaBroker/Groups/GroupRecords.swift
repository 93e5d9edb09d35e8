import NIOCore
import SamsaProtocol

/// The records of `__consumer_offsets`, in Kafka's own layouts (its `OffsetCommitKey`/`Value` and
/// `GroupMetadataKey`/`Value` schemas), so Kafka's tools read them: a key starts with its version
/// (1: an offset commit, 2: a group's metadata); a value with its own. A record without a value is a
/// tombstone: the offset was deleted (OffsetDelete, expiry) or the group was (DeleteGroups).
enum GroupRecord: Equatable {
    case offset(OffsetKey, CommittedOffset?)
    case group(String, GroupSnapshot?)

    /// Kafka's versions: OffsetCommitKey v1, GroupMetadataKey v2, OffsetCommitValue v3, GroupMetadataValue v3.
    static let offsetKeyVersion: Int16 = 1
    static let groupKeyVersion: Int16 = 2
    static let offsetValueVersion: Int16 = 3
    static let groupValueVersion: Int16 = 3

    var key: ByteBuffer {
        var bytes = ByteBuffer()
        switch self {
        case .offset(let key, _):
            bytes.writeInteger(Self.offsetKeyVersion)
            bytes.writeKafkaString(key.group, compact: false)
            bytes.writeKafkaString(key.topic, compact: false)
            bytes.writeInteger(key.partition)
        case .group(let id, _):
            bytes.writeInteger(Self.groupKeyVersion)
            bytes.writeKafkaString(id, compact: false)
        }
        return bytes
    }

    var value: ByteBuffer? {
        switch self {
        case .offset(_, nil), .group(_, nil):
            return nil
        case .offset(_, let committed?):
            var bytes = ByteBuffer()
            bytes.writeInteger(Self.offsetValueVersion)
            bytes.writeInteger(committed.offset)
            bytes.writeInteger(committed.leaderEpoch)
            bytes.writeKafkaString(committed.metadata ?? "", compact: false)
            bytes.writeInteger(committed.commitTimestampMs)
            return bytes
        case .group(_, let group?):
            var bytes = ByteBuffer()
            bytes.writeInteger(Self.groupValueVersion)
            bytes.writeKafkaString(group.protocolType ?? "", compact: false)
            bytes.writeInteger(group.generation)
            bytes.writeKafkaNullableString(group.protocolName, compact: false)
            bytes.writeKafkaNullableString(group.leader, compact: false)
            bytes.writeInteger(group.stateTimestampMs)
            bytes.writeInteger(Int32(group.members.count))
            for member in group.members {
                bytes.writeKafkaString(member.memberId, compact: false)
                bytes.writeKafkaNullableString(member.instanceId, compact: false)
                bytes.writeKafkaString(member.clientId, compact: false)
                bytes.writeKafkaString(member.clientHost, compact: false)
                bytes.writeInteger(member.rebalanceTimeoutMs)
                bytes.writeInteger(member.sessionTimeoutMs)
                bytes.writeKafkaBytes(member.subscription, compact: false)
                bytes.writeKafkaBytes(member.assignment, compact: false)
            }
            return bytes
        }
    }

    var record: CoordinatorWriter.Record { (key, value) }

    /// Reads a record of the partition (throws for bytes in no layout Kafka or Samsa writes).
    init(key: ByteBuffer, value: ByteBuffer?) throws(ProtocolError) {
        var key = key
        let version: Int16 = try key.readKafkaInteger()
        switch version {
        case 0, 1:
            let offsetKey = OffsetKey(group: try key.readKafkaString(compact: false), topic: try key.readKafkaString(compact: false), partition: try key.readKafkaInteger())
            self = .offset(offsetKey, try value.map { value throws(ProtocolError) in try Self.offsetValue(value) })
        case 2:
            let id = try key.readKafkaString(compact: false)
            self = .group(id, try value.map { value throws(ProtocolError) in try Self.groupValue(value, id: id) })
        default:
            throw ProtocolError("an __consumer_offsets key of version \(version)")
        }
    }

    private static func offsetValue(_ value: ByteBuffer) throws(ProtocolError) -> CommittedOffset {
        var value = value
        let version: Int16 = try value.readKafkaInteger()
        guard (1...3).contains(version) else { throw ProtocolError("an offset commit value of version \(version)") }
        let offset: Int64 = try value.readKafkaInteger()
        let leaderEpoch: Int32 = version >= 3 ? try value.readKafkaInteger() : -1
        let metadata = try value.readKafkaString(compact: false)
        let timestamp: Int64 = try value.readKafkaInteger()
        return CommittedOffset(offset: offset, leaderEpoch: leaderEpoch, metadata: metadata, commitTimestampMs: timestamp)
    }

    private static func groupValue(_ value: ByteBuffer, id: String) throws(ProtocolError) -> GroupSnapshot {
        var value = value
        let version: Int16 = try value.readKafkaInteger()
        guard version == 3 else { throw ProtocolError("a group metadata value of version \(version)") }
        let protocolType = try value.readKafkaString(compact: false)
        let generation: Int32 = try value.readKafkaInteger()
        let protocolName = try value.readKafkaNullableString(compact: false)
        let leader = try value.readKafkaNullableString(compact: false)
        let timestamp: Int64 = try value.readKafkaInteger()
        let count: Int32 = try value.readKafkaInteger()
        // Each member takes at least 28 bytes: a count past what is left is not a record Samsa wrote.
        guard count >= 0, Int(count) * 28 <= value.readableBytes else { throw ProtocolError("a group metadata value with \(count) members") }
        var members: [GroupSnapshot.Member] = []
        members.reserveCapacity(Int(count))
        for _ in 0..<count {
            members.append(GroupSnapshot.Member(
                memberId: try value.readKafkaString(compact: false), instanceId: try value.readKafkaNullableString(compact: false),
                clientId: try value.readKafkaString(compact: false), clientHost: try value.readKafkaString(compact: false),
                rebalanceTimeoutMs: try value.readKafkaInteger(), sessionTimeoutMs: try value.readKafkaInteger(),
                subscription: try value.readKafkaBytes(compact: false), assignment: try value.readKafkaBytes(compact: false)))
        }
        return GroupSnapshot(
            groupId: id, generation: generation, protocolType: protocolType, protocolName: protocolName, leader: leader, stateTimestampMs: timestamp,
            members: members)
    }
}

/// A committed offset's key: the group, topic and partition.
struct OffsetKey: Hashable, Sendable {
    var group: String
    var topic: String
    var partition: Int32
}

/// A committed offset, as OffsetFetch answers it.
struct CommittedOffset: Hashable, Sendable {
    var offset: Int64
    var leaderEpoch: Int32
    var metadata: String?
    /// When it was committed (ms since the epoch): a simple consumer group's offsets expire
    /// `offsets.retention.minutes` after it.
    var commitTimestampMs: Int64 = 0
}
