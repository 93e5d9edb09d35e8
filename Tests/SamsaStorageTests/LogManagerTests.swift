import Foundation
@testable import SamsaStorage
import Testing
import SamsaTestSupport

@Suite("Log manager", .offCooperativePool, .timeLimit(.minutes(2)))
struct LogManagerTests {
    let orders = TopicPartition(topic: "orders", partition: 0)
    let events = TopicPartition(topic: "click-events", partition: 3)

    @Test("close writes checkpoints and the clean-shutdown marker; a clean open scans nothing")
    func cleanCycle() async throws {
        let dir = try TemporaryDirectory()
        do {
            let (manager, report) = try LogManager.open(directory: dir.path, configuration: smallLogConfiguration())
            #expect(!report.cleanShutdown)
            for partition in [orders, events] {
                let log = try manager.createLog(partition)
                for _ in 0..<30 { try await log.append(try testBatch(offset: 0)) }
            }
            try manager.close()
        }
        #expect(FileManager.default.fileExists(atPath: dir.file(".clean-shutdown")))
        let checkpoint = try String(contentsOfFile: dir.file("recovery-point-offset-checkpoint"), encoding: .utf8)
        #expect(checkpoint == "0\n2\nclick-events 3 150\norders 0 150\n")

        let (manager, report) = try LogManager.open(directory: dir.path, configuration: smallLogConfiguration())
        #expect(report.cleanShutdown)
        #expect(report.partitions.values.allSatisfy { $0.segmentsScanned == 0 })
        #expect(manager.partitions == [events, orders])
        #expect(manager.log(orders)?.logEndOffset == 150)
        // The marker is gone while the directory is open: a crash now is unclean.
        #expect(!FileManager.default.fileExists(atPath: dir.file(".clean-shutdown")))
    }

    @Test("without a clean close, open scans from each partition's recovery point")
    func uncleanOpen() async throws {
        let dir = try TemporaryDirectory()
        do {
            let (manager, _) = try LogManager.open(directory: dir.path, configuration: smallLogConfiguration())
            let log = try manager.createLog(orders)
            for _ in 0..<30 { try await log.append(try testBatch(offset: 0)) }
            try log.flush()
            try manager.checkpoint()
            for _ in 0..<5 { try await log.append(try testBatch(offset: 0)) }
            // No close: as if the process died here.
        }
        let (manager, report) = try LogManager.open(directory: dir.path, configuration: smallLogConfiguration())
        #expect(!report.cleanShutdown)
        let scanned = try #require(report.partitions[orders]).segmentsScanned
        #expect(scanned >= 1 && scanned <= 2, "scans the segment holding the recovery point and later ones only")
        #expect(manager.log(orders)?.logEndOffset == 175)
        #expect(try readAll(try #require(manager.log(orders))) == Array(0..<175))
    }

    @Test("a truncation rewrites the recovery point at once")
    func truncationCheckpoints() async throws {
        let dir = try TemporaryDirectory()
        let (manager, _) = try LogManager.open(directory: dir.path, configuration: smallLogConfiguration(), checkpointInterval: nil)
        let log = try manager.createLog(orders)
        for _ in 0..<20 { try await log.append(try testBatch(offset: 0)) }
        try log.flush()
        try manager.checkpoint()
        #expect(try String(contentsOfFile: dir.file("recovery-point-offset-checkpoint"), encoding: .utf8).contains("orders 0 100"))
        try log.truncate(to: 42)
        #expect(try String(contentsOfFile: dir.file("recovery-point-offset-checkpoint"), encoding: .utf8).contains("orders 0 40"))
    }

    @Test("invalid names are refused; a deleted log's directory is gone")
    func namesAndDeletion() throws {
        let dir = try TemporaryDirectory()
        let (manager, _) = try LogManager.open(directory: dir.path)
        #expect(throws: StorageError.self) { try manager.createLog(TopicPartition(topic: "bad/name", partition: 0)) }
        #expect(throws: StorageError.self) { try manager.createLog(TopicPartition(topic: "ok", partition: -1)) }
        try manager.createLog(TopicPartition(topic: "a-b-c", partition: 12))
        #expect(TopicPartition(directoryName: "a-b-c-12") == TopicPartition(topic: "a-b-c", partition: 12))
        try manager.deleteLog(TopicPartition(topic: "a-b-c", partition: 12))
        #expect(!FileManager.default.fileExists(atPath: dir.file("a-b-c-12")))
        #expect(manager.partitions.isEmpty)
    }

    @Test("a malformed checkpoint is an error, not an empty file")
    func malformedCheckpoint() throws {
        let dir = try TemporaryDirectory()
        try "0\n1\norders zero 5\n".write(toFile: dir.file("recovery-point-offset-checkpoint"), atomically: true, encoding: .utf8)
        let error = #expect(throws: StorageError.self) { try LogManager.open(directory: dir.path) }
        #expect(error?.code == .corrupt)
    }
}

@Suite("Open files", .offCooperativePool, .timeLimit(.minutes(5)))
struct OpenFilesTests {
    @Test("a log of many segments keeps at most the cache's capacity of files open")
    func boundedDescriptors() async throws {
        let dir = try TemporaryDirectory()
        var configuration = smallLogConfiguration()
        configuration.segmentBytes = 700  // one batch per segment
        do {
            let (manager, _) = try LogManager.open(directory: dir.path, configuration: configuration, maxOpenFiles: 16)
            let log = try manager.createLog(TopicPartition(topic: "many", partition: 0))
            for _ in 0..<300 { try await log.append(try testBatch(offset: 0)) }
            #expect(log.segmentCount == 300)
            #expect(manager.descriptors.openCount <= 17)
            try manager.close()
        }
        let (manager, _) = try LogManager.open(directory: dir.path, configuration: configuration, maxOpenFiles: 16)
        let log = try #require(manager.log(TopicPartition(topic: "many", partition: 0)))
        #expect(try readAll(log) == Array(0..<1500))
        #expect(manager.descriptors.openCount <= 17, "\(manager.descriptors.openCount) open after reading every segment")
        // Descriptors of this process that point into this test's directory (other tests run alongside).
        let mine = try FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").filter { fd in
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(fd)"))?.hasPrefix(dir.path) == true
        }
        #expect(mine.count <= 17, "\(mine.count) descriptors open on this log's files")
    }

    @Test("10,000 segments open and read within small bounds on files and mappings")
    func tenThousandSegments() async throws {
        let dir = try TemporaryDirectory()
        var configuration = smallLogConfiguration()
        configuration.segmentBytes = 100  // every batch rolls a new segment
        let partition = TopicPartition(topic: "many", partition: 0)
        do {
            let (manager, _) = try LogManager.open(directory: dir.path, configuration: configuration, maxOpenFiles: 32, maxMappedIndexes: 64)
            let log = try manager.createLog(partition)
            for _ in 0..<10_000 { _ = try log.appendWithoutWaiting(try testBatch(offset: 0, count: 1, valueSize: 10)) }
            #expect(log.segmentCount == 10_000)
            #expect(manager.descriptors.openCount <= 33)
            #expect(manager.descriptors.mappings.mappedCount <= 64)
            try manager.close()
        }
        let (manager, report) = try LogManager.open(directory: dir.path, configuration: configuration, maxOpenFiles: 32, maxMappedIndexes: 64)
        #expect(report.cleanShutdown)
        let log = try #require(manager.log(partition))
        #expect(log.segmentCount == 10_000)
        var offsets: [Int64] = []
        for offset in stride(from: Int64(0), to: 10_000, by: 97) {
            offsets += try SamsaStorageTests.offsets(in: log.read(from: offset, maxBytes: 1))
        }
        #expect(offsets == Array(stride(from: Int64(0), to: 10_000, by: 97)))
        #expect(manager.descriptors.openCount <= 33)
        #expect(manager.descriptors.mappings.mappedCount <= 64)
        let maps = try String(contentsOfFile: "/proc/self/maps", encoding: .utf8).split(separator: "\n").filter { $0.contains(dir.path) }
        #expect(maps.count <= 64 + 2, "\(maps.count) mappings of this log's files")
    }

    @Test("a reader of a segment deleted by retention finishes its read")
    func readerOfDeletedSegment() async throws {
        let dir = try TemporaryDirectory()
        var configuration = smallLogConfiguration()
        configuration.retentionBytes = 1
        configuration.fileDeleteDelayMilliseconds = 5_000
        let (log, _) = try PartitionLog.open(directory: dir.path, configuration: configuration)
        for _ in 0..<30 { try await log.append(try testBatch(offset: 0)) }
        // Hold the oldest segment's file open as a reader would mid-read, then delete it.
        let oldest = try #require(log.state.withLock { $0.segments.first })
        try log.descriptors.withDescriptor(oldest.logPath) { _ throws(StorageError) in
            try log.applyRetention(nowMilliseconds: 0)
            // The segment's bytes are still readable through the descriptor the reader holds.
            #expect(try oldest.readBytes(at: 0, count: 61).readableBytes == 61)
        }
        // A read that starts after the deletion, within the delete delay, still finds the bytes.
        #expect(try oldest.read(from: 0, maxBytes: 100) != nil)
        #expect(log.logStartOffset > 0)
    }
}
