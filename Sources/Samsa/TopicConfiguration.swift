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
    /// What happens to old records (`cleanup.policy`): deleted by retention, or compacted by the log
    /// cleaner to the latest record per key (every record then needs a key), or both.
    public var cleanupPolicy: CleanupPolicy
    /// How long a compacted tombstone (a key's record without a value) stays readable after the clean
    /// that first kept it (`delete.retention.ms`).
    public var deleteRetentionMilliseconds: Int64
    /// A compacted partition is cleaned once this share of it is dirty, not yet cleaned
    /// (`min.cleanable.dirty.ratio`).
    public var minCleanableDirtyRatio: Double
    /// A record is not compacted away before it is this old (`min.compaction.lag.ms`).
    public var minCompactionLagMilliseconds: Int64
    /// A record waits at most this long to be compacted (`max.compaction.lag.ms`; Int64.max: no bound).
    public var maxCompactionLagMilliseconds: Int64
    /// The active segment rolls once it is this old and not empty (`segment.ms`), so an idle compacted
    /// partition's last records become cleanable; nil: by size only.
    public var segmentMilliseconds: Int64?

    public init(
        partitions: Int = 1, flushPolicy: FlushPolicy = .everyAppend, compression: CompressionCodec = .none, maxRecordBytes: Int = 1 << 20,
        segmentBytes: Int = 1 << 30, retentionBytes: Int64? = nil, retentionMilliseconds: Int64? = nil, writeAheadBytes: Int = 0,
        cleanupPolicy: CleanupPolicy = .delete, deleteRetentionMilliseconds: Int64 = 86_400_000, minCleanableDirtyRatio: Double = 0.5,
        minCompactionLagMilliseconds: Int64 = 0, maxCompactionLagMilliseconds: Int64 = .max, segmentMilliseconds: Int64? = nil
    ) {
        self.cleanupPolicy = cleanupPolicy
        self.deleteRetentionMilliseconds = deleteRetentionMilliseconds
        self.minCleanableDirtyRatio = minCleanableDirtyRatio
        self.minCompactionLagMilliseconds = minCompactionLagMilliseconds
        self.maxCompactionLagMilliseconds = maxCompactionLagMilliseconds
        self.segmentMilliseconds = segmentMilliseconds
        self.writeAheadBytes = writeAheadBytes
        self.partitions = partitions
        self.flushPolicy = flushPolicy
        self.compression = compression
        self.maxRecordBytes = maxRecordBytes
        self.segmentBytes = segmentBytes
        self.retentionBytes = retentionBytes
        self.retentionMilliseconds = retentionMilliseconds
    }

    /// The most partitions a topic may have here.
    static let maxPartitions = 10_000

    /// Refuses settings no log could honour.
    func validate() throws(SamsaError) {
        func refuse(_ why: String) -> SamsaError { SamsaError(.invalidArgument, why) }
        guard (1...Self.maxPartitions).contains(partitions) else { throw refuse("partitions must be 1...\(Self.maxPartitions), not \(partitions)") }
        guard compression.isSupported else { throw refuse("compression must be none, lz4 or zstd, not \(compression)") }
        guard maxRecordBytes > 0 else { throw refuse("max record bytes must be positive") }
        guard segmentBytes >= 4096 else { throw refuse("segment bytes must be at least 4096, not \(segmentBytes)") }
        guard maxRecordBytes + 4096 <= segmentBytes else { throw refuse("max record bytes must leave room in a segment of \(segmentBytes) bytes") }
        if let retentionBytes, retentionBytes < 0 { throw refuse("retention bytes must not be negative") }
        if let retentionMilliseconds, retentionMilliseconds < 0 { throw refuse("retention milliseconds must not be negative") }
        guard writeAheadBytes >= 0 else { throw refuse("write-ahead bytes must not be negative") }
        guard deleteRetentionMilliseconds >= 0 else { throw refuse("delete retention milliseconds must not be negative") }
        guard (0...1).contains(minCleanableDirtyRatio) else { throw refuse("min cleanable dirty ratio must be 0...1, not \(minCleanableDirtyRatio)") }
        guard minCompactionLagMilliseconds >= 0 else { throw refuse("min compaction lag milliseconds must not be negative") }
        guard maxCompactionLagMilliseconds >= 1 else { throw refuse("max compaction lag milliseconds must be at least 1") }
        if let segmentMilliseconds, segmentMilliseconds < 1 { throw refuse("segment milliseconds must be at least 1") }
    }

    /// The partition logs' settings.
    var logConfiguration: LogConfiguration {
        LogConfiguration(
            segmentBytes: segmentBytes, segmentMilliseconds: segmentMilliseconds, flushPolicy: flushPolicy, retentionBytes: retentionBytes,
            retentionMilliseconds: retentionMilliseconds, writeAheadBytes: writeAheadBytes, cleanupPolicy: cleanupPolicy,
            deleteRetentionMilliseconds: deleteRetentionMilliseconds, minCleanableDirtyRatio: minCleanableDirtyRatio,
            minCompactionLagMilliseconds: minCompactionLagMilliseconds, maxCompactionLagMilliseconds: maxCompactionLagMilliseconds)
    }

    /// The settings under Kafka's topic config names, as `topics.json` keeps them (every one written,
    /// so a broker opening the directory applies these, not its defaults).
    var configs: [String: String] {
        var configs = TopicConfigNames.flushConfigs(flushPolicy)
        // No codec: Kafka's `producer` (batches stored as sent), not `uncompressed`, which would make a
        // broker serving the directory decompress its clients' batches.
        configs[TopicConfigNames.compressionType] = compression == .none ? "producer" : compression.description
        configs[TopicConfigNames.maxMessageBytes] = String(maxRecordBytes)
        configs[TopicConfigNames.segmentBytes] = String(segmentBytes)
        configs[TopicConfigNames.retentionBytes] = TopicConfigNames.limitText(retentionBytes)
        configs[TopicConfigNames.retentionMs] = TopicConfigNames.limitText(retentionMilliseconds)
        if writeAheadBytes > 0 { configs[TopicConfigNames.writeAheadBytes] = String(writeAheadBytes) }
        configs[TopicConfigNames.cleanupPolicy] = cleanupPolicy.rawValue
        if let segmentMilliseconds { configs[TopicConfigNames.segmentMs] = String(segmentMilliseconds) }
        if cleanupPolicy.compacts {
            configs[TopicConfigNames.deleteRetentionMs] = String(deleteRetentionMilliseconds)
            configs[TopicConfigNames.minCleanableDirtyRatio] = String(minCleanableDirtyRatio)
            configs[TopicConfigNames.minCompactionLagMs] = String(minCompactionLagMilliseconds)
            configs[TopicConfigNames.maxCompactionLagMs] = String(maxCompactionLagMilliseconds)
        }
        return configs
    }

    /// A stored topic's settings (a broker's too): a setting it does not have, or whose value this
    /// side cannot use, is the embedded default, which keeps at least as much and syncs at least as
    /// often (no retention, a sync per append). A codec the embedded producer does not write (gzip,
    /// snappy, the broker's "producer") makes it write uncompressed batches.
    init(stored: StoredTopic) {
        let defaults = TopicConfiguration()
        let configs = stored.configs
        func int(_ name: String) -> Int? { configs[name].flatMap { Int($0) } }
        partitions = Int(stored.partitions)
        flushPolicy = TopicConfigNames.flushPolicy(configs, fallback: defaults.flushPolicy)
        let codec = configs[TopicConfigNames.compressionType].flatMap { CompressionCodec(name: $0) }
        compression = codec.map { $0.isSupported ? $0 : .none } ?? defaults.compression
        maxRecordBytes = int(TopicConfigNames.maxMessageBytes).map { max(1, $0) } ?? defaults.maxRecordBytes
        segmentBytes = int(TopicConfigNames.segmentBytes).map { max(4096, $0) } ?? defaults.segmentBytes
        retentionBytes = TopicConfigNames.limit(configs, TopicConfigNames.retentionBytes) ?? defaults.retentionBytes
        retentionMilliseconds = TopicConfigNames.limit(configs, TopicConfigNames.retentionMs) ?? defaults.retentionMilliseconds
        writeAheadBytes = int(TopicConfigNames.writeAheadBytes).map { max(0, $0) } ?? defaults.writeAheadBytes
        func long(_ name: String) -> Int64? { configs[name].flatMap { Int64($0) } }
        cleanupPolicy = configs[TopicConfigNames.cleanupPolicy].flatMap { CleanupPolicy($0) } ?? defaults.cleanupPolicy
        deleteRetentionMilliseconds = long(TopicConfigNames.deleteRetentionMs).map { max(0, $0) } ?? defaults.deleteRetentionMilliseconds
        minCleanableDirtyRatio = configs[TopicConfigNames.minCleanableDirtyRatio].flatMap { Double($0) }.map { min(1, max(0, $0)) }
            ?? defaults.minCleanableDirtyRatio
        minCompactionLagMilliseconds = long(TopicConfigNames.minCompactionLagMs).map { max(0, $0) } ?? defaults.minCompactionLagMilliseconds
        maxCompactionLagMilliseconds = long(TopicConfigNames.maxCompactionLagMs).map { max(1, $0) } ?? defaults.maxCompactionLagMilliseconds
        segmentMilliseconds = long(TopicConfigNames.segmentMs).map { max(1, $0) } ?? defaults.segmentMilliseconds
        // A broker's small segments with Kafka's default record limit: records must still fit a segment.
        maxRecordBytes = max(1, min(maxRecordBytes, segmentBytes - 4096))
    }

    /// How far consumers may read: never past what producers were told is committed.
    var readLimit: ReadLimit { flushPolicy == .everyAppend ? .flushed : .logEnd }

    private enum CodingKeys: String, CodingKey {
        case partitions, flushPolicy = "flush", compression, maxRecordBytes, segmentBytes, retentionBytes, retentionMilliseconds, writeAheadBytes
        case cleanupPolicy, deleteRetentionMilliseconds, minCleanableDirtyRatio, minCompactionLagMilliseconds, maxCompactionLagMilliseconds
        case segmentMilliseconds
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
        let defaults = TopicConfiguration()
        let cleanup = try container.decodeIfPresent(String.self, forKey: .cleanupPolicy)
        guard let cleanupPolicy = cleanup.map({ CleanupPolicy($0) }) ?? defaults.cleanupPolicy else {
            throw DecodingError.dataCorruptedError(forKey: .cleanupPolicy, in: container, debugDescription: "unknown cleanup policy '\(cleanup ?? "")'")
        }
        self.cleanupPolicy = cleanupPolicy
        deleteRetentionMilliseconds = try container.decodeIfPresent(Int64.self, forKey: .deleteRetentionMilliseconds) ?? defaults.deleteRetentionMilliseconds
        minCleanableDirtyRatio = try container.decodeIfPresent(Double.self, forKey: .minCleanableDirtyRatio) ?? defaults.minCleanableDirtyRatio
        minCompactionLagMilliseconds = try container.decodeIfPresent(Int64.self, forKey: .minCompactionLagMilliseconds) ?? defaults.minCompactionLagMilliseconds
        maxCompactionLagMilliseconds = try container.decodeIfPresent(Int64.self, forKey: .maxCompactionLagMilliseconds) ?? defaults.maxCompactionLagMilliseconds
        segmentMilliseconds = try container.decodeIfPresent(Int64.self, forKey: .segmentMilliseconds)
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
        try container.encode(cleanupPolicy.rawValue, forKey: .cleanupPolicy)
        try container.encode(deleteRetentionMilliseconds, forKey: .deleteRetentionMilliseconds)
        try container.encode(minCleanableDirtyRatio, forKey: .minCleanableDirtyRatio)
        try container.encode(minCompactionLagMilliseconds, forKey: .minCompactionLagMilliseconds)
        try container.encode(maxCompactionLagMilliseconds, forKey: .maxCompactionLagMilliseconds)
        try container.encodeIfPresent(segmentMilliseconds, forKey: .segmentMilliseconds)
    }
}

