public import NIOCore

/// Writes the `records` fields of a message being encoded (the generated
/// `write(into:version:records:)` calls it for each, in encoding order): the length prefix
/// (int32, or the compact unsigned varint of length + 1 in flexible versions; -1 / 0 for null) and
/// the bytes. A writer may leave the bytes out and send them apart (see `SplicedMessage`).
public protocol KafkaRecordsWriter {
    mutating func write(_ records: ByteBuffer?, compact: Bool, into buffer: inout ByteBuffer)
}

/// Writes records in line: prefix and bytes in the buffer (what `write(into:version:)` does).
public struct InlineRecordsWriter: KafkaRecordsWriter {
    public init() {}

    public mutating func write(_ records: ByteBuffer?, compact: Bool, into buffer: inout ByteBuffer) {
        buffer.writeKafkaNullableBytes(records, compact: compact)
    }
}

/// A message with `records` fields (Fetch responses, Produce requests): it can be encoded with a
/// records writer of the caller's choice.
public protocol KafkaRecordsMessage: KafkaMessage {
    /// Encodes like `write(into:version:)`, handing each `records` field to `records`, in encoding order.
    func write<Records: KafkaRecordsWriter>(into buffer: inout ByteBuffer, version: Int16, records: inout Records)
}
