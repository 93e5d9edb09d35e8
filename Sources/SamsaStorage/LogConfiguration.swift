public import SamsaRecords

/// When appended bytes are forced to disk; see README "Durability guarantees".
public enum FlushPolicy: Sendable, Hashable, CustomStringConvertible {
    /// `append` returns once an fdatasync that started after its write has returned; concurrent
    /// appenders share fdatasync calls (group commit). Survives power loss.
    case everyAppend
    /// A background flush every `milliseconds`; `append` returns once the bytes are in the file.
    /// Survives a process crash; a power loss may take the last interval.
    case interval(milliseconds: Int)
    /// A background flush after every `count` records; otherwise as `.interval`.
    case messages(count: Int)
    /// Never flushed by Samsa (the OS writes back when it likes); survives a process crash only.
    case never

    /// Parses `every-append`, `interval:MS`, `messages:N` or `never` (the form `description` prints).
    public init?(_ text: String) {
        let parts = text.split(separator: ":", maxSplits: 1).map(String.init)
        switch (parts.first, parts.count == 2 ? Int(parts[1]) : nil) {
        case ("every-append", _) where parts.count == 1: self = .everyAppend
        case ("never", _) where parts.count == 1: self = .never
        case ("interval", let value?) where value > 0: self = .interval(milliseconds: value)
        case ("messages", let value?) where value > 0: self = .messages(count: value)
        default: return nil
        }
    }

    public var description: String {
        switch self {
        case .everyAppend: "every-append"
        case .interval(let ms): "interval:\(ms)"
        case .messages(let count): "messages:\(count)"
        case .never: "never"
        }
    }
}

/// What happens to old records (Kafka's `cleanup.policy`): deleted by retention, compacted to the latest
/// record per key by the log cleaner, or both.
public enum CleanupPolicy: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case delete
    case compact
    /// Kafka's `compact,delete`: compacted, and old segments deleted by retention too.
    case compactAndDelete = "compact,delete"

    /// Parses Kafka's spelling: `delete`, `compact`, or both separated by a comma (either order).
    public init?(_ text: String) {
        let parts = Set(text.split(separator: ",").map { String($0.filter { $0 != " " }) })
        switch parts {
        case ["delete"]: self = .delete
        case ["compact"]: self = .compact
        case ["compact", "delete"]: self = .compactAndDelete
        default: return nil
        }
    }

    /// Retention by time and size applies.
    public var deletes: Bool { self != .compact }
    /// The log cleaner keeps only the latest record per key.
    public var compacts: Bool { self != .delete }
    public var description: String { rawValue }
}

/// A partition log's settings (Kafka's topic-level names in the comments).
public struct LogConfiguration: Sendable, Hashable {
    /// Roll to a new segment past this many bytes (`segment.bytes`).
    public var segmentBytes: Int
    /// Roll a segment this old, in milliseconds, on the next append (`segment.ms`); nil never.
    public var segmentMilliseconds: Int64?
    public var flushPolicy: FlushPolicy
    /// Delete the oldest segments while the log is larger than this (`retention.bytes`); nil keeps all.
    public var retentionBytes: Int64?
    /// Delete segments whose newest record is older than this (`retention.ms`); nil keeps all.
    public var retentionMilliseconds: Int64?
    public var segment: SegmentConfiguration
    /// How long a deleted segment's files stay (renamed `.deleted`) so reads already under way finish
    /// (`file.delete.delay.ms`).
    public var fileDeleteDelayMilliseconds: Int
    /// Zeros kept written and synced ahead of the append position of the active segment, so durable
    /// appends overwrite blocks instead of extending the file (0 turns it off). See `WriteAhead`.
    public var writeAheadBytes: Int
    /// `cleanup.policy`: retention (`delete`), the log cleaner (`compact`), or both.
    public var cleanupPolicy: CleanupPolicy
    /// How long a tombstone (a keyed record without value) stays after the cleaner first saw it in a
    /// cleaned segment (`delete.retention.ms`), so consumers behind by less than this see the delete.
    public var deleteRetentionMilliseconds: Int64
    /// The cleaner takes a log once the uncleaned part is at least this share of it
    /// (`min.cleanable.dirty.ratio`).
    public var minCleanableDirtyRatio: Double
    /// Records younger than this are never compacted (`min.compaction.lag.ms`).
    public var minCompactionLagMilliseconds: Int64
    /// A record is compacted at the latest this long after it was written, whatever the dirty ratio
    /// (`max.compaction.lag.ms`; Int64.max: no bound).
    public var maxCompactionLagMilliseconds: Int64
    /// The log's high watermark bounds what the cleaner cleans (Kafka's: a clean never goes past the
    /// last stable offset): a replica may yet be truncated to its high watermark, and a key's older value
    /// removed in favour of a newer one past it would then be lost. Set by the broker, whose partitions
    /// keep a high watermark; the embedded queue's logs have none.
    public var cleansBelowHighWatermark = false

    public init(
        segmentBytes: Int = 1 << 30, segmentMilliseconds: Int64? = nil, flushPolicy: FlushPolicy = .everyAppend,
        retentionBytes: Int64? = nil, retentionMilliseconds: Int64? = nil, segment: SegmentConfiguration = SegmentConfiguration(),
        fileDeleteDelayMilliseconds: Int = 10_000, writeAheadBytes: Int = 0, cleanupPolicy: CleanupPolicy = .delete,
        deleteRetentionMilliseconds: Int64 = 86_400_000, minCleanableDirtyRatio: Double = 0.5, minCompactionLagMilliseconds: Int64 = 0,
        maxCompactionLagMilliseconds: Int64 = .max
    ) {
        self.cleanupPolicy = cleanupPolicy
        self.deleteRetentionMilliseconds = deleteRetentionMilliseconds
        self.minCleanableDirtyRatio = minCleanableDirtyRatio
        self.minCompactionLagMilliseconds = minCompactionLagMilliseconds
        self.maxCompactionLagMilliseconds = maxCompactionLagMilliseconds
        self.writeAheadBytes = writeAheadBytes
        self.fileDeleteDelayMilliseconds = fileDeleteDelayMilliseconds
        self.segmentBytes = segmentBytes
        self.segmentMilliseconds = segmentMilliseconds
        self.flushPolicy = flushPolicy
        self.retentionBytes = retentionBytes
        self.retentionMilliseconds = retentionMilliseconds
        self.segment = segment
    }
}

extension LogConfiguration {
    /// A compacted log needs a key on every record (Kafka refuses keyless records on compacted topics
    /// with INVALID_RECORD); append paths check batches with `checkKeys(of:)` when this is true.
    public var requiresKeys: Bool { cleanupPolicy.compacts }

    /// The age at which the active segment rolls (Kafka's `LogConfig.maxSegmentMs`): `segment.ms`, or
    /// for a compacted log with a `max.compaction.lag.ms` the smaller of the two, so no record waits in
    /// the (never cleaned) active segment longer than that lag. Nil: never by age.
    public var maxSegmentMilliseconds: Int64? {
        guard cleanupPolicy.compacts, maxCompactionLagMilliseconds < .max, maxCompactionLagMilliseconds > 0 else { return segmentMilliseconds }
        return min(segmentMilliseconds ?? .max, maxCompactionLagMilliseconds)
    }

    /// Throws `.invalidRecord` when this log requires keys and a record of `batch` has none (Kafka:
    /// "Compacted topic cannot accept message without key"), or the records cannot be read. Control
    /// batches carry no user records and pass.
    public func checkKeys(of batch: RecordBatch) throws(StorageError) {
        guard requiresKeys, !batch.isControlBatch else { return }
        var keyless: Int64?
        do {
            try batch.forEachRecordLocation(limits: segment.limits) { _, record in
                if record.key == nil && keyless == nil { keyless = record.offset }
            }
        } catch {
            throw StorageError(.invalidRecord, path: "", "the batch's records cannot be read: \(error)")
        }
        if let keyless {
            throw StorageError(.invalidRecord, path: "", "compacted topic cannot accept a record without key (offset delta \(keyless - batch.baseOffset))")
        }
    }

    /// The segment settings with the write-ahead this log asks for, bounded by the segment size.
    var segmentSettings: SegmentConfiguration {
        var settings = segment
        settings.writeAhead = writeAheadBytes > 0 ? WriteAhead.Settings(chunkBytes: writeAheadBytes, limitBytes: segmentBytes) : nil
        return settings
    }
}
