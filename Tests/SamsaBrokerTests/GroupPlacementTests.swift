import NIOCore
import SamsaProtocol
import Testing
@testable import SamsaBroker

/// Where groups live (Kafka's own rule) and the records that keep them (Kafka's layouts).
@Suite("Group placement and records")
struct GroupPlacementTests {
    @Test("Java's String.hashCode, and Kafka's abs(hashCode) % partitions, including Int32.min and non-ASCII ids")
    func javaHashCode() {
        #expect(GroupPlacement.javaHashCode("") == 0)
        #expect(GroupPlacement.javaHashCode("a") == 97)
        #expect(GroupPlacement.javaHashCode("hello") == 99_162_322)
        #expect(GroupPlacement.javaHashCode("Hello World") == -862_545_276)
        // Java hashes UTF-16 code units: "é" is one unit (233), "😀" two (55357, 56832).
        #expect(GroupPlacement.javaHashCode("é") == 233)
        #expect(GroupPlacement.javaHashCode("😀") == 55357 &* 31 &+ 56832)
        // The string whose hashCode is Integer.MIN_VALUE: Kafka's Utils.abs maps it to 0.
        #expect(GroupPlacement.javaHashCode("polygenelubricants") == .min)
        #expect(GroupPlacement.partition(of: "polygenelubricants", partitions: 50) == 0)
        #expect(GroupPlacement.partition(of: "Hello World", partitions: 50) == 862_545_276 % 50)
        #expect(GroupPlacement.partition(of: "hello", partitions: 50) == 99_162_322 % 50)
        for id in ["", "g", String(repeating: "x", count: 32_767)] {
            #expect((0..<50).contains(GroupPlacement.partition(of: id, partitions: 50)))
            #expect(GroupPlacement.partition(of: id, partitions: 1) == 0)
        }
    }

    static let member = GroupSnapshot.Member(
        memberId: "m-1", instanceId: "i-1", clientId: "c", clientHost: "/127.0.0.1", rebalanceTimeoutMs: 300_000, sessionTimeoutMs: 45_000,
        subscription: ByteBuffer(bytes: [0, 1, 2]), assignment: ByteBuffer(bytes: [3, 4]))

    @Test("Offset and group records round-trip in Kafka's layouts; tombstones have no value")
    func roundTrip() throws {
        let key = OffsetKey(group: "g", topic: "t", partition: 7)
        let committed = CommittedOffset(offset: 42, leaderEpoch: 3, metadata: "meta", commitTimestampMs: 1_700_000_000_000)
        let group = GroupSnapshot(
            groupId: "g", generation: 9, protocolType: "consumer", protocolName: "range", leader: "m-1", stateTimestampMs: 5,
            members: [Self.member, GroupSnapshot.Member(
                memberId: "m-2", instanceId: nil, clientId: "", clientHost: "", rebalanceTimeoutMs: 1, sessionTimeoutMs: 2, subscription: ByteBuffer(),
                assignment: ByteBuffer())])
        for record in [GroupRecord.offset(key, committed), .offset(key, nil), .group("g", group), .group("g", nil)] {
            #expect(try GroupRecord(key: record.key, value: record.value) == record)
        }
        // Kafka's OffsetCommitKey v1 layout, byte for byte.
        var expected = ByteBuffer()
        expected.writeInteger(Int16(1))
        expected.writeInteger(Int16(1))
        expected.writeString("g")
        expected.writeInteger(Int16(1))
        expected.writeString("t")
        expected.writeInteger(Int32(7))
        #expect(GroupRecord.offset(key, committed).key == expected)
        #expect(GroupRecord.offset(key, nil).value == nil)
    }

    @Test("Records in no known layout, truncated, or claiming 2^31-1 members throw; none traps")
    func hostileRecords() {
        var unknownVersion = ByteBuffer()
        unknownVersion.writeInteger(Int16(9))
        #expect(throws: ProtocolError.self) { try GroupRecord(key: unknownVersion, value: nil) }
        #expect(throws: ProtocolError.self) { try GroupRecord(key: ByteBuffer(bytes: [0]), value: nil) }
        let group = GroupRecord.group("g", GroupSnapshot(groupId: "g", generation: 1, protocolType: "consumer", protocolName: nil, leader: nil, stateTimestampMs: 0, members: []))
        var huge = group.value!
        huge.moveWriterIndex(to: huge.writerIndex - 4)
        huge.writeInteger(Int32.max)
        #expect(throws: ProtocolError.self) { try GroupRecord(key: group.key, value: huge) }
        let full = GroupRecord.group("g", GroupSnapshot(groupId: "g", generation: 1, protocolType: "consumer", protocolName: "r", leader: "m-1", stateTimestampMs: 0, members: [Self.member])).value!
        for cut in 0..<full.readableBytes {
            #expect(throws: ProtocolError.self) { try GroupRecord(key: group.key, value: full.getSlice(at: 0, length: cut)!) }
        }
    }
}
