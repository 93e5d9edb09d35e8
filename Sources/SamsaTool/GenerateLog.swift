import ArgumentParser
import Glibc
import NIOCore
import SamsaRecords

/// `samsa generate-log FILE`: writes a segment file of synthetic event batches, the input for
/// `dump-log` and a way to produce sample data for other tools.
struct GenerateLog: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate-log",
        abstract: "Write a segment file of record batches holding synthetic JSON events."
    )

    @Argument(help: "The file to create (refused if it exists, unless --force).")
    var file: String

    @Flag(help: "Replace the file if it exists.")
    var force = false

    @Option(help: "Number of batches.")
    var batches = 10

    @Option(help: "Records per batch.")
    var recordsPerBatch = 100

    @Option(help: "Size of each record's value in bytes.")
    var recordSize = 100

    @Option(help: "Compression codec: none, lz4 or zstd.")
    var compression = "none"

    func validate() throws {
        guard batches > 0, recordsPerBatch > 0 else { throw ValidationError("--batches and --records-per-batch must be positive") }
        guard recordSize >= 16 else { throw ValidationError("--record-size must be at least 16") }
        guard let codec = CompressionCodec(name: compression), codec.isSupported else {
            throw ValidationError("--compression must be none, lz4 or zstd, not '\(compression)'")
        }
    }

    func run() throws {
        let codec = CompressionCodec(name: compression)!
        var events = SyntheticEvents()
        var file = ByteBufferAllocator().buffer(capacity: batches * recordsPerBatch * (recordSize + 32))
        var offset: Int64 = 0
        var timestamp: Int64 = 1_764_000_000_000
        var builder = RecordBatchBuilder(compression: codec, capacity: recordsPerBatch * (recordSize + 32))
        for _ in 0..<batches {
            for index in 0..<recordsPerBatch {
                let headers = index % 10 == 0 ? [RecordHeader(key: "source", value: Array("generate-log".utf8))] : []
                builder.append(timestamp: timestamp, key: events.nextKey(), value: events.next(size: recordSize), headers: headers)
                timestamp += 1
            }
            var batch = try builder.build()
            batch.setBaseOffset(offset)
            batch.setPartitionLeaderEpoch(0)
            offset = batch.nextOffset
            file.writeImmutableBuffer(batch.buffer)
        }
        try writeFile(file)
        standardError("wrote \(batches) batches (\(offset) records, \(file.readableBytes) bytes, \(codec)) to \(self.file)")
    }

    private func writeFile(_ contents: ByteBuffer) throws {
        // O_EXCL: an existing file (a real segment, say) is never overwritten by mistake.
        let fd = open(file, O_WRONLY | O_CREAT | O_CLOEXEC | (force ? O_TRUNC : O_EXCL), 0o644)
        guard fd >= 0 else {
            if errno == EEXIST { throw ValidationError("\(file) exists; use --force to replace it") }
            throw ValidationError("cannot create \(file): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        try contents.withUnsafeReadableBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = write(fd, raw.baseAddress! + offset, raw.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw ValidationError("cannot write \(file): \(String(cString: strerror(errno)))")
                }
                offset += n
            }
        }
    }
}
