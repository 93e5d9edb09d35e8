public import NIOCore
public import SamsaRecords

/// A record read back from a partition.
public struct ConsumerRecord: Sendable, Hashable {
    public var topic: String
    public var partition: Int
    public var offset: Int64
    /// Milliseconds since the epoch, as the producer stamped it.
    public var timestamp: Int64
    /// Slices of the batch read from disk (no copy).
    public var key: ByteBuffer?
    public var value: ByteBuffer?
    public var headers: [RecordHeader]

    public var keyBytes: [UInt8]? { key.map { Array($0.readableBytesView) } }
    public var valueBytes: [UInt8]? { value.map { Array($0.readableBytesView) } }
    public var keyString: String? { key.map { String(buffer: $0) } }
    public var valueString: String? { value.map { String(buffer: $0) } }
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
