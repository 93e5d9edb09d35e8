public import NIOCore

/// The codec of a batch's records section (attribute bits 0-2).
public enum CompressionCodec: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    case none = 0
    case gzip = 1
    case snappy = 2
    case lz4 = 3
    case zstd = 4

    /// Codecs Samsa can both write and read.
    public static let supported: [CompressionCodec] = [.none, .lz4, .zstd]

    public var isSupported: Bool { self == .none || self == .lz4 || self == .zstd }

    public var description: String {
        switch self {
        case .none: "none"
        case .gzip: "gzip"
        case .snappy: "snappy"
        case .lz4: "lz4"
        case .zstd: "zstd"
        }
    }

    /// Parses a name as Kafka's `compression.type` spells it.
    public init?(name: String) {
        guard let codec = Self.allCases.first(where: { $0.description == name.lowercased() }) else { return nil }
        self = codec
    }
}

/// Compression of a whole records section, the way a batch stores it: LZ4 frame format or a Zstd frame.
///
/// Contexts are pooled so a compress or decompress call allocates only its output buffer.
public enum RecordCompression {
    /// Zstd's level when none is given (Kafka's default, `compression.zstd.level`).
    public static let defaultZstdLevel: Int32 = 3
    /// LZ4's level when none is given (the fast compressor; 3 and up select LZ4-HC).
    public static let defaultLZ4Level: Int32 = 0

    /// Appends the compressed form of `input` to `output`.
    public static func compress(
        _ input: UnsafeRawBufferPointer, codec: CompressionCodec, level: Int32? = nil, into output: inout ByteBuffer
    ) throws(RecordBatchError) {
        switch codec {
        case .none: output.writeBytes(input)
        case .lz4: try LZ4Codec.compress(input, level: level ?? defaultLZ4Level, into: &output)
        case .zstd: try ZstdCodec.compress(input, level: level ?? defaultZstdLevel, into: &output)
        case .gzip, .snappy:
            throw RecordBatchError(.unsupportedCodec, at: 0, "Samsa does not write \(codec) batches")
        }
    }

    /// The decompressed form of `input`, refusing to produce more than `limit` bytes.
    public static func decompress(
        _ input: UnsafeRawBufferPointer, codec: CompressionCodec, limit: Int,
        allocator: ByteBufferAllocator = ByteBufferAllocator()
    ) throws(RecordBatchError) -> ByteBuffer {
        switch codec {
        case .none:
            guard input.count <= limit else { throw limitExceeded(limit) }
            return allocator.buffer(bytes: input)
        case .lz4: return try LZ4Codec.decompress(input, limit: limit, allocator: allocator)
        case .zstd: return try ZstdCodec.decompress(input, limit: limit, allocator: allocator)
        case .gzip, .snappy:
            throw RecordBatchError(.unsupportedCodec, at: 0, "Samsa does not read \(codec) batches")
        }
    }

    static func limitExceeded(_ limit: Int) -> RecordBatchError {
        RecordBatchError(
            .decompressedSizeLimitExceeded, at: RecordBatchLayout.recordsOffset,
            "records decompress to more than the limit of \(limit) bytes")
    }

    /// Next capacity when an output buffer of unknown final size fills up: double, capped at the limit.
    static func grownCapacity(_ current: Int, limit: Int) -> Int {
        min(max(current * 2, 4096), limit)
    }
}
