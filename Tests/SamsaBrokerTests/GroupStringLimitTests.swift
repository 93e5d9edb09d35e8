import NIOCore
import SamsaProtocol
import Testing
@testable import SamsaBroker

/// Client strings in the group and offset APIs: the longest the protocol carries (32,767 bytes) is
/// answered and echoed at every version; a longer compact one closes only its own connection; and no
/// string a client sends can make the broker trap while it writes a response (issue 20, item 2).
@Suite("Group and offset APIs with the longest strings")
struct GroupStringLimitTests {
    static let limit = ByteBuffer.kafkaMaxStringBytes

    /// `prefix` padded to exactly `length` bytes.
    static func long(_ prefix: String, _ length: Int = limit) -> String {
        prefix + String(repeating: "x", count: length - prefix.utf8.count)
    }

    /// Sends `request` with a client id of its own and decodes the answer.
    static func request<Request: KafkaMessage, Response: KafkaMessage>(
        _ request: Request, version: Int16, clientId: String, on connection: TestConnection, expecting: Response.Type
    ) async throws -> Response {
        try await connection.send(KafkaFraming.encodeRequest(request, version: version, correlationId: 7, clientId: clientId))
        guard let frame = try await connection.receive() else { throw TestConnection.ConnectionClosed() }
        return try KafkaFraming.decodeResponse(frame, as: Response.self, version: version).body
    }

    /// The request frame with the compact string `placeholder` replaced by `replacement` (any length:
    /// the broker's writer would never send one over the limit, so it is spliced in by hand).
    static func splice(_ frame: ByteBuffer, placeholder: String, with replacement: String) throws -> ByteBuffer {
        let bytes = Array(frame.readableBytesView)
        let needle = [UInt8(placeholder.utf8.count + 1)] + Array(placeholder.utf8)
        let at = try #require((0...(bytes.count - needle.count)).first { Array(bytes[$0..<($0 + needle.count)]) == needle })
        var spliced = ByteBuffer(bytes: bytes[..<at])
        spliced.writeKafkaUnsignedVarint(UInt32(replacement.utf8.count + 1))
        spliced.writeString(replacement)
        spliced.writeBytes(bytes[(at + needle.count)...])
        spliced.setInteger(Int32(spliced.readableBytes - 4), at: 0)
        return spliced
    }

    static func joinRequest(
        group: String, member: String = "", instance: String? = nil, protocolName: String = "range", type: String = "consumer", sessionMs: Int32 = 30_000
    ) -> JoinGroupRequest {
        var request = JoinGroupRequest()
        request.groupId = group
        request.memberId = member
        request.groupInstanceId = instance
        request.sessionTimeoutMs = sessionMs
        request.rebalanceTimeoutMs = sessionMs
        request.protocolType = type
        var offered = JoinGroupRequest.JoinGroupRequestProtocol()
        offered.name = protocolName
        offered.metadata = ByteBuffer(bytes: [1])
        request.protocols = [offered]
        return request
    }

    @Test("A compact string over 32,767 bytes in any group or offset request closes that connection only; nothing is stored")
    func overlongCompactStringsAreRefused() async throws {
        let placeholder = "PLACEHOLDER-7f3a"
        let tooLong = Self.long("hostile-", 40_000)
        var commit = OffsetCommitRequest()
        commit.groupId = placeholder
        var fetch = OffsetFetchRequest()
        fetch.groupId = placeholder
        var fetchGroup = OffsetFetchRequest.OffsetFetchRequestGroup()
        fetchGroup.groupId = placeholder
        fetch.groups = [fetchGroup]
        var sync = SyncGroupRequest()
        sync.groupId = placeholder
        var heartbeat = HeartbeatRequest()
        heartbeat.groupId = placeholder
        var leave = LeaveGroupRequest()
        leave.groupId = placeholder
        var describe = DescribeGroupsRequest()
        describe.groups = [placeholder]
        var find = FindCoordinatorRequest()
        find.key = placeholder
        find.coordinatorKeys = [placeholder]
        var frames: [(String, ByteBuffer)] = []
        func add<Request: KafkaMessage>(_ request: Request, _ versions: ClosedRange<Int16>) {
            for version in versions {
                frames.append(("\(Request.self) v\(version)", KafkaFraming.encodeRequest(request, version: version, correlationId: 1, clientId: "c")))
            }
        }
        add(Self.joinRequest(group: placeholder), 6...7)
        add(commit, 8...8)
        add(fetch, 6...8)
        add(sync, 4...5)
        add(heartbeat, 4...4)
        add(leave, 4...4)
        add(describe, 5...5)
        add(find, 3...4)
        try await TestBroker.with { broker in
            for (name, frame) in frames {
                let connection = try await TestConnection(port: broker.port)
                try await connection.send(try Self.splice(frame, placeholder: placeholder, with: tooLong))
                #expect(try await connection.receive() == nil, "\(name): the connection is closed, not answered")
                try await connection.close()
            }
            // The broker still serves, and holds no group of that name (ListGroups v0 writes INT16 strings).
            let connection = try await TestConnection(port: broker.port)
            let listed = try await connection.request(ListGroupsRequest(), version: 0, expecting: ListGroupsResponse.self)
            #expect(listed.errorCode == 0 && listed.groups.isEmpty)
            try await connection.close()
        }
    }

    @Test("JoinGroup with a 32,767-byte client id at every version: the member id carries only a prefix of it")
    func longClientId() async throws {
        let clientId = Self.long("client-")
        try await TestBroker.with { broker in
            let connection = try await TestConnection(port: broker.port)
            for version in Int16(0)...7 {
                var request = Self.joinRequest(group: "long-client-\(version)")
                var response = try await Self.request(request, version: version, clientId: clientId, on: connection, expecting: JoinGroupResponse.self)
                if version >= 4 {
                    #expect(response.errorCode == ErrorCode.memberIdRequired.rawValue)
                    request.memberId = response.memberId
                    response = try await Self.request(request, version: version, clientId: clientId, on: connection, expecting: JoinGroupResponse.self)
                }
                #expect(response.errorCode == 0, "v\(version)")
                #expect(response.memberId.utf8.count == GroupCoordinator.memberIdClientIdBytes + 37, "v\(version)")
                #expect(response.memberId.hasPrefix(String(clientId.prefix(GroupCoordinator.memberIdClientIdBytes)) + "-"))
            }
            // DescribeGroups echoes the whole client id at every version.
            for version in Int16(0)...5 {
                var describe = DescribeGroupsRequest()
                describe.groups = ["long-client-3"]
                let described = try await connection.request(describe, version: version, expecting: DescribeGroupsResponse.self)
                #expect(described.groups.first?.members.first?.clientId == clientId, "v\(version)")
            }
            try await connection.close()
        }
    }

    @Test("32,767-byte group ids, member ids, protocol names and instance ids are answered and echoed by every group API version")
    func longestStringsAtEveryVersion() async throws {
        try await TestBroker.with { broker in
            let connection = try await TestConnection(port: broker.port)
            let protocolName = Self.long("protocol-")
            let protocolType = Self.long("type-")
            for version in Int16(0)...7 {
                let group = Self.long("group-\(version)-")
                var request = Self.joinRequest(
                    group: group, instance: version >= 5 ? Self.long("instance-\(version)-") : nil, protocolName: protocolName, type: protocolType)
                var joined = try await connection.request(request, version: version, expecting: JoinGroupResponse.self)
                if version >= 4 {
                    request.memberId = joined.memberId
                    joined = try await connection.request(request, version: version, expecting: JoinGroupResponse.self)
                }
                #expect(joined.errorCode == 0 && joined.leader == joined.memberId, "JoinGroup v\(version)")
                #expect(joined.members.first?.metadata == ByteBuffer(bytes: [1]))
                if version >= 6 { #expect(joined.protocolName == protocolName) }
                var sync = SyncGroupRequest()
                sync.groupId = group
                sync.memberId = joined.memberId
                sync.generationId = joined.generationId
                sync.protocolType = protocolType
                sync.protocolName = protocolName
                let synced = try await connection.request(sync, version: min(version, 5), expecting: SyncGroupResponse.self)
                #expect(synced.errorCode == 0, "SyncGroup v\(min(version, 5))")
                if version >= 5 { #expect(synced.protocolType == protocolType && synced.protocolName == protocolName) }
            }
            for version in Int16(0)...4 {
                let listed = try await connection.request(ListGroupsRequest(), version: version, expecting: ListGroupsResponse.self)
                #expect(listed.groups.count == 8 && listed.groups.allSatisfy { $0.groupId.utf8.count == Self.limit }, "ListGroups v\(version)")
            }
            for version in Int16(0)...5 {
                var describe = DescribeGroupsRequest()
                describe.groups = [Self.long("group-7-"), Self.long("unknown-")]
                let described = try await connection.request(describe, version: version, expecting: DescribeGroupsResponse.self)
                #expect(described.groups.map(\.groupId) == describe.groups, "DescribeGroups v\(version)")
                #expect(described.groups.first?.protocolType == protocolType)
            }
            for version in Int16(0)...4 {
                var leave = LeaveGroupRequest()
                leave.groupId = Self.long("group-0-")
                leave.memberId = Self.long("stranger-")
                var identity = LeaveGroupRequest.MemberIdentity()
                identity.memberId = Self.long("stranger-")
                identity.groupInstanceId = Self.long("instance-")
                leave.members = [identity]
                let left = try await connection.request(leave, version: version, expecting: LeaveGroupResponse.self)
                if version >= 3 {
                    #expect(left.members.first?.memberId == identity.memberId && left.members.first?.groupInstanceId == identity.groupInstanceId)
                } else {
                    #expect(left.errorCode == ErrorCode.unknownMemberId.rawValue)
                }
            }
            for version in Int16(0)...4 {
                var find = FindCoordinatorRequest()
                find.key = Self.long("key-")
                find.coordinatorKeys = [find.key]
                let found = try await connection.request(find, version: version, expecting: FindCoordinatorResponse.self)
                if version >= 4 { #expect(found.coordinators.first?.key == find.key) }
            }
            try await connection.close()
        }
    }

    @Test("OffsetCommit and OffsetFetch at every version with a 32,767-byte group id, topic name and 4,096 bytes of metadata")
    func longestOffsetStrings() async throws {
        try await TestBroker.with { broker in
            let connection = try await TestConnection(port: broker.port)
            _ = try await ProduceFetchTests.createTopic("kept", partitions: 1, on: connection)
            let metadata = Self.long("metadata-", 4096)
            let unknownTopic = Self.long("no-such-topic-")
            for version in Int16(1)...8 {
                let group = Self.long("offsets-\(version)-")
                var commit = OffsetCommitRequest()
                commit.groupId = group
                commit.generationIdOrMemberEpoch = -1
                commit.topics = ["kept", unknownTopic].map { name in
                    var topic = OffsetCommitRequest.OffsetCommitRequestTopic()
                    topic.name = name
                    var partition = OffsetCommitRequest.OffsetCommitRequestPartition()
                    partition.committedOffset = Int64(version)
                    partition.committedMetadata = metadata
                    topic.partitions = [partition]
                    return topic
                }
                let committed = try await connection.request(commit, version: version, expecting: OffsetCommitResponse.self)
                #expect(committed.topics.map(\.name) == ["kept", unknownTopic], "OffsetCommit v\(version)")
                #expect(committed.topics.map { $0.partitions.first?.errorCode } == [0, ErrorCode.unknownTopicOrPartition.rawValue])
                let fetch = OffsetCommitLimitTests.fetchRequest(group: group, topic: "kept", partitions: [0])
                let fetched = try await connection.request(fetch, version: version, expecting: OffsetFetchResponse.self)
                let partition = version >= 8 ? fetched.groups.first?.topics.first?.partitions.first.map { ($0.committedOffset, $0.metadata) }
                    : fetched.topics.first?.partitions.first.map { ($0.committedOffset, $0.metadata) }
                #expect(partition?.0 == Int64(version) && partition?.1 == metadata, "OffsetFetch v\(version)")
                if version >= 8 { #expect(fetched.groups.first?.groupId == group) }
            }
            try await connection.close()
        }
    }
}
