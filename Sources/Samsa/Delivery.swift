/// The outcome of one sent record: its batch's ticket and its index in that batch (Kafka's
/// `FutureRecordMetadata`). Resolved once its batch is written and the topic's flush policy is
/// satisfied (or the write failed). A value: copying it costs a retain, awaiting it costs nothing per
/// record beyond the await.
public struct Delivery: Sendable {
    /// The batch this record is in, shared with the batch's other records.
    public let batch: BatchTicket
    /// The record's position in its batch: its offset is the batch's base offset plus this.
    public let index: Int
    /// The record's timestamp (milliseconds since the epoch).
    public let timestamp: Int64

    public var topic: String { batch.topic }
    public var partition: Int { batch.partition }

    /// Where the record landed, once acknowledged; throws the error that kept it from being written.
    nonisolated(nonsending) public func result() async throws -> RecordMetadata {
        metadata(try await batch.result())
    }

    /// Calls `body` once the record is acknowledged or failed (at once if it already is), on the thread
    /// that resolves it: keep it short. Each call stores a closure in the batch: to follow many
    /// records, follow their batches (`batch.whenResolved`) instead.
    public func whenResolved(_ body: @escaping @Sendable (Result<RecordMetadata, SamsaError>) -> Void) {
        let index = index, timestamp = timestamp
        batch.whenResolved { outcome in body(outcome.map { Self.metadata($0, index: index, timestamp: timestamp) }) }
    }

    /// True once the record is acknowledged or failed.
    public var isResolved: Bool { batch.isResolved }

    func metadata(_ batch: BatchMetadata) -> RecordMetadata {
        Self.metadata(batch, index: index, timestamp: timestamp)
    }

    static func metadata(_ batch: BatchMetadata, index: Int, timestamp: Int64) -> RecordMetadata {
        RecordMetadata(topic: batch.topic, partition: batch.partition, offset: batch.baseOffset + Int64(index), timestamp: timestamp)
    }
}

/// What one `Producer.enqueue(contentsOf:)` handed over, in the order of its records: runs of
/// consecutive records that went into the same batch. Resolved when every batch is.
public struct Acknowledgement: Sendable {
    /// `count` records of the call, in order, are records `firstIndex ..< firstIndex + count` of `batch`.
    public struct Run: Sendable {
        public let batch: BatchTicket
        public let firstIndex: Int
        public internal(set) var count: Int
    }

    public internal(set) var runs: [Run] = []
    /// The timestamp given to records sent without one.
    public let timestamp: Int64

    /// Records handed over.
    public var count: Int { runs.reduce(0) { $0 + $1.count } }

    /// Returns once every record is acknowledged; throws the first error that kept one from being written.
    nonisolated(nonsending) public func wait() async throws {
        for run in runs { _ = try await run.batch.result() }
    }

    /// Records `first ..< first + count` of `batch` are the call's next ones.
    mutating func add(_ batch: BatchTicket, first: Int, count: Int) {
        if let last = runs.indices.last, runs[last].batch === batch, runs[last].firstIndex + runs[last].count == first {
            runs[last].count += count
        } else {
            runs.append(Run(batch: batch, firstIndex: first, count: count))
        }
    }
}
