import Foundation
import NIOCore
import Samsa
import SamsaRecords
import SamsaStorage
import Testing
import SamsaTestSupport

/// The per-batch acknowledgement (`BatchTicket`), the batch API `enqueue(contentsOf:)` and what the
/// producer caches of a topic.
@Suite("Producer batches", .offCooperativePool)
struct ProducerBatchTests {
    @Test("records of one batch share its ticket; each one's offset is the batch's base offset plus its index")
    func sharedTicket() async throws {
        let dir = try TemporaryDirectory()
        try await withSamsa(dir) { samsa in
            try samsa.createTopic("t", TopicConfiguration(partitions: 1, flushPolicy: .everyAppend))
            let producer = samsa.makeProducer(ProducerConfiguration(lingerMilliseconds: 1000, batchBytes: 1 << 20))
            var deliveries: [Delivery] = []
            for i in 0..<10 { deliveries.append(try await producer.enqueue(.text("t", "r\(i)"))) }
            #expect(deliveries.allSatisfy { $0.batch === deliveries[0].batch })
            #expect(deliveries.map(\.index) == Array(0..<10))
            #expect(!deliveries[0].isResolved)
            await producer.flush()
            let batch = try await deliveries[0].batch.result()
            #expect(batch == BatchMetadata(topic: "t", partition: 0, baseOffset: 0, recordCount: 10))
            for (i, delivery) in deliveries.enumerated() {
                let metadata = try await delivery.result()
                #expect(metadata.offset == Int64(i) && metadata.partition == 0 && metadata.topic == "t")
                #expect(metadata.timestamp == delivery.timestamp)
            }
            // A second batch continues the offsets.
            let next = try await producer.send(.text("t", "later"))
            #expect(next.offset == 10)
            await producer.close()
        }
    }

    @Test("the one linger timer per partition writes each lone record, batch after batch", .timeLimit(.minutes(1)))
    func lingerTimerRearms() async throws {
        let dir = try TemporaryDirectory()
        try await withSamsa(dir) { samsa in
            try samsa.createTopic("t", TopicConfiguration(partitions: 2, flushPolicy: .never))
            let producer = samsa.makeProducer(ProducerConfiguration(lingerMilliseconds: 20, batchBytes: 1 << 20))
            // Each send waits for its acknowledgement: only a linger timer can close its batch.
            for i in 0..<6 {
                let metadata = try await producer.send(.text("t", "lone \(i)", partition: i % 2))
                #expect(metadata.offset == Int64(i / 2))
            }
            await producer.close()
        }
    }

    @Test("flush writes lingering batches of every partition at once and waits for all of them", .timeLimit(.minutes(1)))
    func flushWaitsForAll() async throws {
        let dir = try TemporaryDirectory()
        try await withSamsa(dir) { samsa in
            try samsa.createTopic("t", TopicConfiguration(partitions: 4, flushPolicy: .everyAppend))
            // A linger far longer than the time limit: only flush can write these batches.
            let producer = samsa.makeProducer(ProducerConfiguration(lingerMilliseconds: 600_000, batchBytes: 1 << 20))
            var deliveries: [Delivery] = []
            for i in 0..<40 { deliveries.append(try await producer.enqueue(.text("t", "r\(i)", partition: i % 4))) }
            #expect(deliveries.allSatisfy { !$0.isResolved })
            await producer.flush()
            #expect(deliveries.allSatisfy { $0.isResolved })
            #expect(producer.bufferedBytes == 0)
            for partition in 0..<4 {
                let end = try samsa.offsets(topic: "t", partition: partition).end
                #expect(end == 10)
            }
            await producer.close()
        }
    }

    @Test("a batch whose write fails fails each of its records with the error and frees its buffer room")
    func failedBatch() async throws {
        let dir = try TemporaryDirectory()
        let samsa = try Samsa.open(directory: dir.path)
        try samsa.createTopic("t", TopicConfiguration(partitions: 1))
        let producer = samsa.makeProducer(ProducerConfiguration(lingerMilliseconds: 600_000, batchBytes: 1 << 20))
        var deliveries: [Delivery] = []
        for i in 0..<5 { deliveries.append(try await producer.enqueue(.text("t", "r\(i)"))) }
        // The logs close under the open batch: its append fails.
        try samsa.close()
        await producer.flush()
        for delivery in deliveries {
            await #expect(throws: SamsaError.self) { try await delivery.result() }
        }
        await #expect(throws: SamsaError.self) { try await deliveries[0].batch.result() }
        #expect(producer.bufferedBytes == 0)
    }

    @Test("enqueue(contentsOf:) keeps order per partition, routes keys like send, and reports runs per batch")
    func contentsOf() async throws {
        let dir = try TemporaryDirectory()
        try await withSamsa(dir) { samsa in
            try samsa.createTopic("t", TopicConfiguration(partitions: 3, flushPolicy: .never))
            try samsa.createTopic("u", TopicConfiguration(partitions: 1, flushPolicy: .never))
            let producer = samsa.makeProducer(ProducerConfiguration(lingerMilliseconds: 0, batchBytes: 2048))
            var records: [ProducerRecord] = []
            for i in 0..<300 {
                switch i % 4 {
                case 0: records.append(.text("t", "keyed \(i)", key: "k\(i % 7)"))
                case 1: records.append(.text("t", "p2 \(i)", partition: 2))
                case 2: records.append(.text("u", "u \(i)"))
                default: records.append(.text("t", "free \(i)"))
                }
            }
            let acknowledgement = try await producer.enqueue(contentsOf: records)
            #expect(acknowledgement.count == records.count)
            try await acknowledgement.wait()
            // Runs cover the records in order; map each record to its partition and offset.
            var position = 0
            var placed: [(partition: Int, offset: Int64)] = []
            for run in acknowledgement.runs {
                let batch = try await run.batch.result()
                #expect(run.firstIndex + run.count <= batch.recordCount)
                for index in run.firstIndex..<(run.firstIndex + run.count) {
                    #expect(records[position].topic == batch.topic)
                    placed.append((batch.partition, batch.baseOffset + Int64(index)))
                    position += 1
                }
            }
            #expect(position == records.count)
            for (record, place) in zip(records, placed) {
                if let key = record.key { #expect(place.partition == Murmur2.partition(forKey: key, partitions: 3)) }
                if let partition = record.partition { #expect(place.partition == partition) }
            }
            // What was read back is what was sent, in the order sent, per topic and partition.
            for (topic, partitions) in [("t", 3), ("u", 1)] {
                for partition in 0..<partitions {
                    let expected = zip(records, placed).filter { $0.0.topic == topic && $0.1.partition == partition }
                    let read = try samsa.read(topic: topic, partition: partition, from: 0)
                    #expect(read.map(\.valueString) == expected.map { String(decoding: $0.0.value!, as: UTF8.self) })
                    #expect(read.map(\.offset) == expected.map(\.1.offset))
                }
            }
            // send(_: [ProducerRecord]) returns the same placement through the same path.
            let metadata = try await producer.send(records)
            #expect(metadata.count == records.count)
            #expect(zip(records, metadata).allSatisfy { $0.0.partition == nil || $0.0.partition == $0.1.partition })
            await producer.close()
        }
    }

    @Test("enqueue(contentsOf:) checks every record before handing any over")
    func contentsOfChecksFirst() async throws {
        let dir = try TemporaryDirectory()
        try await withSamsa(dir) { samsa in
            try samsa.createTopic("t", TopicConfiguration(partitions: 2, maxRecordBytes: 1024))
            let producer = samsa.makeProducer()
            let good = ProducerRecord.text("t", "fine")
            let cases: [ProducerRecord] = [
                ProducerRecord(topic: "t", value: [UInt8](repeating: 1, count: 2000)), .text("nope", "x"), .text("t", "x", partition: 5),
            ]
            for bad in cases {
                await #expect(throws: SamsaError.self) { _ = try await producer.enqueue(contentsOf: [good, good, bad, good]) }
            }
            await producer.flush()
            #expect(try samsa.offsets(topic: "t", partition: 0).end == 0)
            #expect(try samsa.offsets(topic: "t", partition: 1).end == 0)
            #expect(producer.bufferedBytes == 0)
            await producer.close()
        }
    }

    @Test("a large enqueue(contentsOf:) is sent in chunks that fit the buffer, all acknowledged")
    func contentsOfLargerThanBuffer() async throws {
        let dir = try TemporaryDirectory()
        try await withSamsa(dir) { samsa in
            try samsa.createTopic("t", TopicConfiguration(partitions: 1, flushPolicy: .everyAppend))
            let producer = samsa.makeProducer(ProducerConfiguration(lingerMilliseconds: 1, batchBytes: 4096, bufferBytes: 16 << 10))
            let records = (0..<2000).map { ProducerRecord.text("t", "record \($0) " + String(repeating: "y", count: 40)) }
            let acknowledgement = try await producer.enqueue(contentsOf: records)
            try await acknowledgement.wait()
            #expect(try samsa.offsets(topic: "t", partition: 0).end == 2000)
            #expect(producer.bufferedBytes == 0)
            await producer.close()
        }
    }

    @Test("a producer sends to a topic deleted and created again (what it cached of the old one is dropped)")
    func topicRecreated() async throws {
        let dir = try TemporaryDirectory()
        try await withSamsa(dir) { samsa in
            try samsa.createTopic("t", TopicConfiguration(partitions: 2))
            let producer = samsa.makeProducer(ProducerConfiguration(lingerMilliseconds: 0))
            try await producer.send(.text("t", "a", partition: 0))
            try await producer.send(.text("t", "b", partition: 1))
            try samsa.deleteTopic("t")
            await #expect(throws: SamsaError.self) { try await producer.send(.text("t", "gone", partition: 0)) }
            try samsa.createTopic("t", TopicConfiguration(partitions: 2))
            let first = try await producer.send(.text("t", "again", partition: 0))
            let second = try await producer.send(.text("t", "again", partition: 1))
            #expect(first.offset == 0 && second.offset == 0)
            let last = try await producer.send(contentsOf: [.text("t", "x", partition: 1)])
            #expect(try await last.runs[0].batch.result().baseOffset == 1)
            await producer.close()
        }
    }
}

extension Producer {
    /// `enqueue(contentsOf:)` and wait.
    func send(contentsOf records: [ProducerRecord]) async throws -> Acknowledgement {
        let acknowledgement = try await enqueue(contentsOf: records)
        try await acknowledgement.wait()
        return acknowledgement
    }
}
