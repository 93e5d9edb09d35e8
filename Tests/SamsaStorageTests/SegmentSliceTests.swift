import Foundation
import NIOCore
import SamsaRecords
@testable import SamsaStorage
import Testing
import SamsaTestSupport

/// `PartitionLog.readSlice`: the file ranges that zero-copy fetch sends must hold exactly the bytes
/// `read` returns, and stay readable while the segment is deleted under them.
@Suite("Segment slices", .offCooperativePool, .timeLimit(.minutes(2)))
struct SegmentSliceTests {
    /// A batch as appended: the model the reads are checked against.
    struct Appended {
        var base: Int64
        var last: Int64
        var size: Int
    }

    /// Batches of 1-12 records, values of varying size, uncompressed, lz4 and zstd in turn.
    static func fill(_ log: PartitionLog, batches: Int) async throws -> [Appended] {
        var appended: [Appended] = []
        let codecs: [CompressionCodec] = [.none, .lz4, .zstd, .none]
        for i in 0..<batches {
            var builder = RecordBatchBuilder(compression: codecs[i % codecs.count])
            for r in 0..<(1 + (i * 7) % 12) {
                builder.append(timestamp: 1_000 + Int64(i), key: nil, value: ByteBuffer(string: "batch-\(i)-record-\(r)-" + String(repeating: "x", count: (i * 37 + r * 11) % 300)))
            }
            let batch = try builder.build()
            let result = try await log.append(batch)
            appended.append(Appended(base: result.baseOffset, last: result.lastOffset, size: batch.sizeInBytes))
        }
        return appended
    }

    /// Base offsets of the batches `read` must return, from the model: the segment holding `offset`,
    /// the batch holding it, then whole batches while they fit (at least one with `wholeFirstBatch`:
    /// without it, none when the first does not fit, and nothing from a later segment either), none
    /// at or past `visibleEnd`.
    static func expectedBases(
        _ model: [Appended], segments: [Int64], offset: Int64, maxBytes: Int, wholeFirstBatch: Bool = true, visibleEnd: Int64
    ) -> [Int64] {
        guard offset < visibleEnd else { return [] }
        func segment(of base: Int64) -> Int64 { segments.last { $0 <= base }! }
        var start = model.firstIndex { $0.last >= offset }
        guard let first = start else { return [] }
        let holding = segment(of: model[first].base)
        var bases: [Int64] = []
        var length = 0
        while let index = start, index < model.count, segment(of: model[index].base) == holding {
            let batch = model[index]
            if batch.base >= visibleEnd || (length > 0 || !wholeFirstBatch) && length + batch.size > maxBytes { break }
            bases.append(batch.base)
            length += batch.size
            if length >= maxBytes { break }
            start = index + 1
        }
        return bases
    }

    static func bases(in bytes: ByteBuffer?) throws -> [Int64] {
        guard var bytes else { return [] }
        var result: [Int64] = []
        while bytes.readableBytes > 0 {
            let batch = try RecordBatch(validating: bytes)
            result.append(batch.baseOffset)
            bytes.moveReaderIndex(forwardBy: batch.sizeInBytes)
        }
        return result
    }

    /// Descriptors of this process open on files under `directory` (their links name the path,
    /// with " (deleted)" once unlinked). Other tests' files are not counted.
    static func openDescriptors(under directory: String) -> Int {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        return entries.filter { entry in
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(entry)"))?.hasPrefix(directory) ?? false
        }.count
    }

    @Test("readSlice holds exactly the bytes read returns, for every offset, several maxBytes, every limit, with and without wholeFirstBatch")
    func sliceMatchesRead() async throws {
        let dir = try TemporaryDirectory()
        let (log, _) = try PartitionLog.open(directory: dir.path, configuration: smallLogConfiguration())
        var model = try await Self.fill(log, batches: 60)
        try log.flush()
        model += try await Self.fill(log, batches: 20)
        let middle = model[70]
        log.raiseHighWatermark(to: middle.base + (middle.last - middle.base) / 2 + 1)
        let segments = log.segmentBaseOffsets
        #expect(segments.count > 5)
        #expect(log.flushedOffset > 0 && log.flushedOffset < log.logEndOffset)
        let descriptorsBefore = Self.openDescriptors(under: dir.path)
        var compared = 0
        for limit in [ReadLimit.logEnd, .flushed, .highWatermark] {
            let visibleEnd = switch limit {
            case .logEnd: log.logEndOffset
            case .flushed: log.flushedOffset
            case .highWatermark: log.highWatermark
            }
            for offset in 0...log.logEndOffset {
                for maxBytes in [0, 1, 200, 700, 1500, 4096, 1 << 20] {
                    for whole in [true, false] {
                        let bytes = try log.read(from: offset, maxBytes: maxBytes, wholeFirstBatch: whole, limit: limit)
                        let slice = try log.readSlice(from: offset, maxBytes: maxBytes, wholeFirstBatch: whole, limit: limit)
                        defer { slice?.close() }
                        let context: Comment = "offset \(offset), maxBytes \(maxBytes), whole \(whole), \(limit)"
                        #expect(try slice?.bytes() == bytes, context)
                        #expect(slice?.length == bytes?.readableBytes)
                        let expected = Self.expectedBases(
                            model, segments: segments, offset: offset, maxBytes: maxBytes, wholeFirstBatch: whole, visibleEnd: visibleEnd)
                        #expect(try Self.bases(in: bytes) == expected, context)
                        compared += 1
                    }
                }
            }
        }
        #expect(compared > 1000)
        // Past the end and before the start: the same error from both.
        for offset in [log.logEndOffset + 1, -1] {
            #expect(throws: StorageError.self) { try log.read(from: offset, maxBytes: 100) }
            #expect { try log.read(from: offset, maxBytes: 0, wholeFirstBatch: false) } throws: { ($0 as? StorageError)?.code == .offsetOutOfRange }
            #expect { try log.readSlice(from: offset, maxBytes: 100) } throws: { ($0 as? StorageError)?.code == .offsetOutOfRange }
        }
        #expect(Self.openDescriptors(under: dir.path) == descriptorsBefore, "every slice closed its descriptor")
        try log.close()
    }

    @Test("A slice stays readable after retention deleted its segment; closing it frees the file")
    func sliceOutlivesDeletedSegment() async throws {
        let dir = try TemporaryDirectory()
        var configuration = smallLogConfiguration()
        configuration.retentionBytes = 1  // everything but the active segment goes
        let (log, _) = try PartitionLog.open(directory: dir.path, configuration: configuration)
        _ = try await Self.fill(log, batches: 60)
        let expected = try #require(try log.read(from: 0, maxBytes: 1 << 20))
        let slice = try #require(try log.readSlice(from: 0, maxBytes: 1 << 20))
        #expect(try log.applyRetention(nowMilliseconds: 0) >= 1)
        #expect(throws: StorageError.self) { try log.readSlice(from: 0, maxBytes: 100) }
        // The unlink runs in the background (delete delay 0): wait until the name is gone.
        let name = SegmentFiles.log(dir.path, 0)
        for _ in 0..<500 where FileManager.default.fileExists(atPath: name + SegmentFiles.deletedSuffix) {
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(!FileManager.default.fileExists(atPath: name + SegmentFiles.deletedSuffix))
        #expect(try slice.bytes() == expected)
        #expect(slice.isOpen)
        slice.close()
        slice.close()
        #expect(!slice.isOpen)
        #expect(throws: StorageError.self) { try slice.bytes() }
        let unlinkedStillOpen = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []).filter { entry in
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(entry)")).map { $0.hasPrefix(dir.path) && $0.hasSuffix("(deleted)") } ?? false
        }
        #expect(unlinkedStillOpen.isEmpty)
        try log.close()
    }

    @Test("Dropping a slice without closing it closes its descriptor")
    func droppedSliceCloses() async throws {
        let dir = try TemporaryDirectory()
        let (log, _) = try PartitionLog.open(directory: dir.path, configuration: smallLogConfiguration())
        _ = try await Self.fill(log, batches: 10)
        let before = Self.openDescriptors(under: dir.path)
        do {
            let slice = try #require(try log.readSlice(from: 0, maxBytes: 1 << 20))
            #expect(Self.openDescriptors(under: dir.path) == before + 1)
            _ = slice
        }
        #expect(Self.openDescriptors(under: dir.path) == before)
        try log.close()
    }
}
