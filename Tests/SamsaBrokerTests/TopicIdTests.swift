import NIOCore
import SamsaProtocol
import Testing
@testable import SamsaBroker

/// Topic ids (KIP-516) on a single broker: random at creation, kept across restarts, served by
/// CreateTopics and Metadata, and DeleteTopics v6 by id.
@Suite("Topic ids")
struct TopicIdTests {
    static func metadataId(_ name: String, version: Int16 = 12, on connection: TestConnection) async throws -> KafkaUUID? {
        var request = MetadataRequest()
        var wanted = MetadataRequest.MetadataRequestTopic()
        wanted.name = name
        request.topics = [wanted]
        return try await connection.request(request, version: version, expecting: MetadataResponse.self).topics.first?.topicId
    }

    static func delete(_ entries: [(String?, KafkaUUID)], on connection: TestConnection) async throws -> [DeleteTopicsResponse.DeletableTopicResult] {
        var request = DeleteTopicsRequest()
        request.topics = entries.map { name, id in
            var state = DeleteTopicsRequest.DeleteTopicState()
            state.name = name
            state.topicId = id
            return state
        }
        request.timeoutMs = 5000
        return try await connection.request(request, version: 6, expecting: DeleteTopicsResponse.self).responses
    }

    @Test("A topic's id is random, the same in CreateTopics and Metadata, kept across a restart, and new when re-created")
    func ids() async throws {
        let broker = try await TestBroker.start()
        var connection = try await TestConnection(port: broker.port)
        let created = try await ProduceFetchTests.createTopic("named", partitions: 1, on: connection, version: 7)
        #expect(created.topicId != .zero)
        #expect(try await Self.metadataId("named", on: connection) == created.topicId)
        #expect(try await Self.metadataId("named", version: 10, on: connection) == created.topicId)
        try await connection.close()
        try await broker.stop(keepingData: true)
        let again = try await TestBroker.start(directory: broker.directory)
        connection = try await TestConnection(port: again.port)
        #expect(try await Self.metadataId("named", on: connection) == created.topicId)
        #expect(try await Self.delete([("named", .zero)], on: connection).map(\.errorCode) == [0])
        let recreated = try await ProduceFetchTests.createTopic("named", partitions: 1, on: connection, version: 7)
        #expect(recreated.topicId != .zero && recreated.topicId != created.topicId)
        try await connection.close()
        try await again.stop()
    }

    @Test("DeleteTopics v6 by id: the topic goes; an unknown id gets UNKNOWN_TOPIC_ID, name and id together INVALID_REQUEST, a duplicate INVALID_REQUEST")
    func deleteById() async throws {
        try await TestBroker.with { broker in
            let connection = try await TestConnection(port: broker.port)
            let id = try await ProduceFetchTests.createTopic("by-id", partitions: 2, on: connection, version: 7).topicId
            let other = try await ProduceFetchTests.createTopic("kept", partitions: 1, on: connection, version: 7).topicId
            let refused = try await Self.delete([(nil, .random()), ("kept", other), ("kept", .zero), ("kept", .zero)], on: connection)
            #expect(refused.map(\.errorCode) == [ErrorCode.unknownTopicId.rawValue, ErrorCode.invalidRequest.rawValue, ErrorCode.invalidRequest.rawValue, ErrorCode.invalidRequest.rawValue])
            #expect(broker.broker.dispatcher.topics.topic("kept") != nil)
            let deleted = try await Self.delete([(nil, id)], on: connection)
            #expect(deleted.map(\.errorCode) == [0])
            #expect(deleted.first?.name == "by-id" && deleted.first?.topicId == id)
            #expect(broker.broker.dispatcher.topics.topic("by-id") == nil)
            #expect(try await Self.delete([(nil, id)], on: connection).map(\.errorCode) == [ErrorCode.unknownTopicId.rawValue])
            try await connection.close()
        }
    }

    @Test("Kafka's text form of an id round-trips, and anything else is refused")
    func text() {
        let id = KafkaUUID(high: 0x0123_4567_89ab_cdef, low: 0xfedc_ba98_7654_3210)
        #expect(id.text.count == 22)
        #expect(KafkaUUID(text: id.text) == id)
        #expect(KafkaUUID(text: "AAAAAAAAAAAAAAAAAAAAAA") == .zero)
        #expect(KafkaUUID(text: "short") == nil)
        #expect(KafkaUUID(text: "!!!!!!!!!!!!!!!!!!!!!!") == nil)
    }
}
