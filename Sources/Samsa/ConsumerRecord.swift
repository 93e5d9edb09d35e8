public import NIOCore
public import SamsaRecords

/// A record read back from a partition.
///
/// Its key and value are ranges of the batch read from disk, kept as one reference to the batch's
/// bytes (no copy, one retain per record however many fields it has); `key` and `value` hand out
/// slices of it.
public struct ConsumerRecord: Sendable, Hashable {
    public var topic: String
    public var partition: Int
    public var offset: Int64
    /// Milliseconds since the epoch, as the producer stamped it.
    public var timestamp: Int64
    public var headers: [RecordHeader]
    /// The batch's records section; key and value are ranges of it (start -1: null).
    private var bytes: ByteBuffer
    private var keyStart: Int32, keyLength: Int32
    private var valueStart: Int32, valueLength: Int32

    init(topic: String, partition: Int, offset: Int64, timestamp: Int64, bytes: ByteBuffer, key: Range<Int>?, value: Range<Int>?, headers: [RecordHeader]) {
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.timestamp = timestamp
        self.headers = headers
        self.bytes = bytes
        (keyStart, keyLength) = key.map { (Int32($0.lowerBound), Int32($0.count)) } ?? (-1, 0)
        (valueStart, valueLength) = value.map { (Int32($0.lowerBound), Int32($0.count)) } ?? (-1, 0)
    }

    /// Slices of the batch read from disk (no copy).
    public var key: ByteBuffer? { keyStart < 0 ? nil : bytes.getSlice(at: bytes.readerIndex + Int(keyStart), length: Int(keyLength)) }
    public var value: ByteBuffer? { valueStart < 0 ? nil : bytes.getSlice(at: bytes.readerIndex + Int(valueStart), length: Int(valueLength)) }

    /// Calls `body` with the key's bytes in place (nil for a null key), without making a slice.
    public func withKeyBytes<R>(_ body: (UnsafeRawBufferPointer?) throws -> R) rethrows -> R {
        try withField(keyStart, keyLength, body)
    }

    /// Calls `body` with the value's bytes in place (nil for a null value), without making a slice.
    public func withValueBytes<R>(_ body: (UnsafeRawBufferPointer?) throws -> R) rethrows -> R {
        try withField(valueStart, valueLength, body)
    }

    /// Bytes of the key (0 for a null key).
    public var keyCount: Int { Int(keyLength) }
    /// Bytes of the value (0 for a null value).
    public var valueCount: Int { Int(valueLength) }

    public var keyBytes: [UInt8]? { withKeyBytes { $0.map { Array($0) } } }
    public var valueBytes: [UInt8]? { withValueBytes { $0.map { Array($0) } } }
    public var keyString: String? { withKeyBytes { $0.map { String(decoding: $0, as: UTF8.self) } } }
    public var valueString: String? { withValueBytes { $0.map { String(decoding: $0, as: UTF8.self) } } }

    private func withField<R>(_ start: Int32, _ length: Int32, _ body: (UnsafeRawBufferPointer?) throws -> R) rethrows -> R {
        guard start >= 0 else { return try body(nil) }
        return try bytes.withUnsafeReadableBytes { raw in try body(UnsafeRawBufferPointer(rebasing: raw[Int(start)..<Int(start + length)])) }
    }

    // Equal when topic, partition, offset, timestamp, key, value and headers are: where the bytes lie
    // is not part of a record.
    public static func == (lhs: ConsumerRecord, rhs: ConsumerRecord) -> Bool {
        lhs.topic == rhs.topic && lhs.partition == rhs.partition && lhs.offset == rhs.offset && lhs.timestamp == rhs.timestamp
            && lhs.key == rhs.key && lhs.value == rhs.value && lhs.headers == rhs.headers
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(topic)
        hasher.combine(partition)
        hasher.combine(offset)
        hasher.combine(timestamp)
        hasher.combine(key)
        hasher.combine(value)
        hasher.combine(headers)
    }
}
/// What an acknowledged send wrote, and where.
public struct RecordMetadata: Sendable, Hashable {
    public var topic: String
    public var partition: Int
    public var offset: Int64
    public var timestamp: Int64
}

/// A record for a producer to send.
public struct ProducerRecord: Sendable {
    public var topic: String
    /// The partition, or nil to choose by key (murmur2, as Kafka's default partitioner) or, without a
    /// key, by the sticky partitioner.
    public var partition: Int?
    public var key: [UInt8]?
    public var value: [UInt8]?
    public var headers: [RecordHeader]
    /// Milliseconds since the epoch; nil stamps the time of sending.
    public var timestamp: Int64?

    public init(topic: String, partition: Int? = nil, key: [UInt8]? = nil, value: [UInt8]?, headers: [RecordHeader] = [], timestamp: Int64? = nil) {
        self.topic = topic
        self.partition = partition
        self.key = key
        self.value = value
        self.headers = headers
        self.timestamp = timestamp
    }

    public init(topic: String, partition: Int? = nil, key: String? = nil, value: String, headers: [RecordHeader] = [], timestamp: Int64? = nil) {
        self.init(topic: topic, partition: partition, key: key.map { Array($0.utf8) }, value: Array(value.utf8), headers: headers, timestamp: timestamp)
    }
}
