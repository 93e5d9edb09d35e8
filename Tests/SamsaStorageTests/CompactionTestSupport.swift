import Foundation
import NIOCore
import SamsaRecords
@testable import SamsaStorage

/// A compacted log's settings with small segments and a tight index interval, so a few hundred
/// records span many segments and indexes have entries.
func compactedConfiguration(segmentBytes: Int = 1024, deleteRetention: Int64 = 1_000, minLag: Int64 = 0) -> LogConfiguration {
    LogConfiguration(
        segmentBytes: segmentBytes, flushPolicy: .never, segment: SegmentConfiguration(indexIntervalBytes: 128, maxIndexSize: 4096),
        fileDeleteDelayMilliseconds: 0, cleanupPolicy: .compact, deleteRetentionMilliseconds: deleteRetention,
        minCompactionLagMilliseconds: minLag)
}

/// One record to append: a key (nil: none) and a value (nil: a tombstone).
struct KeyedRecord: Hashable {
    var key: String?
    var value: String?
}

/// A batch of `records`, compressed with `codec`, with producer fields when `producerId` is given.
func keyedBatch(
    _ records: [KeyedRecord], timestamp: Int64 = 1_000, codec: CompressionCodec = .none, producerId: Int64 = -1, baseSequence: Int32 = -1
) throws -> RecordBatch {
    var builder = RecordBatchBuilder(compression: codec)
    builder.producerId = producerId
    builder.producerEpoch = producerId >= 0 ? 0 : -1
    builder.baseSequence = baseSequence
    for (index, record) in records.enumerated() {
        builder.append(timestamp: timestamp + Int64(index), key: record.key.map { Array($0.utf8) }, value: record.value.map { Array($0.utf8) })
    }
    return try builder.build()
}

/// A record read back, and the batch that holds it.
struct ReadRecord: Hashable {
    var offset: Int64
    var key: String?
    var value: String?
}

/// Every batch from the log start to the end, in order.
func readBatches(_ log: PartitionLog, from start: Int64? = nil) throws -> [RecordBatch] {
    var result: [RecordBatch] = []
    var next = start ?? log.logStartOffset
    while next < log.logEndOffset, var bytes = try log.read(from: next, maxBytes: 1 << 16) {
        while bytes.readableBytes > 0 {
            let batch = try RecordBatch(validating: bytes)
            bytes.moveReaderIndex(forwardBy: batch.sizeInBytes)
            if batch.lastOffset >= next { result.append(batch) }
            next = max(next, batch.nextOffset)
        }
    }
    return result
}

/// Every record from `start` to the log end.
func readRecords(_ log: PartitionLog, from start: Int64? = nil) throws -> [ReadRecord] {
    let from = start ?? log.logStartOffset
    return try readBatches(log, from: from).flatMap { batch in
        try batch.decodeRecords().filter { $0.offset >= from }.map {
            ReadRecord(offset: $0.offset, key: $0.keyBytes.map { String(decoding: $0, as: UTF8.self) }, value: $0.valueBytes.map { String(decoding: $0, as: UTF8.self) })
        }
    }
}

/// What was appended, and what a compacted log must still show.
struct CompactionModel {
    /// Every record appended, by offset.
    var written: [Int64: KeyedRecord] = [:]
    /// Each key's latest record's offset.
    var latest: [String: Int64] = [:]

    mutating func appended(_ records: [KeyedRecord], at base: Int64) {
        for (index, record) in records.enumerated() {
            let offset = base + Int64(index)
            written[offset] = record
            if let key = record.key { latest[key] = offset }
        }
    }

    /// Problems with what `records` (a whole log read from its start) shows: a record that is not what
    /// was written at its offset, offsets out of order, a live key's latest value missing, a key whose
    /// latest record is a tombstone showing an older value.
    func problems(_ records: [ReadRecord]) -> [String] {
        var problems: [String] = []
        var previous: Int64 = -1
        var shown: [String: Int64] = [:]
        for record in records {
            if record.offset <= previous { problems.append("offset \(record.offset) after \(previous)") }
            previous = record.offset
            if written[record.offset] != KeyedRecord(key: record.key, value: record.value) {
                problems.append("offset \(record.offset) holds \(record) but \(String(describing: written[record.offset])) was written there")
            }
            if let key = record.key { shown[key] = record.offset }
        }
        for (key, offset) in latest {
            let isTombstone = written[offset]?.value == nil
            if isTombstone {
                if let seen = shown[key], seen != offset { problems.append("deleted key \(key) shows offset \(seen)") }
            } else if shown[key] != offset {
                problems.append("key \(key): latest offset \(offset) but the log shows \(String(describing: shown[key]))")
            }
        }
        return problems
    }
}

/// A seeded generator (SplitMix64), so a failing run replays.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Runs one cleaning pass of `log` from `firstDirty` at `now` with a map of `mapBytes`.
func cleanPass(_ log: PartitionLog, from firstDirty: Int64 = 0, now: Int64 = 10_000, mapBytes: Int = 1 << 20) throws -> CleaningResult? {
    try Cleaner(memoryBytes: mapBytes, throttler: Throttler(bytesPerSecond: nil), shouldStop: { false }).clean(log, firstDirty: firstDirty, now: now)
}

/// Cleans until nothing is left to clean; returns the clean point.
@discardableResult
func cleanFully(_ log: PartitionLog, from start: Int64 = 0, now: Int64 = 10_000, mapBytes: Int = 1 << 20) throws -> Int64 {
    var point = start
    while let result = try cleanPass(log, from: point, now: now, mapBytes: mapBytes) {
        precondition(result.cleanPoint > point)
        point = result.cleanPoint
    }
    return point
}
