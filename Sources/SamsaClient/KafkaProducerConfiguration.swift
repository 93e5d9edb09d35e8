public import SamsaRecords

/// What a producer waits for before a record counts as delivered (`acks`).
public enum Acks: Int16, Sendable, Hashable, CaseIterable {
    /// Nothing: the request is written and not answered (offsets unknown, -1).
    case none = 0
    /// The leader has written the batch.
    case leader = 1
    /// Every in-sync replica has it (on a Samsa broker: its flush policy is satisfied).
    case all = -1
}

/// Settings of a `KafkaProducer` (Kafka's producer property names in the comments).
public struct KafkaProducerConfiguration: Sendable {
    public var acks: Acks
    /// Codec of the batches (`compression.type`): none, lz4 or zstd.
    public var compression: CompressionCodec
    /// How long a batch waits for more records before it is sent (`linger.ms`).
    public var lingerMilliseconds: Int64
    /// Uncompressed bytes at which a batch is closed (`batch.size`).
    public var batchBytes: Int
    /// Bytes of records held before `send` waits for deliveries (`buffer.memory`).
    public var bufferBytes: Int
    /// Produce requests in flight per broker connection (`max.in.flight.requests.per.connection`); while
    /// they are, batches keep filling and the next request carries everything that is ready.
    public var maxInFlightPerConnection: Int
    /// Bytes of batches per Produce request (`max.request.size`).
    public var maxRequestBytes: Int
    /// While a request to a broker is in flight, another one goes out only once this many bytes are
    /// ready to send (or on `flush`): the broker answers a connection's requests one at a time, so
    /// small ones would queue there (each with a sync of its own) instead of riding together on the
    /// next. 0 sends whenever a slot is free (Kafka's behaviour).
    public var pipelineBytes: Int
    /// How long the broker may take to meet `acks` (`request.timeout.ms`).
    public var requestTimeoutMilliseconds: Int32
    /// How often a batch is resent after a retriable error (`retries`).
    public var retries: Int

    public init(
        acks: Acks = .all, compression: CompressionCodec = .none, lingerMilliseconds: Int64 = 5, batchBytes: Int = 16 * 1024,
        bufferBytes: Int = 32 << 20, maxInFlightPerConnection: Int = 5, maxRequestBytes: Int = 1 << 20, requestTimeoutMilliseconds: Int32 = 30_000,
        retries: Int = 10, pipelineBytes: Int = 256 << 10
    ) {
        self.pipelineBytes = pipelineBytes
        self.acks = acks
        self.compression = compression
        self.lingerMilliseconds = lingerMilliseconds
        self.batchBytes = batchBytes
        self.bufferBytes = bufferBytes
        self.maxInFlightPerConnection = maxInFlightPerConnection
        self.maxRequestBytes = maxRequestBytes
        self.requestTimeoutMilliseconds = requestTimeoutMilliseconds
        self.retries = retries
    }
}

/// Where a delivered record was written.
public struct KafkaRecordMetadata: Sendable, Hashable {
    public var topic: String
    public var partition: Int32
    /// The record's offset; -1 with acks=0 (the broker does not say).
    public var offset: Int64
}

/// Called once per record when it is delivered or has failed for good; runs on an event loop, so it
/// should be quick.
public typealias DeliveryCallback = @Sendable (Result<KafkaRecordMetadata, KafkaClientError>) -> Void

/// One batch's outcome, reported once for all its records (librdkafka's delivery report, each message
/// with its `msg_opaque`): no closure and no call per record, for producers that send many.
public struct DeliveryReport: Sendable {
    public var topic: String
    public var partition: Int32
    public var recordCount: Int
    /// The batch's base offset (its records have base, base + 1, ...; -1 with acks=0), or the error
    /// every record of it failed with.
    public var result: Result<Int64, KafkaClientError>
    /// The `opaque` each record was sent with, in the batch's order (record i has offset base + i).
    public var opaques: [UInt64]
}

/// Called once per batch when it is delivered or has failed for good; runs on an event loop, so it
/// should be quick.
public typealias DeliveryReportHandler = @Sendable (DeliveryReport) -> Void
