import Foundation
import NIOCore
import SamsaProtocol
import SamsaRecords
import SamsaStorage
import SamsaTestSupport
import Testing
@testable import SamsaBroker

/// Compacted topics on the broker (issue 23): keyless records refused per partition with
/// INVALID_RECORD, cleaned logs (gaps, emptied batches) read by real clients from anywhere, and a
/// follower catching up from inside a range its leader's cleaner removed.
@Suite("Compacted topics on the broker")
struct CompactedTopicTests {
    /// One batch of keyed records (nil value: a tombstone).
    static func keyedBatch(_ entries: [(key: String, value: String?)]) throws -> RecordBatch {
        var builder = RecordBatchBuilder()
        for (index, entry) in entries.enumerated() {
            builder.append(
                timestamp: 1_700_000_000_000 + Int64(index), key: ByteBuffer(string: entry.key), value: entry.value.map { ByteBuffer(string: $0) })
        }
        return try builder.build()
    }

    /// Every record of `log` below its end as (offset, key, value), in offset order.
    static func records(_ log: PartitionLog) throws -> [(offset: Int64, key: String, value: String?)] {
        var result: [(offset: Int64, key: String, value: String?)] = []
        var offset = log.logStartOffset
        while offset < log.logEndOffset, let bytes = try log.read(from: offset, maxBytes: 1 << 20) {
            var remaining = bytes
            while remaining.readableBytes > 0 {
                let batch = try RecordBatch(validating: remaining)
                remaining.moveReaderIndex(forwardBy: batch.sizeInBytes)
                offset = batch.nextOffset
                for record in try batch.decodeRecords() {
                    result.append((record.offset, String(buffer: record.key ?? ByteBuffer()), record.value.map { String(buffer: $0) }))
                }
            }
        }
        return result
    }

    /// Every batch of `log` whose base offset is at or past `start`: its base offset, the offset after
    /// it and its bytes as stored.
    static func batches(_ log: PartitionLog, from start: Int64) throws -> [(baseOffset: Int64, nextOffset: Int64, bytes: [UInt8])] {
        var result: [(baseOffset: Int64, nextOffset: Int64, bytes: [UInt8])] = []
        var offset = start
        while offset < log.logEndOffset, let bytes = try log.read(from: offset, maxBytes: 1 << 20) {
            var remaining = bytes
            while remaining.readableBytes > 0 {
                let batch = try RecordBatch(validating: remaining)
                remaining.moveReaderIndex(forwardBy: batch.sizeInBytes)
                offset = batch.nextOffset
                if batch.baseOffset >= start { result.append((batch.baseOffset, batch.nextOffset, Array(batch.buffer.readableBytesView))) }
            }
        }
        return result
    }

    /// `updates` updates in batches of 5 over `keys` keys (`k<i>` = `v<n>`), then a tombstone of `k0`.
    /// Returns each key's latest record (offset, value) by key.
    static func fill(
        _ topic: String, updates: Int, keys: Int, startingAt first: Int = 0, on connection: TestConnection, acks: Int16 = -1
    ) async throws -> [String: (offset: Int64, value: String?)] {
        var latest: [String: (offset: Int64, value: String?)] = [:]
        for start in stride(from: first, to: first + updates, by: 5) {
            let entries = (start..<(start + 5)).map { (key: "k\($0 % keys)", value: Optional("v\($0)")) }
            let answer = try await ProduceFetchTests.produce([try keyedBatch(entries)], to: topic, acks: acks, on: connection)
            #expect(answer.errorCode == 0)
            for (index, entry) in entries.enumerated() { latest[entry.key] = (answer.baseOffset + Int64(index), entry.value) }
        }
        return latest
    }

    /// Runs a blocking clean of `partition` off the cooperative pool.
    static func clean(_ cleaner: LogCleaner, _ partition: TopicPartition) async -> Bool {
        await withCheckedContinuation { done in DispatchQueue.global().async { done.resume(returning: cleaner.clean(partition)) } }
    }

    @Test("A record without key is refused with INVALID_RECORD and Kafka's message on a compacted topic only, for that partition only")
    func keylessRefused() async throws {
        try await TestBroker.with { broker in
            let connection = try await TestConnection(port: broker.port)
            #expect(try await TopicConfigTests.create("compacted", configs: [("cleanup.policy", "compact,delete")], on: connection).errorCode == 0)
            _ = try await ProduceFetchTests.createTopic("plain", partitions: 1, on: connection)
            #expect(try await connection.createTopic("two", partitions: 2, replicationFactor: 1, configs: ["cleanup.policy": "compact"]).errorCode == 0)
            var builder = RecordBatchBuilder()
            builder.append(timestamp: 1, key: ByteBuffer(string: "a"), value: ByteBuffer(string: "1"))
            builder.append(timestamp: 2, key: nil, value: ByteBuffer(string: "2"))
            let mixed = try builder.build()
            // Two partitions of one topic in one request: the keyless one fails alone.
            var request = ProduceRequest()
            request.acks = -1
            request.timeoutMs = 5000
            var topicData = ProduceRequest.TopicProduceData()
            topicData.name = "two"
            var keyless = ProduceRequest.PartitionProduceData()
            keyless.index = 0
            keyless.records = mixed.buffer
            var keyed = ProduceRequest.PartitionProduceData()
            keyed.index = 1
            keyed.records = try Self.keyedBatch([("a", "1"), ("b", nil)]).buffer
            topicData.partitionData = [keyless, keyed]
            request.topicData = [topicData]
            let answers = try #require(try await connection.request(request, version: 9, expecting: ProduceResponse.self).responses.first?.partitionResponses)
            #expect(answers.map(\.errorCode) == [ErrorCode.invalidRecord.rawValue, 0])
            #expect(answers[0].errorMessage == "Compacted topic cannot accept message without key in topic partition two-0.")
            #expect(broker.broker.dispatcher.topics.log("two", 0)?.logEndOffset == 0, "nothing of the refused batch is written")
            #expect(broker.broker.dispatcher.topics.log("two", 1)?.logEndOffset == 2)
            #expect(try await ProduceFetchTests.produce([mixed], to: "compacted", on: connection).errorCode == ErrorCode.invalidRecord.rawValue)
            // A topic that does not compact takes keyless records.
            #expect(try await ProduceFetchTests.produce([try makeBatch(count: 2)], to: "plain", on: connection).errorCode == 0)
            try await connection.close()
        }
    }

    @Test("Compaction configs are stored, shown by DescribeConfigs and reach the log")
    func configsReachTheLog() async throws {
        try await TestBroker.with { broker in
            let connection = try await TestConnection(port: broker.port)
            let configs: [(String, String?)] = [
                ("cleanup.policy", "delete,compact"), ("delete.retention.ms", "2000"), ("min.cleanable.dirty.ratio", "0.01"),
                ("min.compaction.lag.ms", "5"), ("max.compaction.lag.ms", "60000"), ("segment.ms", "1000"),
            ]
            #expect(try await TopicConfigTests.create("c", configs: configs, on: connection).errorCode == 0)
            let log = try #require(broker.broker.dispatcher.topics.log("c", 0))
            let settings = log.configuration
            #expect(settings.cleanupPolicy == .compactAndDelete && settings.deleteRetentionMilliseconds == 2000)
            #expect(settings.minCleanableDirtyRatio == 0.01 && settings.minCompactionLagMilliseconds == 5)
            #expect(settings.maxCompactionLagMilliseconds == 60000 && settings.segmentMilliseconds == 1000)
            var describe = DescribeConfigsRequest()
            var resource = DescribeConfigsRequest.DescribeConfigsResource()
            resource.resourceType = 2
            resource.resourceName = "c"
            resource.configurationKeys = nil
            describe.resources = [resource]
            let described = try await connection.request(describe, version: 4, expecting: DescribeConfigsResponse.self)
            let values = Dictionary(uniqueKeysWithValues: (described.results.first?.configs ?? []).map { ($0.name, $0.value) })
            #expect(values["cleanup.policy"] == "delete,compact" && values["min.cleanable.dirty.ratio"] == "0.01")
            #expect(values["delete.retention.ms"] == "2000" && values["max.compaction.lag.ms"] == "60000")
            let ratio = described.results.first?.configs.first { $0.name == "min.cleanable.dirty.ratio" }
            #expect(ratio?.configType == ConfigKey.ConfigType.double.rawValue)
            resource.resourceType = 4
            resource.resourceName = "0"
            describe.resources = [resource]
            let brokerConfigs = try await connection.request(describe, version: 4, expecting: DescribeConfigsResponse.self)
            let brokerValues = Dictionary(uniqueKeysWithValues: (brokerConfigs.results.first?.configs ?? []).map { ($0.name, $0.value) })
            #expect(brokerValues["log.cleanup.policy"] == "delete" && brokerValues["log.cleaner.enable"] == "true")
            #expect(brokerValues["log.cleaner.min.cleanable.ratio"] == "0.5" && brokerValues["log.cleaner.delete.retention.ms"] == "86400000")
            #expect(brokerValues["log.cleaner.threads"] == "1" && brokerValues["log.cleaner.dedupe.buffer.size"] == "134217728")
            try await connection.close()
        }
    }

    /// The clients that read a cleaned log in `readCleanedLog`.
    static let clients = [
        "confluent-kafka-2.0.2", "confluent-kafka-2.16.2", "kafka-python-2.0.2", "kafka-python-3.0.12", "aiokafka-0.8.1", "aiokafka-0.14.0",
    ]

    struct ReadOutcome: Decodable {
        var client: String
        var version: String
        /// [offset, key, value] (the offset as text).
        var records: [[String?]]
        var keyless: String

        /// The records as (offset, key, value).
        var parsed: [(offset: Int64, key: String, value: String?)] {
            records.map { (Int64($0[0] ?? "") ?? -1, $0[1] ?? "", $0[2]) }
        }
    }

    @Test("Real clients read a cleaned log from its start and from inside removed ranges: each key's latest record, in offset order", arguments: clients)
    func readCleanedLog(_ client: String) async throws {
        let broker = try await TestBroker.start(flushPolicy: .everyAppend) { settings in settings.cleaner.enabled = false }
        do {
            let connection = try await TestConnection(port: broker.port)
            let configs: [(String, String?)] = [("cleanup.policy", "compact"), ("segment.bytes", "2048"), ("delete.retention.ms", "3600000")]
            #expect(try await TopicConfigTests.create("cleaned", configs: configs, on: connection).errorCode == 0)
            var latest = try await Self.fill("cleaned", updates: 400, keys: 20, on: connection)
            let tombstone = try await ProduceFetchTests.produce([try Self.keyedBatch([("k0", nil)])], to: "cleaned", on: connection)
            latest["k0"] = (tombstone.baseOffset, nil)
            let log = try #require(broker.broker.dispatcher.topics.log("cleaned", 0))
            try log.roll()
            #expect(await Self.clean(broker.broker.dispatcher.logs.cleaner, TopicPartition(topic: "cleaned", partition: 0)))
            let kept = try Self.records(log)
            let expected = latest.map { (offset: $0.value.offset, key: $0.key, value: $0.value.value) }.sorted { $0.offset < $1.offset }
            #expect(kept.map{ $0.offset } == expected.map{ $0.offset }, "the cleaned log holds each key's latest record only")
            // The first offset after the first removed one: a read there starts inside a gap.
            let removed = try #require((0..<log.logEndOffset).first { offset in !kept.contains { $0.offset == offset } })
            for start in [Int64(0), removed] {
                let data = try await ClientProcess.run([
                    "timeout", "-k", "5", "120", try RecordsAdminClientTests.python(client),
                    PythonClient.interop.appendingPathComponent("compacted_read.py").path, "127.0.0.1:\(broker.port)", "cleaned", "\(start)",
                    "\(log.logEndOffset)",
                ])
                let outcome = try JSONDecoder().decode(ReadOutcome.self, from: data)
                let wanted = expected.filter { $0.offset >= start }
                #expect(outcome.parsed.map{ $0.offset } == wanted.map{ $0.offset }, "\(client) from \(start)")
                #expect(outcome.parsed.map{ $0.key } == wanted.map{ $0.key } && outcome.parsed.map{ $0.value } == wanted.map{ $0.value }, "\(client) from \(start)")
                // aiokafka and kafka-python 2.0 have no error class for code 87: they raise UnknownError for it.
                let refusals = client.hasPrefix("aiokafka") || client == "kafka-python-2.0.2" ? ["UnknownError"] : ["INVALID_RECORD", "InvalidRecordError"]
                #expect(refusals.contains(outcome.keyless), "\(client): a keyless record is refused (\(outcome.keyless))")
            }
            try await connection.close()
        } catch {
            try await broker.stop()
            throw error
        }
        try await broker.stop()
    }

    @Test("A follower stopped, its leader cleaned past the follower's end, the follower restarted: it catches up with the leader's offsets")
    func followerCatchesUpThroughCleanedRange() async throws {
        let cluster = try TestCluster(lagMs: 2000)
        for id in Int32(1)...3 { try await cluster.start(BrokerID(id)) { $0.cleaner.enabled = false } }
        do {
            let configs = ["cleanup.policy": "compact", "segment.bytes": "2048", "min.cleanable.dirty.ratio": "0.01", "delete.retention.ms": "3600000"]
            let connection = try await cluster.connection(1)
            #expect(try await connection.createTopic("compacted", replicationFactor: 3, configs: configs).errorCode == 0)
            try await connection.close()
            let first = try await cluster.settled("compacted")
            let leader = first.leader
            let follower = try #require(first.isr.first { $0 != leader })
            var toLeader = try await cluster.connection(leader)
            _ = try await Self.fill("compacted", updates: 500, keys: 10, on: toLeader)
            // The follower has everything so far.
            try await Self.waitUntil { cluster.log(follower, "compacted")?.logEndOffset == 500 }
            try await cluster.stop(follower)
            var latest = try await Self.fill("compacted", updates: 500, keys: 10, startingAt: 500, on: toLeader, acks: 1)
            let tombstone = try await ProduceFetchTests.produce([try Self.keyedBatch([("k3", nil)])], to: "compacted", acks: 1, on: toLeader)
            latest["k3"] = (tombstone.baseOffset, nil)
            try await toLeader.close()
            let leaderLog = try #require(cluster.log(leader, "compacted"))
            try leaderLog.roll()
            let partition = TopicPartition(topic: "compacted", partition: 0)
            #expect(await Self.clean(try requireBroker(cluster.broker(leader)).dispatcher.logs.cleaner, partition))
            // The follower's next fetch offset is inside a removed range: the leader's first batch there starts later.
            let served = try #require(try leaderLog.read(from: 500, maxBytes: 1))
            #expect(try RecordBatch(validating: served).baseOffset > 500, "offset 500 was cleaned away on the leader")

            try await cluster.start(follower) { $0.cleaner.enabled = false }
            try await Self.waitUntil(timeout: .seconds(30)) { cluster.log(follower, "compacted")?.logEndOffset == leaderLog.logEndOffset }
            let followerLog = try #require(cluster.log(follower, "compacted"))
            let onLeader = try Self.records(leaderLog)
            let onFollower = try Self.records(followerLog).filter { $0.offset >= 500 }
            #expect(onFollower.map{ $0.offset } == onLeader.filter { $0.offset >= 500 }.map{ $0.offset }, "every record at the leader's offset")
            #expect(onFollower.map{ $0.value } == onLeader.filter { $0.offset >= 500 }.map{ $0.value })
            // Kafka's follower appends the leader's batches as they are (`appendAsFollower`): from the
            // follower's fetch offset on, the same batches, at the same base offsets, byte for byte, gaps included.
            let leaderBatches = try Self.batches(leaderLog, from: 500)
            let followerBatches = try Self.batches(followerLog, from: 500)
            #expect(followerBatches.map(\.baseOffset) == leaderBatches.map(\.baseOffset))
            #expect(followerBatches.map(\.bytes) == leaderBatches.map(\.bytes), "the follower's batches are the leader's bytes")
            #expect(leaderBatches.count > 1 && zip(leaderBatches, leaderBatches.dropFirst()).contains { $1.baseOffset > $0.nextOffset }, "gaps were copied")
            // Each key's latest value on the follower, at its offset, and the follower cleans itself to the same view.
            var newest: [String: (offset: Int64, value: String?)] = [:]
            for record in try Self.records(followerLog) { newest[record.key] = (record.offset, record.value) }
            #expect(newest.mapValues{ $0.offset } == latest.mapValues{ $0.offset } && newest.mapValues{ $0.value } == latest.mapValues{ $0.value })
            try followerLog.roll()
            #expect(await Self.clean(try requireBroker(cluster.broker(follower)).dispatcher.logs.cleaner, partition))
            #expect(try Self.records(followerLog).map{ $0.offset } == latest.values.map{ $0.offset }.sorted())
            // The follower is back in the ISR and takes writes with acks=all.
            toLeader = try await cluster.connection(leader)
            try await Self.waitUntil(timeout: .seconds(30)) { (try? await cluster.state("compacted").isr.contains(follower)) == true }
            #expect(try await ProduceFetchTests.produce([try Self.keyedBatch([("k1", "after")])], to: "compacted", on: toLeader).errorCode == 0)
            try await toLeader.close()
        } catch {
            try await cluster.stopAll()
            throw error
        }
        try await cluster.stopAll()
    }

    /// Polls `condition` every 50 ms until it holds or `timeout` passes (then fails the test).
    static func waitUntil(timeout: Duration = .seconds(10), _ condition: () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try await condition() { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        Issue.record("condition not met within \(timeout)")
    }
}
