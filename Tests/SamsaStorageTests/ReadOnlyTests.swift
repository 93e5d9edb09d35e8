import Foundation
import SamsaRecords
@testable import SamsaStorage
import Testing
import SamsaTestSupport

/// A tmpfs of its own, mounted for one test (root only; the tests that need one are skipped otherwise).
final class SmallFileSystem {
    let path: String
    static var canMount: Bool { geteuid() == 0 && FileManager.default.isExecutableFile(atPath: "/bin/mount") }

    init(megabytes: Int) throws {
        path = temporaryPath("samsa-tmpfs")
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        try Self.run("/bin/mount", "-t", "tmpfs", "-o", "size=\(megabytes)m", "tmpfs", path)
    }

    func remountReadOnly() throws { try Self.run("/bin/mount", "-o", "remount,ro", path) }

    deinit {
        try? Self.run("/bin/umount", path)
        try? FileManager.default.removeItem(atPath: path)
    }

    static func run(_ tool: String, _ arguments: String...) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw StorageError(.io, path: tool, "\(tool) \(arguments) failed") }
    }
}

@Suite("Read-only opens and full disks", .offCooperativePool, .serialized, .timeLimit(.minutes(2)))
struct ReadOnlyTests {
    let partition = TopicPartition(topic: "t", partition: 0)

    /// Names, sizes and contents of every file below `path`.
    func snapshot(_ path: String) throws -> [String: Data] {
        var result: [String: Data] = [:]
        for name in try FileManager.default.subpathsOfDirectory(atPath: path) {
            var isDirectory: ObjCBool = false
            _ = FileManager.default.fileExists(atPath: "\(path)/\(name)", isDirectory: &isDirectory)
            result[name] = isDirectory.boolValue ? Data() : try Data(contentsOf: URL(fileURLWithPath: "\(path)/\(name)"))
        }
        return result
    }

    @Test("a read-only open of a crashed directory with a torn tail reads every whole batch and changes nothing")
    func readOnlyAfterCrash() async throws {
        let dir = try TemporaryDirectory()
        let (manager, _) = try LogManager.open(directory: dir.path, configuration: smallLogConfiguration(), checkpointInterval: nil)
        let log = try manager.createLog(partition)
        for _ in 0..<40 { try await log.append(try testBatch(offset: 0)) }
        // No close: as after kill -9. Then half a batch, as a torn write.
        let last = SegmentFiles.log("\(dir.path)/t-0", log.segmentBaseOffsets.last!)
        let handle = try #require(FileHandle(forWritingAtPath: last))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(try testBatch(offset: 200).buffer.readableBytesView.prefix(50)))
        try handle.close()
        let before = try snapshot(dir.path)
        let reader = try LogManager.openReadOnly(directory: dir.path, configuration: smallLogConfiguration())
        let readLog = try #require(reader.log(partition))
        #expect(try readAll(readLog) == Array(0..<200))
        let refused = await #expect(throws: StorageError.self) { try await readLog.append(try testBatch(offset: 0)) }
        #expect(refused?.code == .readOnly)
        #expect(throws: StorageError.self) { try readLog.truncate(to: 5) }
        #expect(throws: StorageError.self) { try reader.createLog(TopicPartition(topic: "u", partition: 0)) }
        try reader.close()
        #expect(try snapshot(dir.path) == before, "a read-only open changed the directory")
        _ = manager
    }

    @Test("a reader beside a live writer follows its appends and rolls with refresh")
    func followsLiveWriter() async throws {
        let dir = try TemporaryDirectory()
        let (manager, _) = try LogManager.open(directory: dir.path, configuration: smallLogConfiguration(), checkpointInterval: nil)
        let log = try manager.createLog(partition)
        for _ in 0..<10 { try await log.append(try testBatch(offset: 0)) }
        let reader = try LogManager.openReadOnly(directory: dir.path, configuration: smallLogConfiguration())
        let readLog = try #require(reader.log(partition))
        #expect(readLog.logEndOffset == 50)
        for _ in 0..<50 { try await log.append(try testBatch(offset: 0)) }  // rolls several times
        #expect(log.segmentCount > 2)
        #expect(try reader.refresh())
        #expect(readLog.logEndOffset == 300)
        #expect(try readAll(readLog) == Array(0..<300))
        // A partition created after the reader opened.
        try await manager.createLog(TopicPartition(topic: "u", partition: 0)).append(try testBatch(offset: 0))
        #expect(try reader.refresh())
        #expect(reader.log(TopicPartition(topic: "u", partition: 0))?.logEndOffset == 5)
        try manager.close()
    }

    @Test("a read-only mount can be read", .enabled(if: SmallFileSystem.canMount))
    func readOnlyMount() async throws {
        let disk = try SmallFileSystem(megabytes: 32)
        let path = "\(disk.path)/data"
        do {
            let (manager, _) = try LogManager.open(directory: path, configuration: smallLogConfiguration(), checkpointInterval: nil)
            for _ in 0..<20 { try await manager.createLog(partition).append(try testBatch(offset: 0)) }
            try manager.close()
        }  // the manager and its open files go here: a mount with files open for writing cannot turn read-only
        try disk.remountReadOnly()
        let reader = try LogManager.openReadOnly(directory: path)
        #expect(try readAll(try #require(reader.log(partition))) == Array(0..<100))
        let writable = #expect(throws: StorageError.self) { try LogManager.open(directory: path) }
        #expect(writable?.errno == EROFS)
    }

    @Test("a full disk: appends fail with ENOSPC, what was acknowledged stays readable, and opening again never crashes",
          .enabled(if: SmallFileSystem.canMount))
    func fullDisk() async throws {
        let disk = try SmallFileSystem(megabytes: 8)
        let path = "\(disk.path)/data"
        var configuration = LogConfiguration(segmentBytes: 1 << 20, flushPolicy: .everyAppend)
        configuration.segment.maxIndexSize = 1 << 20
        var acknowledged: Int64 = 0
        do {
            let (manager, _) = try LogManager.open(directory: path, configuration: configuration, checkpointInterval: nil)
            let log = try manager.createLog(partition)
            do {
                while true { acknowledged = try await log.append(try testBatch(offset: 0, count: 20, valueSize: 500)).nextOffset }
            } catch let error as StorageError {
                #expect(error.errno == ENOSPC, "\(error)")
            }
            #expect(acknowledged > 1000)
            try? manager.close()
        }
        // Reading needs no space.
        let reader = try LogManager.openReadOnly(directory: path, configuration: configuration)
        #expect(try readAll(try #require(reader.log(partition))).count >= Int(acknowledged))
        // Opening for writing again, twice: either it works or it fails with a clear error; no SIGBUS,
        // and no acknowledged record is lost.
        for _ in 0..<2 {
            do {
                let (manager, _) = try LogManager.open(directory: path, configuration: configuration, checkpointInterval: nil)
                #expect(try readAll(try #require(manager.log(partition))).count >= Int(acknowledged))
                try? manager.close()
            } catch let error as StorageError {
                #expect(error.errno == ENOSPC, "\(error)")
            }
        }
        let again = try LogManager.openReadOnly(directory: path, configuration: configuration)
        #expect(try readAll(try #require(again.log(partition))).count >= Int(acknowledged))
    }
}

@Suite("Verifier beside a live writer", .offCooperativePool, .timeLimit(.minutes(1)))
struct LiveVerifierTests {
    @Test("verifying while a writer appends never reports its batch in progress as damage")
    func verifyLiveDirectory() async throws {
        let dir = try TemporaryDirectory()
        let (log, _) = try PartitionLog.open(directory: dir.path, configuration: smallLogConfiguration())
        let writer = Task {
            for _ in 0..<400 { try await log.append(try testBatch(offset: 0, count: 3, valueSize: 300)) }
        }
        var checks = 0
        while !writer.isCancelled, checks < 200 {
            let report = try LogVerifier.verifyPartition(directory: dir.path)
            #expect(report.isValid, "\(report.problems)")
            checks += 1
            if log.logEndOffset >= 1200 { break }
            await Task.yield()
        }
        try await writer.value
        // A torn write at the end (what a crash leaves) is an unfinished tail, not a problem.
        let last = SegmentFiles.log(dir.path, log.segmentBaseOffsets.last!)
        let handle = try #require(FileHandle(forWritingAtPath: last))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(try testBatch(offset: 0).buffer.readableBytesView.prefix(40)))
        try handle.close()
        let report = try LogVerifier.verifyPartition(directory: dir.path)
        #expect(report.isValid && report.unfinishedTailBytes == 40)
    }
}
