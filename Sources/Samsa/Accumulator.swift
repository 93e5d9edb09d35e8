import Dispatch
import SamsaRecords
import SamsaStorage
import Synchronization

/// One partition's open batch, and the queue that writes its closed batches. The lock guards only
/// the open batch (adding a record is a copy into its buffer); a closed batch is handed, under the
/// lock so batches queue in the order their records were added, to the partition's serial writer
/// queue, which compresses and appends it. So no sender ever compresses, writes or rolls a segment
/// on its own executor (the main actor included), and senders keep filling the next batch while one
/// is written. Nothing is kept per record: a batch has one ticket, a record is an index into it.
final class Accumulator: Sendable {
    struct Open {
        var builder: RecordBatchBuilder
        let ticket: BatchTicket
        var count = 0
        var bytes = 0
        let id: UInt64
        /// When it was opened (monotonic nanoseconds), for the linger timer.
        let opened: UInt64
    }

    /// A batch handed to the log, and what became of it.
    struct Written {
        var ticket: BatchTicket
        var count: Int
        var bytes: Int
        var outcome: Result<AppendResult, SamsaError>
    }

    /// What adding records did to the open batch.
    struct Added {
        /// The open batch, if one of these records started it (with no linger, it goes at once).
        var started: UInt64?
        /// A batch was started while no linger timer was armed: the caller arms one.
        var armTimer = false
        /// Whether a batch was closed (sticky partitioning moves on).
        var closed = false
    }

    struct State {
        var batch: Open?
        var nextID: UInt64 = 0
        /// One linger timer at most per partition (not one per batch): when it fires it closes the
        /// open batch if that is old enough, else waits again for the rest of its linger.
        var timerArmed = false
    }

    /// Carries a closed batch to the writer queue as the only reference to its buffer (the header is
    /// then written in place; a second reference would copy the whole batch).
    private final class Handoff: Sendable {
        let batch: Mutex<Open?>
        init(_ batch: consuming Open) { self.batch = Mutex(batch) }
    }

    let partition: TopicPartition
    let log: PartitionLog
    let compression: CompressionCodec
    let batchBytes: Int
    private let state = Mutex(State())
    /// Batches opened and not yet resolved, oldest first: what `flush` waits for. A lock of its own,
    /// so resolving a batch never waits for a sender filling the next one.
    private let unresolved = Mutex<[BatchTicket]>([])
    private let writer: DispatchQueue

    init(partition: TopicPartition, log: PartitionLog, compression: CompressionCodec, batchBytes: Int) {
        self.partition = partition
        self.log = log
        self.compression = compression
        self.batchBytes = batchBytes
        writer = DispatchQueue(label: "samsa.producer.\(partition)", qos: .userInitiated)
    }

    /// Adds one record: the open batch is closed first if the record would overflow it and afterwards
    /// if it is full. The producer is told on the writer queue of each batch this closes (passed, not
    /// stored: a queued batch keeps its producer alive, an idle accumulator does not).
    func add(_ record: ProducerRecord, size: Int, timestamp: Int64, for producer: Producer) -> (delivery: Delivery, added: Added) {
        state.withLock { state in
            var added = Added()
            let (ticket, index) = append(record, size: size, timestamp: timestamp, to: &state, added: &added, for: producer)
            return (Delivery(batch: ticket, index: index, timestamp: timestamp), added)
        }
    }

    /// Adds `records[range]` under one acquisition of the lock, in order, while each belongs here
    /// (`belongs` is asked of every record; a keyless one belongs only until a batch closes, since
    /// sticky partitioning then moves on). Returns where it stopped.
    func add(
        _ records: [ProducerRecord], from start: Int, to end: Int, timestamp: Int64, acknowledgement: inout Acknowledgement,
        belongs: (ProducerRecord) -> Bool, for producer: Producer
    ) -> (next: Int, added: Added) {
        records.withUnsafeBufferPointer { records in
            state.withLock { state in
                var added = Added()
                var next = start
                // The run of records going into the open batch, added to the acknowledgement as one.
                var run: (batch: BatchTicket, first: Int, count: Int)?
                while next < end {
                    if records[next].partition == nil && records[next].key == nil && added.closed { break }
                    guard belongs(records[next]) else { break }
                    let (ticket, index) = append(
                        records[next], size: Producer.encodedSize(records[next]), timestamp: records[next].timestamp ?? timestamp, to: &state,
                        added: &added, for: producer)
                    if let current = run, current.batch === ticket {
                        run!.count += 1
                    } else {
                        if let current = run { acknowledgement.add(current.batch, first: current.first, count: current.count) }
                        run = (ticket, index, 1)
                    }
                    next += 1
                }
                if let current = run { acknowledgement.add(current.batch, first: current.first, count: current.count) }
                return (next, added)
            }
        }
    }

    private func append(
        _ record: ProducerRecord, size: Int, timestamp: Int64, to state: inout State, added: inout Added, for producer: Producer
    ) -> (BatchTicket, Int) {
        if let bytes = state.batch?.bytes, bytes + size > batchBytes {
            hand(state.batch.take()!, to: producer)
            added.closed = true
        }
        if state.batch == nil {
            // Capacity for a typical batch; a larger one grows its buffer.
            let capacity = min(batchBytes, 1 << 20) + size + 64
            let ticket = BatchTicket(topic: partition.topic, partition: Int(partition.partition))
            state.batch = Open(
                builder: RecordBatchBuilder(compression: compression, capacity: capacity), ticket: ticket, id: state.nextID,
                opened: DispatchTime.now().uptimeNanoseconds)
            if !state.timerArmed {
                state.timerArmed = true
                added.armTimer = true
            }
            unresolved.withLock { $0.append(ticket) }
            added.started = state.nextID
            state.nextID += 1
        }
        state.batch!.builder.append(timestamp: timestamp, key: record.key, value: record.value, headers: record.headers)
        let ticket = state.batch!.ticket
        let index = state.batch!.count
        state.batch!.count += 1
        state.batch!.bytes += size
        if state.batch!.bytes >= batchBytes {
            hand(state.batch.take()!, to: producer)
            added.closed = true
            added.started = nil
        }
        return (ticket, index)
    }

    /// Closes the open batch now (if it is still batch `id`, when given) and queues it for writing;
    /// false when there was none to close.
    @discardableResult
    func sendOpen(ifBatch id: UInt64? = nil, for producer: Producer) -> Bool {
        state.withLock { state in
            guard let current = state.batch?.id, id == nil || current == id else { return false }
            hand(state.batch.take()!, to: producer)
            return true
        }
    }

    /// The linger timer fired: closes the open batch if it has waited `linger` nanoseconds (true),
    /// and returns how long to wait before looking again (nil: no batch is open, the timer is
    /// disarmed and the next batch arms it).
    func lingerExpired(linger: UInt64, for producer: Producer) -> (closed: Bool, again: UInt64?) {
        state.withLock { state in
            guard let opened = state.batch?.opened else {
                state.timerArmed = false
                return (false, nil)
            }
            let age = DispatchTime.now().uptimeNanoseconds &- opened
            guard age >= linger else { return (false, linger - age) }
            hand(state.batch.take()!, to: producer)
            state.timerArmed = false
            return (true, nil)
        }
    }

    /// The batches opened and not yet resolved.
    var pending: [BatchTicket] { unresolved.withLock { $0 } }

    /// A batch was resolved (its callbacks have run): `flush` no longer waits for it.
    func retire(_ ticket: BatchTicket) {
        unresolved.withLock { pending in
            if let index = pending.firstIndex(where: { $0 === ticket }) { pending.remove(at: index) }
        }
    }

    /// Queues a closed batch; called with the lock held, so batches are written in the order closed.
    /// `async` only enqueues: nothing here blocks.
    private func hand(_ batch: consuming Open, to producer: Producer) {
        let handoff = Handoff(batch)
        writer.async {
            guard let batch = handoff.batch.withLock({ $0.take() }) else { return }
            producer.written(self.write(batch), to: self)
        }
    }

    /// Builds (compressing) and appends a batch, on the writer queue.
    private func write(_ batch: consuming Open) -> Written {
        var batch = batch
        let outcome: Result<AppendResult, SamsaError>
        do {
            let built = try batch.builder.build()
            outcome = Result { () throws(SamsaError) in try storage { () throws(StorageError) in try log.appendWithoutWaiting(built) } }
        } catch {
            outcome = .failure(SamsaError(.invalidArgument, "cannot build a batch for \(partition): \(error)"))
        }
        return Written(ticket: batch.ticket, count: batch.count, bytes: batch.bytes, outcome: outcome)
    }
}
