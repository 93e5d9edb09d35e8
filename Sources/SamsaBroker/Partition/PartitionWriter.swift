import Dispatch
import NIOCore
import SamsaRecords
import SamsaStorage
import Synchronization

/// The one writer of a partition (owned by its `Partition`): a serial queue that validates a Produce request's batches, checks
/// idempotent producers' sequences and appends, so check and append cannot interleave with another
/// request's (and no lock is held across the write). Blocking file work runs here, off the event loops
/// and the cooperative pool.
final class PartitionWriter: @unchecked Sendable {
    // @unchecked: `producers` is only touched on `queue`.
    private let queue: BlockingQueue
    private let partition: TopicPartition
    private let log: PartitionLog
    private var producers: ProducerState
    /// `producer.id.expiration.ms`, in milliseconds.
    private let producerIdExpirationMs: Int64
    /// The producer state is rebuilt from the log before the first append (see `rebuildProducerState`).
    private var rebuilt = false
    /// The active segment's base offset last seen: when it changes the log rolled, and the producer
    /// state is snapshotted.
    private var activeSegment: Int64?

    enum Outcome: Sendable {
        /// Written: the first batch's base offset and the last append, to wait on for durability, the
        /// leader epoch the batches were stamped with (nil: their own), and the bytes written (not the
        /// request's when batches were recompressed).
        case appended(baseOffset: Int64, last: AppendResult, leaderEpoch: Int32?, bytes: Int)
        /// Every batch was a duplicate of one already written at `baseOffset`.
        case duplicate(baseOffset: Int64)
        case rejected(BatchValidation.Failure)
    }

    /// Shared by every writer of the broker (see `DecompressionPermits`).
    private let decompression: DecompressionPermits

    init(
        partition: TopicPartition, log: PartitionLog, producerIdExpiration: Duration = .milliseconds(ProducerState.defaultExpirationMs),
        decompression: DecompressionPermits = DecompressionPermits()
    ) {
        self.queue = BlockingQueue(label: "samsa.broker.writer.\(partition)")
        self.partition = partition
        self.log = log
        self.decompression = decompression
        self.producerIdExpirationMs = ProducerState.milliseconds(producerIdExpiration)
        self.producers = ProducerState(expirationMs: producerIdExpirationMs)
    }

    /// Validates and appends a produce request's batches, each in the topic's codec (`compression`:
    /// recompressed when the producer's differs, see `BatchRecompression`). `admit` runs on the queue
    /// just before: the leader epoch to stamp the batches with (nil: keep theirs), or a refusal
    /// (nothing is written). Records holding a compressed batch, and any for a topic that compresses,
    /// wait for a decompression permit first: (de)compressing is CPU and memory the permits bound.
    func append(
        _ records: ByteBuffer, maxMessageBytes: Int, transactionalId: String? = nil, compression: BrokerCompressionType = .producer,
        admit: @escaping @Sendable () -> Result<Int32?, BatchValidation.Failure> = { .success(nil) }
    ) async throws -> Outcome {
        let compresses = compression.codec.map { $0 != .none } ?? false
        guard compresses || DecompressionPermits.holdsCompressedBatch(records) else {
            return try await enqueue(records, maxMessageBytes: maxMessageBytes, transactionalId: transactionalId, compression: compression, admit: admit)
        }
        return try await decompression.withPermit {
            try await enqueue(records, maxMessageBytes: maxMessageBytes, transactionalId: transactionalId, compression: compression, admit: admit)
        }
    }

    private func enqueue(
        _ records: ByteBuffer, maxMessageBytes: Int, transactionalId: String?, compression: BrokerCompressionType,
        admit: @escaping @Sendable () -> Result<Int32?, BatchValidation.Failure>
    ) async throws -> Outcome {
        try await queue.run {
            switch admit() {
            case .failure(let refusal): return .rejected(refusal)
            case .success(let epoch):
                return try self.appendNow(records, maxMessageBytes: maxMessageBytes, transactionalId: transactionalId, compression: compression, leaderEpoch: epoch)
            }
        }
    }

    /// Runs `body` on the queue, in order with appends (replication: role changes, follower appends,
    /// truncations).
    func perform<Value: Sendable>(_ body: @escaping @Sendable () throws -> Value) async throws -> Value {
        try await queue.run(body)
    }

    /// Forgets the producer state, so it is rebuilt from the log before the next append (after the
    /// log changed under another leader). Call from `perform`.
    func forgetProducerStateNow() {
        producers = ProducerState(expirationMs: producerIdExpirationMs)
        rebuilt = false
    }

    /// The producers not expired now, the state rebuilt from the log first if no append did yet
    /// (DescribeProducers).
    func activeProducers() async throws -> [Int64: ProducerState.Entry] {
        try await perform { [self] in
            if !rebuilt {
                try rebuildProducerState()
                rebuilt = true
            }
            return producers.active(at: WallClock.nowMilliseconds)
        }
    }

    /// Runs on `queue`.
    private func appendNow(
        _ records: ByteBuffer, maxMessageBytes: Int, transactionalId: String?, compression: BrokerCompressionType, leaderEpoch: Int32?
    ) throws -> Outcome {
        if !rebuilt {
            try rebuildProducerState()
            rebuilt = true
        }
        let batches: [RecordBatch]
        switch BatchValidation.batches(in: records, maxMessageBytes: maxMessageBytes, transactionalId: transactionalId, compression: compression) {
        case .failure(let failure): return .rejected(failure)
        case .success(let valid): batches = valid
        }
        // Kafka's `LogValidator`: a compacted log keeps the latest record per key, so every record needs one.
        let configuration = log.configuration
        if configuration.requiresKeys {
            for batch in batches {
                do throws(StorageError) {
                    try configuration.checkKeys(of: batch)
                } catch {
                    return .rejected(BatchValidation.Failure(
                        code: .invalidRecord, message: "Compacted topic cannot accept message without key in topic partition \(partition)."))
                }
            }
        }
        // Sequence checks for all batches first, so a rejected one leaves nothing written.
        let now = WallClock.nowMilliseconds
        var simulated = producers
        var verdicts: [ProducerState.Verdict] = []
        for batch in batches {
            guard batch.producerId >= 0 else {
                verdicts.append(.append)
                continue
            }
            let last = Self.lastSequence(of: batch)
            let verdict = simulated.check(producerId: batch.producerId, epoch: batch.producerEpoch, firstSequence: batch.baseSequence, lastSequence: last)
            if case .reject(let code) = verdict {
                return .rejected(BatchValidation.Failure(code: code, message: "producer \(batch.producerId) epoch \(batch.producerEpoch) sequence \(batch.baseSequence)"))
            }
            if verdict == .append {
                simulated.record(producerId: batch.producerId, epoch: batch.producerEpoch, firstSequence: batch.baseSequence, lastSequence: last, baseOffset: -1, at: now)
            }
            verdicts.append(verdict)
        }
        var first: Int64?
        var lastAppend: AppendResult?
        var written = 0
        for (batch, verdict) in zip(batches, verdicts) {
            switch verdict {
            case .duplicate(let baseOffset):
                first = first ?? baseOffset
            case .append:
                let appended = try log.appendWithoutWaiting(batch, leaderEpoch: leaderEpoch)
                first = first ?? appended.baseOffset
                lastAppend = appended
                written += batch.sizeInBytes
                if batch.producerId >= 0 {
                    producers.record(
                        producerId: batch.producerId, epoch: batch.producerEpoch, firstSequence: batch.baseSequence,
                        lastSequence: Self.lastSequence(of: batch), baseOffset: appended.baseOffset, at: now)
                }
            case .reject:
                break
            }
        }
        if let lastAppend {
            snapshotIfRolled(after: lastAppend)
            return .appended(baseOffset: first!, last: lastAppend, leaderEpoch: leaderEpoch, bytes: written)
        }
        return .duplicate(baseOffset: first!)
    }

    /// Rebuilds the producer state so a retry that spans a broker restart is still recognised: from
    /// the snapshot of the last roll plus the batches after it, or, without a usable snapshot, from the
    /// active segment alone (bounding the cost by the segment size; a producer whose last batches are
    /// all in older segments is then unknown and accepted at any sequence). Runs on `queue`.
    ///
    /// A snapshot older than the segment before the active one is not used: a replica that followed
    /// another leader for a long time wrote none, and replaying everything since its old one could take
    /// as long as the log.
    private func rebuildProducerState() throws {
        let bases = log.segmentBaseOffsets
        activeSegment = bases.last
        var offset = max(bases.last ?? 0, log.logStartOffset)
        if let snapshot = ProducerSnapshot.load(from: log.directory, matching: log, files: PosixFileSystem(), expirationMs: producerIdExpirationMs),
            snapshot.coveredEnd >= (bases.dropLast().last ?? 0)
        {
            producers = snapshot.state
            offset = snapshot.coveredEnd
        }
        while offset < log.logEndOffset, let bytes = try log.read(from: offset, maxBytes: 1 << 20) {
            var remaining = bytes
            while remaining.readableBytes > 0 {
                let batch = try RecordBatch(validating: remaining)
                remaining.moveReaderIndex(forwardBy: batch.sizeInBytes)
                offset = batch.nextOffset
                guard batch.producerId >= 0, batch.baseSequence >= 0 else { continue }
                producers.record(
                    producerId: batch.producerId, epoch: batch.producerEpoch, firstSequence: batch.baseSequence,
                    lastSequence: Self.lastSequence(of: batch), baseOffset: batch.baseOffset)
            }
        }
    }

    /// After an append that rolled the log, writes the producer state as of the log end (runs on
    /// `queue`, so no append interleaves). A failed snapshot only costs a longer rebuild.
    private func snapshotIfRolled(after last: AppendResult) {
        let active = log.segmentBaseOffsets.last
        guard active != activeSegment else { return }
        activeSegment = active
        guard !producers.producers.isEmpty else { return }
        do {
            guard let bytes = try log.read(from: last.baseOffset, maxBytes: 1) else { return }
            let batch = try RecordBatch(validating: bytes)
            try ProducerSnapshot(coveredEnd: batch.nextOffset, lastBatchBaseOffset: batch.baseOffset, lastBatchCRC: batch.crc, state: producers)
                .write(to: log.directory, files: PosixFileSystem())
        } catch {
            // Nothing acknowledged depends on it: the next roll tries again, a restart replays more.
        }
    }

    /// The batch's last sequence: base + last offset delta, wrapping past Int32.max as Kafka's do.
    static func lastSequence(of batch: RecordBatch) -> Int32 {
        let last = Int64(batch.baseSequence) + Int64(batch.lastOffsetDelta)
        return Int32(truncatingIfNeeded: last > Int64(Int32.max) ? last - Int64(Int32.max) - 1 : last)
    }
}
