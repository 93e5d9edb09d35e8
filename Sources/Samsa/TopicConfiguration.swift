public import SamsaRecords
public import SamsaStorage

/// A topic's settings, chosen at creation and kept in the data directory (Kafka's topic-level names in
/// the comments).
public struct TopicConfiguration: Sendable, Hashable, Codable {
    /// Number of partitions (each its own log).
    public var partitions: Int
    /// When appended records are forced to disk, and so when a producer's send is acknowledged.
    public var flushPolicy: FlushPolicy
    /// Codec of the batches producers write (`compression.type`).
    public var compression: CompressionCodec
    /// Largest record (key + value + headers, encoded) a producer may send (`max.message.bytes`).
    public var maxRecordBytes: Int
    /// Segment size (`segment.bytes`).
    public var segmentBytes: Int
    /// Delete old segments while a partition is larger than this (`retention.bytes`); nil keeps all.
    public var retentionBytes: Int64?
    /// Delete segments whose newest record is older than this (`retention.ms`); nil keeps all.
    public var retentionMilliseconds: Int64?
    /// Zeros kept written and synced ahead of each partition's appends, so durable appends overwrite
    /// blocks instead of growing the file (0: off). See README, "The durable write path, measured".
    public var writeAheadBytes: Int

    public init(
        partitions: Int = 1, flushPolicy: FlushPolicy = .everyAppend, compression: CompressionCodec = .none, maxRecordBytes: Int = 1 << 20,
        segmentBytes: Int = 1 << 30, retentionBytes: Int64? = nil, retentionMilliseconds: Int64? = nil, writeAheadBytes: Int = 0
    ) {
        self.writeAheadBytes = writeAheadBytes
        self.partitions = partitions
        self.flushPolicy = flushPolicy
        self.compression = compression
        self.maxRecordBytes = maxRecordBytes
        self.segmentBytes = segmentBytes
        self.retentionBytes = retentionBytes
        self.retentionMilliseconds = retentionMilliseconds
    }

    /// Refuses settings no log could honour.
    func validate() throws(SamsaError) {
        func refuse(_ why: String) -> SamsaError { SamsaError(.invalidArgument, why) }
        guard (1...10_000).contains(partitions) else { throw refuse("partitions must be 1...10000, not \(partitions)") }
        guard compression.isSupported else { throw refuse("compression must be none, lz4 or zstd, not \(compression)") }
        guard maxRecordBytes > 0 else { throw refuse("max record bytes must be positive") }
        guard segmentBytes >= 4096 else { throw refuse("segment bytes must be at least 4096, not \(segmentBytes)") }
        guard maxRecordBytes + 4096 <= segmentBytes else { throw refuse("max record bytes must leave room in a segment of \(segmentBytes) bytes") }
        if let retentionBytes, retentionBytes < 0 { throw refuse("retention bytes must not be negative") }
        if let retentionMilliseconds, retentionMilliseconds < 0 { throw refuse("retention milliseconds must not be negative") }
        guard writeAheadBytes >= 0 else { throw refuse("write-ahead bytes must not be negative") }
    }

    /// The partition logs' settings.
    var logConfiguration: LogConfiguration {
        LogConfiguration(
            segmentBytes: segmentBytes, flushPolicy: flushPolicy, retentionBytes: retentionBytes, retentionMilliseconds: retentionMilliseconds,
            writeAheadBytes: writeAheadBytes)
    }

    /// How far consumers may read: never past what producers were told is committed.
    var readLimit: ReadLimit { flushPolicy == .everyAppend ? .flushed : .logEnd }

    private enum CodingKeys: String, CodingKey {
        case partitions, flushPolicy = "flush", compression, maxRecordBytes, segmentBytes, retentionBytes, retentionMilliseconds, writeAheadBytes
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        partitions = try container.decode(Int.self, forKey: .partitions)
        let flush = try container.decode(String.self, forKey: .flushPolicy)
        guard let policy = FlushPolicy(flush) else {
            throw DecodingError.dataCorruptedError(forKey: .flushPolicy, in: container, debugDescription: "unknown flush policy '\(flush)'")
        }
        flushPolicy = policy
        let codec = try container.decode(String.self, forKey: .compression)
        guard let compression = CompressionCodec(name: codec) else {
            throw DecodingError.dataCorruptedError(forKey: .compression, in: container, debugDescription: "unknown compression '\(codec)'")
        }
        self.compression = compression
        maxRecordBytes = try container.decode(Int.self, forKey: .maxRecordBytes)
        segmentBytes = try container.decode(Int.self, forKey: .segmentBytes)
        retentionBytes = try container.decodeIfPresent(Int64.self, forKey: .retentionBytes)
        retentionMilliseconds = try container.decodeIfPresent(Int64.self, forKey: .retentionMilliseconds)
        writeAheadBytes = try container.decodeIfPresent(Int.self, forKey: .writeAheadBytes) ?? 0
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(partitions, forKey: .partitions)
        try container.encode(flushPolicy.description, forKey: .flushPolicy)
        try container.encode(compression.description, forKey: .compression)
        try container.encode(maxRecordBytes, forKey: .maxRecordBytes)
        try container.encode(segmentBytes, forKey: .segmentBytes)
        try container.encodeIfPresent(retentionBytes, forKey: .retentionBytes)
        try container.encodeIfPresent(retentionMilliseconds, forKey: .retentionMilliseconds)
        try container.encode(writeAheadBytes, forKey: .writeAheadBytes)
    }
}

