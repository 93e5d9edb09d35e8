import NIOCore
import SamsaProtocol
import SamsaRecords
import Testing
@testable import SamsaBroker

/// Fetch v13+ names topics by id (KIP-516): every version from 4 to the highest served reads the same
/// records (by name before 13, by id from 13), an id the broker does not hold is UNKNOWN_TOPIC_ID, and a
/// topic deleted and re-created under its name is never read through the old id.
@Suite("Fetch by topic id")
struct FetchTopicIdTests {
    static func topicId(_ name: String, on connection: TestConnection) async throws -> KafkaUUID {
        var wanted = MetadataRequest.MetadataRequestTopic()
        wanted.name = name
        var request = MetadataRequest()
        request.topics = [wanted]
        let response = try await connection.request(request, version: 12, expecting: MetadataResponse.self)
        return try #require(response.topics.first?.topicId)
    }

    static func fetch(_ topic: String, id: KafkaUUID, version: Int16, on connection: TestConnection, twice: Bool = false) async throws -> FetchResponse {
        var request = ProduceFetchTests.fetchRequest(topic, offset: 0)
        request.topics[0].topicId = id
        if twice { request.topics.append(request.topics[0]) }
        return try await connection.request(request, version: version, expecting: FetchResponse.self)
    }

    /// The record offsets in a fetch response's first partition.
    static func offsets(_ response: FetchResponse) throws -> [Int64] {
        guard var records = response.responses.first?.partitions.first?.records else { return [] }
        var offsets: [Int64] = []
        while records.readableBytes > 0 {
            let batch = try RecordBatch(validating: records)
            records.moveReaderIndex(forwardBy: batch.sizeInBytes)
            offsets += (batch.baseOffset...batch.lastOffset).map { $0 }
        }
        return offsets
    }

    @Test("Every Fetch version reads the records: by name before v13, by id from v13 (answered by id)")
    func everyVersion() async throws {
        try await TestBroker.with { broker in
            let connection = try await TestConnection(port: broker.port)
            #expect(try await ProduceFetchTests.createTopic("events", partitions: 1, on: connection).errorCode == 0)
            #expect(try await ProduceFetchTests.produce([try makeBatch(count: 5)], to: "events", on: connection).errorCode == 0)
            let id = try await Self.topicId("events", on: connection)
            #expect(id != .zero)
            for version in try #require(SupportedApis.versions[.fetch]) where version >= 4 {
                let response = try await Self.fetch("events", id: id, version: version, on: connection, twice: true)
                let partition = try #require(response.responses.first?.partitions.first)
                #expect(partition.errorCode == 0, "v\(version)")
                #expect(try Self.offsets(response) == [0, 1, 2, 3, 4], "v\(version)")
                #expect(response.responses.count == 1 && response.responses[0].partitions.count == 1, "v\(version): a partition named twice is read once")
                if version >= 13 { #expect(response.responses[0].topicId == id, "v\(version)") }
            }
            try await connection.close()
        }
    }

    @Test("An unknown or zero topic id is UNKNOWN_TOPIC_ID; a re-created topic is not read through its old id")
    func unknownAndRecreated() async throws {
        try await TestBroker.with { broker in
            let connection = try await TestConnection(port: broker.port)
            #expect(try await ProduceFetchTests.createTopic("events", partitions: 1, on: connection).errorCode == 0)
            #expect(try await ProduceFetchTests.produce([try makeBatch(count: 5)], to: "events", on: connection).errorCode == 0)
            let old = try await Self.topicId("events", on: connection)
            for id in [KafkaUUID.zero, KafkaUUID(high: 1, low: 2)] {
                let response = try await Self.fetch("events", id: id, version: 13, on: connection)
                #expect(response.responses.first?.partitions.first?.errorCode == ErrorCode.unknownTopicId.rawValue)
                #expect(response.responses.first?.topicId == id)
            }
            var delete = DeleteTopicsRequest()
            delete.topicNames = ["events"]
            _ = try await connection.request(delete, version: 4, expecting: DeleteTopicsResponse.self)
            #expect(try await ProduceFetchTests.createTopic("events", partitions: 1, on: connection).errorCode == 0)
            #expect(try await ProduceFetchTests.produce([try makeBatch(count: 2)], to: "events", on: connection).errorCode == 0)
            let new = try await Self.topicId("events", on: connection)
            #expect(new != old)
            let stale = try await Self.fetch("events", id: old, version: 16, on: connection)
            #expect(stale.responses.first?.partitions.first?.errorCode == ErrorCode.unknownTopicId.rawValue)
            #expect(try Self.offsets(try await Self.fetch("events", id: new, version: 16, on: connection)) == [0, 1])
            try await connection.close()
        }
    }
}
