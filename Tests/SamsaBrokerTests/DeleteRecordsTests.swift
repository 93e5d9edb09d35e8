import Foundation
import NIOCore
import SamsaProtocol
import SamsaRecords
import SamsaStorage
import Testing
@testable import SamsaBroker
import SamsaTestSupport

/// DeleteRecords (KIP-107): the leader's log start moves, durably, whole segments below it go,
/// consumers below it get OFFSET_OUT_OF_RANGE and ListOffsets earliest gives it; in a cluster every
/// ISR replica follows before the answer.
@Suite("DeleteRecords")
struct DeleteRecordsTests {
    /// A DeleteRecords request for `entries` (topic, partition, offset), in that order.
    static func request(_ entries: [(String, Int32, Int64)], timeoutMs: Int32 = 5_000) -> DeleteRecordsRequest {
        var request = DeleteRecordsRequest()
        request.timeoutMs = timeoutMs
        for (topic, partition, offset) in entries {
            var entry = DeleteRecordsRequest.DeleteRecordsPartition()
            entry.partitionIndex = partition
            entry.offset = offset
            if let last = request.topics.indices.last, request.topics[last].name == topic {
                request.topics[last].partitions.append(entry)
            } else {
                var named = DeleteRecordsRequest.DeleteRecordsTopic()
                named.name = topic
                named.partitions = [entry]
                request.topics.append(named)
            }
        }
        return request
    }

    /// Deletes before `offset` in partition 0 of `topic`: (error code, low watermark).
    static func delete(
        _ topic: String, before offset: Int64, version: Int16 = 2, timeoutMs: Int32 = 5_000, on connection: TestConnection
    ) async throws -> (Int16, Int64) {
        let response = try await connection.request(
            request([(topic, 0, offset)], timeoutMs: timeoutMs), version: version, expecting: DeleteRecordsResponse.self)
        let result = try #require(response.topics.first?.partitions.first)
        return (result.errorCode, result.lowWatermark)
    }

    /// 800 records `value-0` ... in 40 batches over 2 KiB segments.
    static func fill(_ topic: String, on connection: TestConnection) async throws {
        #expect(try await TopicConfigTests.create(topic, configs: [("segment.bytes", "2048")], on: connection).errorCode == 0)
        for round in 0..<40 {
            #expect(try await ProduceFetchTests.produce([try makeBatch(count: 20, startingAt: round * 20)], to: topic, on: connection).errorCode == 0)
        }
    }

    /// What a consumer sees at `offset`: the error code and the first value.
    static func fetchFirst(_ topic: String, at offset: Int64, on connection: TestConnection) async throws -> (Int16, String?) {
        let response = try await connection.request(ProduceFetchTests.fetchRequest(topic, offset: offset), version: 12, expecting: FetchResponse.self)
        let partition = try #require(response.responses.first?.partitions.first)
        return (partition.errorCode, try ProduceFetchTests.values(in: partition.records, from: offset).first)
    }

    /// The segment files' base offsets in a log directory.
    static func segmentFiles(_ directory: String) throws -> [Int64] {
        try FileManager.default.contentsOfDirectory(atPath: directory).compactMap { name in
            name.hasSuffix(".log") ? Int64(name.dropLast(4)) : nil
        }.sorted()
    }

    @Test("every version moves the log start, deletes the segments below it and answers it; consumers below get OFFSET_OUT_OF_RANGE")
    func everyVersion() async throws {
        try await TestBroker.with { broker in
            let connection = try await TestConnection(port: broker.port)
            try await Self.fill("trim", on: connection)
            let log = try #require(broker.broker.dispatcher.topics.log("trim", 0))
            for version in try #require(SupportedApis.versions[.deleteRecords]) {
                // Inside a segment, past its base.
                let target = Int64(version + 1) * 150 + 7
                let (error, low) = try await Self.delete("trim", before: target, version: version, on: connection)
                #expect(error == 0 && low == target, "v\(version)")
                #expect(log.logStartOffset == target)
                #expect(try await RetentionTests.logStart("trim", on: connection) == target, "ListOffsets earliest is the new log start")
                #expect(try await Self.fetchFirst("trim", at: target - 1, on: connection).0 == ErrorCode.offsetOutOfRange.rawValue)
                let at = try await Self.fetchFirst("trim", at: target, on: connection)
                #expect(at.0 == 0 && at.1 == "value-\(target)")
                let files = try Self.segmentFiles(log.directory)
                #expect(files.first! <= target && files.count >= 2 && files[1] > target, "v\(version): only the segment holding \(target) and later ones stay: \(files)")
            }
            try await connection.close()
        }
    }

    @Test("bad input: past the high watermark, below -1, below the log start, -1, unknown, duplicated, empty, 1,000 entries")
    func badInput() async throws {
        try await TestBroker.with { broker in
            let connection = try await TestConnection(port: broker.port)
            try await Self.fill("bounds", on: connection)
            let log = try #require(broker.broker.dispatcher.topics.log("bounds", 0))
            #expect(log.highWatermark == 800)

            // Past the high watermark, or below -1: OFFSET_OUT_OF_RANGE and nothing changes.
            for offset: Int64 in [801, Int64.max, -2, Int64.min] {
                let (error, low) = try await Self.delete("bounds", before: offset, on: connection)
                #expect(error == ErrorCode.offsetOutOfRange.rawValue && low == -1, "\(offset)")
            }
            #expect(log.logStartOffset == 0 && log.segmentCount > 2)

            #expect(try await Self.delete("bounds", before: 300, on: connection) == (0, 300))
            // Below the log start: nothing to do, answered with the low watermark.
            #expect(try await Self.delete("bounds", before: 100, on: connection) == (0, 300))
            #expect(try await Self.delete("bounds", before: 0, on: connection) == (0, 300))
            #expect(log.logStartOffset == 300)

            // Duplicated: one answer, with the last offset named (Kafka's map of partitions).
            let duplicated = try await connection.request(
                Self.request([("bounds", 0, 700), ("bounds", 0, 400)]), version: 2, expecting: DeleteRecordsResponse.self)
            #expect(duplicated.topics.count == 1 && duplicated.topics[0].partitions.count == 1)
            #expect(duplicated.topics[0].partitions[0].lowWatermark == 400 && log.logStartOffset == 400)

            // Unknown topics and partitions: UNKNOWN_TOPIC_OR_PARTITION, low watermark -1.
            let unknown = try await connection.request(
                Self.request([("nope", 0, 1), ("bounds", 99, 1), ("bounds", -1, 1)]), version: 2, expecting: DeleteRecordsResponse.self)
            let unknownResults = unknown.topics.flatMap(\.partitions)
            #expect(unknownResults.count == 3)
            #expect(unknownResults.allSatisfy { $0.errorCode == ErrorCode.unknownTopicOrPartition.rawValue && $0.lowWatermark == -1 }, "\(unknown)")

            // Empty: an empty answer.
            let empty = try await connection.request(DeleteRecordsRequest(), version: 2, expecting: DeleteRecordsResponse.self)
            #expect(empty.topics.isEmpty)

            // -1: the high watermark. Everything below it goes; the log takes appends after it.
            #expect(try await Self.delete("bounds", before: -1, on: connection) == (0, 800))
            #expect(try await Self.fetchFirst("bounds", at: 799, on: connection).0 == ErrorCode.offsetOutOfRange.rawValue)
            #expect(try await ProduceFetchTests.produce([try makeBatch(count: 5, startingAt: 800)], to: "bounds", on: connection).baseOffset == 800)
            #expect(try await Self.fetchFirst("bounds", at: 800, on: connection).1 == "value-800")

            // 1,000 entries over a 4-partition topic: 4 answered, 996 unknown, one answer each.
            _ = try await ProduceFetchTests.createTopic("wide", partitions: 4, on: connection)
            let wide = try await connection.request(
                Self.request((0..<1_000).map { ("wide", Int32($0), 0) }), version: 2, expecting: DeleteRecordsResponse.self)
            let wideResults = try #require(wide.topics.first).partitions
            #expect(wideResults.map(\.partitionIndex) == (0..<1_000).map { Int32($0) })
            #expect(wideResults.prefix(4).allSatisfy { $0.errorCode == 0 && $0.lowWatermark == 0 })
            #expect(wideResults.dropFirst(4).allSatisfy { $0.errorCode == ErrorCode.unknownTopicOrPartition.rawValue })
            try await connection.close()
        }
    }

    @Test("the moved log start survives a broker restart")
    func survivesRestart() async throws {
        let first = try await TestBroker.start()
        let directory = first.directory
        defer { try? FileManager.default.removeItem(atPath: directory) }
        do {
            let connection = try await TestConnection(port: first.port)
            try await Self.fill("kept", on: connection)
            #expect(try await Self.delete("kept", before: 333, on: connection) == (0, 333))
            try await connection.close()
        }
        try await first.stop(keepingData: true)
        let second = try await TestBroker.start(directory: directory)
        let connection = try await TestConnection(port: second.port)
        #expect(try await RetentionTests.logStart("kept", on: connection) == 333)
        #expect(try await Self.fetchFirst("kept", at: 332, on: connection).0 == ErrorCode.offsetOutOfRange.rawValue)
        #expect(try await Self.fetchFirst("kept", at: 333, on: connection).1 == "value-333")
        try await connection.close()
        try await second.stop(keepingData: true)
    }

    @Test("killed right after the answer (SIGKILL), the restarted broker keeps the new log start")
    func survivesKill() async throws {
        let directory = temporaryPath("samsa-broker")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let broker = try BrokerProcessTests.BrokerProcess(directory: directory)
        do {
            let connection = try await TestConnection(port: broker.port)
            try await Self.fill("killed", on: connection)
            // Mid-segment: only the checkpoint, not the deleted files, can bring the start back here.
            #expect(try await Self.delete("killed", before: 555, on: connection) == (0, 555))
            broker.signal(SIGKILL)
            try? await connection.close()
        }
        let restarted = try BrokerProcessTests.BrokerProcess(directory: directory)
        let connection = try await TestConnection(port: restarted.port)
        #expect(try await RetentionTests.logStart("killed", on: connection) == 555)
        #expect(try await Self.fetchFirst("killed", at: 554, on: connection).0 == ErrorCode.offsetOutOfRange.rawValue)
        #expect(try await Self.fetchFirst("killed", at: 555, on: connection).1 == "value-555")
        try await connection.close()
        restarted.signal(SIGTERM)
    }

    @Test("in a 3-broker cluster every replica's log start moves and its old segments go before the answer; a follower refuses; a cut follower times it out")
    func cluster() async throws {
        let cluster = try await TestCluster.start()
        do {
            let admin = try await cluster.connection(1)
            #expect(try await admin.createTopic("replicated", replicationFactor: 3, configs: ["segment.bytes": "2048"]).errorCode == 0)
            try await admin.close()
            let state = try await cluster.settled("replicated")
            let connection = try await cluster.connection(state.leader)
            for round in 0..<40 {
                #expect(try await connection.produce("replicated", count: 20, startingAt: round * 20).errorCode == 0)
            }
            let followers = state.isr.filter { $0 != state.leader }
            #expect(followers.count == 2)
            let follower = try await cluster.connection(followers[0])
            #expect(try await Self.delete("replicated", before: 100, on: follower) == (ErrorCode.notLeaderOrFollower.rawValue, -1))
            // A follower keeps no producer state to describe; it does describe its log directory.
            let producers = try await DescribeProducersTests.describe([("replicated", [0])], on: follower)
            #expect(producers.topics.first?.partitions.first?.errorCode == ErrorCode.notLeaderOrFollower.rawValue)
            let leaderProducers = try await DescribeProducersTests.describe([("replicated", [0])], on: connection)
            #expect(leaderProducers.topics.first?.partitions.first?.errorCode == 0)
            let dirs = try await follower.request(DescribeLogDirsTests.request(nil), version: 4, expecting: DescribeLogDirsResponse.self)
            let followerLog = try #require(cluster.log(followers[0], "replicated"))
            #expect(try DescribeLogDirsTests.partitions(dirs)["replicated-0"]?.0 == Int64(followerLog.sizeInBytes))
            #expect(try DescribeLogDirsTests.partitions(dirs)["replicated-0"]?.1 == 0)
            try await follower.close()

            #expect(try await Self.delete("replicated", before: 421, on: connection) == (0, 421), "answered once every ISR replica's log start is there")
            for broker in state.isr {
                let log = try #require(cluster.log(broker, "replicated"))
                #expect(log.logStartOffset == 421, "broker \(broker)")
                // On disk before the answer: a crash of every broker cannot bring the records back.
                let checkpoint = try OffsetCheckpoint.read("\(cluster.directory(broker))/log-start-offset-checkpoint", files: PosixFileSystem())
                #expect(checkpoint[TopicPartition(topic: "replicated", partition: 0)] == 421, "broker \(broker): \(checkpoint)")
                let files = try Self.segmentFiles(log.directory)
                #expect(files.first! <= 421 && files[1] > 421, "broker \(broker): \(files)")
            }

            // A follower that cannot fetch holds the answer up to the timeout; the leader moved anyway.
            cluster.links.cut(followers[1], state.leader)
            let (error, low) = try await Self.delete("replicated", before: 600, timeoutMs: 500, on: connection)
            #expect(error == ErrorCode.requestTimedOut.rawValue && low == 421)
            #expect(cluster.log(state.leader, "replicated")?.logStartOffset == 600)
            cluster.links.heal()
            try await eventually("the cut follower's log start follows once it fetches again") {
                cluster.log(followers[1], "replicated")?.logStartOffset == 600
            }
            try await connection.close()
        } catch {
            try await cluster.stopAll()
            throw error
        }
        try await cluster.stopAll()
    }
}
