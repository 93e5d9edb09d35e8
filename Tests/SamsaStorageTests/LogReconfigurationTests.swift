import Foundation
import SamsaRecords
@testable import SamsaStorage
import Testing
import SamsaTestSupport

/// A topic's config change reaches its open logs at once (`PartitionLog.reconfigure`), as Kafka's
/// `UnifiedLog.updateConfig` does: no reopen, no lost or re-ordered append.
@Suite("Reconfiguring an open log", .offCooperativePool, .timeLimit(.minutes(1)))
struct LogReconfigurationTests {
    @Test("A smaller segment size rolls at the next append; a larger one stops rolling")
    func segmentSize() async throws {
        let dir = try TemporaryDirectory()
        var configuration = LogConfiguration(segmentBytes: 1 << 20, flushPolicy: .never, fileDeleteDelayMilliseconds: 0)
        let (log, _) = try PartitionLog.open(directory: dir.path, configuration: configuration)
        for i in 0..<10 { try await log.append(try testBatch(offset: 0, timestamp: Int64(i))) }
        #expect(log.segmentCount == 1)
        configuration.segmentBytes = 200
        log.reconfigure(configuration)
        #expect(log.configuration.segmentBytes == 200)
        for i in 0..<10 { try await log.append(try testBatch(offset: 0, timestamp: Int64(i))) }
        let rolled = log.segmentCount
        #expect(rolled >= 10)
        configuration.segmentBytes = 1 << 20
        log.reconfigure(configuration)
        for i in 0..<10 { try await log.append(try testBatch(offset: 0, timestamp: Int64(i))) }
        #expect(log.segmentCount == rolled)  // the active segment takes them all
        #expect(try readAll(log) == Array(0..<150))
        try log.close()
    }

    @Test("A flush policy switched to every-append syncs what is pending and each append after; switched back, appends stop waiting")
    func flushPolicy() async throws {
        let dir = try TemporaryDirectory()
        var configuration = LogConfiguration(flushPolicy: .never)
        let (log, _) = try PartitionLog.open(directory: dir.path, configuration: configuration)
        try await log.append(try testBatch(offset: 0, timestamp: 1))
        #expect(log.flushedOffset == 0)
        configuration.flushPolicy = .everyAppend
        log.reconfigure(configuration)
        try await log.append(try testBatch(offset: 0, timestamp: 2))
        #expect(log.flushedOffset == log.logEndOffset)
        configuration.flushPolicy = .never
        log.reconfigure(configuration)
        try await log.append(try testBatch(offset: 0, timestamp: 3))
        #expect(log.flushedOffset < log.logEndOffset)
        configuration.flushPolicy = .interval(milliseconds: 20)
        log.reconfigure(configuration)
        try await eventually("the interval flusher syncs") { log.flushedOffset == log.logEndOffset }
        try log.close()
    }

    @Test("A lower batch limit refuses a larger batch at the next append; retention bounds apply at the next pass")
    func batchLimitAndRetention() async throws {
        let dir = try TemporaryDirectory()
        var configuration = LogConfiguration(segmentBytes: 200, flushPolicy: .never, fileDeleteDelayMilliseconds: 0)
        let (log, _) = try PartitionLog.open(directory: dir.path, configuration: configuration)
        let batch = try testBatch(offset: 0, timestamp: 1)
        for _ in 0..<10 { try await log.append(batch) }
        #expect(try log.applyRetention(nowMilliseconds: 1_000) == 0)
        configuration.retentionBytes = 1
        log.reconfigure(configuration)
        #expect(try log.applyRetention(nowMilliseconds: 1_000) > 0)
        #expect(log.segmentCount == 1)
        configuration.segment.limits.maxBatchSize = batch.sizeInBytes - 1
        log.reconfigure(configuration)
        await #expect(throws: StorageError.self) { try await log.append(batch) }
        try log.close()
    }
}
