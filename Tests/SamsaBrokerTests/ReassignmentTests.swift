import Foundation
import SamsaCoordination
import SamsaProtocol
import SamsaStorage
import SamsaTestSupport
import Synchronization
import Testing
@testable import SamsaBroker

/// AlterPartitionReassignments / ListPartitionReassignments (KIP-455) in a cluster that gains a
/// fourth broker: replicas move under an idempotent acks=all producer, a cancel reverts, bad input
/// changes nothing, the reassignment throttle bounds the catch-up, and a single broker answers
/// through the same path.
/// A count shared with a producing task.
final class Counter: Sendable {
    let value = Atomic<Int>(0)
}

@Suite("Partition reassignment")
struct ReassignmentTests {
    static func reassign(
        _ entries: [(String, Int32, [Int32]?)], version: Int16 = 1, allowReplicationFactorChange: Bool = true, on connection: TestConnection
    ) async throws -> (error: Int16, results: [String: Int16]) {
        var request = AlterPartitionReassignmentsRequest()
        request.allowReplicationFactorChange = allowReplicationFactorChange
        request.topics = entries.map { topic, partition, replicas in
            var entry = AlterPartitionReassignmentsRequest.ReassignablePartition()
            entry.partitionIndex = partition
            entry.replicas = replicas
            var reassignable = AlterPartitionReassignmentsRequest.ReassignableTopic()
            reassignable.name = topic
            reassignable.partitions = [entry]
            return reassignable
        }
        let response = try await connection.request(request, version: version, expecting: AlterPartitionReassignmentsResponse.self)
        var results: [String: Int16] = [:]
        for topic in response.responses {
            for partition in topic.partitions {
                #expect(results["\(topic.name)-\(partition.partitionIndex)"] == nil, "one answer per partition")
                results["\(topic.name)-\(partition.partitionIndex)"] = partition.errorCode
            }
        }
        return (response.errorCode, results)
    }

    /// The ongoing reassignments: "topic-p" → (replicas, adding, removing).
    static func list(_ topics: [(String, [Int32])]?, on connection: TestConnection) async throws -> (error: Int16, ongoing: [String: [[Int32]]]) {
        var request = ListPartitionReassignmentsRequest()
        request.topics = topics.map { list in
            list.map { name, partitions in
                var topic = ListPartitionReassignmentsRequest.ListPartitionReassignmentsTopics()
                topic.name = name
                topic.partitionIndexes = partitions
                return topic
            }
        }
        let response = try await connection.request(request, version: 0, expecting: ListPartitionReassignmentsResponse.self)
        var ongoing: [String: [[Int32]]] = [:]
        for topic in response.topics {
            for partition in topic.partitions {
                ongoing["\(topic.name)-\(partition.partitionIndex)"] = [partition.replicas, partition.addingReplicas, partition.removingReplicas]
            }
        }
        return (response.errorCode, ongoing)
    }

    /// The partition's replicas as the topic's assignment node holds them.
    static func assignment(_ cluster: TestCluster, _ topic: String) async throws -> TopicAssignment {
        let session = try cluster.coordinator.connect(sessionTimeout: .seconds(10))
        defer { Task { await session.close() } }
        return try ClusterJSON.decode(TopicAssignment.self, try await session.data(ClusterPaths(root: "").topic(topic)).data)
    }

    static func partitionDirectoryExists(_ cluster: TestCluster, _ broker: BrokerID, _ topic: String, _ partition: Int32 = 0) -> Bool {
        FileManager.default.fileExists(atPath: "\(cluster.directory(broker))/\(topic)-\(partition)")
    }

    /// Produces `batches` batches of 10 records (`value-0` ...) with one idempotent producer and
    /// acks=all, each retried on whichever broker leads now until acknowledged; `acknowledged`
    /// counts the batches done.
    static func produceIdempotently(_ cluster: TestCluster, _ topic: String, batches: Int, acknowledged: Counter) async throws {
        let first = try await cluster.connection(try #require(cluster.running.first))
        let producer = try await first.request(InitProducerIdRequest.nullTransaction, version: 4, expecting: InitProducerIdResponse.self)
        try await first.close()
        #expect(producer.errorCode == 0)
        var connections: [BrokerID: TestConnection] = [:]
        defer { for connection in connections.values { Task { try? await connection.close() } } }
        for batch in 0..<batches {
            try await eventually("batch \(batch) is acknowledged") {
                let leader = try await cluster.state(topic).leader
                guard leader >= 0, cluster.running.contains(leader) else { return false }
                let connection: TestConnection
                if let open = connections[leader] { connection = open } else { connection = try await cluster.connection(leader) }
                connections[leader] = connection
                var data = ProduceRequest.PartitionProduceData()
                data.records = try makeBatch(count: 10, startingAt: batch * 10, producer: (producer.producerId, producer.producerEpoch, Int32(batch * 10))).buffer
                var topicData = ProduceRequest.TopicProduceData()
                topicData.name = topic
                topicData.partitionData = [data]
                var request = ProduceRequest()
                request.acks = -1
                request.timeoutMs = 10_000
                request.topicData = [topicData]
                do {
                    let response = try await connection.request(request, version: 9, expecting: ProduceResponse.self)
                    return response.responses.first?.partitionResponses.first?.errorCode == 0
                } catch {
                    connections[leader] = nil
                    return false
                }
            }
            acknowledged.value.add(1, ordering: .relaxed)
        }
    }

    @Test("Moving [a,b,c] (leader a) to [b,c,4] under an idempotent acks=all producer: 4 catches up and joins the ISR, a's log is deleted, every record is there once", arguments: Int16(0)...1)
    func moveUnderProducer(version: Int16) async throws {
        let cluster = try await TestCluster.start(brokers: 3, lagMs: 10_000)
        do {
            #expect(try await cluster.connection(1).createTopic("moving", replicationFactor: 3).errorCode == 0)
            let before = try await cluster.settled("moving")
            let origin = try await Self.assignment(cluster, "moving").replicas(0)
            let leaving = before.leader
            #expect(origin.first == leaving)
            let target = origin.filter { $0 != leaving }.map(\.rawValue) + [4]
            try await cluster.start(4)

            let acknowledged = Counter()
            let producing = Task { try await Self.produceIdempotently(cluster, "moving", batches: 60, acknowledged: acknowledged) }
            try await eventually("the producer is under way") { acknowledged.value.load(ordering: .relaxed) >= 10 }
            let controller = try await ElectLeadersTests.controller(cluster)
            let connection = try await cluster.connection(controller)
            let accepted = try await Self.reassign([("moving", 0, target)], version: version, on: connection)
            #expect(accepted.error == 0 && accepted.results == ["moving-0": 0])
            try await producing.value

            try await eventually("the reassignment completes") { try await Self.list(nil, on: connection).ongoing.isEmpty }
            #expect(try await Self.assignment(cluster, "moving").replicas(0) == target.map { BrokerID($0) })
            let after = try await cluster.settled("moving")
            #expect(Set(after.isr) == Set(target.map { BrokerID($0) }))
            #expect(after.leader != leaving && target.contains(after.leader.rawValue) && after.leaderEpoch > before.leaderEpoch)
            try await eventually("the leaving broker's log is deleted") {
                cluster.log(leaving, "moving") == nil && !Self.partitionDirectoryExists(cluster, leaving, "moving")
            }
            let expected = (0..<600).map { "value-\($0)" }
            for id in target.map({ BrokerID($0) }) {
                try await eventually("broker \(id) has every record once") { try cluster.values(id, "moving") == expected }
            }
            try await connection.close()
        } catch {
            try await cluster.stopAll()
            throw error
        }
        try await cluster.stopAll()
    }

    @Test("Cancelling (null replicas) reverts to the origin replicas: the adding broker's log is deleted; ListPartitionReassignments shows replicas, adding and removing")
    func cancel() async throws {
        let cluster = try await TestCluster.start(brokers: 3)
        do {
            #expect(try await cluster.connection(1).createTopic("halted", partitions: 2, replicationFactor: 3).errorCode == 0)
            let leader = try await cluster.settled("halted").leader
            _ = try await cluster.settled("halted", 1)
            let origin = try await Self.assignment(cluster, "halted").replicas(0).map(\.rawValue)
            try await cluster.start(4)
            cluster.links.cut(4, leader)  // 4 cannot catch up: the reassignment stays under way
            let controller = try await ElectLeadersTests.controller(cluster)
            let connection = try await cluster.connection(controller)
            let target = Array(origin.prefix(2)) + [4]
            #expect(try await Self.reassign([("halted", 0, target)], on: connection).results == ["halted-0": 0])
            let listed = try await Self.list(nil, on: connection)
            #expect(listed.error == 0 && listed.ongoing == ["halted-0": [target + [origin[2]], [4], [origin[2]]]])
            #expect(try await Self.list([("halted", [0, 1, 9]), ("absent", [0])], on: connection).ongoing.keys.sorted() == ["halted-0"])
            try await eventually("broker 4 holds a replica") { cluster.log(4, "halted") != nil }

            #expect(try await Self.reassign([("halted", 0, nil)], on: connection).results == ["halted-0": 0])
            #expect(try await Self.list(nil, on: connection).ongoing.isEmpty)
            #expect(try await Self.assignment(cluster, "halted").replicas(0).map(\.rawValue) == origin)
            try await eventually("broker 4's replica is deleted") { cluster.log(4, "halted") == nil && !Self.partitionDirectoryExists(cluster, 4, "halted") }
            #expect(Self.partitionDirectoryExists(cluster, BrokerID(origin[2]), "halted"))
            #expect(try await Self.reassign([("halted", 0, nil), ("halted", 1, nil)], on: connection).results
                == ["halted-0": ErrorCode.noReassignmentInProgress.rawValue, "halted-1": ErrorCode.noReassignmentInProgress.rawValue])
            try await connection.close()
        } catch {
            try await cluster.stopAll()
            throw error
        }
        try await cluster.stopAll()
    }

    @Test("Bad input gets Kafka's codes and changes nothing; a broker that is not the controller answers NOT_CONTROLLER", arguments: Int16(0)...1)
    func badInput(version: Int16) async throws {
        let cluster = try await TestCluster.start(brokers: 3)
        do {
            #expect(try await cluster.connection(1).createTopic("fixed", replicationFactor: 2).errorCode == 0)
            let state = try await cluster.settled("fixed")
            let before = try await Self.assignment(cluster, "fixed")
            let controller = try await ElectLeadersTests.controller(cluster)
            let connection = try await cluster.connection(controller)
            let invalid = ErrorCode.invalidReplicaAssignment.rawValue
            let unknown = ErrorCode.unknownTopicOrPartition.rawValue
            for replicas: [Int32] in [[], [1, 1], [1, 2, 9], [-1, 1], Array(1...1000)] {
                #expect(try await Self.reassign([("fixed", 0, replicas)], version: version, on: connection).results == ["fixed-0": invalid], "\(replicas.prefix(4))")
            }
            #expect(try await Self.reassign([("fixed", 5, [1]), ("fixed", -1, [1]), ("absent", 0, [1])], version: version, on: connection).results
                == ["fixed-5": unknown, "fixed--1": unknown, "absent-0": unknown])
            // 1,000 partitions of an unknown topic: one answer each.
            let many = try await Self.reassign((0..<1000).map { ("absent", Int32($0), [1]) }, version: version, on: connection)
            #expect(many.results.count == 1000 && Set(many.results.values) == [unknown])
            if version >= 1 {
                let same = before.replicas(0).map(\.rawValue)
                #expect(try await Self.reassign([("fixed", 0, [1, 2, 3])], allowReplicationFactorChange: false, on: connection).results
                    == ["fixed-0": ErrorCode.invalidReplicationFactor.rawValue])
                #expect(try await Self.reassign([("fixed", 0, same)], allowReplicationFactorChange: false, on: connection).results == ["fixed-0": 0])
            }
            let other = try #require(cluster.running.first { $0 != controller })
            let refused = try await cluster.connection(other)
            #expect(try await Self.reassign([("fixed", 0, [1, 2])], version: version, on: refused).error == ErrorCode.notController.rawValue)
            #expect(try await Self.list(nil, on: refused).error == ErrorCode.notController.rawValue)
            try await refused.close()

            #expect(try await Self.list(nil, on: connection).ongoing.isEmpty)
            #expect(try await Self.assignment(cluster, "fixed") == before)
            #expect(try await cluster.state("fixed") == state)
            try await connection.close()
        } catch {
            try await cluster.stopAll()
            throw error
        }
        try await cluster.stopAll()
    }

    @Test("follower.replication.throttled.rate: a throttled catch-up of n bytes takes at least (n - one 1 MiB fetch) / rate")
    func throttle() async throws {
        let rate = 256 << 10
        let cluster = try await TestCluster.start(brokers: 3)
        do {
            #expect(try await cluster.connection(1).createTopic("slow", replicationFactor: 1).errorCode == 0)
            let leader = try await cluster.settled("slow").leader
            let producer = try await cluster.connection(leader)
            for batch in 0..<40 { #expect(try await producer.produce("slow", count: 2_000, startingAt: batch * 2_000).errorCode == 0) }
            try await producer.close()
            let bytes = try #require(cluster.broker(leader)?.dispatcher.topics.partition("slow", 0)).appendedBytes
            #expect(bytes > 3 << 20 / 2, "enough bytes to need the throttle: \(bytes)")
            try await cluster.start(4) { $0.cluster?.followerReplicationThrottledRate = rate }
            let controller = try await ElectLeadersTests.controller(cluster)
            let connection = try await cluster.connection(controller)
            let started = ContinuousClock.now
            #expect(try await Self.reassign([("slow", 0, [4])], on: connection).results == ["slow-0": 0])
            try await eventually("the move completes", timeout: .seconds(60)) { try await Self.list(nil, on: connection).ongoing.isEmpty }
            let elapsed = ContinuousClock.now - started
            let bound = Duration.seconds(Double(bytes - (1 << 20)) / Double(rate))
            #expect(elapsed >= bound, "caught up \(bytes) bytes in \(elapsed), under the throttle's \(bound)")
            #expect(try cluster.values(4, "slow").count == 80_000)
            try await connection.close()
        } catch {
            try await cluster.stopAll()
            throw error
        }
        try await cluster.stopAll()
    }

    @Test("A single broker (id 0): its only valid target is [itself]; anything else INVALID_REPLICA_ASSIGNMENT; nothing to list or cancel", arguments: Int16(0)...1)
    func singleBroker(version: Int16) async throws {
        try await TestBroker.with { broker in
            let connection = try await TestConnection(port: broker.port)
            #expect(try await ProduceFetchTests.createTopic("solo", partitions: 1, on: connection).errorCode == 0)
            let results = try await Self.reassign(
                [("solo", 0, [0]), ("solo", 1, [0]), ("absent", 0, [0])], version: version, on: connection)
            #expect(results.results == ["solo-0": 0, "solo-1": ErrorCode.unknownTopicOrPartition.rawValue, "absent-0": ErrorCode.unknownTopicOrPartition.rawValue])
            for replicas: [Int32] in [[1], [0, 1], [], [0, 0]] {
                #expect(try await Self.reassign([("solo", 0, replicas)], version: version, on: connection).results == ["solo-0": ErrorCode.invalidReplicaAssignment.rawValue])
            }
            #expect(try await Self.reassign([("solo", 0, nil)], version: version, on: connection).results == ["solo-0": ErrorCode.noReassignmentInProgress.rawValue])
            let listed = try await Self.list(nil, on: connection)
            #expect(listed.error == 0 && listed.ongoing.isEmpty)
            try await connection.close()
        }
    }
}
