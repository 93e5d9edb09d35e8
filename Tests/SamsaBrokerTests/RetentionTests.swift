import Foundation
import NIOCore
import SamsaProtocol
import SamsaRecords
import SamsaStorage
import Testing
@testable import SamsaBroker
import SamsaTestSupport

/// The broker enforces topics' `retention.bytes` and `retention.ms` (Kafka's retention check): old
/// segments go, the log start moves, fetches below it are OFFSET_OUT_OF_RANGE, and a topic without
/// limits keeps everything.
@Suite("Broker retention")
struct RetentionTests {
    static func logStart(_ topic: String, on connection: TestConnection) async throws -> Int64 {
        var partition = ListOffsetsRequest.ListOffsetsPartition()
        partition.partitionIndex = 0
        partition.timestamp = -2  // earliest
        var entry = ListOffsetsRequest.ListOffsetsTopic()
        entry.name = topic
        entry.partitions = [partition]
        var request = ListOffsetsRequest()
        request.replicaId = -1
        request.topics = [entry]
        let response = try await connection.request(request, version: 7, expecting: ListOffsetsResponse.self)
        return try #require(response.topics.first?.partitions.first).offset
    }

    @Test("retention.bytes and retention.ms delete old segments (never the active one); a topic without limits keeps all")
    func deletesOldSegments() async throws {
        try await TestBroker.with { broker in
            let connection = try await TestConnection(port: broker.port)
            // 2 KiB segments: each 20-record batch (~500 B) fills a segment every few batches.
            #expect(try await TopicConfigTests.create("by-size", configs: [("segment.bytes", "2048"), ("retention.bytes", "4096")], on: connection).errorCode == 0)
            // The test batches carry timestamps from 2023: older than a day.
            #expect(try await TopicConfigTests.create("by-age", configs: [("segment.bytes", "2048"), ("retention.ms", "86400000")], on: connection).errorCode == 0)
            #expect(try await TopicConfigTests.create("forever", configs: [("segment.bytes", "2048")], on: connection).errorCode == 0)
            for topic in ["by-size", "by-age", "forever"] {
                for round in 0..<40 {
                    let produced = try await ProduceFetchTests.produce([try makeBatch(count: 20, startingAt: round * 20)], to: topic, on: connection)
                    #expect(produced.errorCode == 0)
                }
            }
            let removed = await broker.broker.dispatcher.retention.enforce()
            #expect(removed > 0)

            let bySize = try #require(broker.broker.dispatcher.topics.log("by-size", 0))
            #expect(bySize.logStartOffset > 0 && bySize.logEndOffset == 800)
            #expect(try await Self.logStart("by-size", on: connection) == bySize.logStartOffset)
            let segments = try FileManager.default.contentsOfDirectory(atPath: bySize.directory).filter { $0.hasSuffix(".log") }
            #expect(segments.count >= 2 && segments.count <= 4, "\(segments)")  // about 4 KiB kept, plus the active one

            let byAge = try #require(broker.broker.dispatcher.topics.log("by-age", 0))
            // Only the active segment is left: every closed one was older than a day.
            #expect(byAge.logStartOffset > 600 && byAge.logEndOffset == 800, "\(byAge.logStartOffset)")

            let forever = try #require(broker.broker.dispatcher.topics.log("forever", 0))
            #expect(forever.logStartOffset == 0 && forever.logEndOffset == 800)

            // Below the log start: OFFSET_OUT_OF_RANGE; at it, the records from there.
            let below = try await connection.request(ProduceFetchTests.fetchRequest("by-size", offset: 0), version: 12, expecting: FetchResponse.self)
            #expect(below.responses.first?.partitions.first?.errorCode == ErrorCode.offsetOutOfRange.rawValue)
            let at = try await connection.request(
                ProduceFetchTests.fetchRequest("by-size", offset: bySize.logStartOffset), version: 12, expecting: FetchResponse.self)
            let partition = try #require(at.responses.first?.partitions.first)
            #expect(partition.errorCode == 0 && partition.logStartOffset == bySize.logStartOffset)
            let values = try ProduceFetchTests.values(in: partition.records, from: bySize.logStartOffset)
            #expect(values.first == "value-\(bySize.logStartOffset)")
            try await connection.close()
        }
    }

    @Test("the periodic check runs by itself at retention-check interval")
    func periodicCheck() async throws {
        let directory = temporaryPath("samsa-broker")
        var configuration = BrokerConfiguration(
            dataDirectory: directory, port: 0, logConfiguration: LogConfiguration(segmentBytes: 2048, flushPolicy: .never, retentionBytes: 4096),
            eventLoopThreads: 1, ioThreads: 2)
        configuration.retentionCheckInterval = .milliseconds(100)
        let broker = TestBroker(broker: try await Broker.start(configuration), directory: directory)
        do {
            let connection = try await TestConnection(port: broker.port)
            #expect(try await ProduceFetchTests.createTopic("defaults", partitions: 1, on: connection).errorCode == 0)
            for round in 0..<40 {
                #expect(try await ProduceFetchTests.produce([try makeBatch(count: 20, startingAt: round * 20)], to: "defaults", on: connection).errorCode == 0)
            }
            let deadline = ContinuousClock.now + .seconds(30)
            while try await Self.logStart("defaults", on: connection) == 0 && ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(try await Self.logStart("defaults", on: connection) > 0, "the broker's default retention.bytes applied by the periodic check")
            try await connection.close()
        } catch {
            try await broker.stop()
            throw error
        }
        try await broker.stop()
    }
}
