import NIOCore
import SamsaRecords

/// Writes the batches the cleaner keeps, as Kafka's `MemoryRecords.filterTo` does:
/// - a batch keeps its base offset, its last offset (so the producer's last sequence survives: the
///   offset delta of the last record may now point past the last record kept), its leader epoch,
///   producer id, epoch, base sequence, timestamp type, transactional and control flags, and its codec
///   (the records are compressed again with it);
/// - a batch that lost every record but must stay (the last of a producer, or the last of a cleaned
///   segment) becomes a header without records, uncompressed (Kafka's `writeEmptyHeader`);
/// - KIP-534's delete horizon: the first clean that keeps a tombstone sets attribute bit 6 and stores
///   the time after which tombstones may go in the base timestamp (record timestamps stay right:
///   their deltas are written against it).
enum CleanedBatch {
    /// Attribute bit 6: the base timestamp is the delete horizon (KIP-534).
    static let deleteHorizonMask: UInt16 = 0x40
    private static let codecMask: UInt16 = 0x07

    /// The batch's delete horizon, if a clean has set one.
    static func deleteHorizon(of batch: RecordBatch) -> Int64? {
        batch.attributes & deleteHorizonMask != 0 ? batch.baseTimestamp : nil
    }

    /// A batch holding `records` (locations in `section`, the original's decompressed records) with
    /// the original's header fields, and `deleteHorizon` set if given (or kept if it had one).
    static func filtered(
        _ original: RecordBatch, section: ByteBuffer, records: [RecordLocation], deleteHorizon: Int64?
    ) throws(StorageError) -> ByteBuffer {
        precondition(!records.isEmpty)
        var attributes = original.attributes
        var baseTimestamp = original.baseTimestamp
        if let deleteHorizon {
            attributes |= deleteHorizonMask
            baseTimestamp = deleteHorizon
        }
        let logAppendTime = original.timestampType == .logAppendTime
        var maxTimestamp = logAppendTime ? original.maxTimestamp : Int64.min
        var body = ByteBufferAllocator().buffer(capacity: section.readableBytes)
        for record in records {
            if !logAppendTime { maxTimestamp = max(maxTimestamp, record.timestamp) }
            writeRecord(
                record, section: section, timestampDelta: record.timestamp &- baseTimestamp,
                offsetDelta: Int32(truncatingIfNeeded: record.offset - original.baseOffset), into: &body)
        }
        var batch = ByteBufferAllocator().buffer(capacity: RecordBatchLayout.headerLength + body.readableBytes)
        batch.writeRepeatingByte(0, count: RecordBatchLayout.headerLength)
        let codec = original.compression
        if codec == .none {
            batch.writeBuffer(&body)
        } else {
            do throws(RecordBatchError) {
                try body.withUnsafeReadableBytes { raw throws(RecordBatchError) in
                    try RecordCompression.compress(raw, codec: codec, into: &batch)
                }
            } catch {
                throw StorageError(.io, path: "", "cannot compress a cleaned batch with \(codec): \(error)")
            }
        }
        writeHeader(
            into: &batch, from: original, attributes: attributes, baseTimestamp: baseTimestamp, maxTimestamp: maxTimestamp,
            recordCount: Int32(records.count))
        return batch
    }

    /// The original's header with no records: what keeps a producer's last sequence, or a segment's
    /// last offset, once every record of the batch is gone.
    static func empty(_ original: RecordBatch) -> ByteBuffer {
        var batch = ByteBufferAllocator().buffer(capacity: RecordBatchLayout.headerLength)
        batch.writeRepeatingByte(0, count: RecordBatchLayout.headerLength)
        // Uncompressed, no delete horizon: the timestamps are the original's largest, as Kafka writes it.
        let attributes = original.attributes & ~(codecMask | deleteHorizonMask)
        writeHeader(
            into: &batch, from: original, attributes: attributes, baseTimestamp: original.maxTimestamp, maxTimestamp: original.maxTimestamp,
            recordCount: 0)
        return batch
    }

    private static func writeHeader(
        into batch: inout ByteBuffer, from original: RecordBatch, attributes: UInt16, baseTimestamp: Int64, maxTimestamp: Int64, recordCount: Int32
    ) {
        typealias L = RecordBatchLayout
        let start = batch.readerIndex
        batch.setInteger(original.baseOffset, at: start + L.baseOffsetOffset)
        batch.setInteger(Int32(batch.readableBytes - L.lengthPrefixLength), at: start + L.batchLengthOffset)
        batch.setInteger(original.partitionLeaderEpoch, at: start + L.partitionLeaderEpochOffset)
        batch.setInteger(L.currentMagic, at: start + L.magicOffset)
        batch.setInteger(attributes, at: start + L.attributesOffset)
        batch.setInteger(original.lastOffsetDelta, at: start + L.lastOffsetDeltaOffset)
        batch.setInteger(baseTimestamp, at: start + L.baseTimestampOffset)
        batch.setInteger(maxTimestamp, at: start + L.maxTimestampOffset)
        batch.setInteger(original.producerId, at: start + L.producerIdOffset)
        batch.setInteger(original.producerEpoch, at: start + L.producerEpochOffset)
        batch.setInteger(original.baseSequence, at: start + L.baseSequenceOffset)
        batch.setInteger(recordCount, at: start + L.recordCountOffset)
        let crc = batch.withUnsafeReadableBytes { raw in CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[L.attributesOffset...])) }
        batch.setInteger(crc, at: start + L.crcOffset)
    }

    /// One record in Kafka's v2 encoding: length, attributes, timestamp delta, offset delta, key,
    /// value, headers (varints zig-zag encoded).
    private static func writeRecord(_ record: RecordLocation, section: ByteBuffer, timestampDelta: Int64, offsetDelta: Int32, into out: inout ByteBuffer) {
        var body = 1 + Varint.encodedLength(timestampDelta) + Varint.encodedLength(Int64(offsetDelta))
        body += fieldLength(record.key?.count) + fieldLength(record.value?.count) + Varint.encodedLength(Int64(record.headers.count))
        for header in record.headers { body += fieldLength(header.key.utf8.count) + fieldLength(header.value?.readableBytes) }
        writeVarint(Int64(body), into: &out)
        out.writeInteger(UInt8(0))
        writeVarint(timestampDelta, into: &out)
        writeVarint(Int64(offsetDelta), into: &out)
        writeField(record.key.map { section.getSlice(at: section.readerIndex + $0.lowerBound, length: $0.count)! }, into: &out)
        writeField(record.value.map { section.getSlice(at: section.readerIndex + $0.lowerBound, length: $0.count)! }, into: &out)
        writeVarint(Int64(record.headers.count), into: &out)
        for header in record.headers {
            writeField(ByteBuffer(string: header.key), into: &out)
            writeField(header.value, into: &out)
        }
    }

    private static func fieldLength(_ length: Int?) -> Int {
        guard let length else { return Varint.encodedLength(-1) }
        return Varint.encodedLength(Int64(length)) + length
    }

    private static func writeField(_ bytes: ByteBuffer?, into out: inout ByteBuffer) {
        guard var bytes else {
            writeVarint(-1, into: &out)
            return
        }
        writeVarint(Int64(bytes.readableBytes), into: &out)
        out.writeBuffer(&bytes)
    }

    private static func writeVarint(_ value: Int64, into out: inout ByteBuffer) {
        out.writeWithUnsafeMutableBytes(minimumWritableBytes: Varint.maxInt64Length) { raw in Varint.write(value, to: raw.baseAddress!) }
    }
}
