import Glibc
import NIOCore

/// Writes one cleaned segment as `<base>.log.cleaned`, `<base>.index.cleaned` and
/// `<base>.timeindex.cleaned` (Kafka's `.cleaned` files), with index entries made by the rule the
/// active segment uses (an offset and a time entry every `indexIntervalBytes` of log).
///
/// Crash behaviour: `.cleaned` files are never read; the next open deletes them. `finish` makes them
/// durable (fsync of each file) so that, once renamed `.swap`, they can replace the segments they were
/// made from. Owned by one cleaner thread.
final class CleanedSegmentWriter {
    let baseOffset: Int64
    let directory: String
    private let files: any FileSystem
    private let configuration: SegmentConfiguration
    private let logPath: String
    private var fd: Int32?
    private let offsetIndex: OffsetIndex
    private let timeIndex: TimeIndex
    private(set) var size = 0
    private(set) var nextOffset: Int64
    private var maxTimestamp: Int64 = -1
    private var bytesSinceIndexEntry = 0
    /// Log bytes appended but not yet written, from `size - pending.readableBytes` on: one `pwrite`
    /// per `chunkBytes` rather than one per batch (a cleaned batch is often a few kilobytes).
    private var pending: ByteBuffer
    private static let chunkBytes = 1 << 20

    /// The three `.cleaned` paths of the segment at `baseOffset` (the `.log` first).
    static func paths(directory: String, baseOffset: Int64) -> [String] {
        [SegmentFiles.log(directory, baseOffset), SegmentFiles.index(directory, baseOffset), SegmentFiles.timeIndex(directory, baseOffset)]
            .map { $0 + SegmentFiles.cleanedSuffix }
    }

    init(directory: String, baseOffset: Int64, configuration: SegmentConfiguration, files: any FileSystem) throws(StorageError) {
        self.baseOffset = baseOffset
        self.directory = directory
        self.files = files
        self.configuration = configuration
        self.nextOffset = baseOffset
        pending = ByteBufferAllocator().buffer(capacity: Self.chunkBytes)
        let paths = Self.paths(directory: directory, baseOffset: baseOffset)
        logPath = paths[0]
        // Leftovers of an interrupted clean would be counted as entries: start from nothing.
        for path in paths { try files.unlink(path) }
        let fd = try files.open(logPath, flags: O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, mode: 0o600)
        do throws(StorageError) {
            offsetIndex = try OffsetIndex(
                path: paths[1], baseOffset: baseOffset, maxSize: configuration.maxIndexSize, writable: true, files: files)
            timeIndex = try TimeIndex(
                path: paths[2], baseOffset: baseOffset, maxSize: configuration.maxIndexSize, writable: true, files: files)
        } catch {
            files.close(fd)
            for path in paths { try? files.unlink(path) }
            throw error
        }
        self.fd = fd
    }

    deinit {
        if let fd { files.close(fd) }
    }

    /// Appends one batch (its bytes as they go to disk) whose offsets follow what was appended.
    func append(_ batch: ByteBuffer, baseOffset batchBase: Int64, lastOffset: Int64, maxTimestamp batchMaxTimestamp: Int64) throws(StorageError) {
        guard let fd, batchBase >= nextOffset else {
            throw StorageError(.invalidArgument, path: logPath, "cleaned batch at \(batchBase) does not follow \(nextOffset)")
        }
        let position = size
        if batchMaxTimestamp > maxTimestamp { maxTimestamp = batchMaxTimestamp }
        if bytesSinceIndexEntry >= configuration.indexIntervalBytes && !offsetIndex.isFull && !timeIndex.isFull {
            try offsetIndex.append(offset: batchBase, position: position)
            try timeIndex.appendIfLarger(timestamp: maxTimestamp, offset: lastOffset)
            bytesSinceIndexEntry = 0
        }
        if pending.readableBytes + batch.readableBytes > Self.chunkBytes { try writePending(fd) }
        if batch.readableBytes >= Self.chunkBytes {
            try batch.withUnsafeReadableBytes { raw throws(StorageError) in try files.pwrite(fd, raw, at: position, path: logPath) }
        } else {
            var bytes = batch
            pending.writeBuffer(&bytes)
        }
        bytesSinceIndexEntry += batch.readableBytes
        size += batch.readableBytes
        nextOffset = lastOffset + 1
    }

    /// Writes the buffered bytes where they belong: just before `size`.
    private func writePending(_ fd: Int32) throws(StorageError) {
        guard pending.readableBytes > 0 else { return }
        let position = size - pending.readableBytes
        try pending.withUnsafeReadableBytes { raw throws(StorageError) in try files.pwrite(fd, raw, at: position, path: logPath) }
        pending.clear()
    }

    /// Trims the indexes to their entries and makes all three files durable.
    func finish() throws(StorageError) {
        guard let fd else { return }
        try writePending(fd)
        try offsetIndex.trim()
        try timeIndex.trim()
        offsetIndex.close()
        timeIndex.close()
        try files.fsync(fd, path: logPath)
        for path in [offsetIndex.path, timeIndex.path] {
            let indexFd = try files.open(path, flags: O_RDONLY | O_CLOEXEC, mode: 0)
            defer { files.close(indexFd) }
            try files.fsync(indexFd, path: path)
        }
        files.close(fd)
        self.fd = nil
    }

    /// Removes the `.cleaned` files (an aborted or failed clean). Best effort: the next open removes
    /// whatever stays.
    func discard() {
        offsetIndex.close()
        timeIndex.close()
        if let fd { files.close(fd) }
        fd = nil
        pending.clear()
        for path in Self.paths(directory: directory, baseOffset: baseOffset) { try? files.unlink(path) }
    }
}
