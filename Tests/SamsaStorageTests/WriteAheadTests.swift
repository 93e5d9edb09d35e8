import Foundation
import Glibc
@testable import SamsaStorage
import Testing
import SamsaTestSupport

@Suite("Write-ahead zeros in the active segment", .offCooperativePool, .timeLimit(.minutes(2)))
struct WriteAheadTests {
    func configuration(_ policy: FlushPolicy = .everyAppend) -> LogConfiguration {
        var configuration = LogConfiguration(flushPolicy: policy, fileDeleteDelayMilliseconds: 0, writeAheadBytes: 64 << 10)
        configuration.segment = SegmentConfiguration(indexIntervalBytes: 1024, maxIndexSize: 4096)
        return configuration
    }

    func fileSize(_ path: String) -> Int {
        var info = stat()
        return stat(path, &info) == 0 ? Int(info.st_size) : -1
    }

    /// Waits (at most 10 s) until the background fill has made `path` longer than `size`.
    func waitForFill(_ path: String, beyond size: Int) async throws {
        for _ in 0..<1000 where fileSize(path) <= size {
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(fileSize(path) > size, "the write-ahead never filled past the batches")
    }

    @Test("zeros are written ahead of the appends and cut off when the segment is closed")
    func filledThenCut() async throws {
        let dir = try TemporaryDirectory()
        let logFile = SegmentFiles.log(dir.path, 0)
        do {
            let (log, _) = try PartitionLog.open(directory: dir.path, configuration: configuration())
            for _ in 0..<20 { try await log.append(try testBatch(offset: 0)) }
            try await waitForFill(logFile, beyond: log.sizeInBytes)
            // Appends land on the zeros; readers see only batches.
            for _ in 0..<20 { try await log.append(try testBatch(offset: 0)) }
            #expect(try readAll(log) == Array(0..<200))
            try log.close()
            #expect(fileSize(logFile) == log.sizeInBytes)
        }
        let (reopened, report) = try PartitionLog.open(directory: dir.path, configuration: configuration(), cleanShutdown: true)
        #expect(report.segmentsScanned == 0 && report.bytesTruncated == 0)
        #expect(try readAll(reopened) == Array(0..<200))
    }

    @Test("after a crash the zero tail is dropped, reported as zeros, and no batch is lost")
    func crashLeavesZeroTail() async throws {
        let dir = try TemporaryDirectory()
        let logFile = SegmentFiles.log(dir.path, 0)
        var valid = 0
        do {
            // Never closed: as if the process died.
            let (log, _) = try PartitionLog.open(directory: dir.path, configuration: configuration())
            for _ in 0..<30 { try await log.append(try testBatch(offset: 0)) }
            valid = log.sizeInBytes
            try await waitForFill(logFile, beyond: valid)
        }
        let tail = fileSize(logFile) - valid
        let (log, report) = try PartitionLog.open(directory: dir.path, configuration: configuration(), recoveryPoint: 0)
        #expect(report.bytesTruncated == tail && report.zeroTailBytes == tail)
        #expect(report.segmentsDeleted == 0)
        #expect(try readAll(log) == Array(0..<150))
        #expect(fileSize(logFile) == valid)
    }

    @Test("a sealed segment whose cut a power cut undid keeps the segments after it")
    func uncutSealedSegment() async throws {
        let dir = try TemporaryDirectory()
        do {
            let (log, _) = try PartitionLog.open(directory: dir.path, configuration: configuration(.never))
            for _ in 0..<10 { try await log.append(try testBatch(offset: 0)) }
            try log.roll()
            for _ in 0..<10 { try await log.append(try testBatch(offset: 0)) }
            try log.close()
        }
        let first = SegmentFiles.log(dir.path, 0)
        let handle = try #require(FileHandle(forWritingAtPath: first))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(count: 8192))
        try handle.close()
        let (log, report) = try PartitionLog.open(directory: dir.path, configuration: configuration(.never), recoveryPoint: 0)
        #expect(report.zeroTailBytes == 8192 && report.bytesTruncated == 8192)
        #expect(report.segmentsDeleted == 0)
        #expect(try readAll(log) == Array(0..<100))
    }

    @Test("garbage that is not all zeros still cuts the log there (past the recovery point)")
    func garbageIsNotZeros() async throws {
        let dir = try TemporaryDirectory()
        do {
            let (log, _) = try PartitionLog.open(directory: dir.path, configuration: configuration(.never))
            for _ in 0..<10 { try await log.append(try testBatch(offset: 0)) }
            try log.roll()
            for _ in 0..<10 { try await log.append(try testBatch(offset: 0)) }
            try log.close()
        }
        var garbage = Data(count: 8192)
        garbage[5000] = 1
        let handle = try #require(FileHandle(forWritingAtPath: SegmentFiles.log(dir.path, 0)))
        try handle.seekToEnd()
        try handle.write(contentsOf: garbage)
        try handle.close()
        let (log, report) = try PartitionLog.open(directory: dir.path, configuration: configuration(.never), recoveryPoint: 0)
        #expect(report.zeroTailBytes == 0 && report.bytesTruncated == 8192)
        #expect(report.segmentsDeleted == 1)
        #expect(try readAll(log) == Array(0..<50))
    }

    @Test("truncation cuts the zeros too and appends continue on fresh ones")
    func truncateWithWriteAhead() async throws {
        let dir = try TemporaryDirectory()
        let logFile = SegmentFiles.log(dir.path, 0)
        let (log, _) = try PartitionLog.open(directory: dir.path, configuration: configuration())
        for _ in 0..<20 { try await log.append(try testBatch(offset: 0)) }
        try await waitForFill(logFile, beyond: log.sizeInBytes)
        try log.truncate(to: 52)
        #expect(log.logEndOffset == 50)
        for _ in 0..<20 { try await log.append(try testBatch(offset: 0)) }
        #expect(try readAll(log) == Array(0..<150))
        try log.close()
        #expect(fileSize(logFile) == log.sizeInBytes)
    }

    @Test("a failed fdatasync of the background fill fails the log's next sync too (the error is reported once per file)")
    func fillSyncFailureIsNotSwallowed() async throws {
        let dir = try TemporaryDirectory()
        let files = FaultInjectingFileSystem()
        let (log, _) = try PartitionLog.open(directory: dir.path, configuration: configuration(.never), files: files)
        files.inject(.fdatasync, errno: EIO, pathContains: ".log")
        try await log.append(try testBatch(offset: 0))  // starts a fill, whose sync takes the error
        for _ in 0..<1000 where files.faultsRemaining > 0 { try await Task.sleep(for: .milliseconds(5)) }
        #expect(files.faultsRemaining == 0, "the fill never synced")
        let error = #expect(throws: StorageError.self) { try log.flush() }
        #expect(error?.code == .syncFailed)
    }
}
