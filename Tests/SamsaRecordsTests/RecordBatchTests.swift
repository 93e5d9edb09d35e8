import NIOCore
import SamsaRecords
import Testing
import SamsaTestSupport

@Suite("Record batch round trips", .offCooperativePool)
struct RecordBatchTests {
    @Test("records survive encode and decode", arguments: CompressionCodec.supported)
    func roundTrip(codec: CompressionCodec) throws {
        let records = sampleRecords()
        let batch = try makeBatch(records, compression: codec, baseOffset: 500)
        let validated = try RecordBatch(validating: batch.buffer)
        #expect(validated.compression == codec)
        #expect(validated.recordCount == Int32(records.count))
        #expect(validated.baseOffset == 500)
        #expect(validated.lastOffset == 500 + Int64(records.count) - 1)
        #expect(validated.magic == 2)
        #expect(validated.isChecksumValid)
        let decoded = try validated.decodeRecords()
        #expect(decoded.map(TestRecord.init) == records)
        #expect(decoded.map(\.offset) == (0..<Int64(records.count)).map { 500 + $0 })
    }

    @Test("the in-place visitor sees what the iterator returns", arguments: CompressionCodec.supported)
    func visitorMatchesIterator(codec: CompressionCodec) throws {
        let batch = try makeBatch(sampleRecords(), compression: codec, baseOffset: 9)
        var seen: [Record] = []
        try batch.forEachRecord { view in
            seen.append(Record(
                offset: view.offset, timestamp: view.timestamp, key: view.key.map { ByteBuffer(bytes: $0) },
                value: view.value.map { ByteBuffer(bytes: $0) }, headers: view.headers))
        }
        #expect(seen == (try batch.decodeRecords()))
    }

    @Test("an error thrown by the visitor's body ends the walk")
    func visitorBodyError() throws {
        struct Stop: Error {}
        let batch = try makeBatch(sampleRecords(count: 10))
        var visited = 0
        #expect(throws: Stop.self) {
            try batch.forEachRecord { _ in
                visited += 1
                if visited == 3 { throw Stop() }
            }
        }
        #expect(visited == 3)
    }

    @Test("header fields follow the records", arguments: CompressionCodec.supported)
    func headerFields(codec: CompressionCodec) throws {
        let records = sampleRecords(count: 10)
        let batch = try makeBatch(records, compression: codec)
        #expect(batch.baseTimestamp == records[0].timestamp)
        #expect(batch.maxTimestamp == records.map(\.timestamp).max())
        #expect(batch.lastOffsetDelta == 9)
        #expect(batch.producerId == -1)
        #expect(batch.producerEpoch == -1)
        #expect(batch.baseSequence == -1)
        #expect(batch.timestampType == .createTime)
        #expect(!batch.isTransactional && !batch.isControlBatch)
        #expect(batch.batchLength == Int32(batch.sizeInBytes - 12))
    }

    @Test("compressed batches are smaller for compressible data")
    func compressionShrinks() throws {
        let records = sampleRecords(count: 200)
        let plain = try makeBatch(records).sizeInBytes
        #expect(try makeBatch(records, compression: .lz4).sizeInBytes < plain / 2)
        #expect(try makeBatch(records, compression: .zstd).sizeInBytes < plain / 2)
    }

    @Test("base offset and leader epoch change without touching the CRC")
    func stampOutsideCRC() throws {
        var batch = try makeBatch(sampleRecords(count: 5), compression: .lz4)
        let crc = batch.crc
        batch.setBaseOffset(1 << 40)
        batch.setPartitionLeaderEpoch(17)
        #expect(batch.crc == crc)
        #expect(batch.isChecksumValid)
        let reread = try RecordBatch(validating: batch.buffer)
        #expect(reread.baseOffset == 1 << 40)
        #expect(reread.partitionLeaderEpoch == 17)
        #expect(try reread.decodeRecords().first?.offset == 1 << 40)
    }

    @Test("producer fields, transactional flag and log-append time are written")
    func producerState() throws {
        var builder = RecordBatchBuilder()
        builder.producerId = 99
        builder.producerEpoch = 4
        builder.baseSequence = 12
        builder.isTransactional = true
        builder.timestampType = .logAppendTime
        builder.append(timestamp: 10, key: nil, value: [1])
        builder.append(timestamp: 30, key: nil, value: [2])
        builder.append(timestamp: 20, key: nil, value: [3])
        let batch = try RecordBatch(validating: try builder.build().buffer)
        #expect(batch.producerId == 99 && batch.producerEpoch == 4 && batch.baseSequence == 12)
        #expect(batch.isTransactional)
        #expect(batch.timestampType == .logAppendTime)
        // Log-append time: every record carries the batch's max timestamp.
        #expect(try batch.decodeRecords().map(\.timestamp) == [30, 30, 30])
    }

    @Test("a builder is reusable after build")
    func builderReuse() throws {
        var builder = RecordBatchBuilder(compression: .zstd)
        builder.append(timestamp: 1, key: [1], value: [2])
        let first = try builder.build()
        builder.append(timestamp: 2, key: [3], value: [4])
        builder.append(timestamp: 3, key: [5], value: [6])
        let second = try builder.build()
        #expect(first.recordCount == 1)
        #expect(second.recordCount == 2)
        #expect(try first.decodeRecords().map(\.valueBytes) == [[2]])
        #expect(try second.decodeRecords().map(\.valueBytes) == [[4], [6]])
    }

    @Test("an empty builder refuses to build")
    func emptyBatch() {
        var builder = RecordBatchBuilder()
        let error = #expect(throws: RecordBatchError.self) { try builder.build() }
        #expect(error?.code == .emptyBatch)
    }

    @Test("the builder predicts each record's encoded size")
    func encodedSizePrediction() throws {
        var builder = RecordBatchBuilder()
        for record in sampleRecords(count: 30) {
            let headers = record.headers.map { RecordHeader(key: $0.key, value: $0.value) }
            let predicted = builder.encodedSize(
                keyLength: record.key?.count, valueLength: record.value?.count, headers: headers, timestamp: record.timestamp)
            let before = builder.uncompressedSize
            builder.append(timestamp: record.timestamp, key: record.key, value: record.value, headers: headers)
            #expect(builder.uncompressedSize - before == predicted)
        }
    }

    @Test("key and value views share the batch's storage and accept buffers as input")
    func bufferInput() throws {
        var builder = RecordBatchBuilder()
        builder.append(timestamp: 5, key: ByteBuffer(string: "k"), value: ByteBuffer(string: "value"))
        let record = try #require(try builder.build().decodeRecords().first)
        #expect(record.key == ByteBuffer(string: "k"))
        #expect(record.value == ByteBuffer(string: "value"))
    }

    @Test("size probe reads the total size from a batch prefix")
    func sizeProbe() throws {
        let batch = try makeBatch(sampleRecords(count: 3))
        var prefix = batch.buffer
        prefix.moveWriterIndex(to: prefix.readerIndex + RecordBatchLayout.sizeProbeLength)
        #expect(try RecordBatch.size(ofBatchAtStartOf: prefix) == batch.sizeInBytes)
        prefix.moveWriterIndex(to: prefix.readerIndex + RecordBatchLayout.sizeProbeLength - 1)
        #expect(try RecordBatch.size(ofBatchAtStartOf: prefix) == nil)
    }

    @Test("validation takes the first of several batches back to back")
    func batchesBackToBack() throws {
        let first = try makeBatch(sampleRecords(count: 4), baseOffset: 0)
        let second = try makeBatch(sampleRecords(count: 6), compression: .lz4, baseOffset: 4)
        var stream = first.buffer
        stream.writeImmutableBuffer(second.buffer)
        let a = try RecordBatch(validating: stream)
        stream.moveReaderIndex(forwardBy: a.sizeInBytes)
        let b = try RecordBatch(validating: stream)
        #expect(a.recordCount == 4 && b.recordCount == 6)
        #expect(b.baseOffset == a.nextOffset)
    }
}
