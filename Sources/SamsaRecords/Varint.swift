/// Kafka's variable-length integers: zig-zag encoded, 7 bits a byte, least significant group first,
/// the high bit of each byte set when another byte follows (protobuf's varints).
///
/// A 32-bit varint takes at most 5 bytes and a 64-bit varlong at most 10; anything longer, or a value
/// that does not fit its width, is a `varintOverflow`.
public enum Varint {
    /// The largest encoding of a 32-bit varint.
    public static let maxInt32Length = 5
    /// The largest encoding of a 64-bit varlong.
    public static let maxInt64Length = 10

    @inlinable
    public static func zigZag(_ value: Int64) -> UInt64 {
        UInt64(bitPattern: (value << 1) ^ (value >> 63))
    }

    @inlinable
    public static func unZigZag(_ encoded: UInt64) -> Int64 {
        Int64(bitPattern: encoded >> 1) ^ -Int64(bitPattern: encoded & 1)
    }

    /// Bytes needed for an unsigned varint.
    @inlinable
    public static func encodedLength(unsigned value: UInt64) -> Int {
        // 1 + floor(bitWidth-1 / 7); value 0 takes one byte.
        let bits = 64 - (value | 1).leadingZeroBitCount
        return (bits + 6) / 7
    }

    /// Bytes needed for a zig-zag varint or varlong.
    @inlinable
    public static func encodedLength(_ value: Int64) -> Int {
        encodedLength(unsigned: zigZag(value))
    }

    /// Writes `value` zig-zag encoded at `pointer`; returns the bytes written (1...10).
    @inlinable
    public static func write(_ value: Int64, to pointer: UnsafeMutableRawPointer) -> Int {
        write(unsigned: zigZag(value), to: pointer)
    }

    /// Writes an unsigned varint at `pointer`; returns the bytes written (1...10).
    @inlinable
    public static func write(unsigned value: UInt64, to pointer: UnsafeMutableRawPointer) -> Int {
        var v = value
        var i = 0
        while v >= 0x80 {
            pointer.storeBytes(of: UInt8(truncatingIfNeeded: v) | 0x80, toByteOffset: i, as: UInt8.self)
            v >>= 7
            i += 1
        }
        pointer.storeBytes(of: UInt8(truncatingIfNeeded: v), toByteOffset: i, as: UInt8.self)
        return i + 1
    }

    /// Encodes a value into a new array (for tests and tools; the hot path writes in place).
    public static func encode(_ value: Int64) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: maxInt64Length) { buffer, count in
            count = write(value, to: UnsafeMutableRawPointer(buffer.baseAddress!))
        }
    }

    /// Decodes one zig-zag varlong from the start of `bytes`; returns the value and the bytes it took.
    public static func decodeInt64(_ bytes: [UInt8]) throws(RecordBatchError) -> (value: Int64, length: Int) {
        var result: (Int64, Int) = (0, 0)
        let outcome: RecordBatchError? = bytes.withUnsafeBytes { raw in
            var cursor = ByteCursor(raw)
            do throws(RecordBatchError) {
                result = (try cursor.readVarlong(), cursor.position)
                return nil
            } catch { return error }
        }
        if let outcome { throw outcome }
        return result
    }

    /// Decodes one zig-zag 32-bit varint from the start of `bytes`; returns the value and the bytes it took.
    public static func decodeInt32(_ bytes: [UInt8]) throws(RecordBatchError) -> (value: Int32, length: Int) {
        var result: (Int32, Int) = (0, 0)
        let outcome: RecordBatchError? = bytes.withUnsafeBytes { raw in
            var cursor = ByteCursor(raw)
            do throws(RecordBatchError) {
                result = (try cursor.readVarint(), cursor.position)
                return nil
            } catch { return error }
        }
        if let outcome { throw outcome }
        return result
    }
}
