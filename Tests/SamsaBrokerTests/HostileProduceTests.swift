import NIOCore
import SamsaProtocol
import SamsaRecords
import Testing
@testable import SamsaBroker

/// What a client may not write (issue 20), with Kafka's error codes and nothing written: control
/// batches, transactional batches without transactions, an offset range that disagrees with the record
/// count, a producer id with a negative sequence, and batches past the limit recovery reads back.
@Suite("Hostile produce and create")
struct HostileProduceTests {
    /// `batch` with header fields changed and its CRC recomputed, as a hand-made client would send it.
    static func tampered(_ batch: RecordBatch, attributes: UInt16? = nil, lastOffsetDelta: Int32? = nil) -> ByteBuffer {
        var bytes = batch.buffer
        let start = bytes.readerIndex
        if let attributes { bytes.setInteger(attributes, at: start + RecordBatchLayout.attributesOffset) }
        if let lastOffsetDelta { bytes.setInteger(lastOffsetDelta, at: start + RecordBatchLayout.lastOffsetDeltaOffset) }
        let covered = bytes.getSlice(at: start + RecordBatchLayout.attributesOffset, length: bytes.readableBytes - RecordBatchLayout.attributesOffset)!
        bytes.setInteger(CRC32C.checksum(covered), at: start + RecordBatchLayout.crcOffset)
        return bytes
    }

    /// Produces one batch to a fresh topic and returns the partition's result and its log end after.
    static func produceOne(_ records: ByteBuffer, transactionalId: String? = nil) async throws -> (ProduceResponse.PartitionProduceResponse, Int64) {
        var outcome: (ProduceResponse.PartitionProduceResponse, Int64)?
        try await TestBroker.with { broker in
            let connection = try await TestConnection(port: broker.port)
            #expect(try await ProduceFetchTests.createTopic("target", partitions: 1, on: connection).errorCode == 0)
            let result = try await ProduceFetchTests.produce(records: records, to: "target", transactionalId: transactionalId, on: connection)
            // The connection still works, and nothing of the refused batch is in the log.
            #expect(try await ProduceFetchTests.produce([try makeBatch(count: 2)], to: "target", on: connection).errorCode == 0)
            let end = try #require(broker.broker.dispatcher.topics.log("target", 0)).logEndOffset
            outcome = (result, end - 2)
            try await connection.close()
        }
        return try #require(outcome)
    }

    @Test("A client's control batch is refused with INVALID_RECORD (librdkafka consumers would stall on it)")
    func controlBatch() async throws {
        let control = Self.tampered(try makeBatch(count: 1), attributes: 0x20)
        #expect(try RecordBatch(validating: control).isControlBatch)
        let (result, end) = try await Self.produceOne(control)
        #expect(result.errorCode == ErrorCode.invalidRecord.rawValue)
        #expect(end == 0)
    }

    @Test("A client's batch with the delete-horizon attribute (KIP-534, the cleaner's) is refused with INVALID_RECORD")
    func deleteHorizonBatch() async throws {
        let marked = Self.tampered(try makeBatch(count: 1), attributes: 0x40)
        #expect(try RecordBatch(validating: marked).hasDeleteHorizon)
        let (result, end) = try await Self.produceOne(marked)
        #expect(result.errorCode == ErrorCode.invalidRecord.rawValue)
        #expect(end == 0)
    }

    @Test("A transactional batch: TRANSACTIONAL_ID_AUTHORIZATION_FAILED without a transactional id, INVALID_TXN_STATE with one")
    func transactionalBatch() async throws {
        var builder = RecordBatchBuilder()
        builder.producerId = 7
        builder.producerEpoch = 0
        builder.baseSequence = 0
        builder.isTransactional = true
        builder.append(timestamp: 1, key: nil, value: ByteBuffer(string: "x"))
        let batch = try builder.build()
        let (anonymous, endAnonymous) = try await Self.produceOne(batch.buffer)
        #expect(anonymous.errorCode == ErrorCode.transactionalIdAuthorizationFailed.rawValue)
        #expect(endAnonymous == 0)
        let (named, endNamed) = try await Self.produceOne(batch.buffer, transactionalId: "tx")
        #expect(named.errorCode == ErrorCode.invalidTxnState.rawValue)
        #expect(endNamed == 0)
    }

    @Test("A last offset delta that disagrees with the record count (1 record claiming 2^31-1) is refused; the log end does not jump")
    func lastOffsetDelta() async throws {
        for delta: Int32 in [Int32.max, 1, -1] {
            let (result, end) = try await Self.produceOne(Self.tampered(try makeBatch(count: 1), lastOffsetDelta: delta))
            #expect(result.errorCode == ErrorCode.invalidRecord.rawValue, "delta \(delta)")
            #expect(end == 0)
        }
    }

    @Test("A producer id with sequence -1 is refused with INVALID_RECORD, never matched as a duplicate")
    func negativeSequence() async throws {
        let (result, end) = try await Self.produceOne(try makeBatch(count: 2, producer: (id: 5, epoch: 0, sequence: -1)).buffer)
        #expect(result.errorCode == ErrorCode.invalidRecord.rawValue)
        #expect(end == 0)
    }

    @Test("max.message.bytes above the largest batch a log reads back is INVALID_CONFIG; a 70 MB batch is MESSAGE_TOO_LARGE")
    func oneBatchLimit() async throws {
        try await TestBroker.with { broker in
            let connection = try await TestConnection(port: broker.port)
            let refused = try await ProduceFetchTests.createTopic("huge", partitions: 1, on: connection, configs: ["max.message.bytes": "104857600"])
            #expect(refused.errorCode == ErrorCode.invalidConfig.rawValue)
            #expect(broker.broker.dispatcher.topics.topic("huge") == nil)
            let limit = BatchValidation.maxBatchBytes
            #expect(try await ProduceFetchTests.createTopic("big", partitions: 1, on: connection, configs: ["max.message.bytes": "\(limit)"]).errorCode == 0)
            var builder = RecordBatchBuilder()
            builder.append(timestamp: 1, key: nil, value: [UInt8](repeating: 7, count: 70_000_000))
            let result = try await ProduceFetchTests.produce([try builder.build()], to: "big", on: connection)
            #expect(result.errorCode == ErrorCode.messageSizeTooLarge.rawValue)
            #expect(try await ProduceFetchTests.produce([try makeBatch(count: 3)], to: "big", on: connection).baseOffset == 0)
            try await connection.close()
        }
    }

    @Test("A topic listed twice in one CreateTopics gets one INVALID_REQUEST result and is not created")
    func duplicateCreate() async throws {
        try await TestBroker.with { broker in
            let connection = try await TestConnection(port: broker.port)
            var topic = CreateTopicsRequest.CreatableTopic()
            topic.name = "twice"
            topic.numPartitions = 1
            topic.replicationFactor = 1
            var other = topic
            other.name = "once"
            var request = CreateTopicsRequest()
            request.topics = [topic, other, topic]
            request.timeoutMs = 5000
            var expected = ["twice", "once"]
            for version in try #require(SupportedApis.versions[.createTopics]) {
                let response = try await connection.request(request, version: version, expecting: CreateTopicsResponse.self)
                #expect(response.topics.map(\.name) == expected, "v\(version)")
                #expect(response.topics.first?.errorCode == ErrorCode.invalidRequest.rawValue)
                // "once" exists after the first round.
                request.topics = [topic, topic]
                expected = ["twice"]
            }
            #expect(broker.broker.dispatcher.topics.topic("twice") == nil)
            try await connection.close()
        }
    }

    @Test("Partitions past max.broker.partitions are refused whole with POLICY_VIOLATION, also by automatic creation")
    func partitionLimit() async throws {
        let broker = try await TestBroker.start(autoCreateTopics: true, maxBrokerPartitions: 20)
        let connection = try await TestConnection(port: broker.port)
        #expect(try await ProduceFetchTests.createTopic("fifteen", partitions: 15, on: connection).errorCode == 0)
        let refused = try await ProduceFetchTests.createTopic("ten", partitions: 10, on: connection)
        #expect(refused.errorCode == ErrorCode.policyViolation.rawValue)
        #expect(refused.errorMessage?.contains("max.broker.partitions") == true)
        #expect(try await ProduceFetchTests.createTopic("hundred-thousand", partitions: 100_000, on: connection).errorCode == ErrorCode.policyViolation.rawValue)
        #expect(broker.broker.dispatcher.topics.partitionCount == 15)
        #expect(try await ProduceFetchTests.createTopic("five", partitions: 5, on: connection).errorCode == 0)
        // Automatic creation (one partition by default) stops at the limit too.
        var request = MetadataRequest()
        var named = MetadataRequest.MetadataRequestTopic()
        named.name = "auto"
        request.topics = [named]
        let metadata = try await connection.request(request, version: 9, expecting: MetadataResponse.self)
        #expect(metadata.topics.first?.errorCode == ErrorCode.unknownTopicOrPartition.rawValue)
        try await connection.close()
        try await broker.stop(keepingData: true)
        // Counted again from the data directory after a restart.
        let restarted = try await TestBroker.start(directory: broker.directory, maxBrokerPartitions: 20)
        #expect(restarted.broker.dispatcher.topics.partitionCount == 20)
        try await restarted.stop()
    }

    @Test("Error messages quote at most 256 characters of what the client sent (a 32,767-byte config name, every CreateTopics version)")
    func boundedMessages() async throws {
        try await TestBroker.with { broker in
            let connection = try await TestConnection(port: broker.port)
            for version in try #require(SupportedApis.versions[.createTopics]) where version >= 1 {
                let name = String(repeating: "n", count: 32_767)
                let result = try await ProduceFetchTests.createTopic("configured", partitions: 1, on: connection, version: version, configs: [name: "1"])
                #expect(result.errorCode == ErrorCode.invalidConfig.rawValue, "v\(version)")
                #expect((result.errorMessage?.utf8.count ?? 0) < 400, "v\(version)")
            }
            try await connection.close()
        }
    }

    @Test("A topic with a legal 249-character name is deleted for good (it came back after a restart)")
    func longestTopicDeleted() async throws {
        let broker = try await TestBroker.start()
        let connection = try await TestConnection(port: broker.port)
        let name = String(repeating: "x", count: 249)
        #expect(try await ProduceFetchTests.createTopic(name, partitions: 3, on: connection).errorCode == 0)
        var delete = DeleteTopicsRequest()
        delete.topicNames = [name]
        delete.timeoutMs = 5000
        let response = try await connection.request(delete, version: 4, expecting: DeleteTopicsResponse.self)
        #expect(response.responses.first?.errorCode == 0)
        try await connection.close()
        try await broker.stop(keepingData: true)
        let restarted = try await TestBroker.start(directory: broker.directory)
        #expect(restarted.broker.dispatcher.topics.topic(name) == nil)
        #expect(restarted.broker.dispatcher.topics.partitionCount == 0)
        try await restarted.stop()
    }
}
