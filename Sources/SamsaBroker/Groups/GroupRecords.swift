import NIOCore
import SamsaProtocol
import SamsaRecords

/// The records of `__consumer_offsets`, in Kafka's own layouts (its `OffsetCommitKey`/`Value` and
/// `GroupMetadataKey`/`Value` schemas), so Kafka's tools read them: a key starts with its version
/// (1: an offset commit, 2: a group's metadata); a value with its own. A record without a value is a
/// tombstone: the offset was deleted (OffsetDelete, expiry) or the group was (DeleteGroups).
enum GroupRecord: Equatable {
    case offset(OffsetKey, CommittedOffset?)
    case group(String, GroupSnapshot?)

    /// Kafka's versions: GroupMetadataKey v2 and GroupMetadataValue v3 here; the offset commits' are
    /// `ConsumerOffsetsRecord`'s, shared with the embedded queue.
    static let groupKeyVersion = ConsumerOffsetsRecord.groupKeyVersion
    static let groupValueVersion: Int16 = 3

    var key: ByteBuffer {
        switch self {
        case .offset(let key, _):
            return ConsumerOffsetsRecord.key(ConsumerOffsetsRecord.Key(group: key.group, topic: key.topic, partition: key.partition))
        case .group(let id, _):
            var bytes = ByteBuffer()
            bytes.writeInteger(Self.groupKeyVersion)
            bytes.writeKafkaString(id, compact: false)
            return bytes
        }
    }

    var value: ByteBuffer? {
        switch self {
        case .offset(_, nil), .group(_, nil):
            return nil
        case .offset(_, let committed?):
            return ConsumerOffsetsRecord.value(
                ConsumerOffsetsRecord.Value(
                    offset: committed.offset, leaderEpoch: committed.leaderEpoch, metadata: committed.metadata ?? "",
                    commitTimestampMs: committed.commitTimestampMs))
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
        let decoded: ConsumerOffsetsRecord.Decoded
        do {
            decoded = try ConsumerOffsetsRecord.decode(key: key, value: value)
        } catch {
            throw ProtocolError(error.description)
        }
        switch decoded {
        case .offset(let key, let value):
            self = .offset(
                OffsetKey(group: key.group, topic: key.topic, partition: key.partition),
                value.map { CommittedOffset(offset: $0.offset, leaderEpoch: $0.leaderEpoch, metadata: $0.metadata, commitTimestampMs: $0.commitTimestampMs) })
        case .group(let id):
            self = .group(id, try value.map { value throws(ProtocolError) in try Self.groupValue(value, id: id) })
        }
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
