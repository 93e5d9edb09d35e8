import NIOCore
import SamsaProtocol
import Testing
@testable import SamsaBroker

/// DeleteTopics, DescribeConfigs and OffsetForLeaderEpoch (topic configs: TopicConfigTests).
@Suite("Broker administration")
struct AdminTests {
    @Test("A deleted topic is gone; one created again under its name starts empty", arguments: [Int16(4), 1, 0])
    func deleteTopic(version: Int16) async throws {
        try await TestBroker.with { broker in
            let connection = try await TestConnection(port: broker.port)
            #expect(try await ProduceFetchTests.createTopic("doomed", partitions: 2, on: connection, version: version).errorCode == 0)
            #expect(try await ProduceFetchTests.produce([try makeBatch(count: 4)], to: "doomed", on: connection).errorCode == 0)
            var delete = DeleteTopicsRequest()
            delete.topicNames = ["doomed", "never-was"]
            delete.timeoutMs = 5000
            let deleted = try await connection.request(delete, version: version, expecting: DeleteTopicsResponse.self)
            #expect(deleted.responses.map(\.errorCode) == [0, ErrorCode.unknownTopicOrPartition.rawValue])
            let produced = try await ProduceFetchTests.produce([try makeBatch(count: 1)], to: "doomed", on: connection)
            #expect(produced.errorCode == ErrorCode.unknownTopicOrPartition.rawValue)
            #expect(try await ProduceFetchTests.createTopic("doomed", partitions: 1, on: connection).errorCode == 0)
            let again = try await ProduceFetchTests.produce([try makeBatch(count: 1)], to: "doomed", on: connection)
            #expect(again.errorCode == 0 && again.baseOffset == 0)
            try await connection.close()
        }
    }

    @Test("DescribeConfigs shows the log settings under Kafka's names", arguments: [Int16(4), 0])
    func describeConfigs(version: Int16) async throws {
        try await TestBroker.with(flushPolicy: .everyAppend) { broker in
            let connection = try await TestConnection(port: broker.port)
            _ = try await ProduceFetchTests.createTopic("described", partitions: 1, on: connection)
            var request = DescribeConfigsRequest()
            var resource = DescribeConfigsRequest.DescribeConfigsResource()
            resource.resourceType = 2
            resource.resourceName = "described"
            resource.configurationKeys = nil
            var missing = resource
            missing.resourceName = "absent"
            request.resources = [resource, missing]
            let response = try await connection.request(request, version: version, expecting: DescribeConfigsResponse.self)
            let configs = Dictionary(uniqueKeysWithValues: (response.results.first?.configs ?? []).map { ($0.name, $0.value) })
            #expect(configs["segment.bytes"] == "\(1 << 30)")
            #expect(configs["flush.messages"] == "1")
            #expect(configs["cleanup.policy"] == "delete")
            #expect(response.results.last?.errorCode == ErrorCode.unknownTopicOrPartition.rawValue)

            try await connection.close()
        }
    }

    @Test("OffsetForLeaderEpoch: epoch 0 ends at the log end", arguments: [Int16(4), 0])
    func offsetForLeaderEpoch(version: Int16) async throws {
        try await TestBroker.with { broker in
            let connection = try await TestConnection(port: broker.port)
            _ = try await ProduceFetchTests.createTopic("epochs", partitions: 1, on: connection)
            _ = try await ProduceFetchTests.produce([try makeBatch(count: 3)], to: "epochs", on: connection)
            var request = OffsetForLeaderEpochRequest()
            var topic = OffsetForLeaderEpochRequest.OffsetForLeaderTopic()
            topic.topic = "epochs"
            var partition = OffsetForLeaderEpochRequest.OffsetForLeaderPartition()
            partition.leaderEpoch = 0
            topic.partitions = [partition]
            request.topics = [topic]
            let response = try await connection.request(request, version: version, expecting: OffsetForLeaderEpochResponse.self)
            let result = try #require(response.topics.first?.partitions.first)
            // v0 has no leader epoch in the response (it reads as the default, -1).
            #expect(result.errorCode == 0 && result.leaderEpoch == (version == 0 ? -1 : 0) && result.endOffset == 3)
            try await connection.close()
        }
    }
}
