import Foundation
import NIOCore
import SamsaRecords
@testable import SamsaStorage
import Testing
import SamsaTestSupport

/// A leader's batch as a follower fetches it: `count` records at `offset`, stamped with `epoch`.
private func leaderBatch(_ offset: Int64, count: Int = 5, epoch: Int32 = 3) throws -> RecordBatch {
    var batch = try testBatch(offset: offset, count: count)
    batch.setPartitionLeaderEpoch(epoch)
    return batch
}

/// `batch` with its last offset delta set to `delta` (a cleaned batch keeps the span of offsets its
/// removed records had), checksum recomputed.
private func spanning(_ batch: RecordBatch, lastOffsetDelta delta: Int32) throws -> RecordBatch {
    typealias L = RecordBatchLayout
    var bytes = batch.buffer
    bytes.setInteger(delta, at: bytes.readerIndex + L.lastOffsetDeltaOffset)
    let crc = bytes.withUnsafeReadableBytes { raw in CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[L.attributesOffset...])) }
    bytes.setInteger(crc, at: bytes.readerIndex + L.crcOffset)
    return try RecordBatch(validating: bytes)
}

/// The bytes of every batch from the log start to the end, as read back.
private func batchBytes(_ log: PartitionLog) throws -> [[UInt8]] {
    try readBatches(log).map { Array($0.buffer.readableBytesView) }
}

@Suite("Follower appends (a leader's batches at their own offsets)", .offCooperativePool, .timeLimit(.minutes(2)))
struct FollowerAppendTests {
    @Test("batches land at the leader's offsets and epochs, byte for byte, gaps kept inside segments and across rolls")
    func gapsWithinSegments() throws {
        let dir = try TemporaryDirectory()
        let (log, _) = try PartitionLog.open(directory: dir.path, configuration: smallLogConfiguration())
        var sent: [RecordBatch] = []
        var base: Int64 = 0
        for index in 0..<40 {
            let batch = try leaderBatch(base, epoch: Int32(index / 10))
            let result = try log.appendAsFollower(batch)
            #expect(result == AppendResult(baseOffset: base, lastOffset: base + 4))
            #expect(log.logEndOffset == base + 5)
            sent.append(batch)
            base += 5 + Int64(index % 3) * 31  // every third batch follows at once, the others after a gap
        }
        #expect(log.segmentCount > 3, "the batches span several segments")
        #expect(try batchBytes(log) == sent.map { Array($0.buffer.readableBytesView) }, "the follower's bytes are the leader's")
        #expect(try readAll(log) == sent.flatMap { batch in (batch.baseOffset...batch.lastOffset).map { $0 } })
        // A read from anywhere inside a gap returns the next batch.
        for (previous, next) in zip(sent, sent.dropFirst()) where next.baseOffset > previous.nextOffset {
            for offset in [previous.nextOffset, (previous.nextOffset + next.baseOffset) / 2, next.baseOffset - 1] {
                let read = try #require(try log.read(from: offset, maxBytes: 1))
                #expect(try RecordBatch(validating: read).baseOffset == next.baseOffset)
            }
        }
        // Rolls on size start the next segment at the log end, so segments stay contiguous.
        let bases = log.segmentBaseOffsets
        for base in bases.dropFirst() { #expect(sent.contains { $0.nextOffset == base }, "segment \(base) starts where a batch ended") }
        try log.close()
    }

    @Test("a batch below the log end is refused and changes nothing; a leader append after follower appends takes the log end")
    func belowTheEndRefused() throws {
        let dir = try TemporaryDirectory()
        let (log, _) = try PartitionLog.open(directory: dir.path, configuration: smallLogConfiguration())
        try log.appendAsFollower(try leaderBatch(0))
        try log.appendAsFollower(try leaderBatch(100))
        for offset: Int64 in [0, 99, 100, 104] {
            #expect(throws: StorageError.self) { try log.appendAsFollower(try leaderBatch(offset)) }
        }
        #expect(try log.logEndOffset == 105 && readAll(log) == Array(0..<5) + Array(100..<105))
        let assigned = try log.appendWithoutWaiting(try testBatch(offset: 7))
        #expect(assigned.baseOffset == 105)
        try log.close()
    }

    @Test("a batch past 2^31 offsets from the active segment's base rolls: at the log end when it fits there, else at its own base")
    func relativeOffsetOverflowRolls() throws {
        let dir = try TemporaryDirectory()
        let (log, _) = try PartitionLog.open(directory: dir.path, configuration: smallLogConfiguration())
        let far: Int64 = 3_000_000_000
        try log.appendAsFollower(try leaderBatch(0))
        try log.appendAsFollower(try leaderBatch(far))
        #expect(log.segmentBaseOffsets == [0, far], "a segment at 5 could not index offset \(far)")
        // Ends more than Int32.max past the active base, but fits a segment based at the log end.
        let next = far + Int64(Int32.max) - 2
        try log.appendAsFollower(try leaderBatch(next))
        #expect(log.segmentBaseOffsets == [0, far, far + 5])
        // A batch whose own span is near Int32.max (a cleaned batch), far enough that no segment at the log end holds it.
        let wide = try spanning(try leaderBatch(next + 10), lastOffsetDelta: Int32.max - 1)
        try log.appendAsFollower(wide)
        #expect(log.segmentBaseOffsets == [0, far, far + 5, next + 10])
        #expect(log.logEndOffset == wide.nextOffset)
        #expect(try readAll(log) == Array(0..<5) + Array(far..<far + 5) + Array(next..<next + 5) + Array(next + 10..<next + 15))
        let read = try #require(try log.read(from: 1_000, maxBytes: 1))
        #expect(try RecordBatch(validating: read).baseOffset == far, "a read from inside the gap between segments returns the next batch")
        try log.close()
    }

    @Test("reopening keeps the gaps: after a clean close, after a crash (scan from 0), and with every batch below the recovery point")
    func reopenWithGaps() throws {
        let dir = try TemporaryDirectory()
        let far: Int64 = 3_000_000_000
        var sent: [RecordBatch] = []
        do {
            let (log, _) = try PartitionLog.open(directory: dir.path, configuration: smallLogConfiguration())
            for base: Int64 in [0, 40, 41 + 5, 500, far, far + 100] {
                let batch = try leaderBatch(base)
                try log.appendAsFollower(batch)
                sent.append(batch)
            }
            for index in 0..<20 {
                let batch = try leaderBatch(far + 1_000 + Int64(index) * 9)
                try log.appendAsFollower(batch)
                sent.append(batch)
            }
            try log.close()
        }
        let expected = sent.map { Array($0.buffer.readableBytesView) }
        let end = sent.last!.nextOffset
        for (cleanShutdown, recoveryPoint) in [(true, end), (false, Int64(0)), (false, end), (false, far)] {
            let (log, report) = try PartitionLog.open(
                directory: dir.path, configuration: smallLogConfiguration(), cleanShutdown: cleanShutdown, recoveryPoint: recoveryPoint)
            #expect(report.damage == nil && report.bytesTruncated == 0 && report.segmentsDeleted == 0, "\(report)")
            #expect(!cleanShutdown ? report.segmentsScanned > 0 : report.segmentsScanned == 0)
            #expect(log.logEndOffset == end)
            #expect(try batchBytes(log) == expected)
            try log.close()
        }
        let verified = try LogVerifier.verifyPartition(directory: dir.path, recoveryPoint: end)
        #expect(verified.problems.isEmpty, "\(verified.problems)")
        let reader = try PartitionLog.openReadOnly(directory: dir.path, configuration: smallLogConfiguration())
        #expect(try reader.logEndOffset == end && batchBytes(reader) == expected, "a read-only open follows the gap between segments")
    }

    @Test("after a crash, a torn tail past a gap is cut at the last whole batch; a segment that ends early below the recovery point is still damage")
    func crashWithGaps() throws {
        let dir = try TemporaryDirectory()
        let (log, _) = try PartitionLog.open(directory: dir.path, configuration: smallLogConfiguration())
        try log.appendAsFollower(try leaderBatch(0))
        try log.appendAsFollower(try leaderBatch(50))
        try log.flush()
        try log.appendAsFollower(try leaderBatch(3_000_000_000))
        let last = try leaderBatch(3_000_000_100)
        try log.appendAsFollower(last)
        let bases = log.segmentBaseOffsets
        #expect(bases == [0, 3_000_000_000])
        // A torn write of the last batch: half of it reached the file.
        let path = SegmentFiles.log(dir.path, bases[1])
        let size = try #require(FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
        let handle = try #require(FileHandle(forWritingAtPath: path))
        try handle.truncate(atOffset: UInt64(size - last.sizeInBytes / 2))
        try handle.close()
        let (reopened, report) = try PartitionLog.open(directory: dir.path, configuration: smallLogConfiguration(), recoveryPoint: 55)
        #expect(report.damage == nil && report.bytesTruncated == last.sizeInBytes - last.sizeInBytes / 2, "\(report)")
        #expect(reopened.logEndOffset == 3_000_000_005 && reopened.segmentBaseOffsets == bases)
        #expect(try readAll(reopened) == Array(0..<5) + Array(50..<55) + Array(3_000_000_000..<3_000_000_005))
        try reopened.close()

        // The first segment loses its last batch (cut at a batch boundary) though the recovery point covered it:
        // the next segment's first batch is near, so this is no roll's gap but missing records.
        let dense = try TemporaryDirectory()
        let (denseLog, _) = try PartitionLog.open(directory: dense.path, configuration: smallLogConfiguration())
        for index in 0..<20 { try denseLog.appendAsFollower(try leaderBatch(Int64(index) * 10)) }
        try denseLog.close()
        let first = SegmentFiles.log(dense.path, 0)
        let firstSize = try #require(FileManager.default.attributesOfItem(atPath: first)[.size] as? Int)
        let cut = try #require(FileHandle(forWritingAtPath: first))
        try cut.truncate(atOffset: UInt64(firstSize - (try leaderBatch(0)).sizeInBytes))
        try cut.close()
        let (damaged, damagedReport) = try PartitionLog.open(directory: dense.path, configuration: smallLogConfiguration(), recoveryPoint: 200)
        #expect(damagedReport.damage != nil, "\(damagedReport)")
        try damaged.close()
    }

    @Test("truncating into a gap cuts back to the batch before it, in a segment and between segments, and survives a reopen")
    func truncateIntoGap() throws {
        let dir = try TemporaryDirectory()
        let far: Int64 = 3_000_000_000
        let (log, _) = try PartitionLog.open(directory: dir.path, configuration: smallLogConfiguration(.everyAppend))
        for base: Int64 in [0, 100, 1_000, far, far + 50] { try log.appendAsFollower(try leaderBatch(base)) }
        try log.flush()
        // Between segments: the later segment goes, the end is the first segment's.
        try log.truncate(to: 2_000_000_000)
        #expect(log.logEndOffset == 1_005 && log.segmentBaseOffsets == [0] && log.flushedOffset <= 1_005)
        #expect(log.recoveryCheckpoint <= 1_005)
        // Inside a segment's gap.
        try log.truncate(to: 500)
        #expect(try log.logEndOffset == 105 && readAll(log) == Array(0..<5) + Array(100..<105))
        try log.truncate(to: 102)
        #expect(log.logEndOffset == 5, "the batch holding the offset goes whole, and the end is the batch before's")
        #expect(log.recoveryCheckpoint <= 5)
        try log.truncate(to: 3)
        #expect(log.logEndOffset == 0)
        // The follower goes on from the new end, into the old gap.
        try log.appendAsFollower(try leaderBatch(0))
        try log.appendAsFollower(try leaderBatch(60))
        try log.flush()
        #expect(log.flushedOffset == 65)
        try log.close()
        let (reopened, report) = try PartitionLog.open(directory: dir.path, configuration: smallLogConfiguration(), recoveryPoint: 0)
        #expect(report.damage == nil && report.bytesTruncated == 0)
        #expect(try reopened.logEndOffset == 65 && readAll(reopened) == Array(0..<5) + Array(60..<65))
        try reopened.close()
    }

    @Test("flush policies count a follower's appends: .everyAppend makes the log end durable, gaps included; .messages flushes at its count")
    func flushPolicies() async throws {
        let dir = try TemporaryDirectory()
        let (log, _) = try PartitionLog.open(directory: dir.path, configuration: smallLogConfiguration(.everyAppend))
        let result = try log.appendAsFollower(try leaderBatch(1_000))
        try await log.waitForFlushPolicy(result)
        #expect(log.flushedOffset == 1_005 && log.recoveryCheckpoint == 1_005)
        try log.close()

        let counted = try TemporaryDirectory()
        let (byCount, _) = try PartitionLog.open(directory: counted.path, configuration: smallLogConfiguration(.messages(count: 10)))
        try byCount.appendAsFollower(try leaderBatch(0))
        try byCount.appendAsFollower(try leaderBatch(70))
        let deadline = ContinuousClock.now + .seconds(10)
        while byCount.flushedOffset < 75 && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
        #expect(byCount.flushedOffset == 75)
        try byCount.close()
    }

    @Test("a follower's log with a gap between segments cleans, and reopens, with the gap")
    func cleaningAcrossAForcedGap() throws {
        let dir = try TemporaryDirectory()
        let far: Int64 = 3_000_000_000
        let (log, _) = try PartitionLog.open(directory: dir.path, configuration: compactedConfiguration())
        var offset: Int64 = 0
        for round in 0..<3 {
            for index in 0..<12 {
                var batch = try keyedBatch((0..<4).map { KeyedRecord(key: "k\(($0 + index) % 6)", value: "v\(round)-\(index)-\($0)") })
                batch.setBaseOffset(offset)
                try log.appendAsFollower(batch)
                offset += 4 + Int64(index % 2) * 3
            }
            offset = offset + far * Int64(round + 1) - offset % far  // the next round far past a segment's reach
        }
        try log.roll()
        let before = try readRecords(log)
        var latest: [String: ReadRecord] = [:]
        for record in before { latest[record.key!] = record }
        _ = try cleanFully(log)
        let after = try readRecords(log)
        #expect(Set(after.filter { latest[$0.key!] == $0 }) == Set(latest.values), "every key's latest value at its offset")
        #expect(after.count < before.count)
        try log.close()
        let (reopened, report) = try PartitionLog.open(directory: dir.path, configuration: compactedConfiguration(), recoveryPoint: 0)
        #expect(report.damage == nil && report.segmentsDeleted == 0, "\(report)")
        #expect(try readRecords(reopened) == after)
        try reopened.close()
    }
}
