import NIOCore
import SamsaRecords

/// The record batches that stand for offsets a leader's log cleaner removed, on a follower.
///
/// A compacted leader's log has gaps: the cleaner drops batches that lost every record (Kafka's
/// `MemoryRecords.filterTo`), so a follower fetching from inside a cleaned range gets a first batch
/// past its log end. Kafka's follower appends it at its own offsets (`appendAsFollower`, offsets not
/// assigned); this log assigns each append the log end, so the follower first appends batches
/// without records covering the missing offsets (the form the cleaner itself leaves for emptied
/// batches it keeps), and the leader's batch then lands at its own offset. Readers step over them as
/// over any cleaned batch.
enum OffsetGap {
    /// Header-only batches (no records, no producer, no timestamp) covering `count` offsets, each
    /// at most `Int32.max` offsets (a batch's last offset delta), stamped with `leaderEpoch`.
    static func fillers(count: Int64, leaderEpoch: Int32) -> [RecordBatch] {
        var batches: [RecordBatch] = []
        var left = count
        while left > 0 {
            let span = min(left, Int64(Int32.max))
            // A batch this code builds always validates; `try?` only keeps a bug from trapping.
            guard let batch = try? RecordBatch(validating: header(lastOffsetDelta: Int32(span - 1), leaderEpoch: leaderEpoch)) else { break }
            batches.append(batch)
            left -= span
        }
        return batches
    }

    private static func header(lastOffsetDelta: Int32, leaderEpoch: Int32) -> ByteBuffer {
        typealias L = RecordBatchLayout
        var batch = ByteBufferAllocator().buffer(capacity: L.headerLength)
        batch.writeRepeatingByte(0, count: L.headerLength)
        batch.setInteger(Int64(0), at: L.baseOffsetOffset)
        batch.setInteger(Int32(L.headerLength - L.lengthPrefixLength), at: L.batchLengthOffset)
        batch.setInteger(leaderEpoch, at: L.partitionLeaderEpochOffset)
        batch.setInteger(L.currentMagic, at: L.magicOffset)
        batch.setInteger(UInt16(0), at: L.attributesOffset)
        batch.setInteger(lastOffsetDelta, at: L.lastOffsetDeltaOffset)
        batch.setInteger(Int64(-1), at: L.baseTimestampOffset)
        batch.setInteger(Int64(-1), at: L.maxTimestampOffset)
        batch.setInteger(Int64(-1), at: L.producerIdOffset)
        batch.setInteger(Int16(-1), at: L.producerEpochOffset)
        batch.setInteger(Int32(-1), at: L.baseSequenceOffset)
        batch.setInteger(Int32(0), at: L.recordCountOffset)
        let crc = batch.withUnsafeReadableBytes { raw in CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[L.attributesOffset...])) }
        batch.setInteger(crc, at: L.crcOffset)
        return batch
    }
}
