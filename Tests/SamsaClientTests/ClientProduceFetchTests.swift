import NIOCore
@testable import SamsaClient
import SamsaProtocol
import SamsaRecords
import Synchronization
import Testing
import SamsaTestSupport

/// The client's producer, fetch and ListOffsets against a real in-process broker.
@Suite("Client produce and fetch", .offCooperativePool)
struct ClientProduceFetchTests {
    @Test("Produce then fetch round trip in each codec", arguments: [CompressionCodec.none, .lz4, .zstd])
    func roundTrip(codec: CompressionCodec) async throws {
        try await ClientTestBroker.with(flushPolicy: .everyAppend) { broker, client in
            try await client.createTopics([NewTopic(name: "events", partitions: 1)])
            // Small batches and no linger: many batches and requests, several in flight at once.
            let producer = client.makeProducer(KafkaProducerConfiguration(compression: codec, lingerMilliseconds: 0, batchBytes: 512))
            let offsets = Mutex<[Int: Int64]>([:])
            for index in 0..<1000 {
                try await producer.send(topic: "events", partition: 0, key: index % 3 == 0 ? nil : ByteBuffer(string: "k\(index)"),
                                        value: ByteBuffer(string: "value-\(index)")) { result in
                    if case .success(let metadata) = result { offsets.withLock { $0[index] = metadata.offset } }
                }
            }
            await producer.close()
            let acknowledged = offsets.withLock { $0 }
            #expect(acknowledged.count == 1000)
            #expect(Set(acknowledged.values) == Set(0..<1000))
            let records = try await fetchAll(client, topic: "events", until: 1000)
            #expect(records.map(\.offset) == Array(0..<1000))
            for record in records {
                let index = acknowledged.first { $0.value == record.offset }!.key
                #expect(String(buffer: record.value!) == "value-\(index)")
                #expect(record.key.map { String(buffer: $0) } == (index % 3 == 0 ? nil : "k\(index)"))
            }
            // The batches arrived in the producer's codec.
            let fetched = try await client.fetch(topic: "events", partition: 0, offset: 0)
            #expect(!fetched.batches.isEmpty && fetched.batches.allSatisfy { $0.compression == codec })
            #expect(fetched.batches.count > 1)
        }
    }

    @Test("acks 0, 1 and -1 all deliver; only 0 leaves offsets unknown", arguments: Acks.allCases)
    func acksVariants(acks: Acks) async throws {
        try await ClientTestBroker.with(flushPolicy: .everyAppend) { broker, client in
            try await client.createTopics([NewTopic(name: "acks", partitions: 1)])
            let producer = client.makeProducer(KafkaProducerConfiguration(acks: acks, lingerMilliseconds: 1))
            let metadata = Mutex<[KafkaRecordMetadata]>([])
            for index in 0..<200 {
                try await producer.send(topic: "acks", value: ByteBuffer(string: "v\(index)")) { result in
                    if case .success(let m) = result { metadata.withLock { $0.append(m) } }
                }
            }
            await producer.close()
            let delivered = metadata.withLock { $0 }
            #expect(delivered.count == 200)
            if acks == .none {
                #expect(delivered.allSatisfy { $0.offset == -1 })
            } else {
                #expect(Set(delivered.map(\.offset)) == Set(0..<200))
            }
            // acks=0 is not answered: wait until the broker has all of it.
            var end: Int64 = 0
            for _ in 0..<200 where end < 200 {
                end = try await client.listOffset(topic: "acks", partition: 0, .latest)
                if end < 200 { try await Task.sleep(for: .milliseconds(50)) }
            }
            #expect(end == 200)
            let records = try await fetchAll(client, topic: "acks", until: 200)
            #expect(records.map { String(buffer: $0.value!) } == (0..<200).map { "v\($0)" })
        }
    }

    @Test("sendAndWait returns the record's offset")
    func sendAndWait() async throws {
        try await ClientTestBroker.with { broker, client in
            try await client.createTopics([NewTopic(name: "one", partitions: 2)])
            let producer = client.makeProducer()
            let first = try await producer.sendAndWait(topic: "one", partition: 1, value: ByteBuffer(string: "a"))
            let second = try await producer.sendAndWait(topic: "one", partition: 1, value: ByteBuffer(string: "b"))
            #expect(first == KafkaRecordMetadata(topic: "one", partition: 1, offset: 0))
            #expect(second.offset == 1)
            await producer.close()
        }
    }

    @Test("Kafka's murmur2: the hashes of Kafka's own UtilsTest and librdkafka's cases")
    func murmur2Vectors() {
        let vectors: [(String, Int32)] = [
            ("21", -973932308), ("foobar", -790332482), ("a-little-bit-long-string", -985981536),
            ("a-little-bit-longer-string", -1486304829), ("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
            ("abc", 479470107), ("1", -1993445489), ("12", 126087238), ("123", -267702483), ("kafka", -798503068),
        ]
        for (key, hash) in vectors {
            #expect(Array(key.utf8).withUnsafeBytes { Murmur2.hash($0) } == hash, "murmur2(\(key))")
        }
    }

    @Test("Keyed records go to toPositive(murmur2(key)) % partitions, as Kafka's default partitioner puts them")
    func keyedPartitioning() async throws {
        try await ClientTestBroker.with { broker, client in
            try await client.createTopics([NewTopic(name: "keyed", partitions: 4)])
            let producer = client.makeProducer()
            for (key, hash) in [("21", Int32(-973932308)), ("foobar", -790332482), ("abc", 479470107), ("kafka", -798503068)] {
                let metadata = try await producer.sendAndWait(topic: "keyed", key: ByteBuffer(string: key), value: ByteBuffer(string: "v"))
                #expect(metadata.partition == (hash & 0x7fff_ffff) % 4, "key \(key)")
            }
            await producer.close()
        }
    }

    @Test("Fetch long-polls until an append, then returns the new records")
    func fetchWaitsForAppend() async throws {
        try await ClientTestBroker.with { broker, client in
            try await client.createTopics([NewTopic(name: "poll", partitions: 1)])
            async let fetched = client.fetch(topic: "poll", partition: 0, offset: 0, maxWaitMilliseconds: 60_000, minBytes: 1)
            // A second client: the broker answers one connection's requests in order, so a produce on the
            // fetching connection would wait behind the long poll.
            let writer = try await KafkaClient.connect(bootstrap: broker.bootstrap)
            let producer = writer.makeProducer()
            try await producer.sendAndWait(topic: "poll", value: ByteBuffer(string: "late"))
            let result = try await fetched
            #expect(try result.records().map { String(buffer: $0.value!) } == ["late"])
            #expect(result.highWatermark == 1)
            await producer.close()
            await writer.close()
        }
    }

    @Test("Fetch mid-batch returns records from the offset asked for; past the end is OFFSET_OUT_OF_RANGE")
    func fetchFromOffset() async throws {
        try await ClientTestBroker.with { broker, client in
            try await client.createTopics([NewTopic(name: "mid", partitions: 1)])
            let producer = client.makeProducer(KafkaProducerConfiguration(lingerMilliseconds: 50))
            for index in 0..<10 { try await producer.send(topic: "mid", value: ByteBuffer(string: "\(index)")) }
            await producer.close()
            let fetched = try await client.fetch(topic: "mid", partition: 0, offset: 7)
            #expect(try fetched.records().map(\.offset) == [7, 8, 9])
            #expect(fetched.nextOffset == 10)
            await #expect(throws: KafkaClientError.broker(.offsetOutOfRange, "fetch mid-0 at 11")) {
                _ = try await client.fetch(topic: "mid", partition: 0, offset: 11)
            }
        }
    }

    @Test("ListOffsets: earliest, latest and by timestamp")
    func listOffsets() async throws {
        try await ClientTestBroker.with { broker, client in
            try await client.createTopics([NewTopic(name: "times", partitions: 1)])
            let producer = client.makeProducer()
            for index in 0..<5 {
                try await producer.sendAndWait(topic: "times", value: ByteBuffer(string: "\(index)"), timestamp: 1_000 + Int64(index) * 10)
            }
            await producer.close()
            #expect(try await client.listOffset(topic: "times", partition: 0, .earliest) == 0)
            #expect(try await client.listOffset(topic: "times", partition: 0, .latest) == 5)
            #expect(try await client.listOffset(topic: "times", partition: 0, .timestamp(1_020)) == 2)
            #expect(try await client.listOffset(topic: "times", partition: 0, .timestamp(1_015)) == 2)
            await #expect(throws: KafkaClientError.unknownPartition(topic: "times", partition: 3)) {
                _ = try await client.listOffset(topic: "times", partition: 3, .latest)
            }
        }
    }

    @Test("A full buffer makes send wait for deliveries instead of growing")
    func bufferBackpressure() async throws {
        try await ClientTestBroker.with { broker, client in
            try await client.createTopics([NewTopic(name: "small", partitions: 1)])
            let producer = client.makeProducer(KafkaProducerConfiguration(lingerMilliseconds: 0, batchBytes: 1024, bufferBytes: 4096))
            let delivered = Mutex(0)
            for index in 0..<2000 {
                try await producer.send(topic: "small", value: ByteBuffer(string: "record \(index) padded to some length")) { result in
                    if case .success = result { delivered.withLock { $0 += 1 } }
                }
            }
            await producer.close()
            #expect(delivered.withLock { $0 } == 2000)
            #expect(try await client.listOffset(topic: "small", partition: 0, .latest) == 2000)
        }
    }
}

