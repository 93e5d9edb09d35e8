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
/// time, compressed with the topic's codec), and resolves each batch's `BatchTicket` (so each
/// record's `Delivery`) once the topic's flush policy covers it.
///
/// Threads: any number of tasks may send at once; records of one partition are written in the order
/// their sends were made. Cancelling a task waiting for buffer room throws `CancellationError` and
/// sends nothing more; a record already handed over is written regardless.
/// The async methods run on the caller's executor (`nonisolated(nonsending)`): a send from the main
/// actor costs no hop to another thread, since all shared state is behind locks, and it never does
/// I/O there: closed batches are compressed and written on each partition's writer queue.
///
/// Cost: nothing is allocated or locked per record beyond the partition's batch lock; one ticket, one
/// buffer release and one wake-up per batch. `enqueue(contentsOf:)` takes each lock once per call.
public final class Producer: Sendable {
    public let configuration: ProducerConfiguration
    private let samsa: Samsa
    private let topics = Mutex<[String: TopicState]>([:])
    private let isClosed = Atomic<Bool>(false)
    private let buffered = Atomic<Int>(0)
    /// Bumped when buffer room is released.
    private let room = Signal()

    /// What a producer keeps of a topic: its configuration and accumulators (made on first use) as of
    /// a registry generation, and its sticky partition.
    private struct TopicState {
        var generation: UInt64
        var configuration: TopicConfiguration
        var accumulators: [Accumulator?]
        var sticky: Int?
    }

    /// Where a record goes.
    private struct Route {
        var accumulator: Accumulator
        var partition: Int
        var configuration: TopicConfiguration
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

    /// Sends records in order and returns once all are acknowledged, with each one's metadata.
    @discardableResult
    nonisolated(nonsending) public func send(_ records: [ProducerRecord]) async throws -> [RecordMetadata] {
        let acknowledgement = try await enqueue(contentsOf: records)
        var results: [RecordMetadata] = []
        results.reserveCapacity(records.count)
        var position = 0
        for run in acknowledgement.runs {
            let batch = try await run.batch.result()
            for index in run.firstIndex..<(run.firstIndex + run.count) {
                let timestamp = records[position].timestamp ?? acknowledgement.timestamp
                results.append(Delivery.metadata(batch, index: index, timestamp: timestamp))
                position += 1
            }
        }
        return results
    }

    /// Hands a record over and returns as soon as it is in a batch (waiting only for buffer room); its
    /// `Delivery` resolves when it is acknowledged. The way to keep many records in flight.
    nonisolated(nonsending) public func enqueue(_ record: ProducerRecord) async throws -> Delivery {
        try checkSending()
        let route = try self.route(record)
        let size = try checkedSize(record, route.configuration)
        // Room is usually there: only a full buffer costs the async call that waits for it.
        if !tryReserve(size) { try await reserve(size) }
        let (delivery, added) = route.accumulator.add(record, size: size, timestamp: record.timestamp ?? WallClock.nowMilliseconds, for: self)
        after(added, on: route.accumulator, partitions: route.configuration.partitions)
        return delivery
    }

    /// Hands records over in order and returns as soon as all are in batches (waiting only for buffer
    /// room); the acknowledgement resolves when every one is acknowledged. Looks up each topic,
    /// reserves buffer room and reads the clock once per call (in chunks of a quarter of the buffer)
    /// and takes each partition's lock once per run of records bound for it: the fast way to send
    /// many records. Every record is checked (topic, size, partition) before any is handed over;
    /// cancelled while waiting for room, the records handed over until then are written regardless.
    nonisolated(nonsending) public func enqueue(contentsOf records: [ProducerRecord]) async throws -> Acknowledgement {
        try checkSending()
        try check(records)
        let timestamp = WallClock.nowMilliseconds
        var acknowledgement = Acknowledgement(timestamp: timestamp)
        let chunkBytes = max(1, configuration.bufferBytes / 4)
        var start = 0
        while start < records.count {
            let (end, bytes) = Self.chunk(records, from: start, maxBytes: chunkBytes)
            if !tryReserve(bytes) { try await reserve(bytes) }
            var next = start
            do {
                while next < end {
                    let record = records[next]
                    let route = try self.route(record)
                    let from = next
                    let added: Accumulator.Added
                    let (partition, partitions) = (route.partition, route.configuration.partitions)
                    (next, added) = route.accumulator.add(
                        records, from: next, to: end, timestamp: timestamp, acknowledgement: &acknowledgement,
                        belongs: { Self.belongs($0, topic: record.topic, partition: partition, partitions: partitions) }, for: self)
                    precondition(next > from, "the run's first record belongs to its partition")
                    after(added, on: route.accumulator, partitions: partitions)
                }
            } catch {
                release(Self.chunk(records, from: next, maxBytes: .max, end: end).bytes)
                throw error
            }
            start = end
        }
        return acknowledgement
    }

    /// Writes every batch now and waits until each record sent before this call is resolved.
    nonisolated(nonsending) public func flush() async {
        let accumulators = allAccumulators()
        for accumulator in accumulators { accumulator.sendOpen(for: self) }
        for accumulator in accumulators {
            for ticket in accumulator.pending { _ = try? await ticket.result() }
        }
    }

    /// Flushes, then refuses further sends.
    nonisolated(nonsending) public func close() async {
        isClosed.store(true, ordering: .releasing)
        await flush()
    }

    /// Bytes of records held (unwritten or awaiting their flush).
    public var bufferedBytes: Int { buffered.load(ordering: .acquiring) }

    // MARK: - Checks

    /// Checks every record of a batch call (topic, size, explicit partition), each topic looked up once.
    private func check(_ records: [ProducerRecord]) throws {
        try records.withUnsafeBufferPointer { records in
            var configurations: [String: TopicConfiguration] = [:]
            var last: (name: String, configuration: TopicConfiguration)?
            for index in records.indices {
                if last?.name != records[index].topic {
                    let topic = records[index].topic
                    try Samsa.refuseInternal(topic, "produce to")
                    let configuration = try configurations[topic] ?? samsa.configuration(of: topic)
                    configurations[topic] = configuration
                    last = (topic, configuration)
                }
                _ = try checkedSize(records[index], last!.configuration)
                if let partition = records[index].partition {
                    try checkPartition(partition, of: records[index].topic, partitions: last!.configuration.partitions)
                }
            }
        }
    }

    /// Records from `start` whose sizes add up to at most `maxBytes` (one at least), up to `end`: the
    /// end of the chunk and its bytes.
    private static func chunk(_ records: [ProducerRecord], from start: Int, maxBytes: Int, end: Int? = nil) -> (end: Int, bytes: Int) {
        records.withUnsafeBufferPointer { records in
            let limit = end ?? records.count
            var end = start, bytes = 0
            while end < limit {
                let size = encodedSize(records[end])
                guard end == start || bytes + size <= maxBytes else { break }
                bytes += size
                end += 1
            }
            return (end, bytes)
        }
    }

    private func checkSending() throws(SamsaError) {
        if isClosed.load(ordering: .acquiring) { throw SamsaError(.closed, "the producer is closed") }
        try samsa.checkWritable("send records")
    }

    private func checkedSize(_ record: ProducerRecord, _ topic: TopicConfiguration) throws(SamsaError) -> Int {
        // Kafka refuses these too (INVALID_RECORD): compaction keeps the latest record per key.
        if record.key == nil && topic.cleanupPolicy.compacts {
            throw SamsaError(.invalidArgument, "topic '\(record.topic)' is compacted (cleanup.policy=\(topic.cleanupPolicy)): a record needs a key")
        }
        let size = Self.encodedSize(record)
        guard size <= topic.maxRecordBytes else {
            throw SamsaError(.recordTooLarge, "a record of \(size) bytes exceeds topic '\(record.topic)''s maximum of \(topic.maxRecordBytes)")
        }
        guard size <= configuration.bufferBytes else {
            throw SamsaError(.recordTooLarge, "a record of \(size) bytes exceeds the producer's buffer of \(configuration.bufferBytes)")
        }
        return size
    }

    private func checkPartition(_ partition: Int, of topic: String, partitions: Int) throws(SamsaError) {
        guard (0..<partitions).contains(partition) else {
            throw SamsaError(.unknownPartition, "topic '\(topic)' has no partition \(partition) (it has \(partitions))")
        }
    }

    // MARK: - Partitioning

    /// The partition and accumulator for `record`: one lookup under the producer's lock while the
    /// topic's registry generation is unchanged; otherwise (first use, a topic created or deleted
    /// since) the topic's configuration and log are looked up again.
    private func route(_ record: ProducerRecord) throws(SamsaError) -> Route {
        let generation = samsa.registry.generation.load(ordering: .acquiring)
        // Kafka's default partitioner: toPositive(murmur2(key)) % partitions, hashed outside the lock.
        let hashed = record.key.map { Int(Murmur2.hash($0) & 0x7fff_ffff) }
        enum Lookup { case found(Route), stale, badPartition(Int) }
        while true {
            let lookup = topics.withLock { topics -> Lookup in
                guard let index = topics.index(forKey: record.topic), topics.values[index].generation == generation else { return .stale }
                let partitions = topics.values[index].configuration.partitions
                let partition: Int
                if let explicit = record.partition {
                    guard (0..<partitions).contains(explicit) else { return .badPartition(partitions) }
                    partition = explicit
                } else if let hashed {
                    partition = hashed % partitions
                } else if let sticky = topics.values[index].sticky, sticky < partitions {
                    partition = sticky
                } else {
                    // Sticky: keyless records fill one partition's batch, then move on (KIP-480).
                    partition = Int.random(in: 0..<partitions)
                    topics.values[index].sticky = partition
                }
                guard let accumulator = topics.values[index].accumulators[partition] else { return .stale }
                return .found(Route(accumulator: accumulator, partition: partition, configuration: topics.values[index].configuration))
            }
            switch lookup {
            case .found(let route): return route
            case .badPartition(let partitions): try checkPartition(record.partition!, of: record.topic, partitions: partitions)
            case .stale: try refresh(record, generation: generation)
            }
        }
    }

    /// Looks a topic up again and makes the accumulator `record` needs. Runs under the producer's
    /// lock (only lookups in Samsa's tables, no I/O), so concurrent refreshes cannot each install an
    /// accumulator for one partition.
    private func refresh(_ record: ProducerRecord, generation: UInt64) throws(SamsaError) {
        try Samsa.refuseInternal(record.topic, "produce to")
        let configuration = try samsa.configuration(of: record.topic)
        if let explicit = record.partition { try checkPartition(explicit, of: record.topic, partitions: configuration.partitions) }
        let replaced = try topics.withLock { topics throws(SamsaError) -> [Accumulator] in
            let previous = topics[record.topic]
            let partition: Int
            if let explicit = record.partition {
                partition = explicit
            } else if let key = record.key {
                partition = Murmur2.partition(forKey: key, partitions: configuration.partitions)
            } else if let sticky = previous?.sticky, sticky < configuration.partitions {
                partition = sticky
            } else {
                partition = Int.random(in: 0..<configuration.partitions)
            }
            let log = try samsa.log(record.topic, partition)
            // After a topic came or went, cached accumulators stay only while their log is the topic's.
            var accumulators = previous?.accumulators ?? []
            var replaced: [Accumulator] = []
            if accumulators.count < configuration.partitions {
                accumulators += Array(repeating: nil, count: configuration.partitions - accumulators.count)
            }
            for (index, accumulator) in accumulators.enumerated() {
                guard let accumulator else { continue }
                let current = index == partition ? log : try? samsa.log(record.topic, index)
                if current !== accumulator.log {
                    replaced.append(accumulator)
                    accumulators[index] = nil
                }
            }
            if accumulators[partition] == nil {
                accumulators[partition] = Accumulator(
                    partition: TopicPartition(topic: record.topic, partition: Int32(partition)), log: log,
                    compression: configuration.compression, batchBytes: self.configuration.batchBytes)
            }
            let sticky = record.partition == nil && record.key == nil ? partition : previous?.sticky
            topics[record.topic] = TopicState(generation: generation, configuration: configuration, accumulators: accumulators, sticky: sticky)
            return replaced
        }
        // A replaced accumulator's log was deleted: its open batch goes now (and fails) rather than
        // waiting for a linger timer.
        for accumulator in replaced { accumulator.sendOpen(for: self) }
    }

    /// Whether `record` goes to `partition` of `topic` (a keyless one: the sticky partition, which
    /// the run that started there was on).
    private static func belongs(_ record: ProducerRecord, topic: String, partition: Int, partitions: Int) -> Bool {
        guard record.topic == topic else { return false }
        if let explicit = record.partition { return explicit == partition }
        if let key = record.key { return Murmur2.partition(forKey: key, partitions: partitions) == partition }
        return true
    }

    /// After adding: a full batch moves keyless records on to another partition (KIP-480), decided
    /// here and not when the batch is written, so the switch does not depend on how fast the disk
    /// is; a batch just started gets its linger timer.
    private func after(_ added: Accumulator.Added, on accumulator: Accumulator, partitions: Int) {
        if added.closed { batchLeft(accumulator.partition, partitions: partitions) }
        if configuration.lingerMilliseconds == 0 {
            guard let batchID = added.started else { return }
            if accumulator.sendOpen(ifBatch: batchID, for: self) { batchLeft(accumulator.partition, partitions: partitions) }
        } else if added.armTimer {
            armLingerTimer(accumulator, after: UInt64(configuration.lingerMilliseconds) * 1_000_000, partitions: partitions)
        }
    }

    /// The partition's linger timer: closes its open batch once that has lingered long enough.
    private func armLingerTimer(_ accumulator: Accumulator, after nanoseconds: UInt64, partitions: Int) {
        let linger = UInt64(configuration.lingerMilliseconds) * 1_000_000
        DispatchQueue.global().asyncAfter(deadline: .now() + .nanoseconds(Int(nanoseconds))) { [weak self] in
            guard let self else { return }
            let (closed, again) = accumulator.lingerExpired(linger: linger, for: self)
            if closed { self.batchLeft(accumulator.partition, partitions: partitions) }
            if let again { self.armLingerTimer(accumulator, after: again, partitions: partitions) }
        }
    }

    private func batchLeft(_ partition: TopicPartition, partitions: Int) {
        topics.withLock { topics in
            guard topics[partition.topic]?.sticky == Int(partition.partition), partitions > 1 else { return }
            var next = Int.random(in: 0..<(partitions - 1))
            if next >= Int(partition.partition) { next += 1 }
            topics[partition.topic]!.sticky = next
        }
    }

    // MARK: - Batches

    private func allAccumulators() -> [Accumulator] {
        topics.withLock { topics in topics.values.flatMap { $0.accumulators.compactMap { $0 } } }
    }

    private func sendAllOpen() {
        for accumulator in allAccumulators() { accumulator.sendOpen(for: self) }
    }

    /// A batch was appended (or failed): resolve it once the flush policy allows.
    func written(_ batch: Accumulator.Written, to accumulator: Accumulator) {
        switch batch.outcome {
        case .failure(let error):
            finish(batch, .failure(error), on: accumulator)
        case .success(let result):
            accumulator.log.whenFlushPolicySatisfied(result) { error in
                self.finish(batch, error.map { .failure(SamsaError($0)) } ?? .success(result), on: accumulator)
            }
        }
    }

    private func finish(_ batch: Accumulator.Written, _ outcome: Result<AppendResult, SamsaError>, on accumulator: Accumulator) {
        let topic = accumulator.partition.topic
        // The room is released before anyone learns of the outcome (a sender that saw its last
        // record resolve finds the buffer empty); a batch is retired only once resolved (its
        // callbacks have run), so `flush` waits for every callback.
        release(batch.bytes)
        if case .success = outcome { samsa.signal(for: topic).notify() }
        let count = batch.count
        batch.ticket.resolve(outcome.map {
            BatchMetadata(topic: topic, partition: Int(accumulator.partition.partition), baseOffset: $0.baseOffset, recordCount: count)
        })
        accumulator.retire(batch.ticket)
    }

    // MARK: - Buffer room

    nonisolated(nonsending) private func reserve(_ bytes: Int) async throws {
        if tryReserve(bytes) { return }
        while true {
            let seen = room.version
            if tryReserve(bytes) { return }
            // The buffer is full: lingering batches go now (Kafka's "exhausted" batches are ready).
            sendAllOpen()
            await Signal.wait(forAny: [(room, seen)])
            try Task.checkCancellation()
            try samsa.checkOpen()
        }
    }

    private func tryReserve(_ bytes: Int) -> Bool {
        var current = buffered.load(ordering: .relaxed)
        while true {
            // Any amount fits an empty buffer (a chunk is at most the buffer, a record too).
            guard current == 0 || current + bytes <= configuration.bufferBytes else { return false }
            let (exchanged, original) = buffered.compareExchange(expected: current, desired: current + bytes, ordering: .acquiringAndReleasing)
            if exchanged { return true }
            current = original
        }
    }

    private func release(_ bytes: Int) {
        guard bytes > 0 else { return }
        buffered.subtract(bytes, ordering: .acquiringAndReleasing)
        room.notify()
    }

    /// What a record adds to a batch, at most (the length varints and attributes included).
    static func encodedSize(_ record: ProducerRecord) -> Int {
        var size = 21 + (record.key?.count ?? 0) + (record.value?.count ?? 0)
        for header in record.headers { size += 10 + header.key.utf8.count + (header.value?.readableBytes ?? 0) }
        return size
    }
}
