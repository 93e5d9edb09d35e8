import Foundation
import NIOCore
import SamsaRecords
@testable import SamsaStorage
import Testing
import SamsaTestSupport

/// A batch of `count` records starting at `offset`, each value `valueSize` bytes naming its offset.
func testBatch(offset: Int64, count: Int = 5, valueSize: Int = 100, timestamp: Int64 = 1_000) throws -> RecordBatch {
    var builder = RecordBatchBuilder()
    for i in 0..<count {
        let label = Array("offset-\(offset + Int64(i))-".utf8)
        builder.append(timestamp: timestamp + Int64(i), key: nil, value: label + [UInt8](repeating: 0x61, count: max(0, valueSize - label.count)))
    }
    var batch = try builder.build()
    batch.setBaseOffset(offset)
    return batch
}

/// The offsets of every record in whole batches read back from a segment.
func offsets(in bytes: ByteBuffer?) throws -> [Int64] {
    guard var bytes else { return [] }
    var result: [Int64] = []
    while bytes.readableBytes > 0 {
        let batch = try RecordBatch(validating: bytes)
        result += try batch.decodeRecords().map(\.offset)
        bytes.moveReaderIndex(forwardBy: batch.sizeInBytes)
    }
    return result
}

@Suite("Segment", .offCooperativePool, .timeLimit(.minutes(1)))
struct SegmentTests {
    let files = PosixFileSystem()
    let configuration = SegmentConfiguration(indexIntervalBytes: 1024, maxIndexSize: 4096)

    func makeSegment(_ dir: TemporaryDirectory, base: Int64 = 0, writable: Bool = true) throws -> Segment {
        try Segment(directory: dir.path, baseOffset: base, configuration: configuration, writable: writable, files: files, descriptors: DescriptorCache(files: files))
    }

    /// Appends `batches` batches of 5 records; returns each batch's (base offset, position).
    @discardableResult
    func fill(_ segment: Segment, batches: Int, from offset: Int64 = 0) throws -> [(offset: Int64, position: Int)] {
        var placed: [(Int64, Int)] = []
        var next = offset
        for _ in 0..<batches {
            let batch = try testBatch(offset: next)
            placed.append((next, segment.size))
            try segment.append(batch)
            next = batch.nextOffset
        }
        return placed
    }

    @Test("reads return whole batches from the one holding the offset")
    func appendAndRead() throws {
        let dir = try TemporaryDirectory()
        let segment = try makeSegment(dir)
        try fill(segment, batches: 40)
        #expect(segment.nextOffset == 200)
        #expect(segment.offsetIndex.entryCount > 5)
        for offset: Int64 in [0, 1, 4, 5, 77, 123, 199] {
            let read = try segment.read(from: offset, maxBytes: 1)  // one batch at least, however small maxBytes is
            let first = offset - offset % 5
            #expect(try offsets(in: read) == Array(first..<(first + 5)), "offset \(offset)")
        }
        #expect(try segment.read(from: 200, maxBytes: 1 << 20) == nil)
        let all = try segment.read(from: 0, maxBytes: 1 << 20)
        #expect(try offsets(in: all) == Array(0..<200))
        // maxBytes takes whole batches only.
        let batchSize = try testBatch(offset: 0).sizeInBytes
        #expect(try offsets(in: segment.read(from: 10, maxBytes: 3 * batchSize + 10)).count == 15)
    }

    @Test("a reader limited to a position sees nothing past it")
    func endPosition() throws {
        let dir = try TemporaryDirectory()
        let segment = try makeSegment(dir)
        let placed = try fill(segment, batches: 10)
        let read = try segment.read(from: 0, maxBytes: 1 << 20, endPosition: placed[4].position)
        #expect(try offsets(in: read) == Array(0..<20))
        #expect(try segment.read(from: 20, maxBytes: 1 << 20, endPosition: placed[4].position) == nil)
    }

    @Test("garbage from a random position to the end is truncated and exactly the earlier offsets survive", arguments: 0..<10)
    func garbageTail(seed: Int) throws {
        let dir = try TemporaryDirectory()
        var placed: [(offset: Int64, position: Int)] = []
        var size = 0
        do {
            let segment = try makeSegment(dir)
            placed = try fill(segment, batches: 30)
            size = segment.size
        }
        var rng = SystemRandomNumberGenerator()
        let garbageStart = Int.random(in: 0..<size, using: &rng)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: SegmentFiles.log(dir.path, 0)))
        try handle.seek(toOffset: UInt64(garbageStart))
        try handle.write(contentsOf: (0..<(size - garbageStart + Int.random(in: 0...500, using: &rng))).map { _ in UInt8.random(in: 0...255, using: &rng) })
        try handle.close()

        let reopened = try makeSegment(dir)
        let result = try reopened.recover()
        let survivors = placed.filter { $0.position + (try! testBatch(offset: $0.offset)).sizeInBytes <= garbageStart }
        #expect(result.batches == survivors.count)
        #expect(reopened.nextOffset == (survivors.last.map { $0.offset + 5 } ?? 0))
        #expect(try offsets(in: reopened.read(from: 0, maxBytes: 1 << 20)) == Array(0..<reopened.nextOffset))
        #expect(try fileSize(SegmentFiles.log(dir.path, 0)) == result.validBytes)
        #expect(result.truncatedBytes > 0)
    }

    @Test("a file cut in the middle of a batch recovers to the batch before")
    func truncatedMidBatch() throws {
        let dir = try TemporaryDirectory()
        var placed: [(offset: Int64, position: Int)] = []
        do {
            let segment = try makeSegment(dir)
            placed = try fill(segment, batches: 10)
        }
        truncate(SegmentFiles.log(dir.path, 0), off_t(placed[7].position + 30))
        let reopened = try makeSegment(dir)
        let result = try reopened.recover()
        #expect(result == Segment.RecoveryResult(validBytes: placed[7].position, truncatedBytes: 30, zeroTailBytes: 0, batches: 7))
        #expect(reopened.nextOffset == 35)
        try reopened.append(try testBatch(offset: 35))
        #expect(try offsets(in: reopened.read(from: 0, maxBytes: 1 << 20)) == Array(0..<40))
    }

    @Test("a corrupt index fails the clean-open check and is rebuilt by recovery")
    func corruptIndexRebuilt() throws {
        let dir = try TemporaryDirectory()
        var entries = 0
        do {
            let segment = try makeSegment(dir)
            try fill(segment, batches: 30)
            entries = segment.offsetIndex.entryCount
            try segment.seal()
        }
        // Point the second entry far past the end of the log.
        var index = try Data(contentsOf: URL(fileURLWithPath: SegmentFiles.index(dir.path, 0)))
        index.replaceSubrange(12..<16, with: [0x7F, 0, 0, 0])
        try index.write(to: URL(fileURLWithPath: SegmentFiles.index(dir.path, 0)))

        let reopened = try makeSegment(dir)
        let error = #expect(throws: StorageError.self) { try reopened.loadEnd() }
        #expect(error?.code == .corrupt)
        _ = try reopened.recover()
        #expect(reopened.offsetIndex.entryCount == entries)
        try reopened.loadEnd()
        #expect(reopened.nextOffset == 150)
        #expect(try offsets(in: reopened.read(from: 101, maxBytes: 1)) == Array(100..<105))
    }

    @Test("a clean reopen finds the end from the last index entry")
    func cleanReopen() throws {
        let dir = try TemporaryDirectory()
        do {
            let segment = try makeSegment(dir)
            try fill(segment, batches: 25)
            try segment.seal()
        }
        let reopened = try makeSegment(dir, writable: false)
        try reopened.loadEnd()
        #expect(reopened.nextOffset == 125)
        #expect(reopened.maxTimestamp == 1_004)
        #expect(try offsets(in: reopened.read(from: 60, maxBytes: 1)) == Array(60..<65))
    }

    @Test("truncate removes the batch holding the offset and all after it")
    func truncateFrom() throws {
        let dir = try TemporaryDirectory()
        let segment = try makeSegment(dir)
        try fill(segment, batches: 20)
        #expect(try segment.truncate(from: 52) == 50)
        #expect(segment.nextOffset == 50)
        #expect(try offsets(in: segment.read(from: 0, maxBytes: 1 << 20)) == Array(0..<50))
        try segment.append(try testBatch(offset: 50))
        #expect(try offsets(in: segment.read(from: 48, maxBytes: 1 << 20)) == Array(45..<55))
        #expect(throws: StorageError.self) { try segment.append(try testBatch(offset: 10)) }
    }

    @Test("offsets out of order stop recovery: a batch must not go back")
    func offsetsMustIncrease() throws {
        let dir = try TemporaryDirectory()
        let segment = try makeSegment(dir)
        try fill(segment, batches: 3)
        // Write a valid batch with an old offset straight into the file, as a bug or bad copy might.
        let stale = try testBatch(offset: 5)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: SegmentFiles.log(dir.path, 0)))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(stale.buffer.readableBytesView))
        try handle.close()
        let result = try makeSegment(dir).recover()
        #expect(result.batches == 3)
        #expect(result.truncatedBytes == stale.sizeInBytes)
    }
}
