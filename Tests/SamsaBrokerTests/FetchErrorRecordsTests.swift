import NIOCore
import SamsaProtocol
import SamsaRecords
import Testing
@testable import SamsaBroker

/// A partition answered with an error still carries an empty (not null) records field, as Kafka's
/// `FetchResponse.partitionResponse` sets `MemoryRecords.EMPTY`. librdkafka (every version from 2.0.2
/// to 2.16.2) treats a null records field as "invalid MessageSetSize -1", discards the whole response
/// and fetches again at once: a consumer below the log start (after DeleteRecords or retention) never
/// sees OFFSET_OUT_OF_RANGE, never resets, and spins thousands of fetches a second.
@Suite("Fetch error records")
struct FetchErrorRecordsTests {
    @Test("OFFSET_OUT_OF_RANGE and UNKNOWN_TOPIC_ID partitions carry empty records, not null, at every version")
    func errorPartitionsCarryEmptyRecords() async throws {
        try await TestBroker.with { broker in
            let connection = try await TestConnection(port: broker.port)
            #expect(try await ProduceFetchTests.createTopic("trimmed", partitions: 1, on: connection).errorCode == 0)
            #expect(try await ProduceFetchTests.produce([try makeBatch(count: 5)], to: "trimmed", on: connection).errorCode == 0)
            let id = try await FetchTopicIdTests.topicId("trimmed", on: connection)
            for version in try #require(SupportedApis.versions[.fetch]) where version >= 4 {
                // Past the log end: OFFSET_OUT_OF_RANGE.
                var request = ProduceFetchTests.fetchRequest("trimmed", offset: 1_000)
                request.topics[0].topicId = id
                let response = try await connection.request(request, version: version, expecting: FetchResponse.self)
                let partition = try #require(response.responses.first?.partitions.first)
                #expect(partition.errorCode == ErrorCode.offsetOutOfRange.rawValue, "v\(version)")
                #expect(partition.records != nil, "v\(version): OFFSET_OUT_OF_RANGE answered with null records")

                // A partition the topic does not have (by name) or an id not held here (by id).
                var unknown = ProduceFetchTests.fetchRequest("trimmed", offset: 0)
                unknown.topics[0].topicId = KafkaUUID(high: 1, low: 2)
                unknown.topics[0].partitions[0].partition = version >= 13 ? 0 : 7
                let other = try await connection.request(unknown, version: version, expecting: FetchResponse.self)
                let failed = try #require(other.responses.first?.partitions.first)
                #expect(failed.errorCode != 0, "v\(version)")
                #expect(failed.records != nil, "v\(version): error \(failed.errorCode) answered with null records")
            }
            try await connection.close()
        }
    }
}
