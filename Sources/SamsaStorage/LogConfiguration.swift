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

    public init(
        segmentBytes: Int = 1 << 30, segmentMilliseconds: Int64? = nil, flushPolicy: FlushPolicy = .everyAppend,
        retentionBytes: Int64? = nil, retentionMilliseconds: Int64? = nil, segment: SegmentConfiguration = SegmentConfiguration(),
        fileDeleteDelayMilliseconds: Int = 10_000, writeAheadBytes: Int = 0
    ) {
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
    /// The segment settings with the write-ahead this log asks for, bounded by the segment size.
    var segmentSettings: SegmentConfiguration {
        var settings = segment
        settings.writeAhead = writeAheadBytes > 0 ? WriteAhead.Settings(chunkBytes: writeAheadBytes, limitBytes: segmentBytes) : nil
        return settings
    }
}
