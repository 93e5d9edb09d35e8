import Foundation
import SamsaProtocol
import Testing
@testable import SamsaBroker
import SamsaTestSupport

/// DescribeProducers (KIP-664): the leader's active idempotent producers per partition, rebuilt from
/// the log after a restart, with Kafka's error for each kind of bad partition.
@Suite("DescribeProducers")
struct DescribeProducersTests {
    static func request(_ topics: [(String, [Int32])]) -> DescribeProducersRequest {
        var request = DescribeProducersRequest()
        request.topics = topics.map { name, partitions in
            var topic = DescribeProducersRequest.TopicRequest()
            topic.name = name
            topic.partitionIndexes = partitions
            return topic
        }
        return request
    }

    static func describe(_ topics: [(String, [Int32])], on connection: TestConnection) async throws -> DescribeProducersResponse {
        try await connection.request(request(topics), version: 0, expecting: DescribeProducersResponse.self)
    }

    @Test("active producers with epoch, last sequence and timestamp; after a restart too; bad partitions get Kafka's errors")
    func producersAndErrors() async throws {
        let first = try await TestBroker.start()
        let directory = first.directory
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var producers: [(id: Int64, epoch: Int16)] = []
        do {
            let connection = try await TestConnection(port: first.port)
            _ = try await ProduceFetchTests.createTopic("described", partitions: 2, on: connection)
            let before = try await Self.describe([("described", [0])], on: connection)
            #expect(before.topics.first?.partitions.first?.activeProducers == [], "none before any produce")
            for _ in 0..<2 {
                let initialised = try await connection.request(InitProducerIdRequest.nullTransaction, version: 4, expecting: InitProducerIdResponse.self)
                producers.append((initialised.producerId, initialised.producerEpoch))
            }
            // The first producer sends 3 + 4 records (last sequence 6), the second 2 (last sequence 1).
            let batches = [
                try makeBatch(count: 3, producer: (producers[0].id, producers[0].epoch, 0)),
                try makeBatch(count: 4, producer: (producers[0].id, producers[0].epoch, 3)),
                try makeBatch(count: 2, producer: (producers[1].id, producers[1].epoch, 0)),
            ]
            for batch in batches { #expect(try await ProduceFetchTests.produce([batch], to: "described", on: connection).errorCode == 0) }
            try await Self.expectProducers(producers, lastSequences: [6, 1], on: connection)
            try await connection.close()
        }
        try await first.stop(keepingData: true)

        let second = try await TestBroker.start(directory: directory)
        let connection = try await TestConnection(port: second.port)
        // Rebuilt from the log before any append.
        try await Self.expectProducers(producers, lastSequences: [6, 1], on: connection)

        let bad = try await Self.describe([("nope", [0]), ("described", [2, -1, 1, 1]), ("bad/name", [0]), ("empty", [])], on: connection)
        #expect(bad.topics.map(\.name) == ["nope", "described", "bad/name", "empty"])
        #expect(bad.topics[0].partitions.map(\.errorCode) == [ErrorCode.unknownTopicOrPartition.rawValue])
        let described = bad.topics[1].partitions
        #expect(described.map(\.partitionIndex) == [2, -1, 1], "a partition named twice is answered once")
        #expect(described.map(\.errorCode) == [ErrorCode.unknownTopicOrPartition.rawValue, ErrorCode.unknownTopicOrPartition.rawValue, 0])
        #expect(described[2].activeProducers.isEmpty)
        #expect(bad.topics[2].partitions.map(\.errorCode) == [ErrorCode.invalidTopic.rawValue])
        #expect(bad.topics[3].partitions.isEmpty)
        #expect(try await Self.describe([], on: connection).topics.isEmpty)
        let wide = try await Self.describe([("described", (0..<1_000).map { Int32($0) })], on: connection)
        let wideResults = try #require(wide.topics.first).partitions
        #expect(wideResults.count == 1_000 && wideResults.prefix(2).allSatisfy { $0.errorCode == 0 })
        #expect(wideResults.dropFirst(2).allSatisfy { $0.errorCode == ErrorCode.unknownTopicOrPartition.rawValue })
        try await connection.close()
        try await second.stop(keepingData: true)
    }

    static func expectProducers(_ producers: [(id: Int64, epoch: Int16)], lastSequences: [Int32], on connection: TestConnection) async throws {
        let response = try await describe([("described", [0])], on: connection)
        let partition = try #require(response.topics.first?.partitions.first)
        #expect(partition.errorCode == 0)
        let states = partition.activeProducers.sorted { $0.producerId < $1.producerId }
        #expect(states.map(\.producerId) == producers.map(\.id).sorted())
        for (producer, last) in zip(producers, lastSequences) {
            let state = try #require(states.first { $0.producerId == producer.id })
            #expect(state.producerEpoch == Int32(producer.epoch) && state.lastSequence == last)
            #expect(state.lastTimestamp > 1_700_000_000_000, "when its last batch was appended")
            #expect(state.coordinatorEpoch == -1 && state.currentTxnStartOffset == -1)
        }
    }
}
