import Foundation
import NIOCore
import SamsaProtocol
import SamsaRecords
import SamsaStorage
import SamsaTestSupport
import Testing
@testable import SamsaBroker

/// `compression.type`, Kafka's topic config and broker config of that name: which values are taken
/// (gzip and snappy refused: Samsa cannot write them), what DescribeConfigs shows and from which
/// source, and what the produce path stores: `producer` keeps each batch as written, a codec makes
/// the leader recompress a batch in any other codec, keeping what Kafka's `LogValidator` keeps, within
/// the decompression permits and `max.message.bytes`.
@Suite("Topic compression.type", .offCooperativePool)
struct TopicCompressionTests {
    /// Every batch of partition 0 of `topic`, as stored.
    static func storedBatches(_ broker: TestBroker, _ topic: String) throws -> [RecordBatch] {
        let log = try #require(broker.broker.dispatcher.topics.log(topic, 0))
        var batches: [RecordBatch] = []
        var offset = log.logStartOffset
        while offset < log.logEndOffset, var bytes = try log.read(from: offset, maxBytes: 1 << 20) {
            while bytes.readableBytes > 0 {
                let batch = try RecordBatch(validating: bytes)
                bytes.moveReaderIndex(forwardBy: batch.sizeInBytes)
                batches.append(batch)
                offset = batch.nextOffset
            }
        }
        return batches
    }

    /// A batch whose every field a recompression must keep differs from a builder's defaults: a
    /// producer id, epoch and sequence, keys (some null), null and empty values, headers (one with a
    /// null value), timestamps out of order.
    static func richBatch(_ codec: CompressionCodec, first: Int = 0, count: Int = 12, sequence: Int32 = 0) throws -> RecordBatch {
        var builder = RecordBatchBuilder(compression: codec)
        builder.producerId = 4242
        builder.producerEpoch = 7
        builder.baseSequence = sequence
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        for index in first..<(first + count) {
            let headers = index % 3 == 0 ? [RecordHeader(key: "trace", value: Array("t-\(index)".utf8)), RecordHeader(key: "empty", value: nil as [UInt8]?)] : []
            let value: [UInt8]? = index % 5 == 4 ? nil : index % 5 == 3 ? [] : Array(String(repeating: "value-\(index) ", count: 20).utf8)
            builder.append(timestamp: now - Int64((index * 37) % 11) * 1000, key: index % 2 == 0 ? Array("key-\(index % 4)".utf8) : nil, value: value, headers: headers)
        }
        return try builder.build()
    }

    /// What a reader sees of a record, offsets relative to the batch.
    struct Seen: Equatable, CustomStringConvertible {
        var delta: Int64, timestamp: Int64, key: [UInt8]?, value: [UInt8]?, headers: [RecordHeader]
        var description: String { "#\(delta) @\(timestamp) key \(key.map { String(decoding: $0, as: UTF8.self) } ?? "nil") \(value?.count ?? -1) bytes \(headers.count) headers" }
    }

    static func seen(_ batch: RecordBatch) throws -> [Seen] {
        try batch.decodeRecords().map {
            Seen(delta: $0.offset - batch.baseOffset, timestamp: $0.timestamp, key: $0.keyBytes, value: $0.valueBytes, headers: $0.headers)
        }
    }

    /// The batch-level fields Kafka keeps when it rebuilds a batch, and the records.
    static func expectKept(_ stored: RecordBatch, from produced: RecordBatch, codec: CompressionCodec, sourceLocation: SourceLocation = #_sourceLocation) throws {
        #expect(stored.compression == codec, sourceLocation: sourceLocation)
        #expect(stored.producerId == produced.producerId && stored.producerEpoch == produced.producerEpoch, sourceLocation: sourceLocation)
        #expect(stored.baseSequence == produced.baseSequence && stored.recordCount == produced.recordCount, sourceLocation: sourceLocation)
        #expect(stored.lastOffsetDelta == produced.lastOffsetDelta, sourceLocation: sourceLocation)
        #expect(stored.baseTimestamp == produced.baseTimestamp && stored.maxTimestamp == produced.maxTimestamp, sourceLocation: sourceLocation)
        #expect(stored.isTransactional == produced.isTransactional && stored.isControlBatch == produced.isControlBatch, sourceLocation: sourceLocation)
        #expect(stored.timestampType == produced.timestampType, sourceLocation: sourceLocation)
        #expect(try seen(stored) == seen(produced), sourceLocation: sourceLocation)
    }

    static func create(_ name: String, compression: String?, on connection: TestConnection, more: [(String, String?)] = []) async throws -> CreateTopicsResponse.CreatableTopicResult {
        try await TopicConfigTests.create(name, configs: (compression.map { [("compression.type", $0)] } ?? []) + more, on: connection)
    }

    @Test("A topic the embedded queue made with --compression lz4: DescribeConfigs shows compression.type=lz4 as the topic's own (DYNAMIC_TOPIC_CONFIG), and the broker stores lz4")
    func embeddedTopic() async throws {
        let directory = temporaryPath("samsa-embedded-compression")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        _ = try await ClientProcess.run([
            BrokerProcessTests.binary.path, "topics", "create", "--dir", directory, "--topic", "orders", "--partitions", "1", "--compression", "lz4",
        ])
        let broker = try await TestBroker.start(directory: directory)
        do {
            let connection = try await TestConnection(port: broker.port)
            let described = try await AlterConfigsTests.describe(ConfigResource.topicType, "orders", on: connection)
            #expect(described.errorCode == 0, "\(described.errorMessage ?? "")")
            let entry = try #require(described.configs.first { $0.name == "compression.type" })
            #expect(entry.value == "lz4")
            #expect(entry.configSource == ConfigSource.topic.rawValue)
            #expect(entry.synonyms.map(\.source) == [ConfigSource.topic.rawValue, ConfigSource.kafkaDefault.rawValue])
            #expect(entry.synonyms.last?.value == "producer")
            let produced = try Self.richBatch(.none)
            #expect(try await ProduceFetchTests.produce([produced], to: "orders", on: connection).errorCode == 0)
            let stored = try #require(try Self.storedBatches(broker, "orders").first)
            try Self.expectKept(stored, from: produced, codec: .lz4)
            try await connection.close()
        } catch {
            try await broker.stop(keepingData: true)
            throw error
        }
        try await broker.stop(keepingData: true)
    }

    @Test("compression.type=zstd: an uncompressed and an lz4 batch are stored zstd with every field kept, a zstd batch byte for byte; Fetch serves them")
    func recompressesToTopicCodec() async throws {
        try await TestBroker.with { broker in
            let connection = try await TestConnection(port: broker.port)
            #expect(try await Self.create("zstd-topic", compression: "zstd", on: connection).errorCode == 0)
            let produced = [try Self.richBatch(.none), try Self.richBatch(.lz4, first: 12, sequence: 12), try Self.richBatch(.zstd, first: 24, sequence: 24)]
            for (index, batch) in produced.enumerated() {
                let answer = try await ProduceFetchTests.produce([batch], to: "zstd-topic", on: connection)
                #expect(answer.errorCode == 0 && answer.baseOffset == Int64(index * 12), "\(answer.errorMessage ?? "")")
            }
            let stored = try Self.storedBatches(broker, "zstd-topic")
            try #require(stored.count == 3)
            for (kept, original) in zip(stored, produced) { try Self.expectKept(kept, from: original, codec: .zstd) }
            // Already the topic's codec: stored as produced (the CRC covers everything but offset and epoch).
            #expect(stored[2].crc == produced[2].crc)
            #expect(stored[0].sizeInBytes < produced[0].sizeInBytes)

            let fetched = try await connection.request(ProduceFetchTests.fetchRequest("zstd-topic", offset: 0), version: 12, expecting: FetchResponse.self)
            var records = try #require(fetched.responses.first?.partitions.first?.records)
            var index = 0
            while records.readableBytes > 0 {
                let batch = try RecordBatch(validating: records)
                records.moveReaderIndex(forwardBy: batch.sizeInBytes)
                try Self.expectKept(batch, from: produced[index], codec: .zstd)
                #expect(batch.baseOffset == Int64(index * 12))
                index += 1
            }
            #expect(index == 3)
            try await connection.close()
        }
    }

    @Test("compression.type=uncompressed stores lz4 and zstd batches uncompressed")
    func decompressesIntoUncompressedTopic() async throws {
        try await TestBroker.with { broker in
            let connection = try await TestConnection(port: broker.port)
            #expect(try await Self.create("plain", compression: "uncompressed", on: connection).errorCode == 0)
            let produced = [try Self.richBatch(.lz4), try Self.richBatch(.zstd, first: 12, sequence: 12)]
            #expect(try await ProduceFetchTests.produce(produced, to: "plain", on: connection).errorCode == 0)
            let stored = try Self.storedBatches(broker, "plain")
            try #require(stored.count == 2)
            for (kept, original) in zip(stored, produced) { try Self.expectKept(kept, from: original, codec: .none) }
            try await connection.close()
        }
    }

    @Test("producer (the default, and set) keeps every batch in its producer's codec, byte for byte", arguments: [nil, "producer"])
    func producerKeepsCodec(_ setting: String?) async throws {
        try await TestBroker.with { broker in
            let connection = try await TestConnection(port: broker.port)
            #expect(try await Self.create("as-written", compression: setting, on: connection).errorCode == 0)
            let produced = [try Self.richBatch(.none), try Self.richBatch(.lz4, first: 12, sequence: 12), try Self.richBatch(.zstd, first: 24, sequence: 24)]
            for batch in produced { #expect(try await ProduceFetchTests.produce([batch], to: "as-written", on: connection).errorCode == 0) }
            let stored = try Self.storedBatches(broker, "as-written")
            #expect(stored.map(\.compression) == [.none, .lz4, .zstd])
            #expect(stored.map(\.crc) == produced.map(\.crc))
            let described = try await TopicConfigTests.describe("as-written", on: connection)
            #expect(described["compression.type"]?.value == "producer")
            #expect(described["compression.type"]?.configSource == (setting == nil ? ConfigSource.kafkaDefault : .topic).rawValue)
            try await connection.close()
        }
    }

    @Test("gzip and snappy are refused as INVALID_CONFIG saying Samsa cannot store them, as are unknown values, by CreateTopics and both AlterConfigs, topic and broker")
    func refusedValues() async throws {
        try await TestBroker.with { broker in
            let connection = try await TestConnection(port: broker.port)
            #expect(try await Self.create("t", compression: "lz4", on: connection).errorCode == 0)
            for value in ["gzip", "snappy", "brotli", "LZ4", "none", ""] {
                let created = try await Self.create("refused", compression: value, on: connection)
                #expect(created.errorCode == ErrorCode.invalidConfig.rawValue, "\(value)")
                let message = created.errorMessage ?? ""
                if value == "gzip" || value == "snappy" {
                    #expect(message.contains("cannot store \(value)") && message.contains("lz4 and zstd"), "\(message)")
                } else {
                    #expect(message.contains("String must be one of"), "\(message)")
                }
                #expect(broker.broker.dispatcher.topics.topic("refused") == nil)
                let incremental = try await AlterConfigsTests.incremental([
                    (type: ConfigResource.topicType, name: "t", configs: [("compression.type", .set, value)]),
                    (type: ConfigResource.brokerType, name: "0", configs: [("compression.type", .set, value)]),
                    (type: ConfigResource.brokerType, name: "", configs: [("compression.type", .set, value)]),
                ], on: connection)
                #expect(incremental.map(\.errorCode) == Array(repeating: ErrorCode.invalidConfig.rawValue, count: 3), "\(value): \(incremental.map(\.errorMessage))")
                let legacy = try await AlterConfigsTests.legacy(ConfigResource.topicType, "t", [("compression.type", value)], on: connection)
                #expect(legacy.errorCode == ErrorCode.invalidConfig.rawValue, "\(value)")
            }
            // Nothing changed: the topic still stores lz4, the broker still `producer`.
            let topic = try await TopicConfigTests.describe("t", on: connection)
            #expect(topic["compression.type"]?.value == "lz4")
            let brokerConfigs = AlterConfigsTests.values(try await AlterConfigsTests.describe(ConfigResource.brokerType, "0", on: connection))
            #expect(brokerConfigs["compression.type"] == "producer")
            try await connection.close()
        }
    }

    @Test("The broker's compression.type (configuration, then dynamic) is what topics without their own follow; DescribeConfigs shows its source and synonyms")
    func brokerLevel() async throws {
        let broker = try await TestBroker.start { $0.compressionType = .lz4 }
        do {
            let connection = try await TestConnection(port: broker.port)
            #expect(try await Self.create("follows", compression: nil, on: connection).errorCode == 0)
            #expect(try await Self.create("own", compression: "producer", on: connection).errorCode == 0)
            func described() async throws -> DescribeConfigsResponse.DescribeConfigsResourceResult {
                try #require(try await AlterConfigsTests.describe(ConfigResource.topicType, "follows", on: connection).configs.first { $0.name == "compression.type" })
            }
            var entry = try await described()
            #expect(entry.value == "lz4" && entry.configSource == ConfigSource.staticBroker.rawValue)
            #expect(entry.synonyms.map(\.name) == ["compression.type", "compression.type"])
            #expect(entry.synonyms.map(\.value) == ["lz4", "producer"])
            let brokerEntry = try #require(try await AlterConfigsTests.describe(ConfigResource.brokerType, "0", on: connection).configs.first { $0.name == "compression.type" })
            #expect(brokerEntry.value == "lz4" && brokerEntry.configSource == ConfigSource.staticBroker.rawValue && brokerEntry.readOnly == false)

            #expect(try await ProduceFetchTests.produce([try makeBatch(count: 3)], to: "follows", on: connection).errorCode == 0)
            #expect(try await ProduceFetchTests.produce([try makeBatch(count: 3)], to: "own", on: connection).errorCode == 0)
            #expect(try Self.storedBatches(broker, "follows").map(\.compression) == [.lz4])
            #expect(try Self.storedBatches(broker, "own").map(\.compression) == [.none])

            // A dynamic broker config wins over the static one, at once.
            let altered = try await AlterConfigsTests.incremental(
                [(type: ConfigResource.brokerType, name: "0", configs: [("compression.type", .set, "zstd")])], on: connection)
            #expect(altered.map(\.errorCode) == [0])
            entry = try await described()
            #expect(entry.value == "zstd" && entry.configSource == ConfigSource.dynamicBroker.rawValue)
            #expect(entry.synonyms.map(\.source) == [ConfigSource.dynamicBroker, .staticBroker, .kafkaDefault].map(\.rawValue))
            #expect(try await ProduceFetchTests.produce([try makeBatch(count: 2, startingAt: 3)], to: "follows", on: connection).errorCode == 0)
            #expect(try Self.storedBatches(broker, "follows").map(\.compression) == [.lz4, .zstd])
            #expect(try await ProduceFetchTests.produce([try makeBatch(count: 2, startingAt: 3)], to: "own", on: connection).errorCode == 0)
            #expect(try Self.storedBatches(broker, "own").map(\.compression) == [.none, .none])
            try await connection.close()
        } catch {
            try await broker.stop()
            throw error
        }
        try await broker.stop()
    }

    @Test("An idempotent producer's retry into a recompressing topic is a duplicate at its first offset, a gap OUT_OF_ORDER_SEQUENCE_NUMBER, across a restart too")
    func idempotentRetries() async throws {
        let first = try await TestBroker.start(flushPolicy: .everyAppend)
        var connection = try await TestConnection(port: first.port)
        #expect(try await Self.create("retried", compression: "zstd", on: connection).errorCode == 0)
        let batches = [try Self.richBatch(.none), try Self.richBatch(.lz4, first: 12, sequence: 12)]
        #expect(try await ProduceFetchTests.produce([batches[0]], to: "retried", on: connection).baseOffset == 0)
        let retry = try await ProduceFetchTests.produce([batches[0]], to: "retried", on: connection)
        #expect(retry.errorCode == 0 && retry.baseOffset == 0)
        #expect(try await ProduceFetchTests.produce([batches[1]], to: "retried", on: connection).baseOffset == 12)
        let gap = try await ProduceFetchTests.produce([try Self.richBatch(.none, first: 40, sequence: 40)], to: "retried", on: connection)
        #expect(gap.errorCode == ErrorCode.outOfOrderSequenceNumber.rawValue)
        #expect(first.broker.dispatcher.topics.log("retried", 0)?.logEndOffset == 24)
        try await connection.close()
        try await first.stop(keepingData: true)

        // The producer state rebuilt from the stored (recompressed) batches knows the last one.
        let second = try await TestBroker.start(flushPolicy: .everyAppend, directory: first.directory)
        connection = try await TestConnection(port: second.port)
        let afterRestart = try await ProduceFetchTests.produce([batches[1]], to: "retried", on: connection)
        #expect(afterRestart.errorCode == 0 && afterRestart.baseOffset == 12)
        #expect(try await ProduceFetchTests.produce([try Self.richBatch(.lz4, first: 24, sequence: 24)], to: "retried", on: connection).baseOffset == 24)
        let stored = try Self.storedBatches(second, "retried")
        #expect(stored.map(\.baseSequence) == [0, 12, 24] && stored.allSatisfy { $0.compression == .zstd })
        try await connection.close()
        try await second.stop()
    }

    @Test("Bounded: a zstd bomb into an uncompressed topic and a batch too large once recompressed are MESSAGE_TOO_LARGE; bombs into an lz4 topic take permits")
    func bounded() async throws {
        try await TestBroker.with { broker in
            let connection = try await TestConnection(port: broker.port)
            #expect(try await Self.create("plain", compression: "uncompressed", on: connection).errorCode == 0)
            var builder = RecordBatchBuilder(compression: .zstd)
            builder.append(timestamp: 1, key: nil, value: [UInt8](repeating: 0, count: 32 << 20))
            let bomb = try builder.build()
            #expect(bomb.sizeInBytes < 64 << 10)
            let refused = try await ProduceFetchTests.produce([bomb], to: "plain", on: connection)
            #expect(refused.errorCode == ErrorCode.messageSizeTooLarge.rawValue, "\(refused.errorMessage ?? "")")
            #expect(broker.broker.dispatcher.topics.log("plain", 0)?.logEndOffset == 0)

            // 100 KiB of random bytes twice: zstd finds the repeat, lz4's 64 KiB window cannot, so the
            // lz4 batch is about twice the zstd one and above this topic's max.message.bytes.
            var random = [UInt8](repeating: 0, count: 100 << 10)
            var generator = SystemRandomNumberGenerator()
            for index in random.indices { random[index] = UInt8.random(in: 0...255, using: &generator) }
            builder = RecordBatchBuilder(compression: .zstd)
            builder.append(timestamp: 1, key: nil, value: random + random)
            let repeated = try builder.build()
            #expect(repeated.sizeInBytes < 120 << 10)
            #expect(try await Self.create("small-lz4", compression: "lz4", on: connection, more: [("max.message.bytes", "\(150 << 10)")]).errorCode == 0)
            let tooLarge = try await ProduceFetchTests.produce([repeated], to: "small-lz4", on: connection)
            #expect(tooLarge.errorCode == ErrorCode.messageSizeTooLarge.rawValue, "\(tooLarge.errorMessage ?? "")")
            #expect(tooLarge.errorMessage?.contains("recompressed to lz4") == true)

            // Four bombs into four lz4 partitions at once: stored, a permit at a time at most `count`.
            let permits = broker.broker.dispatcher.topics.context.decompression
            #expect(try await ProduceFetchTests.createTopic("bombs", partitions: 4, on: connection, configs: ["compression.type": "lz4"]).errorCode == 0)
            var topic = ProduceRequest.TopicProduceData()
            topic.name = "bombs"
            topic.partitionData = (0..<4).map { index in
                var data = ProduceRequest.PartitionProduceData()
                data.index = Int32(index)
                data.records = bomb.buffer
                return data
            }
            var request = ProduceRequest()
            request.acks = 1
            request.timeoutMs = 30_000
            request.topicData = [topic]
            let response = try await connection.request(request, version: 9, expecting: ProduceResponse.self)
            #expect(response.responses.first?.partitionResponses.map(\.errorCode) == [0, 0, 0, 0])
            #expect(permits.mostHeld >= 1 && permits.mostHeld <= permits.count)
            let stored = try #require(try Self.storedBatches(broker, "bombs").first)
            #expect(stored.compression == .lz4 && stored.sizeInBytes < 1 << 20)
            #expect(try stored.decodeRecords().first?.value?.readableBytes == 32 << 20)
            try await connection.close()
        }
    }
    @Test("samsa broker --compression-type lz4 (and compression-type in --config) is the broker's compression.type; gzip, snappy and unknown values are refused naming the option")
    func brokerOption() async throws {
        let directory = temporaryPath("samsa-compression-option")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let configFile = directory + ".conf"
        defer { try? FileManager.default.removeItem(atPath: configFile) }
        try "compression-type = zstd\n".write(toFile: configFile, atomically: true, encoding: .utf8)
        for (extra, codec) in [(["--compression-type", "lz4"], CompressionCodec.lz4), (["--config", configFile], .zstd)] {
            let broker = try BrokerProcessTests.BrokerProcess(directory: directory, extra: extra)
            let connection = try await TestConnection(port: broker.port)
            let configs = AlterConfigsTests.values(try await AlterConfigsTests.describe(ConfigResource.brokerType, "0", on: connection))
            #expect(configs["compression.type"] == codec.description, "\(extra)")
            let topic = "follows-\(codec)"
            #expect(try await ProduceFetchTests.createTopic(topic, partitions: 1, on: connection).errorCode == 0)
            #expect(try await ProduceFetchTests.produce([try makeBatch(count: 3)], to: topic, on: connection).errorCode == 0)
            let fetched = try await connection.request(ProduceFetchTests.fetchRequest(topic, offset: 0), version: 12, expecting: FetchResponse.self)
            let records = try #require(fetched.responses.first?.partitions.first?.records)
            #expect(try RecordBatch(validating: records).compression == codec, "\(extra)")
            try await connection.close()
            broker.signal(SIGTERM)
        }

        for bad in ["gzip", "snappy", "LZ4", "none"] {
            let process = Process()
            process.executableURL = BrokerProcessTests.binary
            process.arguments = ["broker", "--dir", directory, "--listen", "127.0.0.1:0", "--compression-type", bad]
            let errors = Pipe()
            process.standardOutput = FileHandle.nullDevice
            process.standardError = errors
            try process.run()
            let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            #expect(process.terminationStatus != 0 && message.contains("compression-type"), "\(bad) is refused, naming the option: \(message)")
        }
    }
}
