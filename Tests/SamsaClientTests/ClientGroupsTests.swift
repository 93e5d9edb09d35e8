import Foundation
import NIOCore
@testable import SamsaClient
import SamsaProtocol
import SamsaTestSupport
import Testing

/// The client's group administration calls against a broker: FindCoordinator, ListGroups,
/// DescribeGroups, OffsetFetch, OffsetCommit, DeleteGroups and OffsetDelete, each effect read back.
@Suite("Client group administration", .offCooperativePool)
struct ClientGroupsTests {
    /// `count` records in each of `partitions` partitions of a new topic.
    static func topic(_ name: String, partitions: Int32, records count: Int, _ client: KafkaClient) async throws {
        try await client.createTopics([NewTopic(name: name, partitions: partitions)])
        let producer = client.makeProducer()
        for partition in 0..<partitions {
            for index in 0..<count { _ = try await producer.sendAndWait(topic: name, partition: partition, value: ByteBuffer(string: "v\(index)")) }
        }
        await producer.close()
    }

    /// Makes `group` a stable one-member consumer group holding `assigned` of `topic` (a lone member's
    /// JoinGroup completes at once; SyncGroup as its leader); returns its member id.
    static func liveMember(_ group: String, topic: String, assigned: [Int32], _ client: KafkaClient) async throws -> String {
        let connection = try await client.connection(node: try await client.findCoordinator(group: group))
        var subscription = ConsumerProtocolSubscription()
        subscription.topics = [topic]
        var join = JoinGroupRequest()
        join.groupId = group
        join.sessionTimeoutMs = 60_000
        join.rebalanceTimeoutMs = 60_000
        join.protocolType = "consumer"
        var range = JoinGroupRequest.JoinGroupRequestProtocol()
        range.name = "range"
        range.metadata = Self.versioned(subscription)
        join.protocols = [range]
        // The client speaks no JoinGroup or SyncGroup (it has no consumer groups): sent raw, at v3 (no
        // MEMBER_ID_REQUIRED round trip).
        let joined = try await connection.connection.send(join, version: 3, expecting: JoinGroupResponse.self, timeout: .seconds(30)).get()
        #expect(joined.errorCode == 0)
        var assignment = ConsumerProtocolAssignment()
        var owned = ConsumerProtocolAssignment.TopicPartition()
        owned.topic = topic
        owned.partitions = assigned
        assignment.assignedPartitions = [owned]
        var sync = SyncGroupRequest()
        sync.groupId = group
        sync.memberId = joined.memberId
        sync.generationId = joined.generationId
        var entry = SyncGroupRequest.SyncGroupRequestAssignment()
        entry.memberId = joined.memberId
        entry.assignment = Self.versioned(assignment)
        sync.assignments = [entry]
        let synced = try await connection.connection.send(sync, version: 3, expecting: SyncGroupResponse.self, timeout: .seconds(30)).get()
        #expect(synced.errorCode == 0)
        return joined.memberId
    }

    /// A consumer-protocol schema as members exchange it: an int16 version (0), then the schema.
    static func versioned<Schema: KafkaSchema>(_ schema: Schema) -> ByteBuffer {
        var bytes = ByteBuffer()
        bytes.writeInteger(Int16(0))
        schema.write(into: &bytes, version: 0)
        return bytes
    }

    @Test("Commit, fetch, list, describe, delete offsets and delete groups")
    func groupCalls() async throws {
        try await ClientTestBroker.with { _, client in
            try await Self.topic("orders", partitions: 2, records: 5, client)
            let p0 = TopicPartitionID(topic: "orders", partition: 0), p1 = TopicPartitionID(topic: "orders", partition: 1)
            #expect(try await client.findCoordinator(group: "idle") == 0)
            try await client.commitOffsets(group: "idle", [p0: 3, p1: 4])
            #expect(try await client.committedOffsets(group: "idle") == [p0: 3, p1: 4])
            #expect(try await client.committedOffsets(group: "idle", partitions: [p1]) == [p1: 4])
            #expect(try await client.committedOffsets(group: "nobody").isEmpty)

            let member = try await Self.liveMember("live", topic: "orders", assigned: [0, 1], client)
            #expect(try await client.listGroups().map { [$0.groupId, $0.state] } == [["idle", "Empty"], ["live", "Stable"]])
            let described = try await client.describeGroups(["live", "idle", "nobody"])
            #expect(described.map(\.state) == ["Stable", "Empty", "Dead"])
            #expect(described[0].protocolName == "range" && described[0].members.map(\.memberId) == [member])
            #expect(described[0].members.first?.assignment == [p0, p1] && described[0].members.first?.clientId == "samsa")

            // A group with members refuses a simple consumer's commit.
            await #expect(throws: KafkaClientError.broker(.unknownMemberId, "commit orders-0 of group live")) {
                try await client.commitOffsets(group: "live", [p0: 1])
            }
            #expect(try await client.deleteOffsets(group: "idle", partitions: [p1]) == [p1: .none])
            #expect(try await client.committedOffsets(group: "idle") == [p0: 3])
            #expect(try await client.deleteOffsets(group: "live", partitions: [p0]) == [p0: .groupSubscribedToTopic])
            await #expect(throws: KafkaClientError.broker(.groupIdNotFound, "group nobody")) {
                try await client.deleteOffsets(group: "nobody", partitions: [p0])
            }
            #expect(try await client.deleteGroups(["idle", "live", "nobody"]) == ["idle": .none, "live": .nonEmptyGroup, "nobody": .groupIdNotFound])
            #expect(try await client.committedOffsets(group: "idle").isEmpty)
            #expect(try await client.listGroups().map(\.groupId) == ["live"])
        }
    }
}
