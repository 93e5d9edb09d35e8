import SamsaRecords
import Testing
import SamsaTestSupport

@Suite("Varints", .offCooperativePool)
struct VarintTests {
    /// Encodings from Kafka's ByteUtilsTest and the protobuf zig-zag definition.
    @Test("known zig-zag encodings")
    func knownEncodings() {
        #expect(Varint.encode(0) == [0x00])
        #expect(Varint.encode(-1) == [0x01])
        #expect(Varint.encode(1) == [0x02])
        #expect(Varint.encode(63) == [0x7E])
        #expect(Varint.encode(-64) == [0x7F])
        #expect(Varint.encode(64) == [0x80, 0x01])
        #expect(Varint.encode(300) == [0xD8, 0x04])
        #expect(Varint.encode(Int64(Int32.max)) == [0xFE, 0xFF, 0xFF, 0xFF, 0x0F])
        #expect(Varint.encode(Int64(Int32.min)) == [0xFF, 0xFF, 0xFF, 0xFF, 0x0F])
        #expect(Varint.encode(Int64.max) == [0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01])
        #expect(Varint.encode(Int64.min) == [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01])
    }

    @Test("lengths match encodings at every width boundary")
    func lengths() {
        for shift in 0..<63 {
            for value in [Int64(1) << shift, -(Int64(1) << shift), (Int64(1) << shift) - 1] {
                #expect(Varint.encodedLength(value) == Varint.encode(value).count, "\(value)")
            }
        }
    }

    @Test("32-bit limits decode and longer inputs overflow")
    func int32Limits() throws {
        #expect(try Varint.decodeInt32(Varint.encode(Int64(Int32.max))) == (Int32.max, 5))
        #expect(try Varint.decodeInt32(Varint.encode(Int64(Int32.min))) == (Int32.min, 5))
        // Value wider than 32 bits in five bytes.
        #expect(throws: RecordBatchError.self) { try Varint.decodeInt32([0xFF, 0xFF, 0xFF, 0xFF, 0x1F]) }
        // Six bytes.
        let error = #expect(throws: RecordBatchError.self) { try Varint.decodeInt32([0x80, 0x80, 0x80, 0x80, 0x80, 0x00]) }
        #expect(error?.code == .varintOverflow)
    }

    @Test("64-bit limits decode and longer inputs overflow")
    func int64Limits() throws {
        #expect(try Varint.decodeInt64(Varint.encode(Int64.max)) == (Int64.max, 10))
        #expect(try Varint.decodeInt64(Varint.encode(Int64.min)) == (Int64.min, 10))
        let tooWide = [UInt8](repeating: 0xFF, count: 9) + [0x03]
        #expect(throws: RecordBatchError.self) { try Varint.decodeInt64(tooWide) }
        let tooLong = [UInt8](repeating: 0x80, count: 10) + [0x00]
        let error = #expect(throws: RecordBatchError.self) { try Varint.decodeInt64(tooLong) }
        #expect(error?.code == .varintOverflow)
    }

    @Test("a varint cut short is truncated")
    func truncated() {
        let error = #expect(throws: RecordBatchError.self) { try Varint.decodeInt64([0x80, 0x80]) }
        #expect(error?.code == .truncatedRecord)
        #expect(throws: RecordBatchError.self) { try Varint.decodeInt32([]) }
    }
}
