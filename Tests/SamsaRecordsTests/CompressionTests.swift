import NIOCore
import SamsaRecords
import Testing
import SamsaTestSupport

@Suite("Compression codecs", .offCooperativePool)
struct CompressionTests {
    let input: [UInt8] = Array((0..<2000).map { "event \($0) happened at \($0 * 7)\n" }.joined().utf8)

    @Test("round trip", arguments: CompressionCodec.supported)
    func roundTrip(codec: CompressionCodec) throws {
        var compressed = ByteBuffer()
        try input.withUnsafeBytes { try RecordCompression.compress($0, codec: codec, into: &compressed) }
        let output = try compressed.withUnsafeReadableBytes {
            try RecordCompression.decompress($0, codec: codec, limit: input.count)
        }
        #expect(Array(output.readableBytesView) == input)
    }

    @Test("concatenated frames decode as one stream", arguments: [CompressionCodec.lz4, .zstd])
    func concatenatedFrames(codec: CompressionCodec) throws {
        var compressed = ByteBuffer()
        let halves = [Array(input[..<777]), Array(input[777...])]
        for half in halves {
            try half.withUnsafeBytes { try RecordCompression.compress($0, codec: codec, into: &compressed) }
        }
        let output = try compressed.withUnsafeReadableBytes {
            try RecordCompression.decompress($0, codec: codec, limit: 1 << 20)
        }
        #expect(Array(output.readableBytesView) == input)
    }

    @Test("levels are honoured", arguments: [CompressionCodec.lz4, .zstd])
    func levels(codec: CompressionCodec) throws {
        var fast = ByteBuffer(), strong = ByteBuffer()
        try input.withUnsafeBytes {
            try RecordCompression.compress($0, codec: codec, level: 1, into: &fast)
            try RecordCompression.compress($0, codec: codec, level: 12, into: &strong)
        }
        #expect(strong.readableBytes <= fast.readableBytes)
    }

    @Test("gzip and snappy are refused, never stored as if valid")
    func unsupported() {
        var out = ByteBuffer()
        for codec in [CompressionCodec.gzip, .snappy] {
            #expect(throws: RecordBatchError.self) {
                try input.withUnsafeBytes { try RecordCompression.compress($0, codec: codec, into: &out) }
            }
            #expect(throws: RecordBatchError.self) {
                try input.withUnsafeBytes { try RecordCompression.decompress($0, codec: codec, limit: 1 << 20) }
            }
        }
    }

    @Test("codec names parse as Kafka spells them")
    func names() {
        #expect(CompressionCodec(name: "lz4") == .lz4)
        #expect(CompressionCodec(name: "ZSTD") == .zstd)
        #expect(CompressionCodec(name: "brotli") == nil)
    }
}
