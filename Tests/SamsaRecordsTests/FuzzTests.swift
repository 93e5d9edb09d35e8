import NIOCore
import SamsaRecords
import Testing
import SamsaTestSupport

/// Random and mutated bytes fed to the decoder: every input must end in a batch or a typed error,
/// never a crash, a hang or an allocation beyond the limits. The CRC is recomputed after mutating so
/// the mutations reach the record decoder instead of stopping at the checksum.
@Suite("Fuzzing the decoder", .offCooperativePool)
struct FuzzTests {
    static let seeds: [[UInt8]] = CompressionCodec.supported.map { codec in
        try! makeBatch(sampleRecords(count: 30), compression: codec).bytes
    }
    static let limits = RecordBatchLimits(maxBatchSize: 1 << 20, maxDecompressedSize: 1 << 20)

    /// Runs the whole decode path; only `RecordBatchError` may come out.
    func exercise(_ bytes: [UInt8]) {
        do {
            let batch = try RecordBatch(validating: ByteBuffer(bytes: bytes), limits: Self.limits)
            var records = try batch.records(limits: Self.limits)
            var count = 0
            while try records.next() != nil { count += 1 }
            #expect(count == Int(batch.recordCount))
        } catch {
            #expect(!error.message.isEmpty)
        }
        do {
            try RecordBatch(validating: ByteBuffer(bytes: bytes), limits: Self.limits).forEachRecord(limits: Self.limits) { _ in }
        } catch {
            #expect(error is RecordBatchError)
        }
    }

    @Test("random bytes")
    func randomBytes() {
        var rng = Xorshift(seed: 1)
        for _ in 0..<20_000 {
            let length = Int(rng.next() % 200)
            exercise((0..<length).map { _ in UInt8(truncatingIfNeeded: rng.next()) })
        }
    }

    @Test("random bytes behind a plausible header", arguments: [UInt16(0), 3, 4])
    func plausibleHeader(attributes: UInt16) {
        var rng = Xorshift(seed: UInt64(attributes) + 7)
        for _ in 0..<10_000 {
            let records = (0..<Int(rng.next() % 300)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            exercise(RawBatch(records: records, recordCount: Int32(rng.next() % 50), attributes: attributes).bytes)
        }
    }

    @Test("mutated valid batches, CRC recomputed", arguments: 0..<3)
    func mutations(seedIndex: Int) {
        var rng = Xorshift(seed: UInt64(seedIndex) * 31 + 5)
        let seed = Self.seeds[seedIndex]
        for _ in 0..<5_000 {
            var bytes = seed
            for _ in 0...(rng.next() % 4) {
                let index = RecordBatchLayout.attributesOffset + 2 + Int(rng.next() % UInt64(bytes.count - 23))
                switch rng.next() % 3 {
                case 0: bytes[index] = UInt8(truncatingIfNeeded: rng.next())
                case 1: bytes[index] ^= 1 << (rng.next() % 8)
                default: bytes[index] = [0x00, 0x7F, 0x80, 0xFF][Int(rng.next() % 4)]
                }
            }
            if rng.next() % 4 == 0 { bytes.removeLast(Int(rng.next() % 20)) }
            // Keep the length field consistent with truncation, then fix the CRC.
            let length = UInt32(bytes.count - RecordBatchLayout.lengthPrefixLength)
            withUnsafeBytes(of: length.bigEndian) { bytes.replaceSubrange(8..<12, with: $0) }
            exercise(withFixedChecksum(bytes))
        }
    }
}

/// A fixed-seed generator so fuzz failures reproduce.
struct Xorshift {
    var state: UInt64
    init(seed: UInt64) { state = seed &* 0x9E37_79B9_7F4A_7C15 | 1 }
    mutating func next() -> UInt64 {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return state
    }
}
