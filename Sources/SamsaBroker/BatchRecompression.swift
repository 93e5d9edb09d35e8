import NIOCore
import SamsaProtocol
import SamsaRecords

/// Rewrites a produced batch in a topic's codec (`compression.type` other than `producer`), as Kafka's
/// `LogValidator` does when the producer's codec is not the topic's: the records are checked as
/// validation checks them, then stored in the new codec.
///
/// What is kept and what is assigned follows Kafka's `buildRecordsAndAssignOffsets`: the producer id,
/// epoch and base sequence, the transactional bit and every record (key, value, headers, timestamp)
/// are kept; offsets are the log's to assign. Kafka's rebuilt records get consecutive offset deltas
/// from 0, which validation already requires here (`lastOffsetDelta + 1 == recordCount`, deltas
/// strictly rising), so the records section is carried over byte for byte and only recompressed: the
/// header keeps the producer's fields (base and max timestamp, timestamp type, as a batch stored as
/// produced keeps them) with the new codec bits, length and CRC.
///
/// Bounds (a hostile batch must not blow memory): runs under a `DecompressionPermits` permit (the
/// writer takes one for any produce into a topic that compresses); a compressed batch decompresses to
/// at most `RecordBatchLimits.maxDecompressedSize` (256 MiB), or, into an uncompressed topic, to what
/// `max.message.bytes` can hold; the result must fit `max.message.bytes`, as Kafka re-checks a
/// rewritten batch's size (RecordTooLargeException: MESSAGE_TOO_LARGE).
enum BatchRecompression {
    /// Bits 0-2 of the attributes: the codec (`RecordBatchLayout`'s mask is internal to SamsaRecords).
    private static let codecMask: UInt16 = 0x07

    /// `batch` (validated: length, CRC, header refusals) with its records checked and stored in `codec`.
    static func recompress(_ batch: RecordBatch, to codec: CompressionCodec, maxMessageBytes: Int) throws(BatchValidation.Failure) -> RecordBatch {
        typealias Layout = RecordBatchLayout
        let section = try uncompressedRecords(of: batch, into: codec, maxMessageBytes: maxMessageBytes)
        var bytes = ByteBufferAllocator().buffer(capacity: Layout.headerLength + (codec == .none ? section.readableBytes : section.readableBytes / 2))
        bytes.writeImmutableBuffer(batch.buffer.getSlice(at: batch.buffer.readerIndex, length: Layout.headerLength)!)
        if codec == .none {
            bytes.writeImmutableBuffer(section)
        } else {
            do throws(RecordBatchError) {
                try section.withUnsafeReadableBytes { raw throws(RecordBatchError) in
                    try RecordCompression.compress(raw, codec: codec, into: &bytes)
                }
            } catch {
                throw BatchValidation.Failure(code: .unknown, message: "recompressing to \(codec) failed: \(error)")
            }
        }
        guard bytes.readableBytes <= maxMessageBytes else {
            throw BatchValidation.Failure(
                code: .messageSizeTooLarge,
                message: "batch is \(bytes.readableBytes) bytes once recompressed to \(codec), above the maximum of \(maxMessageBytes) (max.message.bytes)")
        }
        let attributes = (batch.attributes & ~codecMask) | UInt16(codec.rawValue)
        bytes.setInteger(Int32(bytes.readableBytes - Layout.lengthPrefixLength), at: Layout.batchLengthOffset)
        bytes.setInteger(attributes, at: Layout.attributesOffset)
        let crc = bytes.withUnsafeReadableBytes { raw in CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[Layout.attributesOffset...])) }
        bytes.setInteger(crc, at: Layout.crcOffset)
        do throws(RecordBatchError) {
            return try RecordBatch(validating: bytes, limits: RecordBatchLimits(maxBatchSize: Int(Int32.max)))
        } catch {
            throw BatchValidation.Failure(code: .unknown, message: "the recompressed batch does not read back: \(error)")
        }
    }

    /// The batch's records section uncompressed, every record checked (lengths, fields, offset deltas,
    /// the header's count): an uncompressed batch's own bytes, else decompressed once.
    private static func uncompressedRecords(of batch: RecordBatch, into codec: CompressionCodec, maxMessageBytes: Int) throws(BatchValidation.Failure) -> ByteBuffer {
        if batch.compression == .none {
            let count: Int32
            do throws(RecordBatchError) {
                count = try batch.checkRecords()
            } catch {
                throw BatchValidation.failure(for: error)
            }
            try BatchValidation.checkCount(count, of: batch)
            return batch.storedRecords
        }
        // Into an uncompressed topic the records are the stored batch: more than max.message.bytes
        // holds is refused before it is all decompressed.
        let limit = codec == .none
            ? max(0, maxMessageBytes - RecordBatchLayout.headerLength) : RecordBatchLimits.default.maxDecompressedSize
        var section: ByteBuffer?
        var count: Int32 = 0
        do {
            try batch.forEachRecordLocation(limits: RecordBatchLimits(maxBatchSize: Int(Int32.max), maxDecompressedSize: limit)) { records, _ in
                if section == nil { section = records }
                count += 1
            }
        } catch let error as RecordBatchError where error.code == .decompressedSizeLimitExceeded && codec == .none {
            throw BatchValidation.Failure(
                code: .messageSizeTooLarge,
                message: "batch decompresses to more than \(limit) bytes of records, above max.message.bytes \(maxMessageBytes) of a topic stored uncompressed")
        } catch let error as RecordBatchError {
            throw BatchValidation.failure(for: error)
        } catch {
            throw BatchValidation.Failure(code: .invalidRecord, message: "\(error)")
        }
        try BatchValidation.checkCount(count, of: batch)
        guard let section else { throw BatchValidation.Failure(code: .invalidRecord, message: "batch holds no records") }
        return section
    }
}
