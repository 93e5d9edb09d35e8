import Glibc
import NIOCore
import SamsaRecords

/// Reads a file of record batches back to back (a Kafka `.log` segment), one batch at a time, without
/// loading the whole file.
struct BatchFileReader: ~Copyable {
    /// One step of the scan.
    enum Item {
        case batch(RecordBatch, position: Int)
        /// The file ends inside a batch: `available` of `expected` bytes are there.
        case truncated(position: Int, available: Int, expected: Int?)
        case corrupt(position: Int, RecordBatchError)
    }

    struct OpenError: Error, CustomStringConvertible {
        let path: String
        let errno: Int32
        var description: String { "cannot open \(path): \(String(cString: strerror(errno)))" }
    }

    private let fd: Int32
    private(set) var position = 0
    let fileSize: Int
    private var stopped = false

    init(path: String) throws {
        fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw OpenError(path: path, errno: errno) }
        var info = stat()
        fstat(fd, &info)
        fileSize = Int(info.st_size)
    }

    deinit { close(fd) }

    /// The next batch, or the problem that ends the scan, or `nil` at a clean end of file.
    mutating func next() throws -> Item? {
        guard !stopped, position < fileSize else { return nil }
        let probe = try read(at: position, count: min(RecordBatchLayout.headerLength, fileSize - position))
        let size: Int
        do {
            guard let known = try RecordBatch.size(ofBatchAtStartOf: probe) else {
                stopped = true
                return .truncated(position: position, available: probe.readableBytes, expected: nil)
            }
            size = known
        } catch {
            stopped = true
            return .corrupt(position: position, error)
        }
        guard position + size <= fileSize else {
            stopped = true
            return .truncated(position: position, available: fileSize - position, expected: size)
        }
        let bytes = try read(at: position, count: size)
        do {
            let batch = try RecordBatch(validating: bytes)
            defer { position += size }
            return .batch(batch, position: position)
        } catch {
            stopped = true
            return .corrupt(position: position, error)
        }
    }

    private func read(at offset: Int, count: Int) throws -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: count)
        var done = 0
        while done < count {
            var n = 0
            buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: count - done) { out in
                n = pread(fd, out.baseAddress, count - done, off_t(offset + done))
                return max(n, 0)
            }
            if n < 0 {
                if errno == EINTR { continue }
                throw OpenError(path: "read at \(offset + done)", errno: errno)
            }
            if n == 0 { break }
            done += n
        }
        return buffer
    }
}
