public import NIOCore

/// Kafka's primitive types on `ByteBuffer`, big-endian as the protocol guide defines them. Reads throw
/// `ProtocolError` on truncated or out-of-range input (they never trap and never allocate more than the
/// bytes present justify); compact forms are the flexible versions' (unsigned varint length + 1, 0 = null).
extension ByteBuffer {
    // MARK: - Fixed width

    public mutating func readKafkaInteger<T: FixedWidthInteger>(as type: T.Type = T.self) throws(ProtocolError) -> T {
        guard let value = readInteger(as: T.self) else {
            throw ProtocolError("truncated: \(MemoryLayout<T>.size)-byte integer with \(readableBytes) bytes left")
        }
        return value
    }

    public mutating func readKafkaBool() throws(ProtocolError) -> Bool {
        try readKafkaInteger(as: UInt8.self) != 0
    }

    public mutating func writeKafkaBool(_ value: Bool) {
        writeInteger(UInt8(value ? 1 : 0))
    }

    public mutating func readKafkaFloat64() throws(ProtocolError) -> Double {
        Double(bitPattern: try readKafkaInteger(as: UInt64.self))
    }

    public mutating func writeKafkaFloat64(_ value: Double) {
        writeInteger(value.bitPattern)
    }

    public mutating func readKafkaUUID() throws(ProtocolError) -> KafkaUUID {
        let high = try readKafkaInteger(as: UInt64.self)
        return KafkaUUID(high: high, low: try readKafkaInteger(as: UInt64.self))
    }

    public mutating func writeKafkaUUID(_ value: KafkaUUID) {
        writeInteger(value.high)
        writeInteger(value.low)
    }

    // MARK: - Varints

    /// An unsigned LEB128 varint of at most 32 bits (5 bytes).
    public mutating func readKafkaUnsignedVarint() throws(ProtocolError) -> UInt32 {
        var result: UInt32 = 0
        for index in 0..<5 {
            let byte = try readKafkaInteger(as: UInt8.self)
            if index == 4 && byte > 0x0F { throw ProtocolError("unsigned varint overflows 32 bits") }
            result |= UInt32(byte & 0x7F) << (7 * UInt32(index))
            if byte & 0x80 == 0 { return result }
        }
        throw ProtocolError("unsigned varint longer than 5 bytes")
    }

    public mutating func writeKafkaUnsignedVarint(_ value: UInt32) {
        var remaining = value
        while remaining >= 0x80 {
            writeInteger(UInt8(remaining & 0x7F | 0x80))
            remaining >>= 7
        }
        writeInteger(UInt8(remaining))
    }

    // MARK: - Lengths

    /// A length prefix: INT16/INT32 (-1 = null) or compact (varint, 0 = null). Nil for null; a length
    /// past the readable bytes throws.
    private mutating func readKafkaLength(compact: Bool, wide: Bool, what: String) throws(ProtocolError) -> Int? {
        let length: Int
        if compact {
            let raw = try readKafkaUnsignedVarint()
            if raw == 0 { return nil }
            length = Int(raw) - 1
        } else {
            length = wide ? Int(try readKafkaInteger(as: Int32.self)) : Int(try readKafkaInteger(as: Int16.self))
            if length == -1 { return nil }
            guard length >= 0 else { throw ProtocolError("negative \(what) length \(length)") }
        }
        guard length <= readableBytes else {
            throw ProtocolError("\(what) of \(length) bytes with only \(readableBytes) left")
        }
        return length
    }

    /// Writes a length prefix. Callers pass lengths the field can carry (strings and bytes cap them
    /// first); `clamping` only keeps this from trapping on a length no Swift value can reach.
    private mutating func writeKafkaLength(_ length: Int?, compact: Bool, wide: Bool) {
        if compact {
            writeKafkaUnsignedVarint(length.map { UInt32(clamping: $0 + 1) } ?? 0)
        } else if wide {
            writeInteger(Int32(clamping: length ?? -1))
        } else {
            writeInteger(Int16(clamping: length ?? -1))
        }
    }

    // MARK: - Strings

    /// The longest string Kafka's protocol carries, in UTF-8 bytes, compact or not: an INT16 length
    /// cannot say more, and Kafka's readers refuse a longer compact string too ("string field had
    /// invalid length").
    public static let kafkaMaxStringBytes = Int(Int16.max)

    /// Refuses a string longer than `kafkaMaxStringBytes`, as Kafka's generated readers do, and one
    /// whose bytes are not UTF-8 and grow past it once repaired (each bad byte becomes a 3-byte
    /// U+FFFD): so every string a request brings fits in any field it is echoed in.
    public mutating func readKafkaNullableString(compact: Bool) throws(ProtocolError) -> String? {
        guard let length = try readKafkaLength(compact: compact, wide: false, what: "string") else { return nil }
        guard length <= Self.kafkaMaxStringBytes else {
            throw ProtocolError("string of \(length) bytes is longer than the protocol's \(Self.kafkaMaxStringBytes)")
        }
        let value = readString(length: length) ?? ""
        guard value.utf8.count <= Self.kafkaMaxStringBytes else {
            throw ProtocolError("string of \(length) bytes is not UTF-8 and repairs to \(value.utf8.count) bytes")
        }
        return value
    }

    public mutating func readKafkaString(compact: Bool) throws(ProtocolError) -> String {
        guard let value = try readKafkaNullableString(compact: compact) else { throw ProtocolError("null string where one is required") }
        return value
    }

    /// Writes a string; never traps. Past `kafkaMaxStringBytes` only its longest prefix of whole
    /// characters that fits is written (requests cannot bring such a string, see the reader: only one
    /// the broker composes can be that long, such as an error message quoting a long name).
    public mutating func writeKafkaNullableString(_ value: String?, compact: Bool) {
        guard let value else { return writeKafkaLength(nil, compact: compact, wide: false) }
        let utf8 = value.utf8
        guard utf8.count > Self.kafkaMaxStringBytes else {
            writeKafkaLength(utf8.count, compact: compact, wide: false)
            writeString(value)
            return
        }
        let prefix = Self.wholeCharacterPrefix(of: utf8, maxBytes: Self.kafkaMaxStringBytes)
        writeKafkaLength(prefix.count, compact: compact, wide: false)
        writeBytes(prefix)
    }

    public mutating func writeKafkaString(_ value: String, compact: Bool) {
        writeKafkaNullableString(value, compact: compact)
    }

    /// The longest prefix of `utf8` of at most `maxBytes` bytes that ends on a Unicode scalar boundary (it
    /// stops before a continuation byte, 0b10xxxxxx).
    static func wholeCharacterPrefix(of utf8: String.UTF8View, maxBytes: Int) -> String.UTF8View.SubSequence {
        var end = utf8.index(utf8.startIndex, offsetBy: maxBytes)
        while end > utf8.startIndex, end < utf8.endIndex, utf8[end] & 0xC0 == 0x80 {
            end = utf8.index(before: end)
        }
        return utf8[..<end]
    }

    // MARK: - Bytes (and records, which are bytes on the wire)

    /// A slice of this buffer (no copy).
    public mutating func readKafkaNullableBytes(compact: Bool) throws(ProtocolError) -> ByteBuffer? {
        guard let length = try readKafkaLength(compact: compact, wide: true, what: "bytes") else { return nil }
        return readSlice(length: length)
    }

    public mutating func readKafkaBytes(compact: Bool) throws(ProtocolError) -> ByteBuffer {
        guard let value = try readKafkaNullableBytes(compact: compact) else { throw ProtocolError("null bytes where they are required") }
        return value
    }

    /// Writes bytes; never traps. A length the field cannot carry (past 2^31-1 bytes, or 2^32-2
    /// compact) would need a frame over Kafka's 2 GiB limit anyway: only the prefix that fits is written.
    public mutating func writeKafkaNullableBytes(_ value: ByteBuffer?, compact: Bool) {
        guard let value else { return writeKafkaLength(nil, compact: compact, wide: true) }
        let length = min(value.readableBytes, compact ? Int(UInt32.max) - 1 : Int(Int32.max))
        writeKafkaLength(length, compact: compact, wide: true)
        writeImmutableBuffer(length == value.readableBytes ? value : value.getSlice(at: value.readerIndex, length: length)!)
    }

    public mutating func writeKafkaBytes(_ value: ByteBuffer, compact: Bool) {
        writeKafkaNullableBytes(value, compact: compact)
    }

    // MARK: - Arrays

    /// An array's element count (nil for null). Every element takes at least one byte, so a count past
    /// the readable bytes is refused before anything is allocated.
    public mutating func readKafkaArrayCount(compact: Bool) throws(ProtocolError) -> Int? {
        let count: Int
        if compact {
            let raw = try readKafkaUnsignedVarint()
            if raw == 0 { return nil }
            count = Int(raw) - 1
        } else {
            count = Int(try readKafkaInteger(as: Int32.self))
            if count == -1 { return nil }
            guard count >= 0 else { throw ProtocolError("negative array length \(count)") }
        }
        guard count <= readableBytes else { throw ProtocolError("array of \(count) elements with only \(readableBytes) bytes left") }
        return count
    }

    /// Writes an array's count; never traps (an array of 2^31 elements cannot be held in memory,
    /// nor sent in a frame under 2 GiB, so clamping never changes a real count).
    public mutating func writeKafkaArrayCount(_ count: Int?, compact: Bool) {
        if compact {
            writeKafkaUnsignedVarint(count.map { UInt32(clamping: $0 + 1) } ?? 0)
        } else {
            writeInteger(Int32(clamping: count ?? -1))
        }
    }

    // MARK: - Tagged fields

    /// The number of tagged fields that follow (flexible versions).
    public mutating func readKafkaTaggedFieldCount() throws(ProtocolError) -> Int {
        let count = Int(try readKafkaUnsignedVarint())
        guard count <= readableBytes else { throw ProtocolError("\(count) tagged fields with only \(readableBytes) bytes left") }
        return count
    }

    /// One tagged field: its tag and its bytes (a slice).
    public mutating func readKafkaTaggedField() throws(ProtocolError) -> (tag: UInt32, bytes: ByteBuffer) {
        let tag = try readKafkaUnsignedVarint()
        let size = Int(try readKafkaUnsignedVarint())
        guard let bytes = readSlice(length: size) else {
            throw ProtocolError("tagged field \(tag) of \(size) bytes with only \(readableBytes) left")
        }
        return (tag, bytes)
    }
}

/// Collects a structure's tagged fields (in tag order) and writes the count, then each tag, size and value.
public struct KafkaTaggedFieldsWriter {
    private var fields: [(tag: UInt32, bytes: ByteBuffer)] = []

    public init() {}

    public mutating func add(tag: UInt32, _ body: (inout ByteBuffer) -> Void) {
        var bytes = ByteBuffer()
        body(&bytes)
        fields.append((tag, bytes))
    }

    public func write(into buffer: inout ByteBuffer) {
        buffer.writeKafkaUnsignedVarint(UInt32(clamping: fields.count))
        for field in fields {
            buffer.writeKafkaUnsignedVarint(field.tag)
            buffer.writeKafkaUnsignedVarint(UInt32(clamping: field.bytes.readableBytes))
            buffer.writeImmutableBuffer(field.bytes)
        }
    }
}
