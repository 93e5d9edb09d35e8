import NIOCore
import SamsaProtocol
import Testing
import SamsaTestSupport

/// Kafka's strings are at most 32,767 bytes, compact or not: the readers refuse longer ones (as Kafka's
/// generated readers do), and the writers never trap, whatever they are given.
@Suite("Protocol string limits", .offCooperativePool)
struct StringLimitTests {
    static let limit = ByteBuffer.kafkaMaxStringBytes

    /// A string field of `length` bytes of `byte` with a length prefix written by hand.
    static func rawString(length: Int, byte: UInt8 = UInt8(ascii: "a"), compact: Bool) -> ByteBuffer {
        var buffer = ByteBuffer()
        if compact {
            buffer.writeKafkaUnsignedVarint(UInt32(length + 1))
        } else {
            buffer.writeInteger(Int16(truncatingIfNeeded: length))
        }
        buffer.writeRepeatingByte(byte, count: length)
        return buffer
    }

    @Test("32,767 bytes are read, compact or not; 32,768 compact bytes are refused", arguments: [false, true])
    func readerBound(compact: Bool) throws {
        var longest = Self.rawString(length: Self.limit, compact: compact)
        #expect(try longest.readKafkaString(compact: compact).utf8.count == Self.limit)
        var over = Self.rawString(length: Self.limit + 1, compact: true)
        #expect(throws: ProtocolError.self) { try over.readKafkaString(compact: true) }
        var far = Self.rawString(length: 1 << 20, compact: true)
        #expect(throws: ProtocolError.self) { try far.readKafkaNullableString(compact: true) }
    }

    @Test("Bytes that are not UTF-8 and grow past the limit once repaired are refused", arguments: [false, true])
    func repairedGrowth(compact: Bool) throws {
        // 0xFF is never UTF-8: each becomes U+FFFD (3 bytes), 30,000 of them 90,000 bytes.
        var invalid = Self.rawString(length: 30_000, byte: 0xFF, compact: compact)
        #expect(throws: ProtocolError.self) { try invalid.readKafkaString(compact: compact) }
        var small = Self.rawString(length: 100, byte: 0xFF, compact: compact)
        #expect(try small.readKafkaString(compact: compact).unicodeScalars.allSatisfy { $0 == "\u{FFFD}" })
    }

    @Test("A string past the limit is written as its longest prefix of whole characters", arguments: [false, true])
    func writerTruncates(compact: Bool) throws {
        for value in [String(repeating: "a", count: 40_000), String(repeating: "é", count: 16_384), String(repeating: "😀", count: 9000)] {
            var buffer = ByteBuffer()
            buffer.writeKafkaString(value, compact: compact)
            buffer.writeInteger(UInt8(7))
            let read = try buffer.readKafkaString(compact: compact)
            #expect(read.utf8.count <= Self.limit && read.utf8.count > Self.limit - 4)
            #expect(value.hasPrefix(read))
            #expect(try buffer.readKafkaInteger(as: UInt8.self) == 7, "the string's bytes match its length")
        }
        var exact = ByteBuffer()
        exact.writeKafkaNullableString(String(repeating: "b", count: Self.limit), compact: compact)
        #expect(try exact.readKafkaNullableString(compact: compact)?.utf8.count == Self.limit)
    }

    @Test("Every response that echoes a long string encodes: JoinGroup, ListGroups, DescribeGroups, OffsetCommit at every version")
    func responsesEncode() throws {
        let long = String(repeating: "g", count: 40_000)
        var listed = ListGroupsResponse.ListedGroup()
        listed.groupId = long
        listed.protocolType = long
        var list = ListGroupsResponse()
        list.groups = [listed]
        var join = JoinGroupResponse()
        join.memberId = long
        join.leader = long
        var described = DescribeGroupsResponse.DescribedGroup()
        described.groupId = long
        var describe = DescribeGroupsResponse()
        describe.groups = [described]
        var topic = OffsetCommitResponse.OffsetCommitResponseTopic()
        topic.name = long
        var commit = OffsetCommitResponse()
        commit.topics = [topic]
        /// Encodes at every version and decodes: the echoed string comes back cut to the limit.
        func check<Message: KafkaMessage>(_ message: Message, upTo last: Int16 = .max, _ echoed: (Message) -> String?) throws {
            for version in Message.validVersions where version <= last {
                let decoded = try Message(decoding: message.encoded(version: version), version: version)
                #expect(echoed(decoded)?.utf8.count == Self.limit, "\(Message.self) v\(version)")
            }
        }
        try check(list) { $0.groups.first?.groupId }
        try check(join) { $0.memberId }
        try check(describe) { $0.groups.first?.groupId }
        try check(commit, upTo: 9) { $0.topics.first?.name }  // v10 names topics by id
    }
}
