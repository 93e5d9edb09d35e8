import Glibc
public import NIOCore

/// Whole record batches of one segment file as a byte range, to send from the file without copying
/// through user space (NIO's `FileRegion`, sendfile): what `PartitionLog.readSlice` returns.
///
/// The slice holds its own duplicate of the segment's descriptor, so the segment may be rolled,
/// closed, or deleted by retention (renamed, later unlinked) while a response is in flight: the
/// duplicate keeps the inode and its bytes until the slice closes. Batches in a segment are never
/// rewritten, so the bytes sent are those the range was computed from, with one exception: a
/// replication truncation that cuts the active segment below the range's end shortens the file
/// under it (Kafka's `FileRecords.writeTo` has the same window and fails the send).
///
/// Closing: `close()` (idempotent), called by the owner once the write completed or failed; the
/// descriptor is also closed when the last copy of the slice goes, so a slice cannot leak it.
public struct SegmentSlice: Sendable {
    let file: File
    /// Bytes of the segment file the batches occupy.
    public let range: Range<Int>

    init(file: File, range: Range<Int>) {
        self.file = file
        self.range = range
    }

    /// Bytes of the batches.
    public var length: Int { range.count }

    /// The range as a NIO file region (for `IOData.fileRegion`). The slice must stay open until the
    /// write of the region completed or failed.
    public var fileRegion: FileRegion {
        FileRegion(fileHandle: file.handle, readerIndex: range.lowerBound, endIndex: range.upperBound)
    }

    /// The batches' bytes, read from the file (the copying path, and tests).
    public func bytes() throws(StorageError) -> ByteBuffer {
        try file.read(at: range.lowerBound, count: range.count, files: PosixFileSystem())
    }

    /// Whether the descriptor is still open.
    public var isOpen: Bool { file.handle.isOpen }

    /// Closes the descriptor (once; later calls do nothing). Not while a write of `fileRegion` is
    /// still under way: the owner calls it when that write's promise completes.
    public func close() {
        file.close()
    }

    /// The one owner of a duplicated descriptor.
    final class File: Sendable {
        let handle: NIOFileHandle
        let path: String

        /// Duplicates `descriptor` (dup, close-on-exec). A blocking call only in name: no disk I/O.
        init(duplicating descriptor: Int32, path: String) throws(StorageError) {
            let copy = fcntl(descriptor, F_DUPFD_CLOEXEC, 0)
            guard copy >= 0 else { throw StorageError(.io, path: path, errno: errno, "dup failed") }
            handle = NIOFileHandle(_deprecatedTakingOwnershipOfDescriptor: copy)
            self.path = path
        }

        deinit { close() }

        func close() {
            // Fails only when already closed (or in use by a write, which the owner waits for).
            try? handle.close()
        }

        func read(at position: Int, count: Int, files: any FileSystem) throws(StorageError) -> ByteBuffer {
            var buffer = ByteBufferAllocator().buffer(capacity: count)
            let result: Result<Int, StorageError>
            do {
                result = try handle.withUnsafeFileDescriptor { fd in
                    Result { () throws(StorageError) -> Int in
                        var read = 0
                        try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { raw throws(StorageError) in
                            read = try files.pread(fd, into: UnsafeMutableRawBufferPointer(rebasing: raw[..<count]), at: position, path: path)
                            return read
                        }
                        return read
                    }
                }
            } catch {
                throw StorageError(.closed, path: path, errno: EBADF, "the slice's descriptor is closed")
            }
            let read = try result.get()
            guard read == count else {
                throw StorageError(.corrupt, path: path, "read \(read) of \(count) bytes at position \(position): file is shorter")
            }
            return buffer
        }
    }
}
