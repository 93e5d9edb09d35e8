import Dispatch
import SamsaRecords
import SamsaStorage
import Synchronization

/// How a producer batches (Kafka's producer settings of the same meaning).
public struct ProducerConfiguration: Sendable, Hashable {
    /// How long a batch waits for more records before it is written (`linger.ms`); 0 writes at once.
    public var lingerMilliseconds: Int
    /// A batch is written once its records reach this many bytes (`batch.size`).
    public var batchBytes: Int
    /// Bytes of records the producer holds, unwritten or awaiting their flush, before `send` waits
    /// for room (`buffer.memory`): back-pressure instead of growth when the disk is slower.
    public var bufferBytes: Int

    public init(lingerMilliseconds: Int = 5, batchBytes: Int = 16 * 1024, bufferBytes: Int = 32 << 20) {
        self.lingerMilliseconds = lingerMilliseconds
        self.batchBytes = batchBytes
        self.bufferBytes = bufferBytes
    }
}

extension Samsa {
    /// A producer writing to this directory's topics.
    public func makeProducer(_ configuration: ProducerConfiguration = ProducerConfiguration()) -> Producer {
        Producer(samsa: self, configuration: configuration)
    }
}

/// Sends records to topics: chooses each record's partition (by key with Kafka's murmur2, else
/// sticky), gathers records into one batch per partition (written when full or after the linger
/// time, compressed with the topic's codec), and resolves each record's `Delivery` once the topic's
/// flush policy covers its batch.
///
/// Threads: any number of tasks may send at once; records of one partition are written in the order
/// their sends were made. Cancelling a task waiting for buffer room throws `CancellationError` and
/// sends nothing; a record already handed over is written regardless.
/// The async methods run on the caller's executor (`nonisolated(nonsending)`): a send from the main
/// actor costs no hop to another thread, since all shared state is behind locks, and it never does
/// I/O there: closed batches are compressed and written on each partition's writer queue.
public final class Producer: Sendable {
    public let configuration: ProducerConfiguration
    private let samsa: Samsa
    private let state = Mutex(State())
    /// Bumped when buffer room is released.
    private let room = Signal()

    private struct State {
        var accumulators: [TopicPartition: Accumulator] = [:]
        var sticky: [String: Int] = [:]
        var bufferedBytes = 0
        var unresolved: [ObjectIdentifier: Delivery] = [:]
        var closed = false
    }

    init(samsa: Samsa, configuration: ProducerConfiguration) {
        self.samsa = samsa
        self.configuration = configuration
    }

    /// Sends one record and returns once it is acknowledged.
    @discardableResult
    nonisolated(nonsending) public func send(_ record: ProducerRecord) async throws -> RecordMetadata {
        try await enqueue(record).result()
    }

    /// Sends records in order and returns once all are acknowledged.
    @discardableResult
    nonisolated(nonsending) public func send(_ records: [ProducerRecord]) async throws -> [RecordMetadata] {
        var deliveries: [Delivery] = []
        deliveries.reserveCapacity(records.count)
        for record in records { deliveries.append(try await enqueue(record)) }
        var results: [RecordMetadata] = []
        results.reserveCapacity(deliveries.count)
        for delivery in deliveries { results.append(try await delivery.result()) }
        return results
    }

    /// Hands a record over and returns as soon as it is in a batch (waiting only for buffer room); its
    /// `Delivery` resolves when it is acknowledged. The way to keep many records in flight.
    nonisolated(nonsending) public func enqueue(_ record: ProducerRecord) async throws -> Delivery {
        if state.withLock({ $0.closed }) { throw SamsaError(.closed, "the producer is closed") }
        try samsa.checkWritable("send records")
        let topic = try samsa.configuration(of: record.topic)
        let size = Self.encodedSize(record)
        guard size <= topic.maxRecordBytes else {
            throw SamsaError(.recordTooLarge, "a record of \(size) bytes exceeds topic '\(record.topic)''s maximum of \(topic.maxRecordBytes)")
        }
        guard size <= configuration.bufferBytes else {
            throw SamsaError(.recordTooLarge, "a record of \(size) bytes exceeds the producer's buffer of \(configuration.bufferBytes)")
        }
        let partition = try choosePartition(record, partitions: topic.partitions)
        try await reserve(size)
        let tp = TopicPartition(topic: record.topic, partition: Int32(partition))
        let accumulator: Accumulator
        do {
            accumulator = try self.accumulator(for: tp, compression: topic.compression)
        } catch {
            release(size)
            throw error
        }
        let delivery = Delivery(topic: record.topic, partition: partition)
        state.withLock { $0.unresolved[ObjectIdentifier(delivery)] = delivery }
        let timestamp = record.timestamp ?? WallClock.nowMilliseconds
        let (started, closed) = accumulator.add(
            record, size: size, timestamp: timestamp, delivery: delivery, batchBytes: configuration.batchBytes, for: self)
        // A full batch moves keyless records on to another partition (KIP-480), decided here and not
        // when the batch is written, so the switch does not depend on how fast the disk is.
        if closed { batchLeft(tp, partitions: topic.partitions) }
        if let batchID = started {
            if configuration.lingerMilliseconds == 0 {
                if accumulator.sendOpen(ifBatch: batchID, for: self) { batchLeft(tp, partitions: topic.partitions) }
            } else {
                let partitions = topic.partitions
                DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(configuration.lingerMilliseconds)) { [weak self] in
                    guard let self else { return }
                    if accumulator.sendOpen(ifBatch: batchID, for: self) { self.batchLeft(tp, partitions: partitions) }
                }
            }
        }
        return delivery
    }

    /// Writes every batch now and waits until each record sent before this call is resolved.
    nonisolated(nonsending) public func flush() async {
        sendAllOpen()
        let pending = state.withLock { Array($0.unresolved.values) }
        for delivery in pending { _ = try? await delivery.result() }
    }

    /// Flushes, then refuses further sends.
    nonisolated(nonsending) public func close() async {
        state.withLock { $0.closed = true }
        await flush()
    }

    /// Bytes of records held (unwritten or awaiting their flush).
    public var bufferedBytes: Int { state.withLock { $0.bufferedBytes } }

    // MARK: - Partitioning

    private func choosePartition(_ record: ProducerRecord, partitions: Int) throws(SamsaError) -> Int {
        if let partition = record.partition {
            guard (0..<partitions).contains(partition) else {
                throw SamsaError(.unknownPartition, "topic '\(record.topic)' has no partition \(partition) (it has \(partitions))")
            }
            return partition
        }
        if let key = record.key { return Murmur2.partition(forKey: key, partitions: partitions) }
        // Sticky: keyless records fill one partition's batch, then move on (KIP-480).
        return state.withLock { state in
            if let sticky = state.sticky[record.topic], sticky < partitions { return sticky }
            let chosen = Int.random(in: 0..<partitions)
            state.sticky[record.topic] = chosen
            return chosen
        }
    }

    private func batchLeft(_ partition: TopicPartition, partitions: Int) {
        state.withLock { state in
            guard state.sticky[partition.topic] == Int(partition.partition), partitions > 1 else { return }
            var next = Int.random(in: 0..<(partitions - 1))
            if next >= Int(partition.partition) { next += 1 }
            state.sticky[partition.topic] = next
        }
    }

    // MARK: - Batches

    private func accumulator(for partition: TopicPartition, compression: CompressionCodec) throws(SamsaError) -> Accumulator {
        if let existing = state.withLock({ $0.accumulators[partition] }) { return existing }
        let log = try samsa.log(partition.topic, Int(partition.partition))
        return state.withLock { state in
            if let existing = state.accumulators[partition] { return existing }
            let created = Accumulator(partition: partition, log: log, compression: compression)
            state.accumulators[partition] = created
            return created
        }
    }

    private func sendAllOpen() {
        for accumulator in state.withLock({ Array($0.accumulators.values) }) {
            accumulator.sendOpen(for: self)
        }
    }

    /// A batch was appended (or failed): resolve its records once the flush policy allows.
    fileprivate func written(_ batch: Accumulator.Written, to accumulator: Accumulator) {
        switch batch.outcome {
        case .failure(let error):
            finish(batch, .failure(error))
        case .success(let result):
            accumulator.log.whenFlushPolicySatisfied(result) { error in
                self.finish(batch, error.map { .failure(SamsaError($0)) } ?? .success(result))
            }
        }
    }

    private func finish(_ batch: Accumulator.Written, _ outcome: Result<AppendResult, SamsaError>) {
        let topic = batch.partition.topic
        let partition = Int(batch.partition.partition)
        // The room is released before anyone learns of the outcome (a sender that saw its last
        // delivery resolve finds the buffer empty); a delivery leaves `unresolved` only once resolved
        // (its callbacks run), so `flush` waits for every callback.
        release(batch.bytes)
        if case .success = outcome { samsa.signal(for: topic).notify() }
        for (index, delivery) in batch.deliveries.enumerated() {
            delivery.resolve(outcome.map {
                RecordMetadata(topic: topic, partition: partition, offset: $0.baseOffset + Int64(index), timestamp: batch.timestamps[index])
            })
        }
        state.withLock { state in
            for delivery in batch.deliveries { state.unresolved.removeValue(forKey: ObjectIdentifier(delivery)) }
        }
    }

    // MARK: - Buffer room

    nonisolated(nonsending) private func reserve(_ bytes: Int) async throws {
        while true {
            let seen = room.version
            let reserved = state.withLock { state -> Bool in
                // One record always fits an empty buffer, whatever its size.
                guard state.bufferedBytes == 0 || state.bufferedBytes + bytes <= configuration.bufferBytes else { return false }
                state.bufferedBytes += bytes
                return true
            }
            if reserved { return }
            // The buffer is full: lingering batches go now (Kafka's "exhausted" batches are ready).
            sendAllOpen()
            await Signal.wait(forAny: [(room, seen)])
            try Task.checkCancellation()
            try samsa.checkOpen()
        }
    }

    private func release(_ bytes: Int) {
        state.withLock { $0.bufferedBytes -= bytes }
        room.notify()
    }

    /// What a record adds to a batch, at most (the length varints and attributes included).
    static func encodedSize(_ record: ProducerRecord) -> Int {
        var size = 21 + (record.key?.count ?? 0) + (record.value?.count ?? 0)
        for header in record.headers { size += 10 + header.key.utf8.count + (header.value?.readableBytes ?? 0) }
        return size
    }
}

/// One partition's open batch, and the queue that writes its closed batches. The lock guards only
/// the open batch (adding a record is a copy into its buffer); a closed batch is handed, under the
/// lock so batches queue in the order their records were added, to the partition's serial writer
/// queue, which compresses and appends it. So no sender ever compresses, writes or rolls a segment
/// on its own executor (the main actor included), and senders keep filling the next batch while one
/// is written.
final class Accumulator: Sendable {
    struct Open {
        var builder: RecordBatchBuilder
        var deliveries: [Delivery] = []
        var timestamps: [Int64] = []
        var bytes = 0
        let id: UInt64
    }

    /// A batch handed to the log, and what became of it.
    struct Written {
        var partition: TopicPartition
        var deliveries: [Delivery]
        var timestamps: [Int64]
        var bytes: Int
        var outcome: Result<AppendResult, SamsaError>
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
    private let open = Mutex<(batch: Open?, nextID: UInt64)>((nil, 0))
    private let writer: DispatchQueue

    init(partition: TopicPartition, log: PartitionLog, compression: CompressionCodec) {
        self.partition = partition
        self.log = log
        self.compression = compression
        writer = DispatchQueue(label: "samsa.producer.\(partition)", qos: .userInitiated)
    }

    /// Adds a record, closing the open batch first if the record would overflow it and afterwards if
    /// the batch is full. Returns the id of a batch this record started (for its linger timer) and
    /// whether it closed one.
    /// The producer is told on the writer queue of each batch this closes (passed, not stored: a
    /// queued batch keeps its producer alive, an idle accumulator does not).
    func add(
        _ record: ProducerRecord, size: Int, timestamp: Int64, delivery: Delivery, batchBytes: Int, for producer: Producer
    ) -> (started: UInt64?, closed: Bool) {
        open.withLock { state -> (started: UInt64?, closed: Bool) in
            var closed = false
            if let bytes = state.batch?.bytes, bytes + size > batchBytes {
                hand(state.batch.take()!, to: producer)
                closed = true
            }
            var started: UInt64?
            if state.batch == nil {
                // Capacity for a typical batch; a larger one grows its buffer.
                let capacity = min(batchBytes, 1 << 20) + size + 64
                state.batch = Open(builder: RecordBatchBuilder(compression: compression, capacity: capacity), id: state.nextID)
                started = state.nextID
                state.nextID += 1
            }
            state.batch!.builder.append(timestamp: timestamp, key: record.key, value: record.value, headers: record.headers)
            state.batch!.deliveries.append(delivery)
            state.batch!.timestamps.append(timestamp)
            state.batch!.bytes += size
            if state.batch!.bytes >= batchBytes {
                hand(state.batch.take()!, to: producer)
                return (nil, true)
            }
            return (started, closed)
        }
    }

    /// Closes the open batch now (if it is still batch `id`, when given) and queues it for writing;
    /// false when there was none to close.
    @discardableResult
    func sendOpen(ifBatch id: UInt64? = nil, for producer: Producer) -> Bool {
        open.withLock { state in
            guard let current = state.batch?.id, id == nil || current == id else { return false }
            hand(state.batch.take()!, to: producer)
            return true
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
        return Written(partition: partition, deliveries: batch.deliveries, timestamps: batch.timestamps, bytes: batch.bytes, outcome: outcome)
    }
}
