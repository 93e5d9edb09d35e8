import NIOCore
import PropertyBased
import SamsaRecords
import Testing
import SamsaTestSupport

/// Generators for records as a producer might send them.
enum RecordGen {
    static let bytes = Gen.uint8().array(of: 0...300)
    static let header = zip(Gen.letterOrNumber.string(of: 0...12), bytes.optional).map { TestHeader(key: $0, value: $1) }
    static let record = zip(
        Gen.int64(in: 0...4_000_000_000_000), bytes.optional, bytes.optional, header.array(of: 0...3)
    ).map { TestRecord(timestamp: $0, key: $1, value: $2, headers: $3) }
    static let records = record.array(of: 1...40)
    static let codec = Gen.element(of: CompressionCodec.supported).compactMap { $0 }
}

@Suite("Properties", .offCooperativePool)
struct PropertyTests {
    @Test("any records round-trip through any codec")
    func roundTrip() async {
        await propertyCheck(count: 200, input: RecordGen.records, RecordGen.codec) { records, codec in
            let batch = try makeBatch(records, compression: codec, baseOffset: 42)
            let decoded = try RecordBatch(validating: batch.buffer).decodeRecords()
            #expect(decoded.map(TestRecord.init) == records)
            #expect(decoded.map(\.offset) == (0..<Int64(records.count)).map { 42 + $0 })
        }
    }

    @Test("every Int64 round-trips through a varlong")
    func varlongRoundTrip() async {
        await propertyCheck(count: 2000, input: Gen.int64()) { value throws in
            let encoded = Varint.encode(value)
            #expect(encoded.count == Varint.encodedLength(value))
            #expect(try Varint.decodeInt64(encoded) == (value, encoded.count))
        }
    }

    @Test("every Int32 round-trips through a varint, at every width")
    func varintRoundTrip() async {
        let widths = Gen.int(in: 0...31).map { Int32(truncatingIfNeeded: (Int64(1) << $0) - 1) }
        await propertyCheck(count: 2000, input: Gen.int32(), widths, Gen.bool) { value, edge, negate throws in
            for candidate in [value, edge, negate ? ~edge : edge &+ 1] {
                let encoded = Varint.encode(Int64(candidate))
                #expect(try Varint.decodeInt32(encoded) == (candidate, encoded.count))
            }
        }
    }

    @Test("any flipped byte in the CRC-covered range is detected")
    func corruptionDetected() async {
        await propertyCheck(count: 300, input: RecordGen.records, RecordGen.codec, Gen.int(in: 0...Int.max), Gen.uint8(in: 1...255)) {
            records, codec, position, flip in
            let batch = try makeBatch(records, compression: codec)
            var bytes = batch.bytes
            let index = RecordBatchLayout.attributesOffset + position % (bytes.count - RecordBatchLayout.attributesOffset)
            bytes[index] ^= flip
            let error = #expect(throws: RecordBatchError.self) { try RecordBatch(validating: ByteBuffer(bytes: bytes)) }
            #expect(error?.code == .checksumMismatch)
        }
    }

    @Test("hardware and software CRC agree on any input")
    func crcImplementationsAgree() async {
        await propertyCheck(count: 500, input: Gen.uint8().array(of: 0...5000), Gen.uint32()) { bytes, seed in
            bytes.withUnsafeBytes { raw in
                #expect(CRC32C.checksum(raw, continuing: seed, using: .hardware) == CRC32C.checksum(raw, continuing: seed, using: .software))
            }
        }
    }
}
