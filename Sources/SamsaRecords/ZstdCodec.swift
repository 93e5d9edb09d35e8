import CZstd
import NIOCore

/// Zstandard frames (Kafka codec 4), through the system libzstd. The only file that calls `CZstd`.
enum ZstdCodec {
    private static let compressionContexts = ContextPool(
        make: { ZSTD_createCCtx() }, destroy: { ZSTD_freeCCtx($0) })
    private static let decompressionContexts = ContextPool(
        make: { ZSTD_createDCtx() }, destroy: { ZSTD_freeDCtx($0) })

    static func compress(_ input: UnsafeRawBufferPointer, level: Int32, into output: inout ByteBuffer)
        throws(RecordBatchError)
    {
        try compressionContexts.withContext { context throws(RecordBatchError) in
            let bound = ZSTD_compressBound(input.count)
            var status = 0
            output.writeWithUnsafeMutableBytes(minimumWritableBytes: bound) { destination in
                status = ZSTD_compressCCtx(
                    context, destination.baseAddress, destination.count, input.baseAddress, input.count, level)
                return ZSTD_isError(status) != 0 ? 0 : status
            }
            if ZSTD_isError(status) != 0 {
                throw RecordBatchError(.compressionFailed, at: 0, "Zstd: \(String(cString: ZSTD_getErrorName(status)))")
            }
        }
    }

    static func decompress(_ input: UnsafeRawBufferPointer, limit: Int, allocator: ByteBufferAllocator)
        throws(RecordBatchError) -> ByteBuffer
    {
        try decompressionContexts.withContext { context throws(RecordBatchError) in
            guard input.count > 0 else { throw failure("no compressed bytes") }
            // One frame that declares its size (zstd writes it by default): decompress in one call into
            // an exact buffer. Otherwise (several frames, or no declared size) stream into a growing one.
            let declared = ZSTD_getFrameContentSize(input.baseAddress, input.count)
            if declared == ZSTD_CONTENTSIZE_ERROR { throw failure("not a Zstd frame") }
            if declared != ZSTD_CONTENTSIZE_UNKNOWN
                && ZSTD_findFrameCompressedSize(input.baseAddress, input.count) == input.count
            {
                guard declared <= UInt64(limit) else { throw RecordCompression.limitExceeded(limit) }
                return try decompressKnownSize(input, size: Int(declared), context: context, allocator: allocator)
            }
            return try decompressStreaming(input, limit: limit, context: context, allocator: allocator)
        }
    }

    private static func decompressKnownSize(
        _ input: UnsafeRawBufferPointer, size: Int, context: OpaquePointer, allocator: ByteBufferAllocator
    ) throws(RecordBatchError) -> ByteBuffer {
        var output = allocator.buffer(capacity: size)
        var status = 0
        output.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { destination in
            status = ZSTD_decompressDCtx(context, destination.baseAddress, size, input.baseAddress, input.count)
            return ZSTD_isError(status) != 0 ? 0 : status
        }
        if ZSTD_isError(status) != 0 { throw failure(String(cString: ZSTD_getErrorName(status))) }
        guard status == size else { throw failure("frame produced \(status) bytes, declared \(size)") }
        return output
    }

    private static func decompressStreaming(
        _ input: UnsafeRawBufferPointer, limit: Int, context: OpaquePointer, allocator: ByteBufferAllocator
    ) throws(RecordBatchError) -> ByteBuffer {
        _ = ZSTD_DCtx_reset(context, ZSTD_reset_session_only)
        var output = allocator.buffer(capacity: min(limit, max(4096, input.count * 4)))
        var source = ZSTD_inBuffer(src: input.baseAddress, size: input.count, pos: 0)
        var lastStatus = 0
        while source.pos < source.size || lastStatus != 0 {
            if output.writableBytes == 0 {
                guard output.capacity < limit else { throw RecordCompression.limitExceeded(limit) }
                output.reserveCapacity(RecordCompression.grownCapacity(output.capacity, limit: limit))
            }
            let before = source.pos
            output.writeWithUnsafeMutableBytes(minimumWritableBytes: 0) { destination in
                var sink = ZSTD_outBuffer(dst: destination.baseAddress, size: destination.count, pos: 0)
                lastStatus = ZSTD_decompressStream(context, &sink, &source)
                return ZSTD_isError(lastStatus) != 0 ? 0 : sink.pos
            }
            if ZSTD_isError(lastStatus) != 0 { throw failure(String(cString: ZSTD_getErrorName(lastStatus))) }
            if source.pos == source.size && lastStatus != 0 && output.writableBytes > 0 && source.pos == before {
                throw failure("Zstd frame is truncated")
            }
        }
        return output
    }

    private static func failure(_ reason: String) -> RecordBatchError {
        RecordBatchError(.decompressionFailed, at: RecordBatchLayout.recordsOffset, "Zstd: \(reason)")
    }
}
