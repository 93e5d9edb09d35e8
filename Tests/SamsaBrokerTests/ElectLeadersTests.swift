import SamsaProtocol
import SamsaStorage
import SamsaTestSupport
import Testing
@testable import SamsaBroker

/// ElectLeaders (preferred and unclean-refused) through the controller, and the automatic
/// preferred-leader rebalance, in a 3-broker cluster; ElectLeaders on a single broker.
@Suite("Leader elections")
struct ElectLeadersTests {
    static func elect(
        _ partitions: [(String, Int32)]?, type: Int8 = 0, version: Int16 = 2, on connection: TestConnection
    ) async throws -> (error: Int16, results: [String: Int16]) {
        var request = ElectLeadersRequest()
        request.electionType = type
        request.topicPartitions = partitions.map { list in
            list.map { topic, partition in
                var entry = ElectLeadersRequest.TopicPartitions()
                entry.topic = topic
                entry.partitions = [partition]
                return entry
            }
        }
        let response = try await connection.request(request, version: version, expecting: ElectLeadersResponse.self)
        var results: [String: Int16] = [:]
        for topic in response.replicaElectionResults {
            for partition in topic.partitionResult { results["\(topic.topic)-\(partition.partitionId)"] = partition.errorCode }
        }
        return (response.errorCode, results)
    }

    static func start(rebalanceEvery interval: Duration? = nil) async throws -> TestCluster {
        let cluster = try TestCluster(lagMs: 30_000)
        for id in Int32(1)...3 { try await cluster.start(BrokerID(id)) { Self.configure(&$0, rebalanceEvery: interval) } }
        return cluster
    }

    static func configure(_ configuration: inout BrokerConfiguration, rebalanceEvery interval: Duration?) {
        configuration.cluster?.autoLeaderRebalanceEnable = interval != nil
        if let interval { configuration.cluster?.leaderImbalanceCheckInterval = interval }
    }

    static func controller(_ cluster: TestCluster) async throws -> BrokerID {
        try await eventually("a controller") {
            for id in cluster.running where cluster.broker(id)?.dispatcher.cluster?.controller.controllerEpoch != nil { return id }
            return nil
        }
    }

    @Test("Preferred election moves leadership back at the next epoch; not needed, not available, unknown and not-controller get Kafka's codes", arguments: Int16(0)...2)
    func preferred(version: Int16) async throws {
        let cluster = try await Self.start()
        do {
            #expect(try await cluster.connection(1).createTopic("pref", partitions: 2, replicationFactor: 3).errorCode == 0)
            let preferred = try await cluster.settled("pref", 0).leader  // the first replica leads at creation
            try await cluster.stop(preferred, controlled: true)
            let moved = try await cluster.settled("pref", 0)
            #expect(moved.leader != preferred)
            try await cluster.start(preferred) { Self.configure(&$0, rebalanceEvery: nil) }
            try await eventually("broker \(preferred) is back in the ISR") { try await cluster.state("pref", 0).isr.contains(preferred) }

            let controller = try await Self.controller(cluster)
            let other = try #require(cluster.running.first { $0 != controller })
            let refused = try await Self.elect([("pref", 0)], version: version, on: try await cluster.connection(other))
            if version >= 1 { #expect(refused.error == ErrorCode.notController.rawValue) }
            #expect(refused.results["pref-0"] == ErrorCode.notController.rawValue)

            let connection = try await cluster.connection(controller)
            let before = try await cluster.state("pref", 0)
            let elected = try await Self.elect([("pref", 0), ("pref", 0), ("pref", 7), ("absent", 0)], version: version, on: connection)
            #expect(elected.error == 0)
            #expect(elected.results == ["pref-0": 0, "pref-7": ErrorCode.unknownTopicOrPartition.rawValue, "absent-0": ErrorCode.unknownTopicOrPartition.rawValue])
            let after = try await cluster.settled("pref", 0)
            #expect(after.leader == preferred && after.leaderEpoch == before.leaderEpoch.next)
            #expect(try await Self.elect([("pref", 0)], version: version, on: connection).results["pref-0"] == ErrorCode.electionNotNeeded.rawValue)
            // All partitions: only those that needed an election are answered.
            #expect(try await Self.elect(nil, version: version, on: connection).results.isEmpty)

            // The preferred replica of partition 1 is down: PREFERRED_LEADER_NOT_AVAILABLE, nothing changes.
            let second = try await cluster.settled("pref", 1)
            if second.leader != controller {
                try await cluster.kill(second.leader)
                let state = try await cluster.settled("pref", 1)
                let unavailable = try await Self.elect([("pref", 1)], version: version, on: connection)
                #expect(unavailable.results["pref-1"] == ErrorCode.preferredLeaderNotAvailable.rawValue)
                #expect(try await cluster.state("pref", 1) == state)
            }
        } catch {
            try await cluster.stopAll()
            throw error
        }
        try await cluster.stopAll()
    }

    @Test("Unclean election is refused: a partition whose ISR is all down stays offline (ELIGIBLE_LEADERS_NOT_AVAILABLE); one with a leader needs none")
    func uncleanRefused() async throws {
        let cluster = try await Self.start()
        do {
            var controller = try await Self.controller(cluster)
            #expect(try await cluster.connection(controller).createTopic("lonely", replicationFactor: 1).errorCode == 0)
            #expect(try await cluster.connection(controller).createTopic("led", replicationFactor: 3).errorCode == 0)
            let owner = try await cluster.settled("lonely").leader
            _ = try await cluster.settled("led")
            try await cluster.kill(owner)
            try await eventually("lonely is offline") { try await cluster.state("lonely").leader == .none }
            controller = try await Self.controller(cluster)
            let connection = try await cluster.connection(controller)
            let result = try await Self.elect([("lonely", 0), ("led", 0)], type: 1, on: connection)
            #expect(result.results == ["lonely-0": ErrorCode.eligibleLeadersNotAvailable.rawValue, "led-0": ErrorCode.electionNotNeeded.rawValue])
            #expect(try await cluster.state("lonely").leader == .none)
            #expect(try await Self.elect([("lonely", 0)], type: 2, on: connection).error == ErrorCode.invalidRequest.rawValue)
        } catch {
            try await cluster.stopAll()
            throw error
        }
        try await cluster.stopAll()
    }

    @Test("auto.leader.rebalance.enable: a restarted preferred replica gets its leadership back once in the ISR")
    func autoRebalance() async throws {
        let cluster = try await Self.start(rebalanceEvery: .milliseconds(200))
        do {
            #expect(try await cluster.connection(1).createTopic("balanced", partitions: 3, replicationFactor: 3).errorCode == 0)
            let preferred = try await cluster.settled("balanced", 0).leader
            try await cluster.stop(preferred, controlled: true)
            #expect(try await cluster.settled("balanced", 0).leader != preferred)
            try await cluster.start(preferred) { Self.configure(&$0, rebalanceEvery: .milliseconds(200)) }
            try await eventually("the preferred replica leads again") { try await cluster.settled("balanced", 0).leader == preferred }
        } catch {
            try await cluster.stopAll()
            throw error
        }
        try await cluster.stopAll()
    }

    @Test("A single broker leads every partition it prefers: ELECTION_NOT_NEEDED, or UNKNOWN_TOPIC_OR_PARTITION", arguments: Int16(0)...2)
    func singleBroker(version: Int16) async throws {
        try await TestBroker.with { broker in
            let connection = try await TestConnection(port: broker.port)
            #expect(try await ProduceFetchTests.createTopic("solo", partitions: 1, on: connection).errorCode == 0)
            let result = try await Self.elect([("solo", 0), ("solo", 1)], version: version, on: connection)
            #expect(result.results == ["solo-0": ErrorCode.electionNotNeeded.rawValue, "solo-1": ErrorCode.unknownTopicOrPartition.rawValue])
            #expect(try await Self.elect(nil, version: version, on: connection).results.isEmpty)
            try await connection.close()
        }
    }
}
