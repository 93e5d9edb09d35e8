import Glibc
import NIOCore
import SamsaRecords

/// Checks a partition directory without changing it: every batch of every segment (length, magic,
/// CRC-32C, codec, records decodable), offsets increasing and contiguous across segments, and both
/// indexes against the log (entries increasing, pointing at batch starts inside the segment).
/// What `samsa verify` runs; recovery is what repairs.
///
/// The last segment may end inside a batch: a live writer's append in progress, or a crash's torn
/// write (recovery cuts it). That is reported as `unfinishedTailBytes`, not as a problem, and index
/// entries a live writer added after the log was measured are not held against it. Given the
/// partition's recovery point, bytes in the last segment that are not a valid batch and start at or
/// past it are judged as recovery judges them: a torn tail (`tornTailBytes`), which the next writable
/// open cuts and which holds no whole batch; below the recovery point they are damage.
public enum LogVerifier {
    public struct Problem: Sendable, Hashable, CustomStringConvertible {
        public var path: String
        public var position: Int
        public var message: String
        public var description: String { "\(path) at byte \(position): \(message)" }
    }

    public struct Report: Sendable {
        public var segments = 0
        public var batches = 0
        public var records = 0
        public var bytes = 0
        public var firstOffset: Int64?
        public var nextOffset: Int64?
        public var problems: [Problem] = []
        /// Bytes at the end of the last segment that are not yet (or no longer) a whole batch.
        public var unfinishedTailBytes = 0
        /// Invalid bytes at the end of the last segment, past the recovery point: a crash's torn write
        /// that the next writable open cuts (see the type's comment), and the first of them.
        public var tornTail: Problem?
        public var tornTailBytes = 0
        public var isValid: Bool { problems.isEmpty }
    }

    /// - Parameter recoveryPoint: the partition's recovery point (the data directory's checkpoint), if
    ///   known: without it every invalid byte is a problem.
    public static func verifyPartition(
        directory: String, recoveryPoint: Int64? = nil, files: any FileSystem = PosixFileSystem()
    ) throws(StorageError) -> Report {
        var report = Report()
        let bases = try files.listDirectory(directory).compactMap(SegmentFiles.baseOffset(ofLogFile:)).sorted()
        for (index, base) in bases.enumerated() {
            let isLast = index == bases.count - 1
            let before = report.problems.count
            let size = try verifySegment(directory: directory, baseOffset: base, isLast: isLast, files: files, report: &report)
            // The last segment's first problem, when it is about the batches from the recovery point on:
            // a torn tail, as recovery would judge it (index problems stay problems).
            if isLast, let recoveryPoint, report.problems.count > before, let next = report.nextOffset, next >= recoveryPoint,
                report.problems[before].path == SegmentFiles.log(directory, base)
            {
                let first = report.problems.remove(at: before)
                report.tornTail = first
                report.tornTailBytes = size - first.position
            }
        }
        return report
    }

    /// Returns the segment's size.
    @discardableResult
    private static func verifySegment(
        directory: String, baseOffset: Int64, isLast: Bool, files: any FileSystem, report: inout Report
    ) throws(StorageError) -> Int {
        let path = SegmentFiles.log(directory, baseOffset)
        let fd = try files.open(path, flags: O_RDONLY | O_CLOEXEC, mode: 0)
        defer { files.close(fd) }
        let size = try files.fileSize(fd, path: path)
        report.segments += 1
        report.bytes += size
        // Unless a follower's roll left the gap on purpose (`SegmentGap`).
        if let next = report.nextOffset, baseOffset != next,
            !(try SegmentGap.isForced(previousEnd: next, nextBase: baseOffset, directory: directory, limits: .default, files: files))
        {
            report.problems.append(Problem(path: path, position: 0, message: "segment starts at offset \(baseOffset) but the previous one ends at \(next)"))
        }
        report.firstOffset = report.firstOffset ?? baseOffset
        var expected = baseOffset
        var batchStarts: [Int: Int64] = [:]
        var position = 0
        while position < size {
            let header = try read(fd, path: path, at: position, count: min(RecordBatchLayout.headerLength, size - position), files: files)
            let batchSize: Int
            do {
                guard let probed = try RecordBatch.size(ofBatchAtStartOf: header) else {
                    if isLast {
                        report.unfinishedTailBytes = size - position
                    } else {
                        report.problems.append(Problem(path: path, position: position, message: "the file ends inside a batch header"))
                    }
                    break
                }
                batchSize = probed
            } catch {
                // Zeros to the end of the last segment: write-ahead space not cut back yet (live or
                // crashed), which recovery drops.
                if isLast, try allZeros(fd, path: path, from: position, to: size, files: files) {
                    report.unfinishedTailBytes = size - position
                } else {
                    report.problems.append(Problem(path: path, position: position, message: error.description))
                }
                break
            }
            guard position + batchSize <= size else {
                if isLast {
                    report.unfinishedTailBytes = size - position
                } else {
                    report.problems.append(Problem(path: path, position: position, message: "the file ends \(size - position) bytes into a batch of \(batchSize)"))
                }
                break
            }
            do {
                let batch = try RecordBatch(validating: try read(fd, path: path, at: position, count: batchSize, files: files))
                if batch.baseOffset < expected {
                    report.problems.append(Problem(path: path, position: position, message: "batch offset \(batch.baseOffset) goes back (expected ≥ \(expected))"))
                    break
                }
                var count = 0
                try batch.forEachRecord { _ in count += 1 }
                batchStarts[position] = batch.baseOffset
                expected = batch.nextOffset
                report.batches += 1
                report.records += count
            } catch let error as StorageError {
                throw error
            } catch {
                report.problems.append(Problem(path: path, position: position, message: "\(error)"))
                break
            }
            position += batchSize
        }
        report.nextOffset = expected
        verifyOffsetIndex(
            directory: directory, baseOffset: baseOffset, batchStarts: batchStarts, checkedEnd: isLast ? position : nil, files: files, report: &report)
        verifyTimeIndex(directory: directory, baseOffset: baseOffset, nextOffset: expected, isLast: isLast, files: files, report: &report)
        return size
    }

    /// `checkedEnd`: for the last segment, where the check of its batches stopped; entries past it
    /// may be a live writer's newer ones.
    private static func verifyOffsetIndex(
        directory: String, baseOffset: Int64, batchStarts: [Int: Int64], checkedEnd: Int?, files: any FileSystem, report: inout Report
    ) {
        let path = SegmentFiles.index(directory, baseOffset)
        guard files.fileExists(path), let bytes = try? files.readFile(path) else { return }
        var previous: (Int64, Int)?
        for slot in 0..<(bytes.count / OffsetIndex.Layout.entrySize) {
            let relative = bigEndian(bytes, slot * 8, as: UInt32.self)
            if relative == 0 { break }  // unwritten, preallocated tail
            let offset = baseOffset + Int64(relative)
            let position = Int(bigEndian(bytes, slot * 8 + 4, as: UInt32.self))
            if let previous, offset <= previous.0 || position <= previous.1 {
                report.problems.append(Problem(path: path, position: slot * 8, message: "entry \(slot) does not increase"))
                return
            }
            if let checkedEnd, position >= checkedEnd { return }
            if batchStarts[position] != offset {
                report.problems.append(Problem(path: path, position: slot * 8, message: "entry \(slot) (offset \(offset), position \(position)) does not point at that batch"))
                return
            }
            previous = (offset, position)
        }
    }

    private static func verifyTimeIndex(
        directory: String, baseOffset: Int64, nextOffset: Int64, isLast: Bool, files: any FileSystem, report: inout Report
    ) {
        let path = SegmentFiles.timeIndex(directory, baseOffset)
        guard files.fileExists(path), let bytes = try? files.readFile(path) else { return }
        var previous: Int64?
        for slot in 0..<(bytes.count / TimeIndex.Layout.entrySize) {
            let timestamp = Int64(bitPattern: bigEndian(bytes, slot * 12, as: UInt64.self))
            let relative = bigEndian(bytes, slot * 12 + 8, as: UInt32.self)
            if timestamp == 0 && relative == 0 { break }
            if let previous, timestamp <= previous {
                report.problems.append(Problem(path: path, position: slot * 12, message: "entry \(slot) timestamp does not increase"))
                return
            }
            if baseOffset + Int64(relative) >= max(nextOffset, baseOffset + 1) {
                if isLast { return }  // a live writer's entry for batches appended after the check
                report.problems.append(Problem(path: path, position: slot * 12, message: "entry \(slot) points past the segment's end"))
                return
            }
            previous = timestamp
        }
    }

    private static func allZeros(_ fd: Int32, path: String, from start: Int, to end: Int, files: any FileSystem) throws(StorageError) -> Bool {
        var position = start
        while position < end {
            let chunk = try read(fd, path: path, at: position, count: min(end - position, 1 << 20), files: files)
            if !chunk.readableBytesView.allSatisfy({ $0 == 0 }) { return false }
            position += chunk.readableBytes
        }
        return true
    }

    private static func bigEndian<T: FixedWidthInteger>(_ bytes: [UInt8], _ at: Int, as: T.Type) -> T {
        bytes[at..<(at + MemoryLayout<T>.size)].reduce(T.zero) { $0 << 8 | T($1) }
    }

    private static func read(_ fd: Int32, path: String, at position: Int, count: Int, files: any FileSystem) throws(StorageError) -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: count)
        var outcome: Result<Int, StorageError> = .success(0)
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { raw in
            outcome = Result { () throws(StorageError) in try files.pread(fd, into: UnsafeMutableRawBufferPointer(rebasing: raw[..<count]), at: position, path: path) }
            return (try? outcome.get()) ?? 0
        }
        _ = try outcome.get()
        return buffer
    }
}
