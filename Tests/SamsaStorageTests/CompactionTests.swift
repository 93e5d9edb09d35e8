import Foundation
import NIOCore
import SamsaRecords
@testable import SamsaStorage
import Testing
import SamsaTestSupport
import Synchronization

/// What the reader thread of `readsRacingSwaps` shares with the test.
private final class RaceState: Sendable {
    let stop = Atomic<Bool>(false)
    let reads = Atomic<Int>(0)
    let failures = Mutex<[String]>([])
}

/// The log cleaner's semantics, Kafka's: the latest record per key wins at its own offset, tombstones
/// go after `delete.retention.ms`, producers keep their last batch, codecs stay, the active segment and
/// young records are left alone, a small map cleans in several passes.
@Suite("Log compaction", .offCooperativePool, .timeLimit(.minutes(2)))
struct CompactionTests {
    /// Appends `rounds` batches of 4 records over `keys` keys; returns the model.
    private func fill(_ log: PartitionLog, rounds: Int, keys: Int, codec: CompressionCodec = .none, timestamp: Int64 = 1_000) async throws -> CompactionModel {
        var model = CompactionModel()
        for round in 0..<rounds {
            let records = (0..<4).map { KeyedRecord(key: "key-\((round * 4 + $0) % keys)", value: "value-\(round)-\($0)") }
            let result = try await log.append(try keyedBatch(records, timestamp: timestamp, codec: codec))
            model.appended(records, at: result.baseOffset)
        }
        return model
    }

    @Test("the latest record per key stays at its offset; reads from any offset, gaps included, get the next record")
    func latestWins() async throws {
        let dir = try TemporaryDirectory()
        let (log, _) = try PartitionLog.open(directory: dir.path, configuration: compactedConfiguration())
        let model = try await fill(log, rounds: 60, keys: 10)
        try log.roll()
        let before = log.sizeInBytes
        let segmentsBefore = log.segmentCount
        let end = log.logEndOffset
        let point = try cleanFully(log)
        #expect(point == end)
        let records = try readRecords(log)
        #expect(model.problems(records).isEmpty, "\(model.problems(records))")
        #expect(records.count == 10)
        #expect(log.sizeInBytes < before / 4)
        // The first pass groups by the old segments' sizes (Kafka's rule): as many segments, far smaller.
        #expect(log.segmentCount <= segmentsBefore)
        #expect(log.logEndOffset == end)
        // From every offset, removed ones included, the first record read is the next one kept.
        let kept = records.map(\.offset)
        for offset in 0..<end {
            let next = kept.first { $0 >= offset }
            #expect(try readRecords(log, from: offset).first?.offset == next, "from \(offset)")
        }
        // Appends go on after the last offset: none is reused.
        let appended = try await log.append(try keyedBatch([KeyedRecord(key: "key-0", value: "after")]))
        #expect(appended.baseOffset == end)
        try log.close()
        // Indexes and files pass the verifier, and both kinds of reopen serve the same records.
        let report = try LogVerifier.verifyPartition(directory: dir.path)
        #expect(report.isValid, "\(report.problems)")
        for clean in [true, false] {
            let (reopened, _) = try PartitionLog.open(
                directory: dir.path, configuration: compactedConfiguration(), cleanShutdown: clean, recoveryPoint: clean ? 0 : end + 1)
            #expect(try readRecords(reopened).dropLast() == records[...])
            #expect(reopened.logEndOffset == end + 1)
            try reopened.close()
        }
    }

    @Test("a tombstone stays (with its batch's delete horizon set) until delete.retention.ms after the clean that kept it, then goes")
    func tombstones() async throws {
        let dir = try TemporaryDirectory()
        let (log, _) = try PartitionLog.open(directory: dir.path, configuration: compactedConfiguration(deleteRetention: 5_000))
        var model = try await fill(log, rounds: 10, keys: 4)
        let deletion = [KeyedRecord(key: "key-1", value: nil)]
        model.appended(deletion, at: try await log.append(try keyedBatch(deletion)).baseOffset)
        try log.roll()
        var point = try cleanFully(log, now: 100_000)
        var records = try readRecords(log)
        #expect(model.problems(records).isEmpty, "\(model.problems(records))")
        #expect(records.contains { $0.key == "key-1" && $0.value == nil })
        let holder = try readBatches(log).first { try $0.decodeRecords().contains { $0.value == nil } }
        #expect(holder.map { CleanedBatch.deleteHorizon(of: $0) } == 105_000)
        // Later cleans before the horizon keep it; the first one at or after it removes it.
        for (now, present) in [(104_999 as Int64, true), (105_000, false)] {
            let more = [KeyedRecord(key: "key-2", value: "at-\(now)")]
            model.appended(more, at: try await log.append(try keyedBatch(more)).baseOffset)
            try log.roll()
            point = try cleanFully(log, from: point, now: now)
            records = try readRecords(log)
            #expect(model.problems(records).isEmpty, "\(model.problems(records))")
            #expect(records.contains { $0.key == "key-1" } == present, "at \(now)")
        }
        try log.close()
    }

    @Test("the last batch of each producer stays, emptied if need be, with its sequence and last offset")
    func producerLastBatch() async throws {
        let dir = try TemporaryDirectory()
        let (log, _) = try PartitionLog.open(directory: dir.path, configuration: compactedConfiguration())
        var model = CompactionModel()
        var producerBatches: [(base: Int64, last: Int64, sequence: Int32)] = []
        for round in 0..<5 {
            let records = [KeyedRecord(key: "shared", value: "p-\(round)"), KeyedRecord(key: "shared-2", value: "p-\(round)")]
            let result = try await log.append(try keyedBatch(records, producerId: 7, baseSequence: Int32(round * 2)))
            model.appended(records, at: result.baseOffset)
            producerBatches.append((result.baseOffset, result.lastOffset, Int32(round * 2)))
        }
        // Later writes without a producer make every producer record obsolete.
        for round in 0..<20 {
            let records = [KeyedRecord(key: "shared", value: "plain-\(round)"), KeyedRecord(key: "shared-2", value: "plain-\(round)")]
            model.appended(records, at: try await log.append(try keyedBatch(records)).baseOffset)
        }
        try log.roll()
        try cleanFully(log)
        #expect(model.problems(try readRecords(log)).isEmpty)
        let kept = try readBatches(log).filter { $0.producerId == 7 }
        #expect(kept.count == 1)
        let last = try #require(kept.first)
        #expect(last.baseOffset == producerBatches[4].base)
        #expect(last.lastOffset == producerBatches[4].last)
        #expect(last.baseSequence == producerBatches[4].sequence)
        #expect(last.producerEpoch == 0)
        #expect(last.recordCount == 0)
        try log.close()
    }

    @Test("compressed batches stay compressed with their own codec", arguments: [CompressionCodec.lz4, .zstd])
    func codecKept(_ codec: CompressionCodec) async throws {
        let dir = try TemporaryDirectory()
        let (log, _) = try PartitionLog.open(directory: dir.path, configuration: compactedConfiguration(segmentBytes: 4096))
        let model = try await fill(log, rounds: 40, keys: 6, codec: codec)
        try log.roll()
        try cleanFully(log)
        let records = try readRecords(log)
        #expect(model.problems(records).isEmpty, "\(model.problems(records))")
        let batches = try readBatches(log).filter { $0.recordCount > 0 }
        #expect(!batches.isEmpty)
        #expect(batches.allSatisfy { $0.compression == codec })
        try log.close()
    }

    @Test("the active segment is never cleaned; records younger than min.compaction.lag.ms wait")
    func activeSegmentAndLag() async throws {
        let dir = try TemporaryDirectory()
        let (log, _) = try PartitionLog.open(directory: dir.path, configuration: compactedConfiguration(segmentBytes: 1 << 20, minLag: 60_000))
        let model = try await fill(log, rounds: 20, keys: 2, timestamp: 1_000_000)
        let size = log.sizeInBytes
        // Everything is in the active segment: nothing to clean.
        #expect(try cleanPass(log, now: 10_000_000) == nil)
        #expect(log.sizeInBytes == size)
        try log.roll()
        // Sealed now, but younger than the lag.
        #expect(try cleanPass(log, now: 1_000_000 + 30_000) == nil)
        #expect(log.sizeInBytes == size)
        #expect(try cleanPass(log, now: 1_000_000 + 61_000) != nil)
        #expect(log.sizeInBytes < size)
        #expect(model.problems(try readRecords(log)).isEmpty)
        try log.close()
    }

    @Test("a map too small for the dirty keys cleans in several passes, each up to what it covered")
    func severalPasses() async throws {
        let dir = try TemporaryDirectory()
        let (log, _) = try PartitionLog.open(directory: dir.path, configuration: compactedConfiguration())
        let model = try await fill(log, rounds: 50, keys: 40)
        try log.roll()
        let end = log.logEndOffset
        var point: Int64 = 0
        var passes = 0
        // Room for 8 keys (24 bytes each) at the 0.9 load factor: 7 per pass.
        while let result = try cleanPass(log, from: point, mapBytes: 8 * 24) {
            #expect(result.cleanPoint > point)
            #expect(model.problems(try readRecords(log)).isEmpty)
            point = result.cleanPoint
            passes += 1
        }
        #expect(point == end)
        #expect(passes > 3)
        #expect(try readRecords(log).count == 40)
        try log.close()
    }

    @Test("records without key are dropped by the cleaner, and a compacted log's key check refuses them")
    func keylessRecords() async throws {
        let dir = try TemporaryDirectory()
        let configuration = compactedConfiguration()
        let (log, _) = try PartitionLog.open(directory: dir.path, configuration: configuration)
        let keyless = try keyedBatch([KeyedRecord(key: nil, value: "no key"), KeyedRecord(key: "k", value: "v")])
        #expect(throws: StorageError.self) { try configuration.checkKeys(of: keyless) }
        #expect(configuration.requiresKeys)
        #expect(LogConfiguration().requiresKeys == false)
        try LogConfiguration().checkKeys(of: keyless)
        try configuration.checkKeys(of: try keyedBatch([KeyedRecord(key: "k", value: nil)]))
        try await log.append(keyless)
        try await log.append(try keyedBatch([KeyedRecord(key: "other", value: "v")]))
        try log.roll()
        let result = try #require(try cleanPass(log))
        #expect(result.statistics.keylessRecordsDropped == 1)
        #expect(try readRecords(log).map(\.value) == ["v", "v"])
        try log.close()
    }

    @Test("small old segments are grouped into cleaned segments of at most segment.bytes")
    func grouping() async throws {
        let dir = try TemporaryDirectory()
        let (log, _) = try PartitionLog.open(directory: dir.path, configuration: compactedConfiguration(segmentBytes: 600))
        let model = try await fill(log, rounds: 80, keys: 80 * 4)  // every key once: nothing goes
        try log.roll()
        let before = log.segmentCount
        try cleanFully(log)
        #expect(log.segmentCount == before)  // nothing shrank: groups stay one segment each
        // A second log whose keys repeat: cleaned segments are small and get grouped.
        let other = try TemporaryDirectory()
        let (compacted, _) = try PartitionLog.open(directory: other.path, configuration: compactedConfiguration(segmentBytes: 600))
        let repeated = try await fill(compacted, rounds: 80, keys: 3)
        try compacted.roll()
        let many = compacted.segmentCount
        let point = try cleanFully(compacted)
        // The next pass groups the (now small) cleaned segments.
        try await compacted.append(try keyedBatch([KeyedRecord(key: "key-0", value: "last")]))
        try compacted.roll()
        try cleanFully(compacted, from: point)
        #expect(compacted.segmentCount < many / 4)
        var expected = repeated
        expected.appended([KeyedRecord(key: "key-0", value: "last")], at: compacted.logEndOffset - 1)
        #expect(expected.problems(try readRecords(compacted)).isEmpty)
        #expect(model.problems(try readRecords(log)).isEmpty)
        try log.close()
        try compacted.close()
    }

    @Test("a damaged segment stops the clean with .corrupt and nothing is replaced; the cleaner reports the log uncleanable")
    func damagedSegment() async throws {
        let dir = try TemporaryDirectory()
        let (manager, _) = try LogManager.open(
            directory: dir.path, configuration: compactedConfiguration(), checkpointInterval: nil, cleaner: LogCleanerConfiguration(enabled: false))
        let partition = TopicPartition(topic: "t", partition: 0)
        let log = try manager.createLog(partition)
        let model = try await fill(log, rounds: 30, keys: 5)
        try log.roll()
        // Flip a byte inside the second segment's first batch (its CRC no longer matches).
        let victim = log.segmentBaseOffsets[1]
        let path = "\(dir.path)/t-0/\(SegmentFiles.name(victim)).log"
        let handle = try #require(FileHandle(forUpdatingAtPath: path))
        try handle.seek(toOffset: 70)
        try handle.write(contentsOf: Data([0xFF]))
        try handle.close()
        let size = log.sizeInBytes
        #expect(manager.cleaner.clean(partition))
        #expect(log.sizeInBytes == size)
        #expect(manager.cleaner.statistics.uncleanablePartitions[partition] != nil)
        #expect(!manager.cleaner.clean(partition))  // given up on, not retried
        _ = model
        try manager.close()
    }

    @Test("reads racing cleans see whole batches holding what was written at their offsets")
    func readsRacingSwaps() async throws {
        let dir = try TemporaryDirectory()
        // Kafka's file.delete.delay.ms (the default 10 s here): a reader holding a swapped-out segment
        // reads its `.deleted` files until then (with no delay they could vanish under a slow reader).
        var configuration = compactedConfiguration()
        configuration.fileDeleteDelayMilliseconds = 10_000
        let (log, _) = try PartitionLog.open(directory: dir.path, configuration: configuration)
        var model = try await fill(log, rounds: 40, keys: 8)
        try log.roll()
        let written = model.written
        let race = RaceState()
        let readers = DispatchGroup()
        DispatchQueue.global().async(group: readers) {
            while !race.stop.load(ordering: .acquiring) {
                do {
                    // Records appended during the race are not in `written`; every other must match it.
                    for record in try readRecords(log) where written[record.offset].map({ $0 != KeyedRecord(key: record.key, value: record.value) }) ?? false {
                        race.failures.withLock { $0.append("\(record)") }
                    }
                } catch {
                    race.failures.withLock { $0.append("\(error)") }
                }
                race.reads.add(1, ordering: .relaxed)
            }
        }
        var point: Int64 = 0
        for round in 0..<30 {
            let records = [KeyedRecord(key: "key-\(round % 8)", value: "race-\(round)")]
            model.appended(records, at: try await log.append(try keyedBatch(records)).baseOffset)
            try log.roll()
            point = try cleanFully(log, from: point, mapBytes: 4 * 24)
        }
        race.stop.store(true, ordering: .releasing)
        readers.wait()
        #expect(race.reads.load(ordering: .relaxed) > 0)
        #expect(race.failures.withLock { $0.count } == 0, "\(race.failures.withLock { Array($0.prefix(5)) })")
        #expect(model.problems(try readRecords(log)).isEmpty)
        try log.close()
    }
}
