import CLZ4
import NIOCore

/// LZ4 frame format (what Kafka's magic-2 batches use for codec 3), through the system liblz4.
/// The only file that calls `CLZ4`.
enum LZ4Codec {
    private static let decompressionContexts = ContextPool(
        make: {
            var context: OpaquePointer?
            let status = LZ4F_createDecompressionContext(&context, UInt32(LZ4F_VERSION))
            return LZ4F_isError(status) != 0 ? nil : context
        },
        destroy: { _ = LZ4F_freeDecompressionContext($0) })

    /// Independent 64 KiB blocks and no content checksum, as Kafka's own Java writer produces; every
    /// Kafka client reads them (the batch's CRC-32C already covers the compressed bytes). The frame
    /// declares its content size (Kafka's reader skips it, LZ4F readers use it) so a reader can
    /// decompress into an exactly sized buffer.
    private static func preferences(level: Int32, contentSize: Int) -> LZ4F_preferences_t {
        var preferences = LZ4F_preferences_t()
        preferences.frameInfo.contentSize = UInt64(contentSize)
        preferences.frameInfo.blockSizeID = LZ4F_max64KB
        preferences.frameInfo.blockMode = LZ4F_blockIndependent
        preferences.frameInfo.contentChecksumFlag = LZ4F_noContentChecksum
        preferences.compressionLevel = level
        return preferences
    }

    static func compress(_ input: UnsafeRawBufferPointer, level: Int32, into output: inout ByteBuffer)
        throws(RecordBatchError)
    {
        var preferences = preferences(level: level, contentSize: input.count)
        let bound = LZ4F_compressFrameBound(input.count, &preferences)
        let written = output.writeWithUnsafeMutableBytes(minimumWritableBytes: bound) { destination in
            LZ4F_compressFrame(destination.baseAddress, destination.count, input.baseAddress, input.count, &preferences)
        }
        if LZ4F_isError(written) != 0 {
            // writeWithUnsafeMutableBytes moved the writer index by the error code; undo it.
            output.moveWriterIndex(to: output.writerIndex - written)
            throw RecordBatchError(.compressionFailed, at: 0, "LZ4: \(String(cString: LZ4F_getErrorName(written)))")
        }
    }

    static func decompress(_ input: UnsafeRawBufferPointer, limit: Int, allocator: ByteBufferAllocator)
        throws(RecordBatchError) -> ByteBuffer
    {
        try decompressionContexts.withContext { context throws(RecordBatchError) in
            // Start from the frame's declared content size when it has one, else a typical ratio.
            var capacity = min(limit, max(4096, input.count * 4))
            guard input.count >= 7 else { throw failure("too short for an LZ4 frame") }
            var info = LZ4F_frameInfo_t()
            var headerBytes = input.count
            if LZ4F_isError(LZ4F_getFrameInfo(context, &info, input.baseAddress, &headerBytes)) != 0 {
                throw failure("not an LZ4 frame")
            }
            if info.contentSize > UInt64(limit) { throw RecordCompression.limitExceeded(limit) }
            if info.contentSize > 0 { capacity = Int(info.contentSize) }

            var output = allocator.buffer(capacity: capacity)
            var consumed = headerBytes
            while true {
                var sourceSize = input.count - consumed
                if output.writableBytes == 0 {
                    guard output.capacity < limit else { throw RecordCompression.limitExceeded(limit) }
                    output.reserveCapacity(RecordCompression.grownCapacity(output.capacity, limit: limit))
                }
                var hint = 0
                output.writeWithUnsafeMutableBytes(minimumWritableBytes: 0) { destination in
                    var destinationSize = destination.count
                    hint = LZ4F_decompress(
                        context, destination.baseAddress, &destinationSize,
                        input.baseAddress! + consumed, &sourceSize, nil)
                    return LZ4F_isError(hint) != 0 ? 0 : destinationSize
                }
                if LZ4F_isError(hint) != 0 {
                    throw failure(String(cString: LZ4F_getErrorName(hint)))
                }
                consumed += sourceSize
                if hint == 0 {
                    // End of a frame; Kafka writes one, but a concatenation of frames is still valid.
                    if consumed == input.count { return output }
                    continue
                }
                if consumed == input.count && output.writableBytes > 0 {
                    throw failure("LZ4 frame is truncated")
                }
            }
        }
    }

    private static func failure(_ reason: String) -> RecordBatchError {
        RecordBatchError(.decompressionFailed, at: RecordBatchLayout.recordsOffset, "LZ4: \(reason)")
    }
}
