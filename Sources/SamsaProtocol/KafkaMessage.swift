public import NIOCore

/// A structure with a Kafka message schema: a request or response body, a header, or data embedded in
/// another message (the consumer protocol's subscription and assignment).
public protocol KafkaSchema: Sendable, Hashable {
    /// The versions the schema defines.
    static var validVersions: ClosedRange<Int16> { get }
    /// The first version using compact strings, arrays and tagged fields, or nil if none does.
    static var firstFlexibleVersion: Int16? { get }
    /// Every field at Kafka's default.
    init()
    /// Decodes the structure at `version` from the buffer's readable bytes, consuming exactly its bytes.
    init(from buffer: inout ByteBuffer, version: Int16) throws(ProtocolError)
    /// Encodes the structure at `version`; fields absent from that version are not written.
    func write(into buffer: inout ByteBuffer, version: Int16)
}

/// A request or response body of one API.
public protocol KafkaMessage: KafkaSchema {
    static var apiKey: Int16 { get }
}

extension KafkaSchema {
    /// Whether `version` uses the flexible (compact, tagged) encodings.
    public static func isFlexible(_ version: Int16) -> Bool {
        firstFlexibleVersion.map { version >= $0 } ?? false
    }

    /// Decodes the whole of `bytes`; bytes left over are an error.
    public init(decoding bytes: ByteBuffer, version: Int16) throws(ProtocolError) {
        var buffer = bytes
        try self.init(from: &buffer, version: version)
        guard buffer.readableBytes == 0 else {
            throw ProtocolError("\(Self.self) v\(version) left \(buffer.readableBytes) bytes undecoded")
        }
    }

    /// Decodes a request body the way Kafka's broker does (`AbstractRequest.parseRequest`): the fields
    /// in order, and bytes left after them are ignored, not an error. librdkafka 2.3 to 2.16 send such
    /// bytes: asking for all topics with Metadata v9+, it reserves an int32 for the topic count and
    /// leaves it unconverted when null, so the varint null is followed by three zero bytes and the
    /// fields after it shift (`00 00 00 00 01 00 00` for v12, where Kafka reads null topics, no auto
    /// creation, no authorized operations, no tagged fields, and skips `01 00 00`). The count of bytes
    /// left over is returned for the caller to count.
    public static func decodeRequest(_ bytes: ByteBuffer, version: Int16) throws(ProtocolError) -> (request: Self, trailingBytes: Int) {
        var buffer = bytes
        let request = try Self(from: &buffer, version: version)
        return (request, buffer.readableBytes)
    }

    /// The structure encoded at `version` in a new buffer.
    public func encoded(version: Int16, allocator: ByteBufferAllocator = ByteBufferAllocator()) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: 64)
        write(into: &buffer, version: version)
        return buffer
    }
}
