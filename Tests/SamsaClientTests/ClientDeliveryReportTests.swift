import NIOCore
@testable import SamsaClient
import SamsaRecords
import Synchronization
import Testing
import SamsaTestSupport

/// The producer's per-batch delivery report, `trySend`, and the hot path's reuse of the previous
/// record's partition batch.
@Suite("Client delivery reports", .offCooperativePool)
struct ClientDeliveryReportTests {
    @Test("Every record is reported once, with its opaque at its offset, records interleaved across partitions")
    func everyRecordReported() async throws {
        try await ClientTestBroker.with(flushPolicy: .everyAppend) { broker, client in
            try await client.createTopics([NewTopic(name: "mixed", partitions: 3)])
            let reports = Mutex<[DeliveryReport]>([])
            let producer = client.makeProducer(KafkaProducerConfiguration(lingerMilliseconds: 0, batchBytes: 600)) { report in
                reports.withLock { $0.append(report) }
            }
            // Runs to one partition (the fast path), switches between partitions, and keyless records.
            func partition(of index: Int) -> Int32? { index % 7 == 6 ? nil : Int32((index / 5) % 3) }
            for index in 0..<900 {
                let value = ByteBuffer(string: "v\(index)")
                if try !producer.trySend(topic: "mixed", partition: partition(of: index), value: value, opaque: UInt64(index)) {
                    try await producer.send(topic: "mixed", partition: partition(of: index), value: value, opaque: UInt64(index))
                }
            }
            await producer.close()
            let delivered = reports.withLock { $0 }
            var placed: [Int: (partition: Int32, offset: Int64)] = [:]
            for report in delivered {
                #expect(report.topic == "mixed")
                #expect(report.opaques.count == report.recordCount)
                let base = try report.result.get()
                for (position, opaque) in report.opaques.enumerated() {
                    #expect(placed[Int(opaque)] == nil, "opaque \(opaque) reported twice")
                    placed[Int(opaque)] = (report.partition, base + Int64(position))
                }
            }
            #expect(placed.count == 900)
            for index in 0..<900 where partition(of: index) != nil { #expect(placed[index]?.partition == partition(of: index)) }
            // Each report's offsets hold its records' values, in the order they were handed over.
            for partition: Int32 in 0..<3 {
                let mine = placed.filter { $0.value.partition == partition }
                let records = try await fetchAll(client, topic: "mixed", partition: partition, until: Int64(mine.count))
                #expect(records.count == mine.count)
                for record in records {
                    let index = mine.first { $0.value.offset == record.offset }!.key
                    #expect(String(buffer: record.value!) == "v\(index)")
                }
                let byOffset = mine.sorted { $0.value.offset < $1.value.offset }.map(\.key)
                #expect(byOffset == byOffset.sorted())
            }
        }
    }

    @Test("A record after its partition's batch was sent goes into a new batch, not the sent one")
    func noAppendToSentBatch() async throws {
        try await ClientTestBroker.with(flushPolicy: .everyAppend) { broker, client in
            try await client.createTopics([NewTopic(name: "again", partitions: 1)])
            let reports = Mutex<[DeliveryReport]>([])
            let producer = client.makeProducer(KafkaProducerConfiguration(lingerMilliseconds: 600_000)) { report in
                reports.withLock { $0.append(report) }
            }
            try await producer.send(topic: "again", value: ByteBuffer(string: "a"), opaque: 1)
            await producer.flush()
            #expect(try producer.trySend(topic: "again", value: ByteBuffer(string: "b"), opaque: 2))
            await producer.flush()
            let delivered = reports.withLock { $0 }
            #expect(delivered.map(\.opaques) == [[1], [2]])
            #expect(delivered.map { try? $0.result.get() } == [0, 1])
            let records = try await fetchAll(client, topic: "again", until: 2)
            #expect(records.map { String(buffer: $0.value!) } == ["a", "b"])
        }
    }

    @Test("trySend refuses while the buffer is full and the topic unknown, and takes records again after a flush")
    func trySendRefusesWhenFull() async throws {
        try await ClientTestBroker.with { broker, client in
            try await client.createTopics([NewTopic(name: "full", partitions: 1)])
            let producer = client.makeProducer(KafkaProducerConfiguration(lingerMilliseconds: 600_000, bufferBytes: 1000))
            // Metadata not known yet: refused, nothing taken.
            #expect(try !producer.trySend(topic: "full", value: ByteBuffer(string: "x")))
            try await producer.send(topic: "full", value: ByteBuffer(repeating: 1, count: 100))
            var accepted = 1
            while try producer.trySend(topic: "full", value: ByteBuffer(repeating: 1, count: 100)) { accepted += 1 }
            #expect(accepted == 8)  // 121 bytes each against 1000 of buffer
            await producer.flush()
            #expect(try producer.trySend(topic: "full", value: ByteBuffer(repeating: 1, count: 100)))
            await producer.close()
            #expect(try await client.listOffset(topic: "full", partition: 0, .latest) == 9)
        }
    }
}
