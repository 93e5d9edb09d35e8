import CLZ4Direct
import CZstdDirect
import SamsaRecords

/// The C libraries called directly, with the same settings Samsa uses (LZ4 frame: 64 KiB independent
/// blocks, level 0; Zstd level 3), a reused context and a preallocated output: the ceiling Samsa's
/// wrapped calls are compared against.
final class CodecBaseline: @unchecked Sendable {
    // @unchecked: each benchmark runs on one thread at a time; the contexts and buffers are not shared
    // between concurrently running benchmarks.
    let codec: CompressionCodec
    let input: [UInt8]
    private(set) var compressed: [UInt8] = []
    private var compressBuffer: [UInt8]
    private var decompressBuffer: [UInt8]
    private var lz4Context: OpaquePointer?
    private let zstdCompressContext = ZSTD_createCCtx()
    private let zstdDecompressContext = ZSTD_createDCtx()

    init(codec: CompressionCodec, input: [UInt8]) {
        self.codec = codec
        self.input = input
        compressBuffer = [UInt8](repeating: 0, count: max(LZ4F_compressFrameBound(input.count, nil) + 1024, ZSTD_compressBound(input.count)))
        decompressBuffer = [UInt8](repeating: 0, count: input.count)
        _ = LZ4F_createDecompressionContext(&lz4Context, UInt32(LZ4F_VERSION))
        let size = compress()
        compressed = Array(compressBuffer[..<size])
        precondition(decompress() == input.count)
    }

    @discardableResult
    func compress() -> Int {
        input.withUnsafeBytes { source in
            compressBuffer.withUnsafeMutableBytes { destination in
                switch codec {
                case .lz4:
                    var preferences = LZ4F_preferences_t()
                    preferences.frameInfo.blockSizeID = LZ4F_max64KB
                    preferences.frameInfo.blockMode = LZ4F_blockIndependent
                    preferences.frameInfo.contentSize = UInt64(source.count)
                    return LZ4F_compressFrame(destination.baseAddress, destination.count, source.baseAddress, source.count, &preferences)
                default:
                    return ZSTD_compressCCtx(zstdCompressContext, destination.baseAddress, destination.count, source.baseAddress, source.count, 3)
                }
            }
        }
    }

    @discardableResult
    func decompress() -> Int {
        compressed.withUnsafeBytes { source in
            decompressBuffer.withUnsafeMutableBytes { destination in
                switch codec {
                case .lz4:
                    var destinationSize = destination.count
                    var sourceSize = source.count
                    _ = LZ4F_decompress(lz4Context, destination.baseAddress, &destinationSize, source.baseAddress, &sourceSize, nil)
                    return destinationSize
                default:
                    return ZSTD_decompressDCtx(zstdDecompressContext, destination.baseAddress, destination.count, source.baseAddress, source.count)
                }
            }
        }
    }
}
