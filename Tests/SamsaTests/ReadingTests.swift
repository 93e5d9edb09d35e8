import Foundation
import NIOCore
import Samsa
import SamsaRecords
import Testing
import SamsaTestSupport

/// Owning reads (`read`), batch reads (`readBatches`) and in-place scans (`forEachRecord`) agree.
@Suite("Reading", .offCooperativePool)
struct ReadingTests {
    @Test("read, readBatches and forEachRecord return the same records from any offset, compressed or not", arguments: [CompressionCodec.none, .lz4])
    func threeWaysAgree(compression: CompressionCodec) async throws {
        let dir = try TemporaryDirectory()
        try await withSamsa(dir) { samsa in
            try samsa.createTopic("t", TopicConfiguration(partitions: 1, compression: compression))
            let producer = samsa.makeProducer(ProducerConfiguration(lingerMilliseconds: 0, batchBytes: 1024))
            var records: [ProducerRecord] = []
            for i in 0..<500 {
                let headers = i % 7 == 0 ? [RecordHeader(key: "h", value: ByteBuffer(string: "\(i)"))] : []
                records.append(ProducerRecord(topic: "t", key: i % 3 == 0 ? nil : Array("k\(i)".utf8), value: i % 11 == 0 ? nil : Array("value \(i)".utf8), headers: headers))
            }
            try await producer.send(records)
            for from in [Int64(0), 1, 137, 499] {
                let owning = try samsa.read(topic: "t", partition: 0, from: from, maxBytes: 4096)
                #expect(owning.first?.offset == from)
                var viaBatches: [(Int64, [UInt8]?, [UInt8]?, Int)] = []
                let batches = try samsa.readBatches(topic: "t", partition: 0, from: from, maxBytes: 4096)
                #expect(batches.count > 1 || from == 499)
                for batch in batches {
                    for record in try batch.decodeRecords() where record.offset >= from {
                        viaBatches.append((record.offset, record.key.map { Array($0.readableBytesView) }, record.value.map { Array($0.readableBytesView) }, record.headers.count))
                    }
                }
                var inPlace: [(Int64, [UInt8]?, [UInt8]?, Int)] = []
                _ = try samsa.forEachRecord(topic: "t", partition: 0, from: from, maxBytes: 4096) { record in
                    inPlace.append((record.offset, record.key.map { Array($0) }, record.value.map { Array($0) }, record.headers.count))
                }
                let owned = owning.map { ($0.offset, $0.keyBytes, $0.valueBytes, $0.headers.count) }
                #expect(owned.map(\.0) == viaBatches.map(\.0) && owned.map(\.0) == inPlace.map(\.0))
                #expect(owned.map(\.1) == viaBatches.map(\.1) && owned.map(\.1) == inPlace.map(\.1))
                #expect(owned.map(\.2) == viaBatches.map(\.2) && owned.map(\.2) == inPlace.map(\.2))
                #expect(owned.map(\.3) == viaBatches.map(\.3) && owned.map(\.3) == inPlace.map(\.3))
                for record in owning {
                    let sent = records[Int(record.offset)]
                    #expect(record.keyBytes == sent.key && record.valueBytes == sent.value)
                    #expect(record.keyCount == (sent.key?.count ?? 0) && record.valueCount == (sent.value?.count ?? 0))
                    #expect(record.withValueBytes { $0.map { Array($0) } } == sent.value)
                }
            }
            #expect(try samsa.readBatches(topic: "t", partition: 0, from: 500).isEmpty)
            await producer.close()
        }
    }

    @Test("owning records are equal by content, wherever their bytes lie")
    func equalByContent() async throws {
        let dir = try TemporaryDirectory()
        try await withSamsa(dir) { samsa in
            try samsa.createTopic("a", TopicConfiguration(partitions: 1))
            let producer = samsa.makeProducer()
            // One record from two reads: two buffers, equal records.
            try await producer.send((0..<20).map { ProducerRecord.text("a", "v\($0)", key: "k") })
            let all = try samsa.read(topic: "a", partition: 0, from: 0)
            let alone = try samsa.read(topic: "a", partition: 0, from: 5, maxBytes: 1)
            #expect(all[5] == alone[0])
            #expect(all[5].hashValue == alone[0].hashValue)
            #expect(all[5] != all[6])
            #expect(Set(all + alone).count == 20)
            await producer.close()
        }
    }
}
