import Foundation
import NIOCore
import SamsaProtocol
import SamsaRecords
import SamsaStorage
import Testing
@testable import SamsaBroker
import SamsaTestSupport

/// Three brokers in one process on one embedded coordinator (TestCluster), links between them cut
/// through the seam: leaders, followers, ISR, high watermark, acks=all, leader epochs.
@Suite("Replication")
struct ReplicationTests {
    /// Every running replica's log equals the leader's up to the smallest high watermark, batch by
    /// batch (offsets, leader epochs and bytes).
    static func expectIdentical(_ cluster: TestCluster, _ topic: String, leader: BrokerID, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let end = cluster.running.compactMap { cluster.log($0, topic)?.highWatermark }.min() ?? 0
        let reference = try cluster.batches(leader, topic, below: end)
        for id in cluster.running where id != leader {
            let copy = try cluster.batches(id, topic, below: end)
            #expect(copy.map(\.0) == reference.map(\.0), "broker \(id) offsets", sourceLocation: sourceLocation)
            #expect(copy.map(\.1) == reference.map(\.1), "broker \(id) epochs", sourceLocation: sourceLocation)
            #expect(copy.map(\.2) == reference.map(\.2), "broker \(id) bytes", sourceLocation: sourceLocation)
        }
    }

    @Test("A replicated topic: replicas spread, acks=all answered once every ISR member has the records, metadata shows leader, replicas and ISR")
    func replicates() async throws {
        let cluster = try await TestCluster.start()
        do {
            let connection = try await cluster.connection(1)
            let tooMany = try await connection.createTopic("wide", replicationFactor: 4)
            #expect(tooMany.errorCode == ErrorCode.invalidReplicationFactor.rawValue)
            #expect(try await connection.createTopic("events", partitions: 3, replicationFactor: 3).errorCode == 0)
            #expect(try await connection.createTopic("events", replicationFactor: 3).errorCode == ErrorCode.topicAlreadyExists.rawValue)
            var leaders: Set<BrokerID> = []
            for partition in Int32(0)..<3 { leaders.insert(try await cluster.settled("events", partition).leader) }
            #expect(leaders == [1, 2, 3])  // one partition led by each broker

            let state = try await cluster.settled("events")
            let leader = try await cluster.connection(state.leader)
            var next = 0
            for _ in 0..<10 {
                let produced = try await leader.produce("events", count: 5, startingAt: next)
                #expect(produced.errorCode == 0 && produced.baseOffset == Int64(next), "\(produced)")
                // acks=all: the high watermark is past the batch on the leader, and every follower has it.
                next += 5
                #expect(cluster.log(state.leader, "events")!.highWatermark >= Int64(next))
                for id in state.isr { #expect(cluster.log(id, "events")!.logEndOffset >= Int64(next), "broker \(id)") }
            }
            try await eventually("followers learnt the high watermark") {
                cluster.running.allSatisfy { cluster.log($0, "events")?.highWatermark == Int64(next) }
            }
            try Self.expectIdentical(cluster, "events", leader: state.leader)
            for id in cluster.running { #expect(try cluster.values(id, "events") == (0..<next).map { "value-\($0)" }) }

            var request = MetadataRequest()
            var wanted = MetadataRequest.MetadataRequestTopic()
            wanted.name = "events"
            request.topics = [wanted]
            let metadata = try await connection.request(request, version: 12, expecting: MetadataResponse.self)
            #expect(metadata.brokers.map(\.nodeId) == [1, 2, 3])
            let partition = try #require(metadata.topics.first?.partitions.first { $0.partitionIndex == 0 })
            #expect(partition.leaderId == state.leader.rawValue && partition.leaderEpoch == state.leaderEpoch.rawValue)
            #expect(Set(partition.replicaNodes) == [1, 2, 3] && Set(partition.isrNodes) == [1, 2, 3])
            #expect(partition.replicaNodes.first == state.leader.rawValue)
            // Groups meet at one broker, their __consumer_offsets partition's leader, whichever broker is asked.
            var find = FindCoordinatorRequest()
            find.key = "group"
            var named = Set<Int32>()
            for asked in [connection, leader] {
                let found = try await asked.request(find, version: 3, expecting: FindCoordinatorResponse.self)
                named.insert(found.nodeId)
            }
            let placed = try await cluster.state(GroupPlacement.topic, GroupPlacement.partition(of: "group", partitions: 50))
            #expect(named == [placed.leader.rawValue])
            try await connection.close()
            try await leader.close()
        } catch {
            try await cluster.stopAll()
            throw error
        }
        try await cluster.stopAll()
    }

    @Test("A non-leader refuses produce and fetch with NOT_LEADER_OR_FOLLOWER; a stale epoch is FENCED_LEADER_EPOCH, a newer one UNKNOWN_LEADER_EPOCH")
    func onlyTheLeaderServes() async throws {
        let cluster = try await TestCluster.start()
        do {
            let connection = try await cluster.connection(cluster.running.last!)
            #expect(try await connection.createTopic("led", replicationFactor: 3).errorCode == 0)
            // A leader change first, so there is an older epoch to be fenced.
            let first = try await cluster.settled("led")
            try await cluster.stop(first.leader)
            _ = try await cluster.settled("led")
            try await cluster.start(first.leader)
            try await eventually("all three are in the ISR") { try await cluster.state("led").isr.count == 3 }
            let state = try await cluster.settled("led")
            #expect(state.leaderEpoch >= 1)
            let follower = try #require(cluster.running.first { $0 != state.leader })
            let other = try await cluster.connection(follower)
            #expect(try await other.produce("led", count: 1, startingAt: 0).errorCode == ErrorCode.notLeaderOrFollower.rawValue)
            #expect(cluster.log(follower, "led")?.logEndOffset == 0)
            let fetched = try await other.request(ProduceFetchTests.fetchRequest("led", offset: 0), version: 12, expecting: FetchResponse.self)
            #expect(fetched.responses.first?.partitions.first?.errorCode == ErrorCode.notLeaderOrFollower.rawValue)

            let leader = try await cluster.connection(state.leader)
            #expect(try await leader.produce("led", count: 2, startingAt: 0).errorCode == 0)
            for (epoch, expected) in [(state.leaderEpoch.rawValue, ErrorCode.none), (state.leaderEpoch.rawValue - 1, .fencedLeaderEpoch), (state.leaderEpoch.rawValue + 1, .unknownLeaderEpoch)] {
                var request = ProduceFetchTests.fetchRequest("led", offset: 0)
                request.topics[0].partitions[0].currentLeaderEpoch = epoch
                let response = try await leader.request(request, version: 12, expecting: FetchResponse.self)
                #expect(response.responses.first?.partitions.first?.errorCode == expected.rawValue, "epoch \(epoch)")
            }
            try await connection.close()
            try await other.close()
            try await leader.close()
        } catch {
            try await cluster.stopAll()
            throw error
        }
        try await cluster.stopAll()
    }

    @Test("The leader is stopped: the controller elects an ISR member with a bumped epoch; every acks=all record is on the new leader; the old one comes back as a follower")
    func leaderKilled() async throws {
        let cluster = try await TestCluster.start()
        do {
            let admin = try await cluster.connection(1)
            #expect(try await admin.createTopic("failover", replicationFactor: 3, configs: ["min.insync.replicas": "2"]).errorCode == 0)
            try await admin.close()
            let before = try await cluster.settled("failover")
            var acknowledged: [String] = []
            var connection = try await cluster.connection(before.leader)
            for round in 0..<8 {
                let produced = try await connection.produce("failover", count: 4, startingAt: round * 4)
                #expect(produced.errorCode == 0)
                if produced.errorCode == 0 { acknowledged += (round * 4..<round * 4 + 4).map { "value-\($0)" } }
            }
            try await connection.close()
            try await cluster.kill(before.leader)

            let after = try await cluster.settled("failover")
            #expect(after.leader != before.leader && after.leaderEpoch == before.leaderEpoch.next)
            #expect(!after.isr.contains(before.leader))
            #expect(try cluster.values(after.leader, "failover") == acknowledged)
            connection = try await cluster.connection(after.leader)
            for round in 8..<12 {
                let produced = try await connection.produce("failover", count: 4, startingAt: round * 4)
                #expect(produced.errorCode == 0 && produced.baseOffset == Int64(round * 4))
                acknowledged += (round * 4..<round * 4 + 4).map { "value-\($0)" }
            }
            try await connection.close()

            // The old leader returns, truncates to where its log agrees, catches up and rejoins the ISR.
            try await cluster.start(before.leader)
            try await eventually("the old leader is back in the ISR") { try await cluster.state("failover").isr.count == 3 }
            try await eventually("every replica has every record") {
                cluster.running.allSatisfy { cluster.log($0, "failover")?.highWatermark == Int64(acknowledged.count) }
            }
            for id in cluster.running { #expect(try cluster.values(id, "failover") == acknowledged, "broker \(id)") }
            try Self.expectIdentical(cluster, "failover", leader: after.leader)
        } catch {
            try await cluster.stopAll()
            throw error
        }
        try await cluster.stopAll()
    }

    @Test("A dead follower leaves the ISR when its session ends (the controller), not after replica.lag.time.max.ms: acks=all goes on")
    func deadFollowerLeavesIsr() async throws {
        // A lag limit no test waits out: only the controller can take the dead follower out in time.
        let cluster = try await TestCluster.start(lagMs: 600_000)
        do {
            let admin = try await cluster.connection(1)
            #expect(try await admin.createTopic("orphaned", replicationFactor: 3, configs: ["min.insync.replicas": "2"]).errorCode == 0)
            try await admin.close()
            let before = try await cluster.settled("orphaned")
            let follower = try #require(before.isr.first { $0 != before.leader })
            let connection = try await cluster.connection(before.leader)
            #expect(try await connection.produce("orphaned", count: 3, startingAt: 0).errorCode == 0)
            try await cluster.kill(follower)
            try await eventually("the dead follower is out of the ISR", timeout: .seconds(20)) {
                try await cluster.state("orphaned").isr.sorted() == before.isr.filter { $0 != follower }.sorted()
            }
            let after = try await cluster.state("orphaned")
            #expect(after.leader == before.leader && after.leaderEpoch == before.leaderEpoch)
            let produced = try await connection.produce("orphaned", count: 3, startingAt: 3, timeoutMs: 20_000)
            #expect(produced.errorCode == 0 && produced.baseOffset == 3, "\(ErrorCode(rawValue: produced.errorCode).map { "\($0)" } ?? "?")")
            try await connection.close()
            // Back, it catches up and the leader takes it in again.
            try await cluster.start(follower)
            try await eventually("the follower is back in the ISR") { try await cluster.state("orphaned").isr.count == 3 }
        } catch {
            try await cluster.stopAll()
            throw error
        }
        try await cluster.stopAll()
    }

    @Test("A follower cut off from its leader leaves the ISR after replica.lag.time.max.ms (acks=all goes on without it) and rejoins once caught up")
    func isrShrinkAndExpand() async throws {
        let cluster = try await TestCluster.start(lagMs: 3000)
        do {
            let admin = try await cluster.connection(1)
            #expect(try await admin.createTopic("lagging", replicationFactor: 3).errorCode == 0)
            try await admin.close()
            let state = try await cluster.settled("lagging")
            let follower = try #require(state.isr.first { $0 != state.leader })
            let connection = try await cluster.connection(state.leader)
            let first = try await connection.produce("lagging", count: 3, startingAt: 0)
            #expect(first.errorCode == 0, "\(ErrorCode(rawValue: first.errorCode).map { "\($0)" } ?? "?")")
            // (Under load a follower may already have been dropped for lagging: wait until it has the batch.)
            try await eventually("the follower has the first batch") { cluster.log(follower, "lagging")!.logEndOffset == 3 }

            cluster.links.cut(follower, state.leader)
            // Answered once the ISR no longer waits for the cut follower.
            let produced = try await connection.produce("lagging", count: 3, startingAt: 3)
            #expect(produced.errorCode == 0 && produced.baseOffset == 3)
            let shrunk = try await cluster.state("lagging")
            #expect(!shrunk.isr.contains(follower) && shrunk.leaderEpoch == state.leaderEpoch)
            #expect(cluster.log(follower, "lagging")!.logEndOffset == 3)
            #expect(try await connection.produce("lagging", count: 3, startingAt: 6).errorCode == 0)

            cluster.links.heal()
            // It rejoins once at the high watermark (which may still trail the leader's log end).
            try await eventually("the follower is back in the ISR") { try await cluster.state("lagging").isr.count == 3 }
            try await eventually("the follower caught up") { cluster.log(follower, "lagging")!.logEndOffset == 9 }
            #expect(try await connection.produce("lagging", count: 3, startingAt: 9).errorCode == 0)
            #expect(cluster.log(follower, "lagging")!.logEndOffset == 12)
            try Self.expectIdentical(cluster, "lagging", leader: state.leader)
            try await connection.close()
        } catch {
            try await cluster.stopAll()
            throw error
        }
        try await cluster.stopAll()
    }

    @Test("With the ISR below min.insync.replicas acks=all is refused with NOT_ENOUGH_REPLICAS and nothing is written; acks=1 is served")
    func minInsyncRefusal() async throws {
        let cluster = try await TestCluster.start(lagMs: 2000)
        do {
            let admin = try await cluster.connection(1)
            #expect(try await admin.createTopic("strict", replicationFactor: 3, configs: ["min.insync.replicas": "3"]).errorCode == 0)
            try await admin.close()
            let state = try await cluster.settled("strict")
            let connection = try await cluster.connection(state.leader)
            #expect(try await connection.produce("strict", count: 2, startingAt: 0, acks: 1).errorCode == 0)
            let follower = try #require(state.isr.first { $0 != state.leader })
            cluster.links.cut(follower, state.leader)
            try await eventually("the ISR shrank") { try await cluster.state("strict").isr.count == 2 }
            try await eventually("the leader knows") {
                cluster.broker(state.leader)?.dispatcher.cluster?.replicas.partition(TopicPartition(topic: "strict", partition: 0))?.snapshot.isr.count == 2
            }
            let refused = try await connection.produce("strict", count: 2, startingAt: 2)
            #expect(refused.errorCode == ErrorCode.notEnoughReplicas.rawValue)
            #expect(cluster.log(state.leader, "strict")!.logEndOffset == 2)
            let served = try await connection.produce("strict", count: 2, startingAt: 2, acks: 1)
            #expect(served.errorCode == 0 && served.baseOffset == 2)
            try await connection.close()
        } catch {
            try await cluster.stopAll()
            throw error
        }
        try await cluster.stopAll()
    }

    @Test("A leader's unreplicated tail (acks=1 while its followers were cut off) is truncated by leader epoch when it returns as a follower")
    func divergentTailTruncated() async throws {
        let cluster = try await TestCluster.start()
        do {
            let admin = try await cluster.connection(1)
            #expect(try await admin.createTopic("diverge", replicationFactor: 3).errorCode == 0)
            try await admin.close()
            let before = try await cluster.settled("diverge")
            var connection = try await cluster.connection(before.leader)
            #expect(try await connection.produce("diverge", count: 4, startingAt: 0).errorCode == 0)
            for id in cluster.running where id != before.leader { cluster.links.cut(id, before.leader) }
            // Written on the leader only: acknowledged with acks=1, never replicated.
            #expect(try await connection.produce("diverge", count: 3, startingAt: 100, acks: 1).errorCode == 0)
            #expect(try await connection.produce("diverge", count: 3, startingAt: 200, acks: 1).errorCode == 0)
            #expect(cluster.log(before.leader, "diverge")!.logEndOffset == 10)
            try await connection.close()
            try await cluster.stop(before.leader)
            cluster.links.heal()

            let after = try await cluster.settled("diverge")
            #expect(after.leaderEpoch == before.leaderEpoch.next)
            connection = try await cluster.connection(after.leader)
            #expect(try await connection.produce("diverge", count: 2, startingAt: 4).errorCode == 0)
            #expect(try await connection.produce("diverge", count: 3, startingAt: 6).errorCode == 0)
            try await connection.close()

            try await cluster.start(before.leader)
            try await eventually("the old leader caught up") { cluster.log(before.leader, "diverge")?.highWatermark == 9 }
            let expected = (0..<9).map { "value-\($0)" }
            for id in cluster.running { #expect(try cluster.values(id, "diverge") == expected, "broker \(id)") }
            let epochs = try #require(cluster.broker(before.leader)?.dispatcher.cluster?.replicas.epochs.entries(TopicPartition(topic: "diverge", partition: 0)))
            #expect(epochs.map(\.epoch) == [before.leaderEpoch, after.leaderEpoch] && epochs.last?.startOffset == 4)
            try Self.expectIdentical(cluster, "diverge", leader: after.leader)
        } catch {
            try await cluster.stopAll()
            throw error
        }
        try await cluster.stopAll()
    }

    @Test("A leader whose coordination session expires gives up leadership: it stops acknowledging, the controller elects another ISR member, no acknowledged record is lost; it rejoins with a new session and catches up")
    func leaderFencedBySessionExpiry() async throws {
        let cluster = try await TestCluster.start()
        do {
            let admin = try await cluster.connection(1)
            #expect(try await admin.createTopic("fenced", replicationFactor: 3, configs: ["min.insync.replicas": "2"]).errorCode == 0)
            try await admin.close()
            let before = try await cluster.settled("fenced")
            var acknowledged: [String] = []
            let old = try await cluster.connection(before.leader)
            for round in 0..<3 {
                #expect(try await old.produce("fenced", count: 3, startingAt: round * 3).errorCode == 0)
                acknowledged += (round * 3..<round * 3 + 3).map { "value-\($0)" }
            }
            let session = try #require(cluster.broker(before.leader)?.dispatcher.cluster?.session.sessionID)
            await cluster.coordinator.expireSession(session)
            try await eventually("another broker leads") {
                let state = try await cluster.state("fenced")
                return state.leader >= 0 && state.leader != before.leader
            }
            let partition = TopicPartition(topic: "fenced", partition: 0)
            // It gives up at once and comes back (a new session) as a follower: never the leader again here.
            try await eventually("the old leader gave up") { cluster.broker(before.leader)?.dispatcher.cluster?.replicas.partition(partition)?.role != .leader }
            let refused = try await old.produce("fenced", count: 3, startingAt: 100, timeoutMs: 2000)
            #expect(refused.errorCode == ErrorCode.notLeaderOrFollower.rawValue)
            try await old.close()

            let after = try await cluster.state("fenced")
            #expect(after.leaderEpoch == before.leaderEpoch.next)
            let connection = try await cluster.connection(after.leader)
            #expect(try await connection.produce("fenced", count: 3, startingAt: 9).errorCode == 0)
            acknowledged += (9..<12).map { "value-\($0)" }
            try await connection.close()
            #expect(try cluster.values(after.leader, "fenced") == acknowledged)

            // Without a restart: a new session, registered again, following the new leader, back in the ISR.
            try await eventually("the old leader rejoined the ISR with a new session") {
                let renewed = cluster.broker(before.leader)?.dispatcher.cluster?.session.sessionID
                guard let renewed, renewed != session else { return false }
                return try await cluster.state("fenced").isr.contains(before.leader)
            }
            try await eventually("it caught up") { cluster.log(before.leader, "fenced")?.logEndOffset == 12 }
            #expect(try cluster.values(before.leader, "fenced") == acknowledged)
        } catch {
            try await cluster.stopAll()
            throw error
        }
        try await cluster.stopAll()
    }

    @Test("Controlled shutdown: a stopping leader hands its partition to an ISR member itself, before its session ends; no acks=all record is lost")
    func controlledShutdown() async throws {
        let cluster = try await TestCluster.start()
        do {
            let admin = try await cluster.connection(1)
            var request = MetadataRequest()
            request.topics = []
            let controller = try await admin.request(request, version: 12, expecting: MetadataResponse.self).controllerId
            // A topic the controller leads (the assignment starts at the broker the name hashes to), so
            // that only the hand-over, not a controller, can move it before the new controller exists.
            let name = try #require((0..<100).map { "handover-\($0)" }.first { Int32(CoordinationCatalog.placementOffset(for: $0, brokers: 3)) + 1 == controller })
            #expect(try await admin.createTopic(name, replicationFactor: 3, configs: ["min.insync.replicas": "2"]).errorCode == 0)
            try await admin.close()
            let before = try await cluster.settled(name)
            #expect(before.leader == BrokerID(controller))
            let connection = try await cluster.connection(before.leader)
            #expect(try await connection.produce(name, count: 3, startingAt: 0).errorCode == 0)
            try await connection.close()

            try await cluster.stop(before.leader, controlled: true)
            let after = try await cluster.settled(name)
            #expect(after.leader != before.leader && after.leaderEpoch == before.leaderEpoch.next && !after.isr.contains(before.leader))
            // Written by the stopping leader under the old controller epoch: the next controller found it led.
            #expect(after.controllerEpoch == before.controllerEpoch)
            let next = try await cluster.connection(after.leader)
            #expect(try await next.produce(name, count: 3, startingAt: 3).errorCode == 0)
            try await next.close()
            #expect(try cluster.values(after.leader, name) == (0..<6).map { "value-\($0)" })
        } catch {
            try await cluster.stopAll()
            throw error
        }
        try await cluster.stopAll()
    }

    @Test("Idempotent producers in a cluster: producer ids are unique across brokers, and a retry sent to the new leader after a failover is recognised as a duplicate")
    func idempotenceAcrossFailover() async throws {
        let cluster = try await TestCluster.start()
        do {
            var seen: Set<Int64> = []
            for id in cluster.running {
                let connection = try await cluster.connection(id)
                for _ in 0..<3 {
                    let response = try await connection.request(InitProducerIdRequest.nullTransaction, version: 1, expecting: InitProducerIdResponse.self)
                    #expect(response.errorCode == 0)
                    #expect(seen.insert(response.producerId).inserted, "producer id \(response.producerId) handed out twice")
                }
                try await connection.close()
            }

            let admin = try await cluster.connection(1)
            #expect(try await admin.createTopic("exactly-once", replicationFactor: 3, configs: ["min.insync.replicas": "2"]).errorCode == 0)
            try await admin.close()
            let before = try await cluster.settled("exactly-once")
            var connection = try await cluster.connection(before.leader)
            let producer = try await connection.request(InitProducerIdRequest.nullTransaction, version: 1, expecting: InitProducerIdResponse.self)
            let first = try makeBatch(count: 3, producer: (producer.producerId, producer.producerEpoch, 0))
            let second = try makeBatch(count: 2, startingAt: 3, producer: (producer.producerId, producer.producerEpoch, 3))
            #expect(try await ProduceFetchTests.produce([first], to: "exactly-once", on: connection).errorCode == 0)
            #expect(try await ProduceFetchTests.produce([second], to: "exactly-once", on: connection).errorCode == 0)
            try await connection.close()
            try await cluster.kill(before.leader)

            let after = try await cluster.settled("exactly-once")
            connection = try await cluster.connection(after.leader)
            // The producer did not see its last answer and retries at the new leader: same offsets, no copy.
            let retried = try await ProduceFetchTests.produce([second], to: "exactly-once", on: connection)
            #expect(retried.errorCode == 0 && retried.baseOffset == 3)
            #expect(cluster.log(after.leader, "exactly-once")?.logEndOffset == 5)
            let third = try makeBatch(count: 1, startingAt: 5, producer: (producer.producerId, producer.producerEpoch, 5))
            let next = try await ProduceFetchTests.produce([third], to: "exactly-once", on: connection)
            #expect(next.errorCode == 0 && next.baseOffset == 5)
            try await connection.close()
            #expect(try cluster.values(after.leader, "exactly-once") == (0..<6).map { "value-\($0)" })
        } catch {
            try await cluster.stopAll()
            throw error
        }
        try await cluster.stopAll()
    }
}

/// Unmodified Kafka clients against the cluster: kafka-python creates a replicated topic through a broker
/// that does not lead it and is routed to the leader by Metadata; confluent-kafka produces through a crash
/// of the leader.
@Suite("Replication with real clients")
struct ClusterClientTests {
    @Test("kafka-python creates a topic with replication factor 3, produces with acks=all through the leader and consumes it")
    func kafkaPythonOnCluster() async throws {
        let cluster = try await TestCluster.start()
        do {
            // Bootstrap at a broker that will not lead the topic (the assignment starts at the broker the
            // name hashes to): Metadata must route the client to the leader.
            let leader = BrokerID(Int32(CoordinationCatalog.placementOffset(for: "replicated", brokers: 3)) + 1)
            let port = try requireBroker(cluster.broker(BrokerID(leader.rawValue % 3 + 1))).localAddress.port!
            let count = 100
            let data = try await PythonClient.run("kafka_python_client.py", ["127.0.0.1:\(port)", "replicated", "\(count)", "lz4", "3"])
            let outcome = try JSONDecoder().decode(KafkaPythonClientTests.Outcome.self, from: data)
            #expect(outcome.offsets == (0..<Int64(count)).map { $0 })
            #expect(outcome.end == Int64(count))
            #expect(outcome.records.map(\.value) == (0..<count).map { "value-\($0)" })
            let state = try await cluster.settled("replicated")
            #expect(state.isr.count == 3 && state.leader == leader)
            for id in cluster.running { #expect(try cluster.values(id, "replicated") == (0..<count).map { "value-\($0)" }, "broker \(id)") }
        } catch {
            try await cluster.stopAll()
            throw error
        }
        try await cluster.stopAll()
    }

    struct FailoverOutcome: Decodable {
        var delivered: [[Value]]
        var errors: [String]
        var undelivered: Int

        enum Value: Decodable {
            case text(String)
            case number(Int64)
            init(from decoder: any Decoder) throws {
                let container = try decoder.singleValueContainer()
                if let number = try? container.decode(Int64.self) { self = .number(number) } else { self = .text(try container.decode(String.self)) }
            }
        }
    }

    @Test("confluent-kafka (idempotent, acks=all) produces through a crash of the leader: no error, every delivered record once at its delivered offset")
    func confluentThroughFailover() async throws {
        let cluster = try await TestCluster.start()
        do {
            let admin = try await cluster.connection(1)
            #expect(try await admin.createTopic("through", replicationFactor: 3, configs: ["min.insync.replicas": "2"]).errorCode == 0)
            try await admin.close()
            let before = try await cluster.settled("through")
            let bootstrap = try cluster.running.map { "127.0.0.1:\(try requireBroker(cluster.broker($0)).localAddress.port!)" }.joined(separator: ",")
            let count = 3000
            let run = Task { try await PythonClient.run("confluent_failover_producer.py", [bootstrap, "through", "\(count)"]) }
            // Kill the leader once part of the records are in.
            try await eventually("the producer is under way") { (cluster.log(before.leader, "through")?.logEndOffset ?? 0) >= 300 }
            try await cluster.kill(before.leader)
            let outcome = try JSONDecoder().decode(FailoverOutcome.self, from: try await run.value)
            #expect(outcome.errors.isEmpty && outcome.undelivered == 0, "\(outcome.errors.prefix(5))")
            #expect(outcome.delivered.count == count)
            let after = try await cluster.settled("through")
            #expect(after.leader != before.leader)
            let values = try cluster.values(after.leader, "through")
            var offsets: [String: [Int]] = [:]
            for (offset, value) in values.enumerated() { offsets[value, default: []].append(offset) }
            for pair in outcome.delivered {
                guard case .text(let value) = pair[0], case .number(let offset) = pair[1] else { continue }
                #expect(offsets[value] == [Int(offset)], "\(value) delivered at \(offset), in the log at \(offsets[value] ?? [])")
            }
        } catch {
            try await cluster.stopAll()
            throw error
        }
        try await cluster.stopAll()
    }
}
