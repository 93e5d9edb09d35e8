import Foundation
import SamsaProtocol
import SamsaTestSupport
import Testing
@testable import SamsaBroker

/// CreatePartitions and DeleteTopics in a 3-broker cluster (in-process brokers on embedded coordination).
@Suite("Cluster topic administration")
struct ClusterTopicAdminTests {
    static func deleteTopics(_ names: [String], on connection: TestConnection) async throws -> [Int16] {
        var request = DeleteTopicsRequest()
        request.topicNames = names
        request.timeoutMs = 5000
        return try await connection.request(request, version: 4, expecting: DeleteTopicsResponse.self).responses.map(\.errorCode)
    }

    static func partitionDirectoryExists(_ cluster: TestCluster, _ id: BrokerID, _ topic: String, _ partition: Int32 = 0) -> Bool {
        FileManager.default.fileExists(atPath: "\(cluster.directory(id))/\(topic)-\(partition)")
    }

    @Test("More partitions in a cluster: assignment and states in one write, every broker makes the new logs and follows them, old data untouched; bad assignments change nothing")
    func createPartitions() async throws {
        let cluster = try await TestCluster.start()
        do {
            let connection = try await cluster.connection(1)
            #expect(try await connection.createTopic("grown", partitions: 2, replicationFactor: 3).errorCode == 0)
            let first = try await cluster.settled("grown", 0)
            let leader = try await cluster.connection(first.leader)
            #expect(try await leader.produce("grown", count: 5, startingAt: 0).errorCode == 0)

            let unknownBroker = try await CreatePartitionsTests.createPartitions(
                [CreatePartitionsTests.topic("grown", count: 3, assignments: [[1, 2, 9]])], on: connection)
            #expect(unknownBroker.map(\.errorCode) == [ErrorCode.invalidReplicaAssignment.rawValue])
            #expect(unknownBroker.first?.errorMessage == "Unknown broker(s) in replica assignment: 9.")
            let inconsistent = try await CreatePartitionsTests.createPartitions(
                [CreatePartitionsTests.topic("grown", count: 3, assignments: [[1, 2]])], on: connection)
            #expect(inconsistent.map(\.errorCode) == [ErrorCode.invalidReplicaAssignment.rawValue])
            let validated = try await CreatePartitionsTests.createPartitions([CreatePartitionsTests.topic("grown", count: 4)], validateOnly: true, on: connection)
            #expect(validated.map(\.errorCode) == [0])
            #expect(try await CreatePartitionsTests.partitionCount("grown", on: connection) == 2)

            #expect(try await CreatePartitionsTests.createPartitions([CreatePartitionsTests.topic("grown", count: 4)], on: connection).map(\.errorCode) == [0])
            #expect(try await CreatePartitionsTests.partitionCount("grown", on: try await cluster.connection(2)) == 4)
            let manual = try await CreatePartitionsTests.createPartitions(
                [CreatePartitionsTests.topic("grown", count: 5, assignments: [[3, 1, 2]])], on: connection)
            #expect(manual.map(\.errorCode) == [0])
            #expect(try await cluster.settled("grown", 4).leader == 3)
            for partition in Int32(2)..<5 {
                let state = try await cluster.settled("grown", partition)
                #expect(Set(state.isr) == [1, 2, 3])
                let produced = try await cluster.connection(state.leader).produce("grown", count: 3, startingAt: 100, partition: partition)
                #expect(produced.errorCode == 0 && produced.baseOffset == 0, "\(produced)")
                try await eventually("every replica of grown-\(partition) has the records") {
                    try cluster.running.allSatisfy { try cluster.values($0, "grown", partition) == ["value-100", "value-101", "value-102"] }
                }
            }
            for id in cluster.running { #expect(try cluster.values(id, "grown", 0) == (0..<5).map { "value-\($0)" }, "broker \(id)") }
        } catch {
            try await cluster.stopAll()
            throw error
        }
        try await cluster.stopAll()
    }

    @Test("A topic deleted while a broker is down is deleted on every broker; re-created under its name, no broker serves the old data")
    func deleteWhileDown() async throws {
        let cluster = try await TestCluster.start()
        do {
            var connection = try await cluster.connection(1)
            for name in ["again", "gone"] {
                let created = try await connection.createTopic(name, replicationFactor: 3)
                #expect(created.errorCode == 0)
                let state = try await cluster.settled(name)
                #expect(try await cluster.connection(state.leader).produce(name, count: 5, startingAt: 0).errorCode == 0)
                try await eventually("broker 3 has \(name)'s records") { try cluster.values(3, name) == (0..<5).map { "value-\($0)" } }
            }
            let oldId = try #require(cluster.broker(3)?.dispatcher.topics.topic("again")?.id)
            try await cluster.kill(3)
            connection = try await cluster.connection(1)
            #expect(try await Self.deleteTopics(["again", "gone", "never-was"], on: connection) == [0, 0, ErrorCode.unknownTopicOrPartition.rawValue])
            #expect(try await CreatePartitionsTests.partitionCount("gone", on: connection) == nil)
            try await eventually("brokers 1 and 2 deleted both topics' logs") {
                [BrokerID(1), 2].allSatisfy { id in
                    ["again", "gone"].allSatisfy { cluster.broker(id)?.dispatcher.topics.topic($0) == nil && !Self.partitionDirectoryExists(cluster, id, $0) }
                }
            }
            let recreated = try await connection.createTopic("again", replicationFactor: 2)
            #expect(recreated.errorCode == 0)
            let state = try await cluster.settled("again")
            #expect(try await cluster.connection(state.leader).produce("again", count: 2, startingAt: 50).errorCode == 0)

            try await cluster.start(3)
            try await eventually("broker 3 deleted the deleted topic and the old topic of the re-created name") {
                guard let topics = cluster.broker(3)?.dispatcher.topics else { return false }
                return topics.topic("gone") == nil && !Self.partitionDirectoryExists(cluster, 3, "gone")
                    && topics.topic("again").map { $0.id != oldId && $0.id != .zero } == true
            }
            let newId = try #require(cluster.broker(1)?.dispatcher.topics.topic("again")?.id)
            for id in cluster.running {
                #expect(cluster.broker(id)?.dispatcher.topics.topic("again")?.id == newId, "broker \(id)")
                #expect(try !cluster.values(id, "again").contains("value-0"), "broker \(id)")
            }
            for id in state.isr { #expect(try cluster.values(id, "again") == ["value-50", "value-51"], "broker \(id)") }
            var metadata = MetadataRequest()
            var wanted = MetadataRequest.MetadataRequestTopic()
            wanted.name = "again"
            metadata.topics = [wanted]
            let served = try await (try await cluster.connection(3)).request(metadata, version: 12, expecting: MetadataResponse.self).topics.first
            #expect(served?.topicId == newId)
        } catch {
            try await cluster.stopAll()
            throw error
        }
        try await cluster.stopAll()
    }
}
