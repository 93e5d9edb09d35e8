import Foundation
import NIOCore
import SamsaRecords
@testable import SamsaStorage
import Testing
import SamsaTestSupport
import Synchronization

/// The log manager's cleaner: background threads pick the dirtiest compacted log, roll an idle
/// active segment after `segment.ms`, keep clean points in `cleaner-offset-checkpoint`, and report
/// statistics; logs with the delete policy are left to retention.
@Suite("Log cleaner", .offCooperativePool, .timeLimit(.minutes(1)))
struct LogCleanerTests {
    @Test("a background cleaner compacts an idle compacted log (segment.ms rolls it) and checkpoints its clean point")
    func backgroundCleaning() async throws {
        let dir = try TemporaryDirectory()
        var configuration = compactedConfiguration(segmentBytes: 4096)
        configuration.segmentMilliseconds = 200
        configuration.minCleanableDirtyRatio = 0.01
        let (manager, _) = try LogManager.open(
            directory: dir.path, configuration: configuration, checkpointInterval: nil,
            cleaner: LogCleanerConfiguration(threads: 2, dedupeBufferBytes: 1 << 16, backoffMilliseconds: 20))
        let compacted = TopicPartition(topic: "compacted", partition: 0)
        let plain = TopicPartition(topic: "plain", partition: 0)
        let log = try manager.createLog(compacted)
        var deleting = configuration
        deleting.cleanupPolicy = .delete
        let other = try manager.createLog(plain, configuration: deleting)
        var model = CompactionModel()
        for round in 0..<200 {
            let records = [KeyedRecord(key: "key-\(round % 5)", value: "value-\(round)")]
            model.appended(records, at: try await log.append(try keyedBatch(records)).baseOffset)
            try await other.append(try keyedBatch(records))
        }
        let size = log.sizeInBytes
        let plainSize = other.sizeInBytes
        // No more appends: the idle active segment rolls after segment.ms, and everything is cleaned.
        try await eventually("the compacted log shrinks to its 5 keys") { (try? readRecords(log).count) == 5 }
        #expect(model.problems(try readRecords(log)).isEmpty)
        #expect(log.sizeInBytes < size / 4)
        #expect(other.sizeInBytes == plainSize)
        let statistics = manager.cleaner.statistics
        #expect(statistics.passes >= 1)
        #expect(statistics.bytesRead > 0 && statistics.bytesWritten > 0)
        #expect(statistics.partitions[compacted]?.lastCleanMilliseconds != nil)
        #expect(statistics.partitions[plain] == nil)
        #expect(statistics.uncleanablePartitions.isEmpty)
        try manager.close()
        // Read after the cleaner stopped: a pass may have run after the statistics above were taken.
        let final = manager.cleaner.statistics
        let points = try OffsetCheckpoint.read(dir.file(LogCleaner.checkpointFile), files: PosixFileSystem())
        #expect(points[compacted] == final.partitions[compacted]?.cleanPoint)
        #expect((points[compacted] ?? 0) > 0)
    }

    @Test("the cleanup policy parses Kafka's spellings; retention applies only with delete")
    func policy() async throws {
        #expect(CleanupPolicy("compact") == .compact)
        #expect(CleanupPolicy("delete,compact") == .compactAndDelete)
        #expect(CleanupPolicy("compact, delete") == .compactAndDelete)
        #expect(CleanupPolicy("purge") == nil)
        var configuration = compactedConfiguration()
        configuration.maxCompactionLagMilliseconds = 500
        #expect(configuration.maxSegmentMilliseconds == 500)
        configuration.retentionBytes = 1
        let dir = try TemporaryDirectory()
        let (log, _) = try PartitionLog.open(directory: dir.path, configuration: configuration)
        for round in 0..<40 { try await log.append(try keyedBatch([KeyedRecord(key: "k\(round)", value: "v")])) }
        #expect(log.segmentCount > 2)
        #expect(try log.applyRetention(nowMilliseconds: 0) == 0)
        configuration.cleanupPolicy = .compactAndDelete
        log.reconfigure(configuration)
        #expect(try log.applyRetention(nowMilliseconds: 0) > 0)
        try log.close()
    }
}
