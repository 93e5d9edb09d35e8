import NIOCore
import SamsaProtocol
import SamsaRecords
import SamsaStorage
import Testing
@testable import SamsaBroker

/// Produce, Fetch, ListOffsets, Metadata and CreateTopics through the codecs against a real broker.
@Suite("Broker produce and fetch")
struct ProduceFetchTests {
    static func createTopic(
        _ name: String, partitions: Int32, on connection: TestConnection, version: Int16 = 5, configs: [String: String] = [:]
    ) async throws -> CreateTopicsResponse.CreatableTopicResult {
        var topic = CreateTopicsRequest.CreatableTopic()
        topic.name = name
        topic.numPartitions = partitions
        topic.replicationFactor = -1
        topic.configs = configs.map { name, value in
            var config = CreateTopicsRequest.CreatableTopicConfig()
            config.name = name
            config.value = value
            return config
        }
        var request = CreateTopicsRequest()
        request.topics = [topic]
        let response = try await connection.request(request, version: version, expecting: CreateTopicsResponse.self)
        return try #require(response.topics.first)
    }

    static func produce(_ batches: [RecordBatch], to topic: String, partition: Int32 = 0, acks: Int16 = -1, version: Int16 = 9,
                        on connection: TestConnection) async throws -> ProduceResponse.PartitionProduceResponse {
        var records = ByteBuffer()
        for batch in batches { records.writeImmutableBuffer(batch.buffer) }
        return try await produce(records: records, to: topic, partition: partition, acks: acks, version: version, on: connection)
    }

    /// Produces raw bytes as a partition's records (hand-made or hostile batches).
    static func produce(
        records: ByteBuffer, to topic: String, partition: Int32 = 0, acks: Int16 = -1, version: Int16 = 9, transactionalId: String? = nil,
        on connection: TestConnection
    ) async throws -> ProduceResponse.PartitionProduceResponse {
        var data = ProduceRequest.PartitionProduceData()
        data.index = partition
        data.records = records
        var topicData = ProduceRequest.TopicProduceData()
        topicData.name = topic
        topicData.partitionData = [data]
        var request = ProduceRequest()
        request.acks = acks
        request.timeoutMs = 5000
        request.transactionalId = transactionalId
        request.topicData = [topicData]
        let response = try await connection.request(request, version: version, expecting: ProduceResponse.self)
        return try #require(response.responses.first?.partitionResponses.first)
    }

    static func fetchRequest(_ topic: String, offset: Int64, maxWaitMs: Int32 = 0, minBytes: Int32 = 0) -> FetchRequest {
        var partition = FetchRequest.FetchPartition()
        partition.partition = 0
        partition.fetchOffset = offset
        partition.partitionMaxBytes = 1 << 20
        var fetchTopic = FetchRequest.FetchTopic()
        fetchTopic.topic = topic
        fetchTopic.partitions = [partition]
        var request = FetchRequest()
        request.maxWaitMs = maxWaitMs
        request.minBytes = minBytes
        request.topics = [fetchTopic]
        return request
    }

    /// The records' values in the fetched bytes, from `offset` on.
    static func values(in records: ByteBuffer?, from offset: Int64) throws -> [String] {
        var remaining = records ?? ByteBuffer()
        var values: [String] = []
        while remaining.readableBytes > 0 {
            let batch = try RecordBatch(validating: remaining)
            remaining.moveReaderIndex(forwardBy: batch.sizeInBytes)
            for record in try batch.decodeRecords() where record.offset >= offset {
                values.append(String(buffer: record.value!))
            }
        }
        return values
    }

    @Test("Produce assigns offsets; fetch, flexible and not, returns the records", arguments: [(Int16(9), Int16(12)), (3, 4), (8, 11)])
    func produceThenFetch(versions: (produce: Int16, fetch: Int16)) async throws {
        try await TestBroker.with(flushPolicy: .everyAppend) { broker in
            let connection = try await TestConnection(port: broker.port)
            #expect(try await Self.createTopic("events", partitions: 1, on: connection).errorCode == 0)
            let first = try await Self.produce([try makeBatch(count: 3)], to: "events", version: versions.produce, on: connection)
            #expect(first.errorCode == 0 && first.baseOffset == 0)
            let second = try await Self.produce(
                [try makeBatch(count: 2, compression: .lz4, startingAt: 3), try makeBatch(count: 1, compression: .zstd, startingAt: 5)],
                to: "events", version: versions.produce, on: connection)
            #expect(second.errorCode == 0 && second.baseOffset == 3)

            let response = try await connection.request(Self.fetchRequest("events", offset: 1), version: versions.fetch, expecting: FetchResponse.self)
            let partition = try #require(response.responses.first?.partitions.first)
            #expect(partition.errorCode == 0)
            #expect(partition.highWatermark == 6)
            #expect(partition.logStartOffset == (versions.fetch >= 5 ? 0 : -1))
            #expect(try Self.values(in: partition.records, from: 1) == (1..<6).map { "value-\($0)" })
            try await connection.close()
        }
    }

    @Test("A long-polling fetch is woken by an append on another connection")
    func longPollWokenByAppend() async throws {
        try await TestBroker.with { broker in
            let consumer = try await TestConnection(port: broker.port)
            let producer = try await TestConnection(port: broker.port)
            _ = try await Self.createTopic("waits", partitions: 1, on: producer)
            // Waits up to a minute unless the append wakes it.
            let started = ContinuousClock.now
            async let fetched = consumer.request(
                Self.fetchRequest("waits", offset: 0, maxWaitMs: 60_000, minBytes: 1), version: 12, expecting: FetchResponse.self)
            // Append only once the fetch waits, so the append is what wakes it.
            while broker.broker.dispatcher.fetchWaits.waiting == 0 && ContinuousClock.now - started < .seconds(30) {
                try await Task.sleep(for: .milliseconds(5))
            }
            #expect(try await Self.produce([try makeBatch(count: 1)], to: "waits", on: producer).errorCode == 0)
            let partition = try #require(try await fetched.responses.first?.partitions.first)
            #expect(try Self.values(in: partition.records, from: 0) == ["value-0"])
            #expect(ContinuousClock.now - started < .seconds(30), "the append did not wake the fetch")
            try await consumer.close()
            try await producer.close()
        }
    }

    @Test("An empty fetch waits max_wait_ms, then returns no records")
    func emptyFetchTimesOut() async throws {
        try await TestBroker.with { broker in
            let connection = try await TestConnection(port: broker.port)
            _ = try await Self.createTopic("quiet", partitions: 1, on: connection)
            let response = try await connection.request(
                Self.fetchRequest("quiet", offset: 0, maxWaitMs: 200, minBytes: 1), version: 12, expecting: FetchResponse.self)
            let partition = try #require(response.responses.first?.partitions.first)
            #expect(partition.errorCode == 0 && partition.highWatermark == 0)
            #expect(partition.records?.readableBytes ?? 0 == 0)
            try await connection.close()
        }
    }

    @Test("Produce v2 with an old message set and Fetch v2 are UNSUPPORTED_FOR_MESSAGE_FORMAT")
    func oldMessageFormats() async throws {
        try await TestBroker.with { broker in
            let connection = try await TestConnection(port: broker.port)
            _ = try await ProduceFetchTests.createTopic("legacy", partitions: 1, on: connection)
            var old = try makeBatch(count: 1).buffer
            old.setInteger(UInt8(1), at: old.readerIndex + RecordBatchLayout.magicOffset)
            var data = ProduceRequest.PartitionProduceData()
            data.records = old
            var topic = ProduceRequest.TopicProduceData()
            topic.name = "legacy"
            topic.partitionData = [data]
            var request = ProduceRequest()
            request.acks = 1
            request.topicData = [topic]
            let produced = try await connection.request(request, version: 2, expecting: ProduceResponse.self)
            #expect(produced.responses.first?.partitionResponses.first?.errorCode == ErrorCode.unsupportedForMessageFormat.rawValue)
            let fetched = try await connection.request(Self.fetchRequest("legacy", offset: 0), version: 2, expecting: FetchResponse.self)
            #expect(fetched.responses.first?.partitions.first?.errorCode == ErrorCode.unsupportedForMessageFormat.rawValue)
            try await connection.close()
        }
    }

    @Test("Fetch past the end is OFFSET_OUT_OF_RANGE; unknown topics are UNKNOWN_TOPIC_OR_PARTITION")
    func fetchErrors() async throws {
        try await TestBroker.with { broker in
            let connection = try await TestConnection(port: broker.port)
            _ = try await Self.createTopic("small", partitions: 1, on: connection)
            _ = try await Self.produce([try makeBatch(count: 2)], to: "small", on: connection)
            let past = try await connection.request(Self.fetchRequest("small", offset: 5), version: 11, expecting: FetchResponse.self)
            #expect(past.responses.first?.partitions.first?.errorCode == ErrorCode.offsetOutOfRange.rawValue)
            let unknown = try await connection.request(Self.fetchRequest("nope", offset: 0), version: 11, expecting: FetchResponse.self)
            #expect(unknown.responses.first?.partitions.first?.errorCode == ErrorCode.unknownTopicOrPartition.rawValue)
            let produced = try await Self.produce([try makeBatch(count: 1)], to: "nope", on: connection)
            #expect(produced.errorCode == ErrorCode.unknownTopicOrPartition.rawValue)
            try await connection.close()
        }
    }

    @Test("Bad batches are refused and nothing is written")
    func badBatchesRefused() async throws {
        try await TestBroker.with { broker in
            let connection = try await TestConnection(port: broker.port)
            _ = try await Self.createTopic("strict", partitions: 1, on: connection)
            let good = try makeBatch(count: 2)
            // A flipped byte inside the CRC's range.
            var corrupt = good.buffer
            let position = corrupt.readerIndex + RecordBatchLayout.headerLength + 2
            corrupt.setInteger(corrupt.getInteger(at: position, as: UInt8.self)! ^ 0xFF, at: position)
            // Magic 1: an old message set.
            var old = good.buffer
            old.setInteger(UInt8(1), at: old.readerIndex + RecordBatchLayout.magicOffset)
            for (bytes, code) in [(corrupt, ErrorCode.corruptMessage), (old, .unsupportedForMessageFormat)] {
                var data = ProduceRequest.PartitionProduceData()
                data.records = bytes
                var topic = ProduceRequest.TopicProduceData()
                topic.name = "strict"
                topic.partitionData = [data]
                var request = ProduceRequest()
                request.acks = 1
                // A good batch first: the partition must refuse the whole set.
                var records = good.buffer
                records.writeImmutableBuffer(bytes)
                topic.partitionData[0].records = records
                request.topicData = [topic]
                let response = try await connection.request(request, version: 7, expecting: ProduceResponse.self)
                #expect(response.responses.first?.partitionResponses.first?.errorCode == code.rawValue)
            }
            var offsets = ListOffsetsRequest()
            var topic = ListOffsetsRequest.ListOffsetsTopic()
            topic.name = "strict"
            var partition = ListOffsetsRequest.ListOffsetsPartition()
            partition.timestamp = -1
            topic.partitions = [partition]
            offsets.topics = [topic]
            let latest = try await connection.request(offsets, version: 7, expecting: ListOffsetsResponse.self)
            #expect(latest.topics.first?.partitions.first?.offset == 0)
            try await connection.close()
        }
    }

    @Test("ListOffsets: earliest, latest and by timestamp")
    func listOffsets() async throws {
        try await TestBroker.with { broker in
            let connection = try await TestConnection(port: broker.port)
            _ = try await Self.createTopic("times", partitions: 1, on: connection)
            _ = try await Self.produce([try makeBatch(count: 10)], to: "times", on: connection)
            for (timestamp, expected) in [(Int64(-1), Int64(10)), (-2, 0), (1_700_000_000_004, 4), (1_800_000_000_000, -1)] {
                for version: Int16 in [1, 5, 7] {
                    var partition = ListOffsetsRequest.ListOffsetsPartition()
                    partition.timestamp = timestamp
                    var topic = ListOffsetsRequest.ListOffsetsTopic()
                    topic.name = "times"
                    topic.partitions = [partition]
                    var request = ListOffsetsRequest()
                    request.replicaId = -1
                    request.topics = [topic]
                    let response = try await connection.request(request, version: version, expecting: ListOffsetsResponse.self)
                    let result = try #require(response.topics.first?.partitions.first)
                    #expect(result.errorCode == 0)
                    #expect(result.offset == expected, "timestamp \(timestamp) v\(version)")
                    if timestamp > 0 && version > 0 {
                        // The found record's own timestamp (makeBatch stamps record n with base + n).
                        #expect(result.timestamp == (expected < 0 ? -1 : 1_700_000_000_000 + expected))
                    }
                }
            }
            try await connection.close()
        }
    }

    @Test("CreateTopics validates; Metadata lists topics and auto-creates only when enabled", arguments: [false, true])
    func createAndMetadata(autoCreate: Bool) async throws {
        try await TestBroker.with(autoCreateTopics: autoCreate) { broker in
            let connection = try await TestConnection(port: broker.port)
            #expect(try await Self.createTopic("orders", partitions: 3, on: connection).numPartitions == 3)
            #expect(try await Self.createTopic("orders", partitions: 3, on: connection).errorCode == ErrorCode.topicAlreadyExists.rawValue)
            #expect(try await Self.createTopic("bad/name", partitions: 1, on: connection).errorCode == ErrorCode.invalidTopic.rawValue)
            #expect(try await Self.createTopic("none", partitions: 0, on: connection).errorCode == ErrorCode.invalidPartitions.rawValue)

            for version: Int16 in [0, 4, 8, 12] {
                var request = MetadataRequest()
                var orders = MetadataRequest.MetadataRequestTopic()
                orders.name = "orders"
                var unknown = MetadataRequest.MetadataRequestTopic()
                unknown.name = "fresh-\(version)"
                request.topics = [orders, unknown]
                let response = try await connection.request(request, version: version, expecting: MetadataResponse.self)
                #expect(response.brokers.map(\.port) == [Int32(broker.port)])
                let found = try #require(response.topics.first { $0.name == "orders" })
                #expect(found.errorCode == 0 && found.partitions.map(\.partitionIndex) == [0, 1, 2])
                let fresh = try #require(response.topics.first { $0.name == "fresh-\(version)" })
                #expect(fresh.errorCode == (autoCreate ? 0 : ErrorCode.unknownTopicOrPartition.rawValue), "v\(version)")
            }
            var all = MetadataRequest()
            all.topics = nil
            let everything = try await connection.request(all, version: 12, expecting: MetadataResponse.self)
            #expect(everything.topics.compactMap(\.name).contains("orders"))
            try await connection.close()
        }
    }
}
