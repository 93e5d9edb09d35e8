/// A bounds-checked forward reader over borrowed bytes: the only place the decoder touches raw memory.
///
/// Lives only inside a `withUnsafe…Bytes` closure; it never escapes. Every read checks the remaining
/// length first, so malformed input produces `truncatedRecord` or `varintOverflow`, never a fault.
struct ByteCursor {
    let bytes: UnsafeRawBufferPointer
    var position: Int

    init(_ bytes: UnsafeRawBufferPointer, position: Int = 0) {
        self.bytes = bytes
        self.position = position
    }

    var remaining: Int { bytes.count - position }

    mutating func readUInt8() throws(RecordBatchError) -> UInt8 {
        guard position < bytes.count else { throw .truncated(at: position, reading: "a byte") }
        let value = bytes[position]
        position += 1
        return value
    }

    /// Reads an unsigned varint of at most `maxLength` bytes.
    mutating func readUnsignedVarint(maxLength: Int) throws(RecordBatchError) -> UInt64 {
        let start = position
        var result: UInt64 = 0
        var shift: UInt64 = 0
        var index = 0
        while true {
            guard position < bytes.count else { throw .truncated(at: start, reading: "a varint") }
            let byte = bytes[position]
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
    mutating func readVarint() throws(RecordBatchError) -> Int32 {
        Int32(truncatingIfNeeded: Varint.unZigZag(try readUnsignedVarint(maxLength: Varint.maxInt32Length)))
    }

    /// A zig-zag 64-bit varlong.
    mutating func readVarlong() throws(RecordBatchError) -> Int64 {
        Varint.unZigZag(try readUnsignedVarint(maxLength: Varint.maxInt64Length))
    }

    /// Skips `count` bytes, returning where they start.
    mutating func skip(_ count: Int, reading what: StaticString) throws(RecordBatchError) -> Int {
        guard count >= 0, count <= remaining else { throw .truncated(at: position, reading: what) }
        let start = position
        position += count
        return start
    }
}
