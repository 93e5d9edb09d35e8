public import NIOCore

/// The committed-offset records of `__consumer_offsets`, in Kafka's own layouts (`OffsetCommitKey`
/// v0/v1, `OffsetCommitValue` v1-v3), shared by the broker's group coordinator and the embedded
/// queue, whose groups keep their offsets in the same topic of the same data directory. A key starts
/// with its version: 0 and 1 are offset commits, 2 is a group's metadata (the broker's alone); a
/// record without a value is a tombstone (the offset was deleted).
public enum ConsumerOffsetsRecord {
    public static let topic = "__consumer_offsets"
    public static let offsetKeyVersion: Int16 = 1
    public static let groupKeyVersion: Int16 = 2
    public static let offsetValueVersion: Int16 = 3

    public struct Key: Hashable, Sendable {
        public var group: String
        public var topic: String
        public var partition: Int32
        public init(group: String, topic: String, partition: Int32) {
            self.group = group
            self.topic = topic
            self.partition = partition
        }
    }

    public struct Value: Hashable, Sendable {
        public var offset: Int64
        public var leaderEpoch: Int32
        public var metadata: String
        /// When it was committed (ms since the epoch).
        public var commitTimestampMs: Int64
        public init(offset: Int64, leaderEpoch: Int32 = -1, metadata: String = "", commitTimestampMs: Int64) {
            self.offset = offset
            self.leaderEpoch = leaderEpoch
            self.metadata = metadata
            self.commitTimestampMs = commitTimestampMs
        }
    }

    /// A record read back: an offset commit (nil value: deleted) or a group's metadata (its id; the
    /// value is the broker's to read).
    public enum Decoded: Equatable, Sendable {
        case offset(Key, Value?)
        case group(String)
    }

    /// Why a record is in no layout Kafka or Samsa writes.
    public struct Malformed: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    public static func key(_ key: Key) -> ByteBuffer {
        var bytes = ByteBuffer()
        bytes.writeInteger(offsetKeyVersion)
        writeString(key.group, to: &bytes)
        writeString(key.topic, to: &bytes)
        bytes.writeInteger(key.partition)
        return bytes
    }

    public static func value(_ value: Value) -> ByteBuffer {
        var bytes = ByteBuffer()
        bytes.writeInteger(offsetValueVersion)
        bytes.writeInteger(value.offset)
        bytes.writeInteger(value.leaderEpoch)
        writeString(value.metadata, to: &bytes)
        bytes.writeInteger(value.commitTimestampMs)
        return bytes
    }

    /// Reads a record's key, and its value when the key is an offset commit's.
    public static func decode(key: ByteBuffer, value: ByteBuffer?) throws(Malformed) -> Decoded {
        var key = key
        let version: Int16 = try read(&key)
        switch version {
        case 0, 1:
            let decodedKey = Key(group: try readString(&key), topic: try readString(&key), partition: try read(&key))
            return .offset(decodedKey, try value.map { value throws(Malformed) in try Self.decodeValue(value) })
        case 2:
            return .group(try readString(&key))
        default:
            throw Malformed(description: "an __consumer_offsets key of version \(version)")
        }
    }

    public static func decodeValue(_ value: ByteBuffer) throws(Malformed) -> Value {
        var value = value
        let version: Int16 = try read(&value)
        guard (0...3).contains(version) else { throw Malformed(description: "an offset commit value of version \(version)") }
        let offset: Int64 = try read(&value)
        let leaderEpoch: Int32 = version >= 3 ? try read(&value) : -1
        let metadata = try readString(&value)
        let timestamp: Int64 = try read(&value)
        return Value(offset: offset, leaderEpoch: leaderEpoch, metadata: metadata, commitTimestampMs: timestamp)
    }

    /// Which partition of `partitions` keeps a group, by Kafka's own rule
    /// (`Utils.abs(groupId.hashCode) % offsets.topic.num.partitions`), so Kafka's tools and Samsa agree.
    public static func partition(of group: String, partitions: Int32) -> Int32 {
        let hash = javaHashCode(group)
        return (hash == .min ? 0 : abs(hash)) % max(1, partitions)
    }

    /// Java's `String.hashCode`: over the UTF-16 code units, `h = 31 * h + unit`, wrapping.
    public static func javaHashCode(_ text: String) -> Int32 {
        text.utf16.reduce(Int32(0)) { hash, unit in hash &* 31 &+ Int32(unit) }
    }

    // Kafka's non-compact STRING: int16 length, then UTF-8. A string longer than 32,767 bytes has no
    // such form; it is cut at that length rather than trapping (ids and names are far shorter).
    private static func writeString(_ text: String, to bytes: inout ByteBuffer) {
        let utf8 = Array(text.utf8.prefix(Int(Int16.max)))
        bytes.writeInteger(Int16(utf8.count))
        bytes.writeBytes(utf8)
    }

    private static func read<Value: FixedWidthInteger>(_ bytes: inout ByteBuffer) throws(Malformed) -> Value {
        guard let value: Value = bytes.readInteger() else { throw Malformed(description: "a record cut short") }
        return value
    }

    private static func readString(_ bytes: inout ByteBuffer) throws(Malformed) -> String {
        let length: Int16 = try read(&bytes)
        guard length >= 0, let text = bytes.readString(length: Int(length)) else { throw Malformed(description: "a string cut short") }
        return text
    }
}
