import Foundation
import SamsaRecords
@testable import SamsaStorage
import Testing
import SamsaTestSupport

/// Recovery tells a torn tail (cut it) from damage (keep everything, serve up to it, refuse writes).
@Suite("Recovery: torn tails and damage", .offCooperativePool, .timeLimit(.minutes(1)))
struct RecoveryDamageTests {
    /// A closed log of several segments, 5 records a batch; returns its segment base offsets.
    func makeLog(_ dir: TemporaryDirectory, batches: Int = 60) async throws -> [Int64] {
        let (manager, _) = try LogManager.open(directory: dir.path, configuration: smallLogConfiguration(), checkpointInterval: nil)
        let log = try manager.createLog(TopicPartition(topic: "t", partition: 0))
        for _ in 0..<batches { try await log.append(try testBatch(offset: 0)) }
        let bases = log.segmentBaseOffsets
        try manager.close()
        return bases
    }

    func partition(_ dir: TemporaryDirectory) -> String { "\(dir.path)/t-0" }

    /// Record offsets from the log start up to `end` (a damaged log throws at its damage).
    func readUntil(_ log: PartitionLog, _ end: Int64) throws -> [Int64] {
        var result: [Int64] = []
        var next = log.logStartOffset
        while next < end, let bytes = try log.read(from: next, maxBytes: 1 << 16) {
            let read = try offsets(in: bytes).filter { $0 >= next }
            guard let last = read.last else { break }
            result += read
            next = last + 1
        }
        return result
    }

    func cut(_ path: String, to size: Int) throws {
        let handle = try #require(FileHandle(forWritingAtPath: path))
        try handle.truncate(atOffset: UInt64(size))
        try handle.close()
    }

    func sizes(_ directory: String) throws -> [String: Int] {
        var result: [String: Int] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: directory) where name.hasSuffix(".log") {
            result[name] = (try FileManager.default.attributesOfItem(atPath: "\(directory)/\(name)")[.size] as? Int) ?? -1
        }
        return result
    }

    @Test("a sealed segment cut short in the middle of the log: nothing deleted, reads stop at the damage, writes refused, offsets never reused")
    func middleSegmentCutShort() async throws {
        let dir = try TemporaryDirectory()
        let bases = try await makeLog(dir)
        #expect(bases.count >= 4)
        let middle = SegmentFiles.log(partition(dir), bases[1])
        try cut(middle, to: 1000)  // inside a batch
        let before = try sizes(partition(dir))
        // A reader (read-only open) sees the same damage: an error, not an early end of the log.
        let reader = try LogManager.openReadOnly(directory: dir.path, configuration: smallLogConfiguration())
        let readLog = try #require(reader.log(TopicPartition(topic: "t", partition: 0)))
        let readerDamage = try #require(readLog.damage)
        let readerError = #expect(throws: StorageError.self) { try readLog.read(from: readerDamage.offset, maxBytes: 1 << 16) }
        #expect(readerError?.code == .corrupt)
        for round in 0..<2 {  // the damage is seen again on the next open: the checkpoint is not lowered
            let (manager, report) = try LogManager.open(directory: dir.path, configuration: smallLogConfiguration(), checkpointInterval: nil)
            let log = try #require(manager.log(TopicPartition(topic: "t", partition: 0)))
            let damage = try #require(report.partitions[TopicPartition(topic: "t", partition: 0)]?.damage, "round \(round)")
            #expect(damage.path == middle)
            #expect(log.damage == damage)
            #expect(report.partitions.values.allSatisfy { $0.segmentsDeleted == 0 })
            let readable = try readUntil(log, damage.offset)
            #expect(readable == Array(0..<damage.offset))
            let readError = #expect(throws: StorageError.self) { try log.read(from: damage.offset, maxBytes: 1 << 16) }
            #expect(readError?.code == .corrupt)
            let writeError = await #expect(throws: StorageError.self) { try await log.append(try testBatch(offset: 0)) }
            #expect(writeError?.code == .corrupt)
            try manager.close()
            #expect(try sizes(partition(dir)) == before, "recovery changed or deleted a .log file")
        }
        let verify = try LogVerifier.verifyPartition(directory: partition(dir))
        #expect(!verify.isValid)
    }

    @Test("a flipped byte in the middle of the active segment is damage, not a torn tail: the later batches stay")
    func flippedByteInActiveSegment() async throws {
        let dir = try TemporaryDirectory()
        let bases = try await makeLog(dir, batches: 6)
        #expect(bases.count == 1)
        let path = SegmentFiles.log(partition(dir), 0)
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        let size = bytes.count
        bytes[size / 2] ^= 0xff
        try bytes.write(to: URL(fileURLWithPath: path))
        // Unclean: scanned from offset 0, where the first batches are valid and later ones follow the damage.
        try FileManager.default.removeItem(atPath: "\(dir.path)/\(LogManager.cleanShutdownMarker)")
        let (manager, report) = try LogManager.open(directory: dir.path, configuration: smallLogConfiguration(), checkpointInterval: nil)
        let damage = try #require(report.partitions[TopicPartition(topic: "t", partition: 0)]?.damage)
        #expect(damage.offset > 0 && damage.offset < 30)
        try manager.close()
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)).count == size, "the damaged segment was cut")
    }

    @Test("records below the recovery point missing from the end of the log: damage (they had been made durable)")
    func durableTailMissing() async throws {
        let dir = try TemporaryDirectory()
        let bases = try await makeLog(dir)
        let last = SegmentFiles.log(partition(dir), bases.last!)
        try cut(last, to: 100)
        let (manager, report) = try LogManager.open(directory: dir.path, configuration: smallLogConfiguration(), checkpointInterval: nil)
        let damage = try #require(report.partitions[TopicPartition(topic: "t", partition: 0)]?.damage)
        #expect(damage.offset == bases.last!)
        #expect(damage.recoveryPoint == 300)
        try manager.close()
    }

    @Test("past the recovery point a sealed segment's torn end is what a power cut left: cut there, later segments deleted")
    func tornTailsAreCut() async throws {
        let dir = try TemporaryDirectory()
        var bases: [Int64] = []
        do {
            let (log, _) = try PartitionLog.open(directory: dir.path, configuration: smallLogConfiguration())
            for _ in 0..<60 { try await log.append(try testBatch(offset: 0)) }
            bases = log.segmentBaseOffsets
        }
        // A power cut took the end of segment 1; later segments' blocks happened to reach the disk.
        try cut(SegmentFiles.log(dir.path, bases[1]), to: 1000)
        let (log, report) = try PartitionLog.open(directory: dir.path, configuration: smallLogConfiguration(), recoveryPoint: bases[1])
        #expect(report.damage == nil)
        #expect(report.segmentsDeleted == bases.count - 2)
        let kept = try readAll(log)
        #expect(kept == Array(0..<log.logEndOffset))
        #expect(log.logEndOffset > bases[1])
        try await log.append(try testBatch(offset: 0))
    }
}

@Suite("Failed truncation and retention", .offCooperativePool, .timeLimit(.minutes(1)))
struct FailedTruncationTests {
    @Test("a truncation that fails part-way refuses later writes; reopening recovers a consistent log", arguments: [
        (FaultInjectingFileSystem.Operation.rename, ".index"), (.ftruncate, ".log"), (.fdatasync, ".log"), (.rename, ".log"),
    ])
    func failedTruncation(operation: FaultInjectingFileSystem.Operation, path: String) async throws {
        let dir = try TemporaryDirectory()
        let files = FaultInjectingFileSystem()
        // Appends without a sync each (60 fdatasyncs take a minute on a disk busy with other work),
        // then one flush: the truncation's own steps are what is tested.
        let (manager, _) = try LogManager.open(directory: dir.path, configuration: smallLogConfiguration(), checkpointInterval: nil, files: files)
        let log = try manager.createLog(TopicPartition(topic: "t", partition: 0))
        for _ in 0..<60 { try await log.append(try testBatch(offset: 0)) }
        try log.flush()
        let bases = log.segmentBaseOffsets
        files.inject(operation, errno: operation == .fdatasync ? EIO : ENOSPC, pathContains: path)
        #expect(throws: StorageError.self) { try log.truncate(to: bases[1] + 2) }
        files.clearFaults()
        let refused = await #expect(throws: StorageError.self) { try await log.append(try testBatch(offset: 0)) }
        #expect(refused?.code == .closed)
        try? manager.close()
        let (reopened, report) = try LogManager.open(directory: dir.path, configuration: smallLogConfiguration(), checkpointInterval: nil, files: files)
        let again = try #require(reopened.log(TopicPartition(topic: "t", partition: 0)))
        #expect(report.damaged.isEmpty, "a crash or failure part-way through a truncation is not damage")
        // Either the truncation took effect or it did not; what is there is whole and in order.
        let offsets = try readAll(again)
        #expect(offsets == Array(0..<again.logEndOffset))
        #expect(again.logEndOffset == bases[1] || again.logEndOffset == 300)
        let next = try await again.append(try testBatch(offset: 0))
        #expect(next.baseOffset == again.logEndOffset - 5)
        try reopened.close()
    }

    @Test("a retention pass whose rename fails keeps the segment readable and the log start where the records are")
    func failedRetentionRename() async throws {
        let dir = try TemporaryDirectory()
        let files = FaultInjectingFileSystem()
        var configuration = smallLogConfiguration()
        configuration.retentionBytes = 4096
        let (log, _) = try PartitionLog.open(directory: dir.path, configuration: configuration, files: files)
        for _ in 0..<60 { try await log.append(try testBatch(offset: 0)) }
        files.inject(.rename, errno: EIO, pathContains: ".index")
        #expect(throws: StorageError.self) { try log.applyRetention(nowMilliseconds: 0) }
        files.clearFaults()
        #expect(try readAll(log) == Array(log.logStartOffset..<log.logEndOffset))
        try log.applyRetention(nowMilliseconds: 0)
        #expect(try readAll(log) == Array(log.logStartOffset..<log.logEndOffset))
        #expect(log.logStartOffset > 0)
    }
}
