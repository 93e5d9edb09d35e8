import Foundation
import NIOCore
import Samsa
import SamsaRecords
import SamsaStorage
import Testing
import SamsaTestSupport

@Suite("Producer", .offCooperativePool)
struct ProducerTests {
    @Test("keyed records go to Kafka's partition for the key; offsets are consecutive per partition")
    func keyedPartitioning() async throws {
        let dir = try TemporaryDirectory()
        try await withSamsa(dir) { samsa in
            try samsa.createTopic("t", TopicConfiguration(partitions: 5))
            let producer = samsa.makeProducer()
            let keys = (0..<50).map { "user-\($0 % 10)" }
            let results = try await producer.send(keys.map { ProducerRecord.text("t", "v", key: $0) })
            for (key, result) in zip(keys, results) {
                #expect(result.partition == Murmur2.partition(forKey: Array(key.utf8), partitions: 5))
            }
            for partition in 0..<5 {
                let offsets = results.filter { $0.partition == partition }.map(\.offset)
                #expect(offsets == Array(0..<Int64(offsets.count)))
            }
            await producer.close()
        }
    }

    @Test("records sent together share batches (linger), keyless ones stick to a partition per batch")
    func batchingAndSticky() async throws {
        let dir = try TemporaryDirectory()
        try await withSamsa(dir) { samsa in
            try samsa.createTopic("t", TopicConfiguration(partitions: 4, flushPolicy: .never))
            let producer = samsa.makeProducer(ProducerConfiguration(lingerMilliseconds: 50, batchBytes: 4096))
            var deliveries: [Delivery] = []
            for i in 0..<200 { deliveries.append(try await producer.enqueue(.text("t", String(repeating: "x", count: 80) + "\(i)"))) }
            var results: [RecordMetadata] = []
            for delivery in deliveries { results.append(try await delivery.result()) }
            // Consecutive keyless records fill one partition's batch before the next partition.
            var switches = 0
            for (a, b) in zip(results, results.dropFirst()) where a.partition != b.partition { switches += 1 }
            #expect(switches >= 1 && switches <= 10, "partition switches: \(switches)")
            // Batches of about 4 KiB: far fewer batches than records.
            let description = try samsa.describeTopic("t")
            let dirs = description.partitions.map { "\(dir.path)/t-\($0.partition)" }
            let batches = try dirs.reduce(0) { count, path in
                count + (try LogVerifier.verifyPartition(directory: path).batches)
            }
            #expect(batches <= 10, "batches: \(batches)")
            await producer.close()
        }
    }

    @Test("every record comes back with its key, value, headers and timestamp, compressed or not", arguments: [CompressionCodec.none, .lz4, .zstd])
    func roundTrip(compression: CompressionCodec) async throws {
        let dir = try TemporaryDirectory()
        try await withSamsa(dir) { samsa in
            try samsa.createTopic("t", TopicConfiguration(partitions: 1, compression: compression))
            let producer = samsa.makeProducer()
            var sent: [ProducerRecord] = []
            for i in 0..<100 {
                let key: [UInt8]? = i % 3 == 0 ? nil : Array("k\(i)".utf8)
                let value: [UInt8]? = i % 7 == 0 ? nil : Array("value \(i)".utf8)
                let header = RecordHeader(key: "h", value: Array("\(i)".utf8))
                sent.append(ProducerRecord(topic: "t", key: key, value: value, headers: [header], timestamp: 1_700_000_000_000 + Int64(i)))
            }
            try await producer.send(sent)
            let read = try samsa.read(topic: "t", partition: 0, from: 0)
            #expect(read.count == 100)
            for (record, original) in zip(read, sent) {
                #expect(record.keyBytes == original.key)
                #expect(record.valueBytes == original.value)
                #expect(record.headers == original.headers)
                #expect(record.timestamp == original.timestamp)
            }
            // The in-place scan sees the same records, from any offset.
            var scanned: [(Int64, [UInt8]?)] = []
            var position: Int64 = 37
            while true {
                let next = try samsa.forEachRecord(topic: "t", partition: 0, from: position, maxBytes: 256) { record in
                    scanned.append((record.offset, record.value.map { Array($0) }))
                }
                if next == position { break }
                position = next
            }
            #expect(scanned.map(\.0) == Array(37..<100))
            #expect(scanned.map(\.1) == sent[37...].map(\.value))
            #expect(try samsa.offset(topic: "t", partition: 0, forTimestamp: 1_700_000_000_050) == 50)
            #expect(try samsa.offset(topic: "t", partition: 0, forTimestamp: 1_800_000_000_000) == nil)
            await producer.close()
        }
    }

    @Test("oversized records, unknown topics and closed producers are refused clearly")
    func refusals() async throws {
        let dir = try TemporaryDirectory()
        try await withSamsa(dir) { samsa in
            try samsa.createTopic("t", TopicConfiguration(maxRecordBytes: 1000))
            let producer = samsa.makeProducer()
            let big = await #expect(throws: SamsaError.self) { try await producer.send(ProducerRecord(topic: "t", value: [UInt8](repeating: 1, count: 2000))) }
            #expect(big?.code == .recordTooLarge)
            let unknown = await #expect(throws: SamsaError.self) { try await producer.send(.text("nope", "x")) }
            #expect(unknown?.code == .unknownTopic)
            let partition = await #expect(throws: SamsaError.self) { try await producer.send(.text("t", "x", partition: 3)) }
            #expect(partition?.code == .unknownPartition)
            try await producer.send(.text("t", "fine"))
            await producer.close()
            let closed = await #expect(throws: SamsaError.self) { try await producer.send(.text("t", "late")) }
            #expect(closed?.code == .closed)
            #expect(try samsa.read(topic: "t", partition: 0, from: 0).map(\.valueString) == ["fine"])
        }
    }

    @Test("the producer never holds more than its buffer: sends wait for room instead")
    func backPressure() async throws {
        let dir = try TemporaryDirectory()
        try await withSamsa(dir) { samsa in
            try samsa.createTopic("t", TopicConfiguration(partitions: 2, flushPolicy: .everyAppend))
            let buffer = 64 * 1024
            let producer = samsa.makeProducer(ProducerConfiguration(lingerMilliseconds: 1000, batchBytes: 16 * 1024, bufferBytes: buffer))
            var peak = 0
            var deliveries: [Delivery] = []
            for i in 0..<2000 {
                deliveries.append(try await producer.enqueue(ProducerRecord(topic: "t", key: Array("\(i)".utf8), value: [UInt8](repeating: 7, count: 500))))
                peak = max(peak, producer.bufferedBytes)
            }
            for delivery in deliveries { _ = try await delivery.result() }
            #expect(peak <= buffer && peak > buffer / 2, "peak \(peak)")
            #expect(producer.bufferedBytes == 0)
            let ends = try samsa.describeTopic("t").partitions.map(\.logEndOffset)
            #expect(ends.reduce(0, +) == 2000)
            await producer.close()
        }
    }
}
