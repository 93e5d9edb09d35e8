import NIOCore
import SamsaProtocol
import Testing
@testable import SamsaBroker

/// The group coordinator through the wire: member ids, generations, rebalances, expiry, and committed
/// offsets that survive a restart.
@Suite("Broker consumer groups")
struct GroupTests {
    static func join(_ group: String, member: String, on connection: TestConnection, version: Int16 = 7, sessionMs: Int32 = 60_000)
        async throws -> JoinGroupResponse
    {
        var request = JoinGroupRequest()
        request.groupId = group
        request.memberId = member
        request.sessionTimeoutMs = sessionMs
        request.rebalanceTimeoutMs = sessionMs
        request.protocolType = "consumer"
        var range = JoinGroupRequest.JoinGroupRequestProtocol()
        range.name = "range"
        range.metadata = ByteBuffer(bytes: [1, 2])
        request.protocols = [range]
        return try await connection.request(request, version: version, expecting: JoinGroupResponse.self)
    }

    static func heartbeat(_ group: String, member: String, generation: Int32, on connection: TestConnection) async throws -> Int16 {
        var request = HeartbeatRequest()
        request.groupId = group
        request.memberId = member
        request.generationId = generation
        return try await connection.request(request, version: 4, expecting: HeartbeatResponse.self).errorCode
    }

    static func sync(_ group: String, member: String, generation: Int32, assignments: [String: [UInt8]] = [:], on connection: TestConnection)
        async throws -> SyncGroupResponse
    {
        var request = SyncGroupRequest()
        request.groupId = group
        request.memberId = member
        request.generationId = generation
        request.assignments = assignments.map { id, bytes in
            var assignment = SyncGroupRequest.SyncGroupRequestAssignment()
            assignment.memberId = id
            assignment.assignment = ByteBuffer(bytes: bytes)
            return assignment
        }
        return try await connection.request(request, version: 5, expecting: SyncGroupResponse.self)
    }

    @Test("JoinGroup v4+ hands out a member id first; sync delivers the leader's assignment")
    func memberIdRoundTrip() async throws {
        try await TestBroker.with { broker in
            let connection = try await TestConnection(port: broker.port)
            let first = try await Self.join("g", member: "", on: connection)
            #expect(first.errorCode == ErrorCode.memberIdRequired.rawValue)
            #expect(!first.memberId.isEmpty)
            let joined = try await Self.join("g", member: first.memberId, on: connection)
            #expect(joined.errorCode == 0 && joined.generationId == 1 && joined.leader == first.memberId)
            #expect(joined.members.map(\.memberId) == [first.memberId])
            let synced = try await Self.sync("g", member: first.memberId, generation: 1, assignments: [first.memberId: [9]], on: connection)
            #expect(synced.errorCode == 0 && synced.assignment == ByteBuffer(bytes: [9]))
            #expect(try await Self.heartbeat("g", member: first.memberId, generation: 1, on: connection) == 0)
            #expect(try await Self.heartbeat("g", member: first.memberId, generation: 7, on: connection) == ErrorCode.illegalGeneration.rawValue)
            #expect(try await Self.heartbeat("g", member: "stranger", generation: 1, on: connection) == ErrorCode.unknownMemberId.rawValue)
            // v3 and older: the member id is given at once.
            let old = try await Self.join("old", member: "", on: connection, version: 3)
            #expect(old.errorCode == 0 && !old.memberId.isEmpty && old.generationId == 1)
            try await connection.close()
        }
    }

    @Test("A second member triggers a rebalance; a member that stops heartbeating is expired")
    func rebalanceAndExpiry() async throws {
        try await TestBroker.with { broker in
            let a = try await TestConnection(port: broker.port)
            let b = try await TestConnection(port: broker.port)
            // Long sessions, so a loaded machine cannot expire anyone by accident; expiry is driven below.
            let joinedA = try await Self.join("r", member: "", on: a, version: 3, sessionMs: 60_000)
            _ = try await Self.sync("r", member: joinedA.memberId, generation: 1, assignments: [joinedA.memberId: [1]], on: a)
            // B's join waits for A to rejoin, which A does once its heartbeat says so.
            async let joinedB = Self.join("r", member: "", on: b, version: 3, sessionMs: 1_800_000)
            let deadline = ContinuousClock.now + .seconds(60)
            var code: Int16 = 0
            while code != ErrorCode.rebalanceInProgress.rawValue && ContinuousClock.now < deadline {
                code = try await Self.heartbeat("r", member: joinedA.memberId, generation: 1, on: a)
            }
            #expect(code == ErrorCode.rebalanceInProgress.rawValue)
            let rejoinedA = try await Self.join("r", member: joinedA.memberId, on: a, version: 3, sessionMs: 60_000)
            let second = try await joinedB
            #expect(rejoinedA.generationId == 2 && second.generationId == 2)
            #expect(rejoinedA.leader == joinedA.memberId && rejoinedA.members.count == 2 && second.members.isEmpty)
            _ = try await Self.sync("r", member: joinedA.memberId, generation: 2, on: a)
            #expect(try await Self.heartbeat("r", member: second.memberId, generation: 2, on: b) == 0)
            // Two minutes on: A (60 s session) has missed its heartbeats, B (30 minutes) has not.
            await broker.broker.dispatcher.groups.expire(after: .seconds(120))
            #expect(try await Self.heartbeat("r", member: second.memberId, generation: 2, on: b) == ErrorCode.rebalanceInProgress.rawValue)
            #expect(try await Self.heartbeat("r", member: joinedA.memberId, generation: 2, on: a) == ErrorCode.unknownMemberId.rawValue)
            let alone = try await Self.join("r", member: second.memberId, on: b, version: 3, sessionMs: 1_800_000)
            #expect(alone.generationId == 3 && alone.leader == second.memberId && alone.members.map(\.memberId) == [second.memberId])
            try await a.close()
            try await b.close()
        }
    }

    @Test("Committed offsets survive a broker restart")
    func offsetsSurviveRestart() async throws {
        let broker = try await TestBroker.start()
        var connection = try await TestConnection(port: broker.port)
        _ = try await ProduceFetchTests.createTopic("tracked", partitions: 2, on: connection)
        var commit = OffsetCommitRequest()
        commit.groupId = "keepers"
        var topic = OffsetCommitRequest.OffsetCommitRequestTopic()
        topic.name = "tracked"
        topic.partitions = [(Int32(0), Int64(42)), (1, 7)].map { index, offset in
            var partition = OffsetCommitRequest.OffsetCommitRequestPartition()
            partition.partitionIndex = index
            partition.committedOffset = offset
            partition.committedMetadata = "m\(index)"
            return partition
        }
        commit.topics = [topic]
        let committed = try await connection.request(commit, version: 8, expecting: OffsetCommitResponse.self)
        #expect(committed.topics.flatMap(\.partitions).map(\.errorCode) == [0, 0])
        try await connection.close()
        try await broker.stop(keepingData: true)

        let restarted = try await TestBroker.start(directory: broker.directory)
        connection = try await TestConnection(port: restarted.port)
        for version: Int16 in [1, 5, 8] {
            var fetch = OffsetFetchRequest()
            var wanted = OffsetFetchRequest.OffsetFetchRequestTopic()
            wanted.name = "tracked"
            wanted.partitionIndexes = [0, 1, 2]
            var group = OffsetFetchRequest.OffsetFetchRequestGroup()
            group.groupId = "keepers"
            var groupTopic = OffsetFetchRequest.OffsetFetchRequestTopics()
            groupTopic.name = "tracked"
            groupTopic.partitionIndexes = [0, 1, 2]
            group.topics = [groupTopic]
            fetch.groupId = "keepers"
            fetch.topics = [wanted]
            fetch.groups = [group]
            let response = try await connection.request(fetch, version: version, expecting: OffsetFetchResponse.self)
            let offsets = version >= 8
                ? response.groups.first?.topics.first?.partitions.map(\.committedOffset) : response.topics.first?.partitions.map(\.committedOffset)
            #expect(offsets == [42, 7, -1], "v\(version)")
        }
        try await connection.close()
        try await restarted.stop()
    }
}
