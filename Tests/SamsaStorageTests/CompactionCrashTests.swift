import Foundation
import Glibc
import NIOCore
import SamsaRecords
@testable import SamsaStorage
import Testing
import SamsaTestSupport

/// Crash safety of cleaning and swapping, Kafka's way (`.cleaned` -> `.swap` -> final names): a power
/// cut at every file system operation of a clean, and an I/O error at every one, never lose a key's
/// latest value, bring a deleted key back, or let an offset be used twice. Then a random model test of
/// appends, tombstones, rolls, cleans, crashes and reopens.
@Suite("Log compaction: crashes and errors", .offCooperativePool, .timeLimit(.minutes(5)))
struct CompactionCrashTests {
    /// A flushed compacted log: 30 rounds over 6 keys, a tombstone for key-1, everything sealed.
    private func prepare(_ dir: String, files: any FileSystem) async throws -> (PartitionLog, CompactionModel) {
        let (log, _) = try PartitionLog.open(directory: dir, configuration: compactedConfiguration(), files: files)
        var model = CompactionModel()
        for round in 0..<30 {
            let records = (0..<3).map { KeyedRecord(key: "key-\((round * 3 + $0) % 6)", value: "value-\(round)-\($0)") }
            model.appended(records, at: try await log.append(try keyedBatch(records, codec: round % 2 == 0 ? .lz4 : .none)).baseOffset)
        }
        let deletion = [KeyedRecord(key: "key-1", value: nil)]
        model.appended(deletion, at: try await log.append(try keyedBatch(deletion)).baseOffset)
        try log.roll()
        try log.flush()
        return (log, model)
    }

    /// Reopens `dir` as after a crash and checks it against `model`; returns the problems.
    private func checkAfterCrash(_ dir: String, model: CompactionModel, end: Int64) async throws -> [String] {
        let (log, report) = try PartitionLog.open(directory: dir, configuration: compactedConfiguration(), cleanShutdown: false, recoveryPoint: end)
        defer { try? log.close() }
        var problems = model.problems(try readRecords(log))
        if let damage = report.damage { problems.append("damage: \(damage)") }
        if log.logEndOffset != end { problems.append("log end \(log.logEndOffset), expected \(end)") }
        let next = try await log.append(try keyedBatch([KeyedRecord(key: "key-0", value: "after")]))
        if next.baseOffset != end { problems.append("the next append got offset \(next.baseOffset), expected \(end)") }
        try log.close()
        let verified = try LogVerifier.verifyPartition(directory: dir)
        problems += verified.problems.map(\.description)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".swap") || $0.hasSuffix(".cleaned") }
        if !leftovers.isEmpty { problems.append("left after open: \(leftovers)") }
        return problems
    }

    @Test("a power cut at every file operation of a clean and its swaps loses nothing")
    func powerCutAtEveryOperation() async throws {
        var operations = 0
        while true {
            let dir = try TemporaryDirectory()
            let files = FaultInjectingFileSystem()
            let (log, model) = try await prepare(dir.path, files: files)
            let end = log.logEndOffset
            files.cutPower(afterOperations: operations)
            _ = try? cleanFully(log, now: 10_000)
            let cut = files.powerIsOff
            files.simulatePowerCut()
            let problems = try await checkAfterCrash(dir.path, model: model, end: end)
            #expect(problems.isEmpty, "power cut after \(operations) operations: \(problems)")
            if !cut || !problems.isEmpty { break }
            operations += 1
        }
        #expect(operations > 20)  // the clean has many operations; every one was cut once
    }

    @Test("an I/O error at any file operation of a clean leaves a log that reads right, now and after a reopen",
        arguments: [FaultInjectingFileSystem.Operation.write, .fsync, .rename, .unlink, .open])
    func errorAtEveryOperation(_ operation: FaultInjectingFileSystem.Operation) async throws {
        var skip = 0
        while true {
            let dir = try TemporaryDirectory()
            let files = FaultInjectingFileSystem()
            let (log, model) = try await prepare(dir.path, files: files)
            let end = log.logEndOffset
            files.inject(operation, errno: EIO, after: skip)
            // The clean may fail, or go on where the failed call was best effort (background removal).
            _ = try? cleanFully(log, now: 10_000)
            let fired = files.faultsFired > 0
            files.clearFaults()
            var problems = model.problems(try readRecords(log)).map { "in process: \($0)" }
            try log.close()
            problems += try await checkAfterCrash(dir.path, model: model, end: end)
            #expect(problems.isEmpty, "\(operation) failing after \(skip): \(problems)")
            if !fired || !problems.isEmpty { break }
            skip += 1
        }
    }

    @Test("random appends, tombstones, rolls, cleans, crashes and reopens against a model", arguments: 0..<12)
    func model(seed: UInt64) async throws {
        var random = SeededGenerator(seed: seed)
        let dir = try TemporaryDirectory()
        let configuration = compactedConfiguration(segmentBytes: 700, deleteRetention: 500)
        var (log, _) = try PartitionLog.open(directory: dir.path, configuration: configuration)
        var model = CompactionModel()
        var point: Int64 = 0
        var now: Int64 = 10_000
        for step in 0..<60 {
            switch random.next() % 10 {
            case 0...4:
                let count = Int(random.next() % 4) + 1
                let records = (0..<count).map { _ in
                    KeyedRecord(key: "key-\(random.next() % 12)", value: random.next() % 7 == 0 ? nil : "v-\(step)-\(random.next() % 1000)")
                }
                let codec = [CompressionCodec.none, .lz4, .zstd][Int(random.next() % 3)]
                model.appended(records, at: try await log.append(try keyedBatch(records, timestamp: now, codec: codec)).baseOffset)
            case 5:
                try log.roll()
            case 6, 7:
                now += Int64(random.next() % 400)
                point = try cleanFully(log, from: point, now: now, mapBytes: Int(random.next() % 40 + 3) * 24)
            case 8:
                try log.close()
                (log, _) = try PartitionLog.open(directory: dir.path, configuration: configuration, cleanShutdown: true)
            default:
                // A process crash: the files stay as written, the next open is unclean.
                let flushed = log.flushedOffset
                (log, _) = try PartitionLog.open(directory: dir.path, configuration: configuration, cleanShutdown: false, recoveryPoint: flushed)
            }
            let problems = model.problems(try readRecords(log))
            #expect(problems.isEmpty, "seed \(seed) step \(step): \(problems)")
            if !problems.isEmpty { break }
        }
        try log.close()
        #expect(try LogVerifier.verifyPartition(directory: dir.path).isValid)
    }
}
