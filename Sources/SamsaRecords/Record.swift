public import NIOCore

/// One header of a record: a string key and nullable bytes.
public struct RecordHeader: Sendable, Hashable {
    public var key: String
    public var value: ByteBuffer?

    public init(key: String, value: ByteBuffer?) {
        self.key = key
        self.value = value
    }

    public init(key: String, value: [UInt8]?) {
        self.key = key
        self.value = value.map { ByteBuffer(bytes: $0) }
    }
}

/// A record read from a batch: its absolute offset and timestamp, and views of its key, value and
/// header bytes. The views share the batch's storage (no copy).
public struct Record: Sendable, Hashable {
    public var offset: Int64
    public var timestamp: Int64
    public var key: ByteBuffer?
    public var value: ByteBuffer?
    public var headers: [RecordHeader]

    public init(offset: Int64, timestamp: Int64, key: ByteBuffer?, value: ByteBuffer?, headers: [RecordHeader] = []) {
        self.offset = offset
        self.timestamp = timestamp
        self.key = key
        self.value = value
        self.headers = headers
    }

    /// The key's bytes, copied into an array.
    public var keyBytes: [UInt8]? { key.map { Array($0.readableBytesView) } }
    /// The value's bytes, copied into an array.
    public var valueBytes: [UInt8]? { value.map { Array($0.readableBytesView) } }
}

/// How a batch's timestamps were assigned (attribute bit 3).
public enum TimestampType: Sendable, Hashable {
    /// The producer's timestamps, one per record.
    case createTime
    /// The broker's append time: every record's timestamp is the batch's `maxTimestamp`.
    case logAppendTime
}
