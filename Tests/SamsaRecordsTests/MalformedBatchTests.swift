import NIOCore
import SamsaRecords
import Testing
import SamsaTestSupport

/// Hand-assembles a batch from raw record bytes, with a correct CRC unless told otherwise, so each test
/// reaches exactly the check it is about.
struct RawBatch {
    var records: [UInt8]
    var recordCount: Int32
    var lastOffsetDelta: Int32? = nil
    var attributes: UInt16 = 0
    var magic: UInt8 = 2

    var bytes: [UInt8] {
        var buffer = ByteBuffer()
        buffer.writeInteger(Int64(0))  // base offset
        buffer.writeInteger(Int32(RecordBatchLayout.minimumBatchLength + records.count))
        buffer.writeInteger(Int32(0))  // leader epoch
        buffer.writeInteger(magic)
        buffer.writeInteger(UInt32(0))  // crc, filled below
        buffer.writeInteger(attributes)
        buffer.writeInteger(lastOffsetDelta ?? max(recordCount - 1, 0))
        buffer.writeInteger(Int64(1000))  // base timestamp
        buffer.writeInteger(Int64(1000))  // max timestamp
        buffer.writeInteger(Int64(-1))
        buffer.writeInteger(Int16(-1))
        buffer.writeInteger(Int32(-1))
        buffer.writeInteger(recordCount)
        buffer.writeBytes(records)
        return withFixedChecksum(Array(buffer.readableBytesView))
    }
}

/// One record's bytes: `[length][attributes][timestampDelta][offsetDelta][key][value][headers]`.
func rawRecord(offsetDelta: Int64 = 0, key: [UInt8]? = nil, value: [UInt8]? = [7], headerBytes: [UInt8] = [0], lengthAdjustment: Int = 0) -> [UInt8] {
    var body: [UInt8] = [0] + Varint.encode(0) + Varint.encode(offsetDelta)
    body += key.map { Varint.encode(Int64($0.count)) + $0 } ?? Varint.encode(-1)
    body += value.map { Varint.encode(Int64($0.count)) + $0 } ?? Varint.encode(-1)
    body += headerBytes
    return Varint.encode(Int64(body.count + lengthAdjustment)) + body
}

@Suite("Malformed batches are rejected with a clear error", .offCooperativePool)
struct MalformedBatchTests {
    func expectError(_ code: RecordBatchError.Code, _ bytes: [UInt8], limits: RecordBatchLimits = .default,
                     sourceLocation: SourceLocation = #_sourceLocation) {
        let error: RecordBatchError?
        do {
            let batch = try RecordBatch(validating: ByteBuffer(bytes: bytes), limits: limits)
            _ = try batch.decodeRecords(limits: limits)
            error = nil
        } catch let caught {
            error = caught
        }
        #expect(error?.code == code, "got \(String(describing: error))", sourceLocation: sourceLocation)
        // The in-place visitor applies the same checks.
        var visitorError: RecordBatchError?
        do {
            try RecordBatch(validating: ByteBuffer(bytes: bytes), limits: limits).forEachRecord(limits: limits) { _ in }
        } catch let caught as RecordBatchError {
            visitorError = caught
        } catch {
            Issue.record("unexpected error type \(error)")
        }
        #expect(visitorError?.code == code, "visitor got \(String(describing: visitorError))", sourceLocation: sourceLocation)
        // And so does the broker's check walk.
        var checkError: RecordBatchError?
        do {
            _ = try RecordBatch(validating: ByteBuffer(bytes: bytes), limits: limits).checkRecords(limits: limits)
        } catch let caught {
            checkError = caught
        }
        #expect(checkError?.code == code, "checkRecords got \(String(describing: checkError))", sourceLocation: sourceLocation)
    }

    @Test func wellFormedRawBatchDecodes() throws {
        let bytes = RawBatch(records: rawRecord(offsetDelta: 0) + rawRecord(offsetDelta: 1, key: [1, 2]), recordCount: 2).bytes
        let records = try RecordBatch(validating: ByteBuffer(bytes: bytes)).decodeRecords()
        #expect(records.map(\.keyBytes) == [nil, [1, 2]])
        #expect(try RecordBatch(validating: ByteBuffer(bytes: bytes)).checkRecords() == 2)
    }

    @Test func lengthOutOfBounds() throws {
        let valid = RawBatch(records: rawRecord(), recordCount: 1).bytes
        expectError(.lengthOutOfBounds, Array(valid.prefix(40)))  // shorter than a header
        expectError(.lengthOutOfBounds, Array(valid.dropLast()))  // batch length past the end
        var small = valid
        small[11] = 10  // batch length 10 < 49
        expectError(.lengthOutOfBounds, small)
        var negative = valid
        negative[8] = 0xFF
        expectError(.lengthOutOfBounds, negative)
        expectError(.lengthOutOfBounds, valid, limits: RecordBatchLimits(maxBatchSize: 64))
    }

    @Test func badMagic() {
        expectError(.badMagic, RawBatch(records: rawRecord(), recordCount: 1, magic: 1).bytes)
    }

    @Test func checksumMismatch() {
        var bytes = RawBatch(records: rawRecord(), recordCount: 1).bytes
        bytes[bytes.count - 2] ^= 0x01
        expectError(.checksumMismatch, bytes)
    }

    @Test func truncatedRecord() {
        // The record's length claims more bytes than the batch has.
        expectError(.truncatedRecord, RawBatch(records: rawRecord(lengthAdjustment: 3), recordCount: 1).bytes)
        // A field runs past the record's own length.
        expectError(.truncatedRecord, RawBatch(records: rawRecord(value: [1, 2, 3], lengthAdjustment: -2), recordCount: 1).bytes)
        // The section ends inside a length varint.
        expectError(.truncatedRecord, RawBatch(records: rawRecord(value: Array(repeating: 1, count: 20)) + [0x80], recordCount: 2).bytes)
    }

    @Test func varintOverflow() {
        let sixByteLength: [UInt8] = [0x80, 0x80, 0x80, 0x80, 0x80, 0x01]
        expectError(.varintOverflow, RawBatch(records: sixByteLength + rawRecord(), recordCount: 1).bytes)
        var body: [UInt8] = [0] + [UInt8](repeating: 0xFF, count: 10) + [0x01]  // 11-byte timestamp delta
        body += [0, 1, 2, 0]
        expectError(.varintOverflow, RawBatch(records: Varint.encode(Int64(body.count)) + body, recordCount: 1).bytes)
    }

    @Test func recordCountMismatch() {
        expectError(.recordCountMismatch, RawBatch(records: rawRecord(value: Array(repeating: 1, count: 20)), recordCount: 2, lastOffsetDelta: 1).bytes)
        expectError(.recordCountMismatch, RawBatch(records: rawRecord() + rawRecord(offsetDelta: 1), recordCount: 1, lastOffsetDelta: 1).bytes)
        expectError(.recordCountMismatch, RawBatch(records: rawRecord(), recordCount: -1).bytes)
        // More records than the bytes could hold: rejected before any is decoded.
        expectError(.recordCountMismatch, RawBatch(records: rawRecord(), recordCount: 1_000_000).bytes)
    }

    @Test func malformedRecord() {
        expectError(.malformedRecord, RawBatch(records: rawRecord(lengthAdjustment: 1) + [0], recordCount: 1).bytes)
        expectError(.malformedRecord, RawBatch(records: rawRecord(offsetDelta: 1) + rawRecord(offsetDelta: 1), recordCount: 2, lastOffsetDelta: 2).bytes)
        expectError(.malformedRecord, RawBatch(records: rawRecord(offsetDelta: 5), recordCount: 1, lastOffsetDelta: 0).bytes)
        expectError(.malformedRecord, RawBatch(records: rawRecord(headerBytes: Varint.encode(-3)), recordCount: 1).bytes)
        // Key length -2.
        var body: [UInt8] = [0, 0, 0] + Varint.encode(-2) + [0, 0]
        expectError(.malformedRecord, RawBatch(records: Varint.encode(Int64(body.count)) + body, recordCount: 1).bytes)
        // A null header key.
        body = [0, 0, 0, 1, 1] + Varint.encode(1) + Varint.encode(-1) + Varint.encode(-1)
        expectError(.malformedRecord, RawBatch(records: Varint.encode(Int64(body.count)) + body, recordCount: 1).bytes)
        expectError(.malformedRecord, RawBatch(records: rawRecord(), recordCount: 1, lastOffsetDelta: -4).bytes)
    }

    @Test func unknownAndUnsupportedCodecs() {
        for bits: UInt16 in [5, 6, 7] {
            expectError(.unknownCodec, RawBatch(records: rawRecord(), recordCount: 1, attributes: bits).bytes)
        }
        expectError(.unsupportedCodec, RawBatch(records: rawRecord(), recordCount: 1, attributes: 1).bytes)
        expectError(.unsupportedCodec, RawBatch(records: rawRecord(), recordCount: 1, attributes: 2).bytes)
    }

    @Test("decompression stops at the limit", arguments: [CompressionCodec.lz4, .zstd])
    func decompressedSizeLimit(codec: CompressionCodec) throws {
        let batch = try makeBatch(sampleRecords(count: 100), compression: codec)
        expectError(.decompressedSizeLimitExceeded, batch.bytes, limits: RecordBatchLimits(maxDecompressedSize: 1000))
        // A generous limit decodes the same bytes.
        #expect(decodeFully(batch.bytes) == nil)
    }

    @Test("garbage in a compressed section", arguments: [CompressionCodec.lz4, .zstd])
    func decompressionFailed(codec: CompressionCodec) throws {
        let garbage = RawBatch(records: Array("definitely not compressed data".utf8), recordCount: 1, attributes: UInt16(codec.rawValue))
        expectError(.decompressionFailed, garbage.bytes)
        // A real frame cut short, with the CRC recomputed so only the codec can notice.
        let batch = try makeBatch(sampleRecords(count: 50), compression: codec)
        let section = Array(batch.bytes[RecordBatchLayout.recordsOffset...])
        let cut = RawBatch(records: Array(section.dropLast(9)), recordCount: 50, attributes: UInt16(codec.rawValue))
        expectError(.decompressionFailed, cut.bytes)
    }

    @Test("errors name their position and a readable reason")
    func errorDescription() {
        let error = decodeFully(RawBatch(records: rawRecord(), recordCount: 1, magic: 0).bytes)
        #expect(error?.position == RecordBatchLayout.magicOffset)
        #expect(error?.description.contains("magic is 0") == true)
    }
}
