import NIOCore
import SamsaRecords
import SamsaStorage

/// Compares a partition log with its model: the same offsets, keys, values and timestamps byte for
/// byte, nothing more; reads starting inside any batch find that batch (the offset index); the files
/// pass `LogVerifier`. Returns how many records it compared.
enum LogCheck {
    @discardableResult
    ///   - liveTail: the log is open after a failed write: bytes past its end in the last segment may
    ///     be what the write left (the next append overwrites them, recovery cuts them).
    ///   - verifyFiles: false for a live log after a failed truncation: a later segment whose rename
    ///     failed stays on disk past the end until a reopen recovers it (reads are still checked).
    static func compare(
        _ log: PartitionLog, with model: LogModel, _ context: String, random: inout TortureRandom, liveTail: Bool = false,
        verifyFiles: Bool = true
    ) throws(TortureViolation) -> Int {
        try require(log.logStartOffset == model.start, "\(context): log start \(log.logStartOffset), expected \(model.start)")
        try require(log.logEndOffset == model.end, "\(context): log end \(log.logEndOffset), expected \(model.end)")
        // The flushed offset is the recovery point a checkpoint saves: past the end, it vouches for
        // offsets the next appends get before any sync.
        let flushed = log.flushedOffset
        try require(flushed <= model.end, "\(context): flushed offset \(flushed) is past the log end \(model.end)")
        var next = model.start
        var expected = model.batches[...]
        var checked = 0
        do {
            while let bytes = try log.read(from: next, maxBytes: 1 << 16) {
                var remaining = bytes
                while remaining.readableBytes > 0 {
                    let batch = try RecordBatch(validating: remaining)
                    remaining.moveReaderIndex(forwardBy: batch.sizeInBytes)
                    guard let wanted = expected.popFirst() else {
                        throw TortureViolation("\(context): batch at \(batch.baseOffset) the model does not have (invented)")
                    }
                    try require(batch.baseOffset == wanted.base, "\(context): batch at \(batch.baseOffset), expected one at \(wanted.base)")
                    let records = try batch.decodeRecords()
                    try require(records.count == wanted.contents.count, "\(context): batch at \(batch.baseOffset) holds \(records.count) records, expected \(wanted.contents.count)")
                    for (index, record) in records.enumerated() {
                        try require(record.offset == wanted.base + Int64(index), "\(context): record offset \(record.offset), expected \(wanted.base + Int64(index))")
                        try require(record.valueBytes ?? [] == wanted.contents.values[index], "\(context): record \(record.offset): value differs")
                        try require(record.keyBytes == wanted.contents.keys[index], "\(context): record \(record.offset): key differs")
                        try require(record.timestamp == wanted.contents.timestamps[index], "\(context): record \(record.offset): timestamp differs")
                    }
                    checked += records.count
                    next = batch.nextOffset
                }
            }
            try require(expected.isEmpty, "\(context): the log ends at \(next) but the model holds a batch at \(expected.first?.base ?? -1) (lost)")
            // Reads from inside a batch go through the offset index and must land on that batch.
            for _ in 0..<min(model.batches.count, 16) {
                let wanted = model.batches[random.below(model.batches.count)]
                let offset = wanted.base + Int64(random.below(wanted.contents.count))
                guard let bytes = try log.read(from: offset, maxBytes: 1) else {
                    throw TortureViolation("\(context): nothing read from offset \(offset)")
                }
                let batch = try RecordBatch(validating: bytes)
                try require(batch.baseOffset == wanted.base, "\(context): a read from \(offset) found the batch at \(batch.baseOffset), expected \(wanted.base)")
            }
            let problems = verifyFiles ? try verifierProblems(log.directory, liveTailAt: liveTail ? model.end : nil) : []
            try require(problems.isEmpty, "\(context): LogVerifier: \(problems.map(\.description).joined(separator: "; "))")
        } catch let violation as TortureViolation {
            throw violation
        } catch {
            throw TortureViolation("\(context): reading the log failed: \(error)", readFailed: true)
        }
        return checked
    }

    /// `LogVerifier`'s problems, less the zeros ahead of the append position of the last segment
    /// (write-ahead space, which the verifier reports as a batch of length 0 while the log is open or
    /// after a crash; recovery and sealing remove it).
    static func verifierProblems(_ directory: String, liveTailAt end: Int64? = nil) throws(StorageError) -> [LogVerifier.Problem] {
        let files = PosixFileSystem()
        let report = try LogVerifier.verifyPartition(directory: directory, files: files)
        guard let last = try files.listDirectory(directory).filter({ $0.hasSuffix(".log") }).max() else { return report.problems }
        let lastPath = "\(directory)/\(last)"
        var problems: [LogVerifier.Problem] = []
        for problem in report.problems {
            if problem.path == lastPath {
                if let end, report.nextOffset == end { continue }
                let bytes = try files.readFile(lastPath)
                if problem.position < bytes.count && bytes[problem.position...].allSatisfy({ $0 == 0 }) { continue }
            }
            problems.append(problem)
        }
        return problems
    }
}
