import Foundation
import Glibc
import NIOCore
import SamsaRecords
@testable import SamsaStorage
import Testing
import SamsaTestSupport

/// `truncateFully(startingAt:)`: a follower whose log end is below its leader's log start drops its
/// log and continues, empty, at the leader's log start.
@Suite("Full truncation", .offCooperativePool, .timeLimit(.minutes(2)))
struct FullTruncationTests {
    static let orders = TopicPartition(topic: "orders", partition: 0)

    @Test("every segment goes; the log is empty at the new start, takes appends there and reopens so")
    func restartsEmpty() async throws {
        let dir = try TemporaryDirectory()
        var (manager, _) = try LogManager.open(directory: dir.path, configuration: smallLogConfiguration(.everyAppend), checkpointInterval: nil)
        var log = try manager.createLog(Self.orders)
        for _ in 0..<60 { try await log.append(try testBatch(offset: 0)) }
        #expect(log.segmentCount > 5 && log.logEndOffset == 300)
        try manager.checkpoint()

        try log.truncateFully(startingAt: 1_000)
        #expect(log.logStartOffset == 1_000 && log.logEndOffset == 1_000 && log.highWatermark == 1_000)
        #expect(log.flushedOffset == 1_000 && log.segmentCount == 1)
        #expect(try log.read(from: 1_000, maxBytes: 1 << 16) == nil)
        #expect(throws: StorageError.self) { try log.read(from: 0, maxBytes: 1 << 16) }
        let logs = try FileManager.default.contentsOfDirectory(atPath: log.directory).filter { $0.hasSuffix(".log") }
        #expect(logs == ["00000000000000001000.log"])
        #expect(try String(contentsOfFile: dir.file("recovery-point-offset-checkpoint"), encoding: .utf8).contains("orders 0 1000"))

        let appended = try await log.append(try testBatch(offset: 0))
        #expect(appended.baseOffset == 1_000 && log.logEndOffset == 1_005)
        #expect(try readAll(log) == Array(1_000..<1_005))
        try manager.close()

        // After a crash (no clean close) as after a clean one: the log starts at 1000.
        (manager, _) = try LogManager.open(directory: dir.path, configuration: smallLogConfiguration(.everyAppend), checkpointInterval: nil)
        log = try #require(manager.log(Self.orders))
        #expect(log.logStartOffset == 1_000 && log.logEndOffset == 1_005)
        #expect(try readAll(log) == Array(1_000..<1_005))
        try manager.close()
    }

    @Test("a failure part-way refuses writes; reopening gives a consistent log (the old one or an empty one), never a gap")
    func failurePartWay() async throws {
        let dir = try TemporaryDirectory()
        let files = FaultInjectingFileSystem()
        let (log, _) = try PartitionLog.open(directory: dir.path, configuration: smallLogConfiguration(.everyAppend), files: files)
        for _ in 0..<60 { try await log.append(try testBatch(offset: 0)) }
        // The third segment's rename fails: two are gone, the rest stay.
        files.inject(.rename, errno: EIO, pathContains: ".log", after: 2)
        #expect(throws: StorageError.self) { try log.truncateFully(startingAt: 1_000) }
        await #expect(throws: StorageError.self) { try await log.append(try testBatch(offset: 0)) }
        #expect(log.logStartOffset > 0, "reads no longer reach the segments that went")
        #expect(try readAll(log) == Array(log.logStartOffset..<300))
        try? log.close()

        let (reopened, _) = try PartitionLog.open(directory: dir.path, configuration: smallLogConfiguration(.everyAppend))
        let start = reopened.logStartOffset
        #expect(try readAll(reopened) == Array(start..<reopened.logEndOffset), "contiguous from the log start")
        #expect(reopened.logEndOffset == 300 || reopened.logEndOffset == start)
        try reopened.close()
    }
}
