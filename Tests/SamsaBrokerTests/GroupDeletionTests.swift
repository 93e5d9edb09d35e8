import Synchronization
import SamsaTestSupport
import NIOCore
import SamsaProtocol
import Testing
@testable import SamsaBroker

/// DeleteGroups (v0-2) and OffsetDelete (v0) through the wire, with Kafka's error codes, and their
/// effect checked with OffsetFetch and ListGroups, before and after a restart.
@Suite("DeleteGroups and OffsetDelete")
struct GroupDeletionTests {
    /// A simple consumer's commit (no member, generation -1) of `offsets` by partition.
    static func commit(_ group: String, topic: String = "t", _ offsets: [Int32: Int64], on connection: TestConnection) async throws -> [Int16] {
        let codes = try await GroupWire.commit(group, topic: topic, offsets: offsets, on: connection)
        return offsets.keys.sorted().map { codes[$0] ?? -1 }
    }

    /// The committed offsets of `partitions` of `topic` (-1: none).
    static func committed(_ group: String, topic: String = "t", _ partitions: [Int32], on connection: TestConnection) async throws -> [Int64] {
        var request = OffsetFetchRequest()
        request.groupId = group
        var wanted = OffsetFetchRequest.OffsetFetchRequestTopic()
        wanted.name = topic
        wanted.partitionIndexes = partitions
        request.topics = [wanted]
        return try await connection.request(request, version: 7, expecting: OffsetFetchResponse.self).topics.flatMap(\.partitions).map(\.committedOffset)
    }

    static func listed(on connection: TestConnection) async throws -> [String] {
        try await connection.request(ListGroupsRequest(), version: 4, expecting: ListGroupsResponse.self).groups.map(\.groupId).sorted()
    }

    static func deleteGroups(_ ids: [String], version: Int16, on connection: TestConnection) async throws -> [(String, Int16)] {
        var request = DeleteGroupsRequest()
        request.groupsNames = ids
        return try await connection.request(request, version: version, expecting: DeleteGroupsResponse.self).results.map { ($0.groupId, $0.errorCode) }
    }

    static func offsetDelete(_ group: String, _ topics: [(String, [Int32])], on connection: TestConnection) async throws -> OffsetDeleteResponse {
        var request = OffsetDeleteRequest()
        request.groupId = group
        request.topics = topics.map { name, partitions in
            var topic = OffsetDeleteRequest.OffsetDeleteRequestTopic()
            topic.name = name
            topic.partitions = partitions.map { index in
                var partition = OffsetDeleteRequest.OffsetDeleteRequestPartition()
                partition.partitionIndex = index
                return partition
            }
            return topic
        }
        return try await connection.request(request, version: 0, expecting: OffsetDeleteResponse.self)
    }

    /// The partitions' error codes of an OffsetDelete response, by topic.
    static func codes(_ response: OffsetDeleteResponse) -> [String: [Int32: Int16]] {
        Dictionary(uniqueKeysWithValues: response.topics.map { topic in
            (topic.name, Dictionary(uniqueKeysWithValues: topic.partitions.map { ($0.partitionIndex, $0.errorCode) }))
        })
    }

    /// Joins a one-member group (v3: no member id round trip, the rebalance completes at once) with
    /// `metadata` as its only protocol's.
    static func joinAlone(_ group: String, protocolType: String = "consumer", metadata: ByteBuffer, on connection: TestConnection) async throws
        -> JoinGroupResponse
    {
        var request = JoinGroupRequest()
        request.groupId = group
        request.sessionTimeoutMs = 60_000
        request.rebalanceTimeoutMs = 60_000
        request.protocolType = protocolType
        var range = JoinGroupRequest.JoinGroupRequestProtocol()
        range.name = "range"
        range.metadata = metadata
        request.protocols = [range]
        return try await connection.request(request, version: 3, expecting: JoinGroupResponse.self)
    }

    /// A consumer-protocol subscription (v1) to `topics`, as a member's JoinGroup metadata.
    static func subscription(_ topics: [String]) -> ByteBuffer {
        var subscription = ConsumerProtocolSubscription()
        subscription.topics = topics
        var bytes = ByteBuffer()
        bytes.writeInteger(Int16(1))
        subscription.write(into: &bytes, version: 1)
        return bytes
    }

    @Test("DeleteGroups: deleted once per distinct id; NON_EMPTY_GROUP with members; GROUP_ID_NOT_FOUND without members or commits", arguments: [Int16(0), 1, 2])
    func deleteGroups(version: Int16) async throws {
        try await TestBroker.with { broker in
            let connection = try await TestConnection(port: broker.port)
            _ = try await ProduceFetchTests.createTopic("t", partitions: 2, on: connection)
            #expect(try await Self.commit("committed", [0: 5, 1: 6], on: connection) == [0, 0])
            #expect(try await Self.commit("live", [0: 9], on: connection) == [0])
            let member = try await Self.joinAlone("live", metadata: Self.subscription(["t"]), on: connection)
            #expect(member.errorCode == 0)
            let results = try await Self.deleteGroups(["committed", "live", "ghost", "committed", "", "ghost"], version: version, on: connection)
            #expect(results.map(\.0) == ["committed", "live", "ghost", ""])
            #expect(results.map(\.1) == [0, ErrorCode.nonEmptyGroup.rawValue, ErrorCode.groupIdNotFound.rawValue, ErrorCode.groupIdNotFound.rawValue])
            #expect(try await Self.committed("committed", [0, 1], on: connection) == [-1, -1])
            #expect(try await Self.committed("live", [0], on: connection) == [9])
            #expect(try await Self.listed(on: connection) == ["live"])
            // Deleted: now unknown.
            #expect(try await Self.deleteGroups(["committed"], version: version, on: connection).map(\.1) == [ErrorCode.groupIdNotFound.rawValue])
            #expect(try await Self.deleteGroups([], version: version, on: connection).isEmpty)
            try await connection.close()
        }
    }

    @Test("A group deleted stays deleted after a restart; a group committed to again afterwards is back")
    func deletionSurvivesRestart() async throws {
        let broker = try await TestBroker.start()
        var connection = try await TestConnection(port: broker.port)
        _ = try await ProduceFetchTests.createTopic("t", partitions: 2, on: connection)
        _ = try await Self.commit("gone", [0: 1, 1: 2], on: connection)
        _ = try await Self.commit("again", [0: 3], on: connection)
        _ = try await Self.commit("kept", [1: 4], on: connection)
        #expect(try await Self.deleteGroups(["gone", "again"], version: 2, on: connection).map(\.1) == [0, 0])
        _ = try await Self.commit("again", [1: 8], on: connection)
        try await connection.close()
        try await broker.stop(keepingData: true)

        let restarted = try await TestBroker.start(directory: broker.directory)
        connection = try await TestConnection(port: restarted.port)
        #expect(try await Self.committed("gone", [0, 1], on: connection) == [-1, -1])
        #expect(try await Self.committed("again", [0, 1], on: connection) == [-1, 8])
        #expect(try await Self.committed("kept", [1], on: connection) == [4])
        #expect(try await Self.listed(on: connection) == ["again", "kept"])
        #expect(try await Self.deleteGroups(["gone"], version: 2, on: connection).map(\.1) == [ErrorCode.groupIdNotFound.rawValue])
        try await connection.close()
        try await restarted.stop()
    }

    @Test("DeleteGroups of 10,000 group ids (each 1,000 bytes, duplicated, 100 with commits) answers each distinct id once and deletes the 100")
    func tenThousandGroups() async throws {
        try await TestBroker.with { broker in
            let connection = try await TestConnection(port: broker.port)
            _ = try await ProduceFetchTests.createTopic("t", partitions: 1, on: connection)
            let prefix = String(repeating: "g", count: 1_000)
            for index in 0..<100 { _ = try await Self.commit("\(prefix)\(index)", [0: Int64(index)], on: connection) }
            let ids = (0..<5_000).map { "\(prefix)\($0)" }
            let results = try await Self.deleteGroups(ids + ids, version: 2, on: connection)
            #expect(results.map(\.0) == ids)
            #expect(results.prefix(100).allSatisfy { $0.1 == 0 })
            #expect(results.dropFirst(100).allSatisfy { $0.1 == ErrorCode.groupIdNotFound.rawValue })
            #expect(try await Self.listed(on: connection).isEmpty)
            #expect(await broker.broker.dispatcher.groups.counts.groups == 0)
            try await connection.close()
        }
    }

    @Test("OffsetDelete: GROUP_ID_NOT_FOUND for an unknown group; deletes named partitions of an empty group, durably; unknown partitions and duplicates")
    func offsetDeleteEmptyGroup() async throws {
        let broker = try await TestBroker.start()
        var connection = try await TestConnection(port: broker.port)
        _ = try await ProduceFetchTests.createTopic("t", partitions: 3, on: connection)
        let unknown = try await Self.offsetDelete("nobody", [("t", [0])], on: connection)
        #expect(unknown.errorCode == ErrorCode.groupIdNotFound.rawValue && unknown.topics.isEmpty)
        _ = try await Self.commit("g", [0: 10, 1: 11, 2: 12], on: connection)
        let response = try await Self.offsetDelete("g", [("t", [0, 0, 7]), ("missing", [0]), ("t", [1])], on: connection)
        #expect(response.errorCode == 0)
        #expect(response.topics.map(\.name) == ["t", "missing"])
        #expect(response.topics[0].partitions.map(\.partitionIndex) == [0, 7, 1])
        let unknownPartition = ErrorCode.unknownTopicOrPartition.rawValue
        #expect(Self.codes(response) == ["t": [0: 0, 7: unknownPartition, 1: 0], "missing": [0: unknownPartition]])
        #expect(try await Self.committed("g", [0, 1, 2], on: connection) == [-1, -1, 12])
        try await connection.close()
        try await broker.stop(keepingData: true)

        let restarted = try await TestBroker.start(directory: broker.directory)
        connection = try await TestConnection(port: restarted.port)
        #expect(try await Self.committed("g", [0, 1, 2], on: connection) == [-1, -1, 12])
        // The last commit deleted: the group is gone.
        #expect(try await Self.offsetDelete("g", [("t", [2])], on: connection).errorCode == 0)
        #expect(try await Self.offsetDelete("g", [("t", [2])], on: connection).errorCode == ErrorCode.groupIdNotFound.rawValue)
        try await connection.close()
        try await restarted.stop()
    }

    @Test("OffsetDelete with live members: GROUP_SUBSCRIBED_TO_TOPIC for their topics, the rest deleted; NON_EMPTY_GROUP for a non-consumer group")
    func offsetDeleteLiveGroup() async throws {
        try await TestBroker.with { broker in
            let connection = try await TestConnection(port: broker.port)
            _ = try await ProduceFetchTests.createTopic("t", partitions: 1, on: connection)
            _ = try await ProduceFetchTests.createTopic("u", partitions: 1, on: connection)
            _ = try await Self.commit("readers", topic: "t", [0: 1], on: connection)
            _ = try await Self.commit("readers", topic: "u", [0: 2], on: connection)
            #expect(try await Self.joinAlone("readers", metadata: Self.subscription(["t"]), on: connection).errorCode == 0)
            let response = try await Self.offsetDelete("readers", [("t", [0]), ("u", [0])], on: connection)
            #expect(Self.codes(response) == ["t": [0: ErrorCode.groupSubscribedToTopic.rawValue], "u": [0: 0]])
            #expect(try await Self.committed("readers", topic: "t", [0], on: connection) == [1])
            #expect(try await Self.committed("readers", topic: "u", [0], on: connection) == [-1])

            // A subscription that does not read counts as subscribed to every topic (as in Kafka).
            _ = try await Self.commit("opaque", topic: "u", [0: 3], on: connection)
            #expect(try await Self.joinAlone("opaque", metadata: ByteBuffer(bytes: [0, 1, 0xff]), on: connection).errorCode == 0)
            let opaque = try await Self.offsetDelete("opaque", [("u", [0])], on: connection)
            #expect(Self.codes(opaque) == ["u": [0: ErrorCode.groupSubscribedToTopic.rawValue]])

            _ = try await Self.commit("workers", topic: "u", [0: 4], on: connection)
            #expect(try await Self.joinAlone("workers", protocolType: "connect", metadata: ByteBuffer(), on: connection).errorCode == 0)
            let connect = try await Self.offsetDelete("workers", [("u", [0])], on: connection)
            #expect(connect.errorCode == ErrorCode.nonEmptyGroup.rawValue && connect.topics.isEmpty)
            #expect(try await Self.committed("workers", topic: "u", [0], on: connection) == [4])
            try await connection.close()
        }
    }

    @Test("OffsetDelete of 1,000 partitions, each named twice, answers each once")
    func offsetDeleteThousandPartitions() async throws {
        try await TestBroker.with { broker in
            let connection = try await TestConnection(port: broker.port)
            _ = try await ProduceFetchTests.createTopic("t", partitions: 10, on: connection)
            _ = try await Self.commit("g", Dictionary(uniqueKeysWithValues: (0..<10).map { (Int32($0), Int64($0)) }), on: connection)
            let partitions = (0..<1_000).map { Int32($0) }
            let response = try await Self.offsetDelete("g", [("t", partitions + partitions)], on: connection)
            #expect(response.topics.count == 1 && response.topics[0].partitions.map(\.partitionIndex) == partitions)
            #expect(response.topics[0].partitions.prefix(10).allSatisfy { $0.errorCode == 0 })
            #expect(response.topics[0].partitions.dropFirst(10).allSatisfy { $0.errorCode == ErrorCode.unknownTopicOrPartition.rawValue })
            #expect(try await Self.committed("g", Array(0..<10), on: connection) == Array(repeating: -1, count: 10))
            try await connection.close()
        }
    }

    @Test("While a group's offsets are being deleted, its joins and commits get COORDINATOR_NOT_AVAILABLE (Kafka's Dead group)")
    func deletingGroupRefusesJoinsAndCommits() async throws {
        try await GroupStormTests.withCoordinator(offsets: ["g"]) { groups, _ in
            #expect(await groups.beginDeleting(["g", "g", "none"]) == [.none, .groupIdNotFound, .groupIdNotFound])
            let refused = await groups.join(GroupDeadlineTests.join("g", sessionMs: 6_000), version: 3, clientId: "c")
            #expect(refused.errorCode == ErrorCode.coordinatorNotAvailable.rawValue)
            #expect(await groups.commitCheck(groupId: "g", memberId: "", generation: -1) == .coordinatorNotAvailable)
            #expect(await groups.offsetDeletion("g") == .refused(.groupIdNotFound))
            await groups.finishDeleting(["g"])
            #expect(await groups.commitCheck(groupId: "g", memberId: "", generation: -1) == .none)
            let joined = await groups.join(GroupDeadlineTests.join("g", sessionMs: 6_000), version: 3, clientId: "c")
            #expect(joined.errorCode == 0 && joined.generationId == 1)
            #expect(await groups.beginDeleting(["g"]) == [.nonEmptyGroup])
        }
    }
}

/// A deletion and a commit checked before it: the commit lands first, the tombstones after it.
@Suite("Group deletion after commits in flight")
struct GroupDeletionInFlightTests {
    @Test("commitsPublished waits for a commit allowed before the deletion began, and only for it")
    func deletionWaitsForCommitsInFlight() async throws {
        try await GroupStormTests.withCoordinator(offsets: ["g"]) { groups, _ in
            // A simple consumer's commit is allowed (an empty group): in flight until finished.
            #expect(await groups.commitCheck(groupId: "g", memberId: "", generation: -1) == .none)
            #expect(await groups.beginDeleting(["g"]) == [.none])
            // Commits after the deletion began are refused, so nothing else can hold it up.
            #expect(await groups.commitCheck(groupId: "g", memberId: "", generation: -1) == .coordinatorNotAvailable)
            let returned = Mutex(false)
            let waited = Task {
                await groups.commitsPublished(["g"])
                returned.withLock { $0 = true }
            }
            try await eventually("the deletion waits for the commit in flight") { await groups.isAwaitingCommits("g") }
            #expect(!returned.withLock { $0 }, "it cannot return before the commit finishes")
            await groups.commitFinished(groupId: "g")
            await waited.value
            #expect(returned.withLock { $0 })
            #expect(await groups.isAwaitingCommits("g") == false)
            // No commit in flight: no wait at all.
            await groups.commitsPublished(["other"])
            await groups.finishDeleting(["g"])
        }
    }
}
