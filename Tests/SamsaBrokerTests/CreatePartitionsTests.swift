import NIOCore
import SamsaProtocol
import SamsaStorage
import Testing
@testable import SamsaBroker

/// CreatePartitions on a single broker (a cluster of one), as Kafka's `createPartitions` answers it.
@Suite("CreatePartitions")
struct CreatePartitionsTests {
    static func topic(_ name: String, count: Int32, assignments: [[Int32]]? = nil) -> CreatePartitionsRequest.CreatePartitionsTopic {
        var topic = CreatePartitionsRequest.CreatePartitionsTopic()
        topic.name = name
        topic.count = count
        topic.assignments = assignments?.map { brokers in
            var assignment = CreatePartitionsRequest.CreatePartitionsAssignment()
            assignment.brokerIds = brokers
            return assignment
        }
        return topic
    }

    static func createPartitions(
        _ topics: [CreatePartitionsRequest.CreatePartitionsTopic], validateOnly: Bool = false, version: Int16 = 3, on connection: TestConnection
    ) async throws -> [CreatePartitionsResponse.CreatePartitionsTopicResult] {
        var request = CreatePartitionsRequest()
        request.topics = topics
        request.timeoutMs = 5000
        request.validateOnly = validateOnly
        return try await connection.request(request, version: version, expecting: CreatePartitionsResponse.self).results
    }

    /// Partition count as Metadata shows it (nil: no such topic).
    static func partitionCount(_ name: String, on connection: TestConnection) async throws -> Int? {
        var request = MetadataRequest()
        var wanted = MetadataRequest.MetadataRequestTopic()
        wanted.name = name
        request.topics = [wanted]
        let topic = try await connection.request(request, version: 12, expecting: MetadataResponse.self).topics.first
        return topic?.errorCode == 0 ? topic?.partitions.count : nil
    }

    @Test("More partitions: the new ones are empty and writable, the old ones keep their records, Metadata shows the count at once", arguments: Int16(0)...3)
    func grows(version: Int16) async throws {
        try await TestBroker.with { broker in
            let connection = try await TestConnection(port: broker.port)
            #expect(try await ProduceFetchTests.createTopic("grow", partitions: 2, on: connection).errorCode == 0)
            #expect(try await ProduceFetchTests.produce([try makeBatch(count: 4)], to: "grow", partition: 1, on: connection).errorCode == 0)
            let results = try await Self.createPartitions([Self.topic("grow", count: 5)], version: version, on: connection)
            #expect(results.map(\.name) == ["grow"])
            #expect(results.map(\.errorCode) == [0])
            #expect(results.first?.errorMessage == nil)
            #expect(try await Self.partitionCount("grow", on: connection) == 5)
            let produced = try await ProduceFetchTests.produce([try makeBatch(count: 2)], to: "grow", partition: 4, on: connection)
            #expect(produced.errorCode == 0 && produced.baseOffset == 0)
            #expect(broker.broker.dispatcher.topics.log("grow", 1)?.logEndOffset == 4)
            #expect(broker.broker.dispatcher.topics.log("grow", 3)?.logEndOffset == 0)
            try await connection.close()
        }
    }

    @Test("Bad input gets Kafka's error code for each kind and changes nothing")
    func refusals() async throws {
        try await TestBroker.with { broker in
            let connection = try await TestConnection(port: broker.port)
            #expect(try await ProduceFetchTests.createTopic("t", partitions: 3, on: connection).errorCode == 0)
            #expect(try await ProduceFetchTests.createTopic("u", partitions: 1, on: connection).errorCode == 0)
            let cases: [(CreatePartitionsRequest.CreatePartitionsTopic, ErrorCode, String?)] = [
                (Self.topic("t", count: 3), .invalidPartitions, "Topic already has 3 partitions."),
                (Self.topic("t", count: 2), .invalidPartitions, "Topic currently has 3 partitions, which is higher than the requested 2."),
                (Self.topic("t", count: -1), .invalidPartitions, nil),
                (Self.topic("absent", count: 4), .unknownTopicOrPartition, "The topic 'absent' does not exist."),
                (Self.topic("t", count: 5, assignments: [[0]]), .invalidReplicaAssignment,
                 "Increasing the number of partitions by 2 but 1 assignments provided."),
                (Self.topic("t", count: 4, assignments: [[0, 0]]), .invalidReplicaAssignment,
                 "Duplicate brokers not allowed in replica assignment: 0, 0 for partition id 3."),
                (Self.topic("t", count: 4, assignments: [[7]]), .invalidReplicaAssignment, "Unknown broker(s) in replica assignment: 7."),
                (Self.topic("t", count: 4, assignments: [[]]), .invalidReplicaAssignment, "Cannot have replication factor of 0 for partition id 3."),
                (Self.topic("t", count: 100_000), .policyViolation, nil),
                (Self.topic("t", count: Int32.max), .policyViolation, nil),
            ]
            for (topic, code, message) in cases {
                let result = try #require(try await Self.createPartitions([topic], on: connection).first)
                #expect(result.errorCode == code.rawValue, "\(topic.count) \(String(describing: topic.assignments))")
                if let message { #expect(result.errorMessage == message) }
            }
            // A topic listed twice: INVALID_REQUEST for each entry, not grown; the other entry is served.
            let twice = try await Self.createPartitions([Self.topic("t", count: 4), Self.topic("u", count: 2), Self.topic("t", count: 5)], on: connection)
            #expect(twice.map(\.name) == ["t", "u", "t"])
            #expect(twice.map(\.errorCode) == [ErrorCode.invalidRequest.rawValue, 0, ErrorCode.invalidRequest.rawValue])
            // validate_only answers as a real request would and changes nothing.
            let validated = try await Self.createPartitions([Self.topic("t", count: 6), Self.topic("t2", count: 6)], validateOnly: true, on: connection)
            #expect(validated.map(\.errorCode) == [0, ErrorCode.unknownTopicOrPartition.rawValue])
            #expect(try await Self.partitionCount("t", on: connection) == 3)
            #expect(try await Self.partitionCount("u", on: connection) == 2)
            #expect(broker.broker.dispatcher.topics.log("t", 3) == nil)
            // A manual assignment to the broker itself is fine.
            #expect(try await Self.createPartitions([Self.topic("t", count: 4, assignments: [[0]])], on: connection).map(\.errorCode) == [0])
            #expect(try await Self.partitionCount("t", on: connection) == 4)
            try await connection.close()
        }
    }

    @Test("max.broker.partitions bounds partitions added as it bounds created ones: POLICY_VIOLATION and nothing made")
    func partitionLimit() async throws {
        let broker = try await TestBroker.start(maxBrokerPartitions: 10)
        do {
            let connection = try await TestConnection(port: broker.port)
            #expect(try await ProduceFetchTests.createTopic("a", partitions: 4, on: connection).errorCode == 0)
            #expect(try await ProduceFetchTests.createTopic("b", partitions: 4, on: connection).errorCode == 0)
            let refused = try #require(try await Self.createPartitions([Self.topic("a", count: 7)], on: connection).first)
            #expect(refused.errorCode == ErrorCode.policyViolation.rawValue)
            #expect(refused.errorMessage?.contains("max.broker.partitions (10)") == true)
            #expect(try await Self.partitionCount("a", on: connection) == 4)
            #expect(try await Self.createPartitions([Self.topic("a", count: 6)], on: connection).map(\.errorCode) == [0])
            try await connection.close()
        } catch {
            try await broker.stop()
            throw error
        }
        try await broker.stop()
    }

    @Test("1,000 entries: one answer each, in order")
    func thousandEntries() async throws {
        try await TestBroker.with { broker in
            let connection = try await TestConnection(port: broker.port)
            let topics = (0..<1000).map { Self.topic("absent-\($0)", count: 2) }
            let results = try await Self.createPartitions(topics, on: connection)
            #expect(results.map(\.name) == topics.map(\.name))
            #expect(Set(results.map(\.errorCode)) == [ErrorCode.unknownTopicOrPartition.rawValue])
            try await connection.close()
        }
    }

    @Test("Added partitions survive a restart with the topic's own settings")
    func survivesRestart() async throws {
        let broker = try await TestBroker.start()
        let connection = try await TestConnection(port: broker.port)
        #expect(try await ProduceFetchTests.createTopic("kept", partitions: 1, on: connection, configs: ["segment.bytes": "65536"]).errorCode == 0)
        #expect(try await Self.createPartitions([Self.topic("kept", count: 3)], on: connection).map(\.errorCode) == [0])
        let id = try #require(broker.broker.dispatcher.topics.topic("kept")?.id)
        try await connection.close()
        try await broker.stop(keepingData: true)
        let again = try await TestBroker.start(directory: broker.directory)
        #expect(again.broker.dispatcher.topics.topic("kept")?.partitionCount == 3)
        #expect(again.broker.dispatcher.topics.topic("kept")?.id == id)
        #expect(again.broker.dispatcher.topics.log("kept", 2)?.configuration.segmentBytes == 65536)
        try await again.stop()
    }
}
