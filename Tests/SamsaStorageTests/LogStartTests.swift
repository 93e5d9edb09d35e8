import Foundation
@testable import SamsaStorage
import Testing
import SamsaTestSupport

/// Moving a log's start (Kafka's DeleteRecords): reads below it are refused, whole segments below it
/// go, and once checkpointed the move survives a crash.
@Suite("Log start", .offCooperativePool, .timeLimit(.minutes(2)))
struct LogStartTests {
    let orders = TopicPartition(topic: "orders", partition: 0)

    /// A log of 300 offsets (batches of 5) over many 4 KiB segments.
    static func filled(_ log: PartitionLog) async throws {
        for _ in 0..<60 { try await log.append(try testBatch(offset: 0)) }
    }

    @Test("advanceLogStart refuses reads below the new start, deletes whole segments below it and keeps the one holding it")
    func movesStartAndDeletesSegments() async throws {
        let dir = try TemporaryDirectory()
        let (log, _) = try PartitionLog.open(directory: dir.path, configuration: smallLogConfiguration())
        try await Self.filled(log)
        let bases = log.segmentBaseOffsets
        #expect(bases.count > 4)
        // Inside the third segment, past its base.
        let target = bases[2] + 3
        #expect(target < bases[3])
        #expect(try log.advanceLogStart(to: target))
        #expect(log.logStartOffset == target)
        #expect(log.segmentBaseOffsets == Array(bases.dropFirst(2)), "the segment holding the new start stays")
        let logFiles = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".log") }.sorted()
        #expect(logFiles == bases.dropFirst(2).map { String(format: "%020lld.log", $0) }, "the deleted segments' files are gone")
        #expect(throws: StorageError.self) { _ = try log.read(from: target - 1, maxBytes: 1 << 16) }
        #expect(try readAll(log) == Array(target..<300))
        // At or below the current start: nothing to do.
        #expect(try !log.advanceLogStart(to: target))
        #expect(try !log.advanceLogStart(to: 0))
        #expect(log.logStartOffset == target)
        // Past the log end: refused, nothing changes.
        let refused = #expect(throws: StorageError.self) { try log.advanceLogStart(to: 301) }
        #expect(refused?.code == .offsetOutOfRange)
        #expect(log.logStartOffset == target)
        // Up to the log end: everything but the active segment goes, and the log still takes appends.
        #expect(try log.advanceLogStart(to: 300))
        #expect(log.segmentCount == 1)
        #expect(try readAll(log) == [])
        #expect(try await log.append(try testBatch(offset: 0)).baseOffset == 300)
        #expect(try readAll(log) == Array(300..<305))
    }

    @Test("a moved log start, checkpointed, survives a crash (no close); a move not checkpointed is lost")
    func checkpointedStartSurvivesCrash() async throws {
        let dir = try TemporaryDirectory()
        let target: Int64
        do {
            let (manager, _) = try LogManager.open(directory: dir.path, configuration: smallLogConfiguration(), checkpointInterval: nil)
            let log = try manager.createLog(orders)
            try await Self.filled(log)
            try log.flush()
            try manager.checkpoint()
            let bases = log.segmentBaseOffsets
            target = bases[1] + 2
            #expect(try log.advanceLogStart(to: target))
            try manager.checkpointLogStarts()
            // No close: as if the process died right after answering.
        }
        let checkpoint = try String(contentsOfFile: dir.file(LogManager.logStartFile), encoding: .utf8)
        #expect(checkpoint == "0\n1\norders 0 \(target)\n")
        do {
            let (manager, report) = try LogManager.open(directory: dir.path, configuration: smallLogConfiguration(), checkpointInterval: nil)
            #expect(!report.cleanShutdown)
            let log = try #require(manager.log(orders))
            #expect(log.logStartOffset == target)
            #expect(throws: StorageError.self) { _ = try log.read(from: target - 1, maxBytes: 1 << 16) }
            #expect(try readAll(log) == Array(target..<300))

            // A move not checkpointed is lost with a crash: the last checkpointed start comes back.
            #expect(try log.advanceLogStart(to: target + 1))
        }
        let (manager, _) = try LogManager.open(directory: dir.path, configuration: smallLogConfiguration(), checkpointInterval: nil)
        #expect(manager.log(orders)?.logStartOffset == target)
    }

    @Test("a retention pass removes segments left below the log start")
    func retentionRemovesSegmentsBelowStart() async throws {
        let dir = try TemporaryDirectory()
        let (log, _) = try PartitionLog.open(directory: dir.path, configuration: smallLogConfiguration())
        try await Self.filled(log)
        let bases = log.segmentBaseOffsets
        // As a failed rename would leave them: the start moved, the segments still there.
        log.state.withLock { $0.logStartOffset = bases[3] }
        log.publishLogStart(bases[3])
        #expect(log.segmentCount == bases.count)
        #expect(try log.applyRetention(nowMilliseconds: 0) == 3)
        #expect(log.segmentBaseOffsets == Array(bases.dropFirst(3)))
    }
}
