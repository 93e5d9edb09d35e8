/// A bounds-checked forward reader over borrowed bytes: the only place the decoder touches raw memory.
///
/// Lives only inside a `withUnsafe…Bytes` closure; it never escapes. Every read checks the remaining
/// length first, so malformed input produces `truncatedRecord` or `varintOverflow`, never a fault.
struct ByteCursor {
    let bytes: UnsafeRawBufferPointer
    var position: Int
    /// Reads stop here: the end of the bytes, or of the record being parsed.
    var end: Int

    init(_ bytes: UnsafeRawBufferPointer, position: Int = 0) {
        self.bytes = bytes
        self.position = position
        self.end = bytes.count
    }

    var remaining: Int { end - position }

    mutating func readUInt8() throws(RecordBatchError) -> UInt8 {
        guard position < end else { throw .truncated(at: position, reading: "a byte") }
        let value = bytes.load(fromByteOffset: position, as: UInt8.self)
        position += 1
        return value
    }

    /// Reads an unsigned varint of at most `maxLength` bytes. Most varints in a record (attributes,
    /// deltas, small lengths) are one byte, so that case is decided inline.
    @inline(__always)
    mutating func readUnsignedVarint(maxLength: Int) throws(RecordBatchError) -> UInt64 {
        guard position < end else { throw .truncated(at: position, reading: "a varint") }
        let first = bytes.load(fromByteOffset: position, as: UInt8.self)
        if first < 0x80 {
            position += 1
            return UInt64(first)
        }
        // Two bytes cover lengths and deltas up to 8191, the rest of a typical record's varints.
        if position + 1 < end {
            let second = bytes.load(fromByteOffset: position + 1, as: UInt8.self)
            if second < 0x80 {
                position += 2
                return UInt64(first & 0x7F) | UInt64(second) << 7
            }
        }
        return try readLongerVarint(maxLength: maxLength)
    }

    private mutating func readLongerVarint(maxLength: Int) throws(RecordBatchError) -> UInt64 {
        let start = position
        var result: UInt64 = 0
        var shift: UInt64 = 0
        var index = 0
        while true {
            guard position < end else { throw .truncated(at: start, reading: "a varint") }
            let byte = bytes.load(fromByteOffset: position, as: UInt8.self)
            position += 1
            result |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 {
                // The last byte of a maximal encoding may only carry the bits that fit the width.
                if index == maxLength - 1 {
                    let usedBits = UInt64(maxLength == Varint.maxInt32Length ? 32 : 64) - shift
                    if UInt64(byte) >> usedBits != 0 { throw .varintOverflow(at: start) }
                }
                return result
            }
            index += 1
            shift += 7
            if index == maxLength { throw .varintOverflow(at: start) }
        }
    }

    /// A zig-zag 32-bit varint.
    @inline(__always)
    mutating func readVarint() throws(RecordBatchError) -> Int32 {
        Int32(truncatingIfNeeded: Varint.unZigZag(try readUnsignedVarint(maxLength: Varint.maxInt32Length)))
    }

    /// A zig-zag 64-bit varlong.
    @inline(__always)
    mutating func readVarlong() throws(RecordBatchError) -> Int64 {
        Varint.unZigZag(try readUnsignedVarint(maxLength: Varint.maxInt64Length))
    }

    /// Skips `count` bytes, returning where they start.
    @inline(__always)
    mutating func skip(_ count: Int, reading what: StaticString) throws(RecordBatchError) -> Int {
        guard count >= 0, count <= remaining else { throw .truncated(at: position, reading: what) }
        let start = position
        position += count
        return start
    }
}
