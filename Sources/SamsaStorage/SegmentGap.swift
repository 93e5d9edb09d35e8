import Glibc
import NIOCore
import SamsaRecords

/// When one segment may end before the next one begins.
///
/// Segments are contiguous: every roll starts the new segment at the log end, and the cleaner keeps
/// the last batch of each segment it rewrites. So a segment that ends early is normally missing
/// records (recovery's damage or torn tail). One roll leaves a gap on purpose: a follower appending a
/// leader's batch (`appendAsFollower`) whose offsets do not fit a segment based at the log end (an
/// index holds 32-bit relative offsets), so the new segment starts at the batch's base offset. That
/// gap is recognised by the same rule: the next segment's first batch ends more than `Int32.max`
/// offsets past the previous segment's end. Cleaning only removes batches, so the rule still holds
/// after the follower cleans itself. (A damaged segment is taken for such a gap only when the next
/// batch is that far away anyway, which only such gaps make.)
enum SegmentGap {
    /// Whether a segment ending at `previousEnd` followed by the segment at `nextBase` is a gap a
    /// follower's roll left (true), rather than records missing (false). Reads the first batch of the
    /// segment at `nextBase` through `files`; a missing, empty or invalid one proves nothing (false).
    static func isForced(
        previousEnd: Int64, nextBase: Int64, directory: String, limits: RecordBatchLimits, files: any FileSystem
    ) throws(StorageError) -> Bool {
        guard previousEnd < nextBase, let first = try firstBatch(of: SegmentFiles.log(directory, nextBase), limits: limits, files: files) else {
            return false
        }
        return first.baseOffset >= nextBase && !Segment.fitsRelativeOffsets(last: first.lastOffset, base: previousEnd)
    }

    /// The first batch of the segment file at `path`, validated (CRC included), or nil when there is
    /// no whole, valid one.
    static func firstBatch(of path: String, limits: RecordBatchLimits, files: any FileSystem) throws(StorageError) -> RecordBatch? {
        guard files.fileExists(path) else { return nil }
        let fd = try files.open(path, flags: O_RDONLY | O_CLOEXEC, mode: 0)
        defer { files.close(fd) }
        let fileSize = try files.fileSize(fd, path: path)
        guard let probe = try read(fd, path: path, count: min(fileSize, RecordBatchLayout.sizeProbeLength), files: files),
            let size = try? RecordBatch.size(ofBatchAtStartOf: probe, limits: limits), size <= fileSize,
            let bytes = try read(fd, path: path, count: size, files: files)
        else { return nil }
        return try? RecordBatch(validating: bytes, limits: limits)
    }

    private static func read(_ fd: Int32, path: String, count: Int, files: any FileSystem) throws(StorageError) -> ByteBuffer? {
        var buffer = ByteBufferAllocator().buffer(capacity: count)
        var result: Result<Int, StorageError> = .success(0)
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { raw in
            result = Result { () throws(StorageError) in
                try files.pread(fd, into: UnsafeMutableRawBufferPointer(rebasing: raw[..<count]), at: 0, path: path)
            }
            return (try? result.get()) ?? 0
        }
        return try result.get() == count ? buffer : nil
    }
}
