import Foundation
import Glibc
import SamsaRecords
@testable import SamsaStorage
import Testing
import SamsaTestSupport

/// What a log costs before it holds anything, and what a full disk or an oversized batch does to it
/// (issue 20): indexes grow on demand, opening needs no fresh space, a batch recovery could not read back
/// is never written, and a many-partition create or delete is all or nothing, also across a crash.
@Suite("Storage resource bounds", .offCooperativePool, .timeLimit(.minutes(1)))
struct ResourceBoundsTests {
    let files = PosixFileSystem()

    @Test("An index starts at one page and doubles as entries come, up to its maximum, keeping every entry")
    func indexGrowsOnDemand() throws {
        let dir = try TemporaryDirectory()
        let path = dir.file("x.index")
        let index = try OffsetIndex(path: path, baseOffset: 0, maxSize: 8 * 3_000, writable: true, files: files)
        #expect(try fileSize(path) == 4096)
        for i in 0..<2_000 { try index.append(offset: Int64(i + 1), position: i * 10) }
        // 2,000 entries of 8 bytes: 4 KiB, 8 KiB, then 16 KiB.
        #expect(try fileSize(path) == 16_384)
        #expect(!index.isFull)
        for i in stride(from: 0, to: 2_000, by: 97) { #expect(index.lookup(Int64(i + 1)) == (Int64(i + 1), i * 10)) }
        for i in 2_000..<3_000 { try index.append(offset: Int64(i + 1), position: i * 10) }
        #expect(index.isFull)
        #expect(try fileSize(path) == 24_000)
        index.close()
        let reopened = try OffsetIndex(path: path, baseOffset: 0, maxSize: 8 * 3_000, writable: true, files: files)
        #expect(reopened.entryCount == 3_000)
    }

    @Test("A full disk fails the append that needs the index to grow, before the log is written; the log stays whole")
    func fullDiskFailsAppendCleanly() async throws {
        let dir = try TemporaryDirectory()
        let faults = FaultInjectingFileSystem()
        // An index entry every batch, a page of room (512 entries) before the index must grow.
        let configuration = LogConfiguration(flushPolicy: .never, segment: SegmentConfiguration(indexIntervalBytes: 1, maxIndexSize: 1 << 20))
        let log = try PartitionLog.open(directory: dir.path, configuration: configuration, files: faults).log
        // The first batch starts the interval; the next 512 fill the page's 512 entries.
        for _ in 0..<513 { try await log.append(try testBatch(offset: 0, count: 1, valueSize: 10)) }
        faults.inject(.fallocate, errno: ENOSPC, pathContains: ".index", times: 100)
        let refused = await #expect(throws: StorageError.self) { try await log.append(try testBatch(offset: 0, count: 1, valueSize: 10)) }
        #expect(refused?.errno == ENOSPC)
        #expect(log.logEndOffset == 513)
        faults.clearFaults()
        try await log.append(try testBatch(offset: 0, count: 1, valueSize: 10))
        #expect(try readAll(log) == Array(0..<514))
        try log.close()
    }

    @Test("A roll whose new segment cannot be made fails that append and leaves the active segment writable")
    func failedRollKeepsActiveSegment() async throws {
        let dir = try TemporaryDirectory()
        let faults = FaultInjectingFileSystem()
        let log = try PartitionLog.open(directory: dir.path, configuration: smallLogConfiguration(), files: faults).log
        // 4 KiB segments of ~600-byte batches: the seventh append rolls.
        for _ in 0..<6 { try await log.append(try testBatch(offset: 0)) }
        #expect(log.segmentBaseOffsets.count == 1)
        // Only the new segment's files (base offset 30) cannot be made; sealing the old one works.
        faults.inject(.open, errno: ENOSPC, pathContains: "00000000000000000030.", times: 1_000)
        await #expect(throws: StorageError.self) { try await log.append(try testBatch(offset: 0)) }
        faults.clearFaults()
        // A batch small enough to need no roll: before the fix the active segment was sealed here,
        // and this append trapped.
        try await log.append(try testBatch(offset: 0, count: 1, valueSize: 10))
        try await log.append(try testBatch(offset: 0))
        #expect(try readAll(log) == Array(0..<36))
        try log.close()
    }

    @Test("Opening after a crash on a full disk allocates nothing: reads work, and appends while the indexes have room")
    func openOnFullDisk() async throws {
        let dir = try TemporaryDirectory()
        let configuration = LogConfiguration(flushPolicy: .never, segment: SegmentConfiguration(indexIntervalBytes: 1, maxIndexSize: 1 << 20))
        do {
            let (manager, _) = try LogManager.open(directory: dir.path, configuration: configuration, checkpointInterval: nil)
            let log = try manager.createLog(TopicPartition(topic: "t", partition: 0))
            for _ in 0..<20 { try await log.append(try testBatch(offset: 0, count: 1, valueSize: 10)) }
            try log.flush()
            // No close: as after a crash.
        }
        let faults = FaultInjectingFileSystem()
        faults.inject(.fallocate, errno: ENOSPC, times: 1_000)
        let (manager, report) = try LogManager.open(directory: dir.path, configuration: configuration, checkpointInterval: nil, files: faults)
        #expect(report.damaged.isEmpty)
        #expect(faults.faultsFired == 0, "\(faults.firedFaults)")
        let log = try #require(manager.log(TopicPartition(topic: "t", partition: 0)))
        #expect(try readAll(log) == Array(0..<20))
        try await log.append(try testBatch(offset: 0, count: 1, valueSize: 10))
        #expect(try readAll(log) == Array(0..<21))
        try manager.close()
    }

    @Test("A batch larger than the log's limit is refused before it is written: nothing acknowledged is beyond recovery")
    func oversizedBatchRefused() async throws {
        let dir = try TemporaryDirectory()
        var configuration = LogConfiguration(flushPolicy: .never)
        configuration.segment.limits = RecordBatchLimits(maxBatchSize: 4_096)
        let log = try PartitionLog.open(directory: dir.path, configuration: configuration).log
        try await log.append(try testBatch(offset: 0, count: 3, valueSize: 100))
        let refused = await #expect(throws: StorageError.self) { try await log.append(try testBatch(offset: 0, count: 50, valueSize: 100)) }
        #expect(refused?.code == .invalidArgument)
        try await log.append(try testBatch(offset: 0, count: 3, valueSize: 100))
        try log.flush()
        try log.close()
        // Recovery with the same limit keeps everything that was acknowledged.
        let (reopened, report) = try PartitionLog.open(directory: dir.path, configuration: configuration, cleanShutdown: false, recoveryPoint: 0)
        #expect(report.damage == nil)
        #expect(try readAll(reopened) == Array(0..<6))
        try reopened.close()
    }

    @Test("A create of many partitions that fails part-way leaves none of them")
    func createIsAllOrNothing() throws {
        let dir = try TemporaryDirectory()
        let faults = FaultInjectingFileSystem()
        let (manager, _) = try LogManager.open(directory: dir.path, checkpointInterval: nil, files: faults)
        // The seventh partition's segment file cannot be made.
        faults.inject(.open, errno: ENOSPC, pathContains: "big-6/", times: 1_000)
        let partitions = (0..<10).map { TopicPartition(topic: "big", partition: $0) }
        #expect(throws: StorageError.self) { try manager.createLogs(partitions) }
        #expect(manager.partitions.isEmpty)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasPrefix("big") || $0.hasPrefix("pending") }.isEmpty)
        faults.clearFaults()
        try manager.createLogs(partitions)
        #expect(manager.partitions == partitions)
        try manager.close()
    }

    @Test("A crash part-way through a create or a delete: the next open leaves no part of that topic")
    func journalFinishesAtOpen() throws {
        let dir = try TemporaryDirectory()
        do {
            let (manager, _) = try LogManager.open(directory: dir.path, checkpointInterval: nil)
            try manager.createLogs((0..<3).map { TopicPartition(topic: "kept", partition: $0) })
            // As a crash would leave them: a create that made 2 of its 4 partitions, and a delete that
            // removed 1 of its 3, each with its journal written.
            _ = try PendingRemovals.begin((0..<4).map { TopicPartition(topic: "half-made", partition: $0) }, in: dir.path, files: files)
            try manager.createLog(TopicPartition(topic: "half-made", partition: 0))
            try manager.createLog(TopicPartition(topic: "half-made", partition: 1))
            try manager.createLogs((0..<3).map { TopicPartition(topic: "half-gone", partition: $0) })
            _ = try PendingRemovals.begin((0..<3).map { TopicPartition(topic: "half-gone", partition: $0) }, in: dir.path, files: files)
            try manager.deleteLog(TopicPartition(topic: "half-gone", partition: 0))
            // And a journal whose own write was cut short: the change never began.
            #expect(FileManager.default.createFile(atPath: dir.file("pending-removal-0123.tmp"), contents: Data("kept-0\n".utf8)))
        }
        let (manager, _) = try LogManager.open(directory: dir.path, checkpointInterval: nil)
        #expect(manager.partitions == (0..<3).map { TopicPartition(topic: "kept", partition: $0) })
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasPrefix("pending") || $0.hasPrefix("half") }.isEmpty)
        try manager.close()
    }

    @Test("A partition of a 249-character topic can be deleted (its deletion name fits the file system)")
    func longestTopicDeletes() throws {
        let dir = try TemporaryDirectory()
        let topic = String(repeating: "t", count: 249)
        do {
            let (manager, _) = try LogManager.open(directory: dir.path, checkpointInterval: nil)
            try manager.createLogs([TopicPartition(topic: topic, partition: 0), TopicPartition(topic: topic, partition: 99_999)])
            try manager.deleteLogs([TopicPartition(topic: topic, partition: 0), TopicPartition(topic: topic, partition: 99_999)])
            #expect(manager.partitions.isEmpty)
            try manager.close()
        }
        let (manager, _) = try LogManager.open(directory: dir.path, checkpointInterval: nil)
        #expect(manager.partitions.isEmpty)
        try manager.close()
    }
}
