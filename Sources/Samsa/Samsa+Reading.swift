import NIOCore
public import SamsaRecords
import SamsaStorage

extension Samsa {
    /// Records of one partition from `offset` on, in whole batches up to about `maxBytes` (at least
    /// one batch), never past what producers were told is committed. Empty at the end of the log.
    public func read(topic: String, partition: Int, from offset: Int64, maxBytes: Int = 1 << 20) throws(SamsaError) -> [ConsumerRecord] {
        try readRecords(topic: topic, partition: partition, from: offset, maxBytes: maxBytes).records
    }

    /// `read`, and the offset to read from next: the last batch's `nextOffset`, which in a compacted
    /// log can lie past the last record returned (records the cleaner removed, batches it left empty);
    /// `offset` when nothing was read.
    func readRecords(topic: String, partition: Int, from offset: Int64, maxBytes: Int) throws(SamsaError) -> (records: [ConsumerRecord], next: Int64) {
        let log = try log(topic, partition)
        let configuration = try configuration(of: topic)
        guard let bytes = try storage({ () throws(StorageError) in try log.read(from: offset, maxBytes: maxBytes, limit: readLimit(configuration)) }) else {
            return ([], offset)
        }
        return try decode(bytes, topic: topic, partition: partition, from: offset)
    }

    /// Calls `body` with each record of one partition from `offset` on, in place (key and value point
    /// into the bytes read and are valid only during the call; nothing is allocated per record), for
    /// whole batches up to about `maxBytes`, never past what producers were told is committed.
    /// Returns the offset to read from next (`offset` itself at the end of the log). The fast way to
    /// scan a partition; `read` returns owning `ConsumerRecord`s instead.
    public func forEachRecord(
        topic: String, partition: Int, from offset: Int64, maxBytes: Int = 1 << 20, _ body: (RecordView) throws -> Void
    ) throws -> Int64 {
        let log = try log(topic, partition)
        let configuration = try configuration(of: topic)
        guard let bytes = try storage({ () throws(StorageError) in try log.read(from: offset, maxBytes: maxBytes, limit: readLimit(configuration)) }) else {
            return offset
        }
        var remaining = bytes
        var next = offset
        while remaining.readableBytes > 0 {
            let batch: RecordBatch
            do {
                batch = try RecordBatch(validating: remaining)
            } catch {
                throw SamsaError(.corrupt, "\(topic)-\(partition): a batch read back is invalid: \(error)")
            }
            remaining.moveReaderIndex(forwardBy: batch.sizeInBytes)
            guard batch.lastOffset >= next else { continue }
            let from = next
            try batch.forEachRecord { record in
                if record.offset >= from { try body(record) }
            }
            next = batch.nextOffset
        }
        return next
    }

    /// Whole batches of one partition from `offset` on, up to about `maxBytes` (at least one batch),
    /// each validated (CRC-32C, header), never past what producers were told is committed; empty at
    /// the end of the log. The first batch may start before `offset` (skip records below it, as
    /// Kafka clients do). For applications that handle records a batch at a time
    /// (`RecordBatch.forEachRecord`, `records()`), forward batches whole, or keep them.
    /// The offset to read from next is the last batch's `nextOffset`.
    public func readBatches(topic: String, partition: Int, from offset: Int64, maxBytes: Int = 1 << 20) throws(SamsaError) -> [RecordBatch] {
        let log = try log(topic, partition)
        let configuration = try configuration(of: topic)
        guard var remaining = try storage({ () throws(StorageError) in try log.read(from: offset, maxBytes: maxBytes, limit: readLimit(configuration)) })
        else { return [] }
        var batches: [RecordBatch] = []
        while remaining.readableBytes > 0 {
            let batch: RecordBatch
            do {
                batch = try RecordBatch(validating: remaining)
            } catch {
                throw SamsaError(.corrupt, "\(topic)-\(partition): a batch read back is invalid: \(error)")
            }
            remaining.moveReaderIndex(forwardBy: batch.sizeInBytes)
            if batch.lastOffset >= offset { batches.append(batch) }
        }
        return batches
    }

    /// The first offset whose record's timestamp is at or after `timestamp` (milliseconds since the
    /// epoch), or nil when no record is that recent.
    public func offset(topic: String, partition: Int, forTimestamp timestamp: Int64) throws(SamsaError) -> Int64? {
        let log = try log(topic, partition)
        do {
            return try log.offset(forTimestamp: timestamp)
        } catch let error as StorageError {
            throw SamsaError(error)
        } catch {
            throw SamsaError(.corrupt, "\(topic)-\(partition): \(error)")
        }
    }

    /// The first retained offset of a partition, and the offset after its last committed record.
    /// A damaged partition (records below its recovery point missing, see `LogDamage`) throws
    /// `.corrupt` here: its end is the damage, not the end of the log, and a reader must not take it
    /// for one.
    public func offsets(topic: String, partition: Int) throws(SamsaError) -> (start: Int64, end: Int64) {
        let log = try log(topic, partition)
        if let damage = log.damage {
            throw SamsaError(StorageError(.corrupt, path: damage.path, "\(topic)-\(partition) is \(damage)"))
        }
        let configuration = try configuration(of: topic)
        let end = readLimit(configuration) == .flushed ? log.flushedOffset : log.logEndOffset
        return (log.logStartOffset, end)
    }

    /// How far this process may read a topic: never past what producers were told is committed. A
    /// read-only open reads to the end the writer's file shows (batches whole and checksummed): the
    /// writer's flushed position lives in its process, and what it wrote survives its crash.
    func readLimit(_ configuration: TopicConfiguration) -> ReadLimit {
        isReadOnly ? .logEnd : configuration.readLimit
    }

    /// The first retained offset of a partition and the end of everything written to it (committed
    /// to producers or not): the range a stored position must fall in.
    func retainedOffsets(topic: String, partition: Int) throws(SamsaError) -> (start: Int64, end: Int64) {
        let log = try log(topic, partition)
        return (log.logStartOffset, log.logEndOffset)
    }

    /// Every record of a partition from `offset` on, then each new one as it is committed: the sequence
    /// sleeps while there is nothing to read (no polling) and ends when Samsa closes. An offset below
    /// the log start (retention deleted it) continues from the log start.
    public func records(topic: String, partition: Int, from offset: Int64 = 0) -> PartitionRecords {
        PartitionRecords(samsa: self, topic: topic, partition: partition, start: offset)
    }

    /// Reads for a consumer at `position`: moves a position that retention passed to the log start.
    /// Returns the records and the offset after everything read (see `readRecords`): a consumer that
    /// takes every record moves there, so it passes what compaction removed instead of reading the
    /// same empty range again.
    func readForConsumer(topic: String, partition: Int, position: inout Int64, maxBytes: Int) throws(SamsaError) -> (records: [ConsumerRecord], next: Int64) {
        let (start, end) = try offsets(topic: topic, partition: partition)
        if position < start { position = start }
        guard position < end else { return ([], position) }
        return try readRecords(topic: topic, partition: partition, from: position, maxBytes: maxBytes)
    }

    private func decode(_ bytes: ByteBuffer, topic: String, partition: Int, from offset: Int64) throws(SamsaError) -> (records: [ConsumerRecord], next: Int64) {
        var records: [ConsumerRecord] = []
        var next = offset
        do {
            var batches: [RecordBatch] = []
            var count = 0
            var remaining = bytes
            while remaining.readableBytes > 0 {
                let batch = try RecordBatch(validating: remaining)
                remaining.moveReaderIndex(forwardBy: batch.sizeInBytes)
                guard batch.lastOffset >= offset else { continue }
                batches.append(batch)
                next = max(next, batch.nextOffset)
                count += min(Int(batch.recordCount), 1 << 16)
            }
            // Sized once: growing the array as records arrive copies and faults it in repeatedly.
            records.reserveCapacity(count)
            for batch in batches {
                try batch.forEachRecordLocation { section, record in
                    guard record.offset >= offset else { return }
                    records.append(
                        ConsumerRecord(
                            topic: topic, partition: partition, offset: record.offset, timestamp: record.timestamp, bytes: section,
                            key: record.key, value: record.value, headers: record.headers))
                }
            }
        } catch {
            throw SamsaError(.corrupt, "\(topic)-\(partition): a batch read back is invalid: \(error)")
        }
        return (records, next)
    }
}

/// A partition's records from an offset on, tailing new ones as they are committed (see
/// `Samsa.records(topic:partition:from:)`). Cancelling the iterating task ends it with
/// `CancellationError`.
public struct PartitionRecords: AsyncSequence, Sendable {
    public typealias Element = ConsumerRecord

    let samsa: Samsa
    let topic: String
    let partition: Int
    let start: Int64

    public func makeAsyncIterator() -> Iterator {
        Iterator(samsa: samsa, topic: topic, partition: partition, position: start)
    }

    public struct Iterator: AsyncIteratorProtocol {
        let samsa: Samsa
        let topic: String
        let partition: Int
        var position: Int64
        var buffered: [ConsumerRecord] = []
        var index = 0

        public mutating func next() async throws -> ConsumerRecord? {
            while true {
                if index < buffered.count {
                    let record = buffered[index]
                    index += 1
                    position = record.offset + 1
                    return record
                }
                try Task.checkCancellation()
                if samsa.closed { return nil }
                // The version is read before the log: an append after the read moves it, so the wait
                // below cannot miss it.
                let signal = samsa.signal(for: topic)
                let seen = signal.version
                let (records, next) = try samsa.readForConsumer(topic: topic, partition: partition, position: &position, maxBytes: 1 << 20)
                buffered = records
                index = 0
                if records.isEmpty && next > position {
                    // Batches whose records compaction removed: past them, then read on.
                    position = next
                    continue
                }
                if records.isEmpty { await Signal.wait(forAny: [(signal, seen)]) }
            }
        }
    }
}
