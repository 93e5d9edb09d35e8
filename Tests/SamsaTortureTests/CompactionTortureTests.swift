import SamsaRecords
@testable import SamsaStorage
@testable import SamsaTorture
import Testing
import SamsaTestSupport

/// The short form of `samsa torture --mode compaction` (a few seeded rounds of each kind, a few
/// seconds), and proof that the compaction model's checks fail when a log breaks its promises.
@Suite("Torture: compaction (short form)", .offCooperativePool, .serialized)
struct CompactionTortureTests {
    @Test("power cuts during cleaning and swapping: nothing durable lost, no deleted key back, offsets never reused")
    func powerCuts() async throws {
        let dir = RoundDirectory()
        let summary = await TortureRunner.run(TortureOptions(rounds: 6, seed: 23, policy: .everyAppend, modes: [.compactionPowerCut], directory: dir.path))
        expectNoViolation(summary)
        #expect(summary.powerCuts == 6)
        #expect(summary.duringCleaning > 0, "no power cut struck a cleaning pass: the rounds proved nothing about cleaning")
        #expect(summary.recordsChecked > 0 && summary.recordsAcknowledged > 0)
    }

    @Test("I/O errors during cleaning: the open log reads right, and after a crash and recovery")
    func ioErrors() async throws {
        let dir = RoundDirectory()
        let summary = await TortureRunner.run(TortureOptions(rounds: 6, seed: 23, policy: .everyAppend, modes: [.compactionIOError], directory: dir.path))
        expectNoViolation(summary)
        #expect(summary.injectedFailures > 0, "no injected failure fired: the rounds proved nothing")
    }

    @Test("SIGKILL of a child appending while its cleaner threads clean")
    func kills() async throws {
        let dir = RoundDirectory()
        let summary = await TortureRunner.run(
            TortureOptions(rounds: 3, seed: 23, policy: .everyAppend, modes: [.compactionSigkill], directory: dir.path, executable: samsaExecutable()))
        expectNoViolation(summary)
        #expect(summary.kills >= 3)
        #expect(summary.recordsAcknowledged > 0, "the child acknowledged nothing: the rounds proved nothing")
    }

    @Test("the batches of a round replay from its seed (the SIGKILL parent regenerates its child's)")
    func batchesAreSeeded() throws {
        var first = CompactionChild.batches(seed: 5, round: 2, life: 1)
        var again = CompactionChild.batches(seed: 5, round: 2, life: 1)
        var other = CompactionChild.batches(seed: 5, round: 2, life: 2)
        let a = try (0..<5).map { _ in try first.next(clock: 0).1 }
        #expect(a == (try (0..<5).map { _ in try again.next(clock: 0).1 }))
        #expect(a != (try (0..<5).map { _ in try other.next(clock: 7).1 }))
    }

    /// A compacted log of `records` appended one batch each, and the model acknowledging them all.
    private func logAndModel(_ dir: String, _ records: [CompactionRecord]) async throws -> (PartitionLog, CompactionModel) {
        let configuration = LogConfiguration(segmentBytes: 300, flushPolicy: .never, fileDeleteDelayMilliseconds: 0, cleanupPolicy: .compact, deleteRetentionMilliseconds: 100)
        let (log, _) = try PartitionLog.open(directory: dir, configuration: configuration)
        var model = CompactionModel()
        for record in records {
            var builder = RecordBatchBuilder()
            builder.append(timestamp: record.clock, key: Array(record.key.utf8), value: record.value.map { Array($0.utf8) })
            let result = try await log.append(try builder.build())
            model.wrote([record], at: result.baseOffset)
        }
        model.acknowledge(through: log.logEndOffset)
        return (log, model)
    }

    @Test("the checks catch a lost latest value, an invented record, a deleted key back and a tombstone gone early")
    func checksCatchBrokenPromises() async throws {
        var random = TortureRandom(seed: 1)
        let dir = RoundDirectory()
        let records = [
            CompactionRecord(key: "a", value: "1", clock: 1_000), CompactionRecord(key: "b", value: "2", clock: 1_000),
            CompactionRecord(key: "a", value: nil, clock: 1_000), CompactionRecord(key: "b", value: "3", clock: 1_000),
        ]
        let (log, model) = try await logAndModel(dir.path + "/log", records)
        #expect(try model.check(log, "whole", now: 1_000, deleteRetention: 100, random: &random) == 4)

        // The model expects one more acknowledged record than the log holds: lost.
        var ahead = model
        ahead.wrote([CompactionRecord(key: "b", value: "4", clock: 1_000)], at: 4)
        ahead.acknowledge(through: 5)
        #expect(throws: TortureViolation.self) { try ahead.check(log, "ahead", now: 1_000, deleteRetention: 100, random: &random) }

        // The model never wrote offset 3: the log's record there is invented.
        var missing = CompactionModel()
        missing.wrote(Array(records[0..<3]), at: 0)
        missing.acknowledge(through: 3)
        #expect(throws: TortureViolation.self) { try missing.check(log, "invented", now: 1_000, deleteRetention: 100, random: &random) }

        // Key "a"'s latest acknowledged record is a tombstone the log does not show, and its older value is
        // there: a deleted key back. (The model is told a tombstone sits where the log has b = 3.)
        var back = CompactionModel()
        back.wrote(Array(records[0..<2]), at: 0)
        back.wrote([records[2]], at: 2)
        back.wrote([CompactionRecord(key: "a", value: nil, clock: 1_000)], at: 3)
        back.acknowledge(through: 4)
        #expect(throws: TortureViolation.self) { try back.check(log, "back", now: 1_000, deleteRetention: 100, random: &random) }
        try log.close()

        // A real clean once the horizon passed removes the tombstone: fine at that time, a violation if the
        // model's clock says delete.retention.ms has not passed since the tombstone was appended.
        let cleaned = RoundDirectory()
        let configuration = LogConfiguration(segmentBytes: 120, flushPolicy: .never, fileDeleteDelayMilliseconds: 0, cleanupPolicy: .compact, deleteRetentionMilliseconds: 100)
        let clock = ModelClock(start: 1_000)
        let (manager, _) = try LogManager.open(
            directory: cleaned.path, configuration: configuration, checkpointInterval: nil, cleaner: LogCleanerConfiguration(enabled: false), clock: { clock.now })
        let partition = TopicPartition(topic: "t", partition: 0)
        let cleanedLog = try manager.createLog(partition, configuration: configuration)
        var cleanedModel = CompactionModel()
        for record in records + [CompactionRecord(key: "c", value: "5", clock: 1_000)] {
            var builder = RecordBatchBuilder()
            builder.append(timestamp: record.clock, key: Array(record.key.utf8), value: record.value.map { Array($0.utf8) })
            cleanedModel.wrote([record], at: try await cleanedLog.append(try builder.build()).baseOffset)
            try cleanedLog.roll()
        }
        cleanedModel.acknowledge(through: cleanedLog.logEndOffset)
        #expect(manager.cleaner.clean(partition))  // sets the tombstone's horizon: now + 100
        clock.advance(by: 500)
        // Something dirty, so the cleaner takes the log again.
        var builder = RecordBatchBuilder()
        builder.append(timestamp: clock.now, key: Array("c".utf8), value: Array("6".utf8))
        cleanedModel.wrote([CompactionRecord(key: "c", value: "6", clock: clock.now)], at: try await cleanedLog.append(try builder.build()).baseOffset)
        try cleanedLog.roll()
        cleanedModel.acknowledge(through: cleanedLog.logEndOffset)
        #expect(manager.cleaner.clean(partition))  // removes it
        #expect(try readKeys(cleanedLog).contains("a") == false)
        #expect(try cleanedModel.check(cleanedLog, "cleaned", now: clock.now, deleteRetention: 100, random: &random) > 0)
        #expect(throws: TortureViolation.self) { try cleanedModel.check(cleanedLog, "early", now: 1_050, deleteRetention: 100, random: &random) }
        try manager.close()
    }

    private func readKeys(_ log: PartitionLog) throws -> [String] {
        var keys: [String] = []
        var next = log.logStartOffset
        while let bytes = try log.read(from: next, maxBytes: 1 << 16) {
            var remaining = bytes
            while remaining.readableBytes > 0 {
                let batch = try RecordBatch(validating: remaining)
                remaining.moveReaderIndex(forwardBy: batch.sizeInBytes)
                keys += try batch.decodeRecords().compactMap { $0.keyBytes.map { String(decoding: $0, as: UTF8.self) } }
                next = batch.nextOffset
            }
        }
        return keys
    }
}
