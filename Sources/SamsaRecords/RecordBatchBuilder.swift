public import NIOCore

/// Encodes records into one Kafka RecordBatch v2, optionally compressed.
///
/// Records are written straight into the batch's buffer as they are appended (their lengths are
/// computed up front, as Kafka's `DefaultRecord.sizeInBytes` does), so `build()` only compresses,
/// fills the header and computes the CRC. Offsets are assigned by position: record *i* gets offset delta
/// *i*; a log later stamps the base offset without touching the CRC-covered bytes.
public struct RecordBatchBuilder: Sendable {
    public let compression: CompressionCodec
    public let compressionLevel: Int32?
    public var baseOffset: Int64 = 0
    public var partitionLeaderEpoch: Int32 = -1
    public var producerId: Int64 = -1
    public var producerEpoch: Int16 = -1
    public var baseSequence: Int32 = -1
    public var isTransactional = false
    public var timestampType: TimestampType = .createTime

    private var buffer: ByteBuffer
    private var baseTimestamp: Int64 = 0
    private var maxTimestamp: Int64 = .min
    public private(set) var recordCount: Int32 = 0

    /// - Parameters:
    ///   - compression: `.none`, `.lz4` or `.zstd`.
    ///   - compressionLevel: the codec's level; `nil` for Kafka's default.
    ///   - capacity: bytes to reserve for the uncompressed records.
    public init(
        compression: CompressionCodec = .none, compressionLevel: Int32? = nil, capacity: Int = 16 * 1024,
        allocator: ByteBufferAllocator = ByteBufferAllocator()
    ) {
        self.compression = compression
        self.compressionLevel = compressionLevel
        self.buffer = allocator.buffer(capacity: RecordBatchLayout.headerLength + capacity)
        self.buffer.writeRepeatingByte(0, count: RecordBatchLayout.headerLength)
    }

    /// Bytes of the batch so far, before compression.
    public var uncompressedSize: Int { buffer.readableBytes }

    /// Bytes one more record would add to `uncompressedSize`.
    public func encodedSize(keyLength: Int?, valueLength: Int?, headers: [RecordHeader] = [], timestamp: Int64) -> Int {
        let body = Self.bodyLength(
            timestampDelta: recordCount == 0 ? 0 : timestamp &- baseTimestamp, offsetDelta: recordCount,
            keyLength: keyLength, valueLength: valueLength, headers: headers)
        return Varint.encodedLength(Int64(body)) + body
    }

    /// Appends a record whose key and value are byte arrays.
    public mutating func append(timestamp: Int64, key: [UInt8]?, value: [UInt8]?, headers: [RecordHeader] = []) {
        Self.withOptionalBytes(key) { key in
            Self.withOptionalBytes(value) { value in
                appendRaw(timestamp: timestamp, key: key, value: value, headers: headers)
            }
        }
    }

    /// Appends a record whose key and value are buffers (their readable bytes).
    public mutating func append(timestamp: Int64, key: ByteBuffer?, value: ByteBuffer?, headers: [RecordHeader] = []) {
        Self.withOptionalBytes(key) { key in
            Self.withOptionalBytes(value) { value in
                appendRaw(timestamp: timestamp, key: key, value: value, headers: headers)
            }
        }
    }

    /// Appends a record from borrowed bytes.
    public mutating func appendRaw(
        timestamp: Int64, key: UnsafeRawBufferPointer?, value: UnsafeRawBufferPointer?, headers: [RecordHeader]
    ) {
        if recordCount == 0 { baseTimestamp = timestamp }
        if timestamp > maxTimestamp { maxTimestamp = timestamp }
        let timestampDelta = timestamp &- baseTimestamp
        let offsetDelta = recordCount
        let body = Self.bodyLength(
            timestampDelta: timestampDelta, offsetDelta: offsetDelta,
            keyLength: key?.count, valueLength: value?.count, headers: headers)
        let total = Varint.encodedLength(Int64(body)) + body
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: total) { destination in
            let out = destination.baseAddress!
            var at = Varint.write(Int64(body), to: out)
            out.storeBytes(of: 0 as UInt8, toByteOffset: at, as: UInt8.self)  // record attributes: unused
            at += 1
            at += Varint.write(timestampDelta, to: out + at)
            at += Varint.write(Int64(offsetDelta), to: out + at)
            at += Self.writeBytesField(key, to: out + at)
            at += Self.writeBytesField(value, to: out + at)
            at += Varint.write(Int64(headers.count), to: out + at)
            for header in headers {
                var headerKey = header.key
                at += headerKey.withUTF8 { Self.writeBytesField(UnsafeRawBufferPointer($0), to: out + at) }
                at += Self.withOptionalBytes(header.value) { Self.writeBytesField($0, to: out + at) }
            }
            return at
        }
        recordCount += 1
    }

    /// Finishes the batch: compresses the records, fills the header, computes the CRC. The builder is
    /// left empty and can be reused.
    public mutating func build() throws(RecordBatchError) -> RecordBatch {
        guard recordCount > 0 else {
            throw RecordBatchError(.emptyBatch, at: 0, "a batch needs at least one record")
        }
        var batch: ByteBuffer
        let capacity = buffer.capacity
        if compression == .none {
            // Hand the storage over: with a second reference left here, writing the header below
            // would copy the whole batch.
            batch = buffer
            buffer = ByteBuffer()
        } else {
            let recordsLength = buffer.readableBytes - RecordBatchLayout.headerLength
            batch = ByteBufferAllocator().buffer(capacity: RecordBatchLayout.headerLength + recordsLength / 2)
            batch.writeRepeatingByte(0, count: RecordBatchLayout.headerLength)
            let compression = compression, level = compressionLevel
            try buffer.withUnsafeReadableBytes { raw throws(RecordBatchError) in
                try RecordCompression.compress(
                    UnsafeRawBufferPointer(rebasing: raw[RecordBatchLayout.headerLength...]),
                    codec: compression, level: level, into: &batch)
            }
        }
        writeHeader(into: &batch)
        reset(capacity: capacity)
        return RecordBatch(unchecked: batch)
    }

    private func writeHeader(into batch: inout ByteBuffer) {
        typealias L = RecordBatchLayout
        var attributes = UInt16(compression.rawValue)
        if timestampType == .logAppendTime { attributes |= L.timestampTypeMask }
        if isTransactional { attributes |= L.transactionalMask }
        let start = batch.readerIndex
        batch.setInteger(baseOffset, at: start + L.baseOffsetOffset)
        batch.setInteger(Int32(batch.readableBytes - L.lengthPrefixLength), at: start + L.batchLengthOffset)
        batch.setInteger(partitionLeaderEpoch, at: start + L.partitionLeaderEpochOffset)
        batch.setInteger(L.currentMagic, at: start + L.magicOffset)
        batch.setInteger(attributes, at: start + L.attributesOffset)
        batch.setInteger(recordCount - 1, at: start + L.lastOffsetDeltaOffset)
        batch.setInteger(baseTimestamp, at: start + L.baseTimestampOffset)
        batch.setInteger(maxTimestamp, at: start + L.maxTimestampOffset)
        batch.setInteger(producerId, at: start + L.producerIdOffset)
        batch.setInteger(producerEpoch, at: start + L.producerEpochOffset)
        batch.setInteger(baseSequence, at: start + L.baseSequenceOffset)
        batch.setInteger(recordCount, at: start + L.recordCountOffset)
        let crc = batch.withUnsafeReadableBytes { raw in
            CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[L.attributesOffset...]))
        }
        batch.setInteger(crc, at: start + L.crcOffset)
    }

    private mutating func reset(capacity: Int) {
        // A fresh buffer: the built batch may own the old storage.
        buffer = ByteBufferAllocator().buffer(capacity: capacity)
        buffer.writeRepeatingByte(0, count: RecordBatchLayout.headerLength)
        recordCount = 0
        baseTimestamp = 0
        maxTimestamp = .min
    }

    // MARK: - Encoding helpers

    static func bodyLength(
        timestampDelta: Int64, offsetDelta: Int32, keyLength: Int?, valueLength: Int?, headers: [RecordHeader]
    ) -> Int {
        var length = 1 + Varint.encodedLength(timestampDelta) + Varint.encodedLength(Int64(offsetDelta))
        length += bytesFieldLength(keyLength) + bytesFieldLength(valueLength)
        length += Varint.encodedLength(Int64(headers.count))
        for header in headers {
            length += bytesFieldLength(header.key.utf8.count) + bytesFieldLength(header.value?.readableBytes)
        }
        return length
    }

    /// A length-prefixed byte field; `nil` is length -1.
    static func bytesFieldLength(_ length: Int?) -> Int {
        guard let length else { return Varint.encodedLength(-1) }
        return Varint.encodedLength(Int64(length)) + length
    }

    static func writeBytesField(_ bytes: UnsafeRawBufferPointer?, to out: UnsafeMutableRawPointer) -> Int {
        guard let bytes else { return Varint.write(-1, to: out) }
        let prefix = Varint.write(Int64(bytes.count), to: out)
        if let base = bytes.baseAddress, bytes.count > 0 {
            (out + prefix).copyMemory(from: base, byteCount: bytes.count)
        }
        return prefix + bytes.count
    }

    private static func withOptionalBytes<R>(_ buffer: ByteBuffer?, _ body: (UnsafeRawBufferPointer?) -> R) -> R {
        guard let buffer else { return body(nil) }
        return buffer.withUnsafeReadableBytes { body($0) }
    }

    private static func withOptionalBytes<R>(_ bytes: [UInt8]?, _ body: (UnsafeRawBufferPointer?) -> R) -> R {
        guard let bytes else { return body(nil) }
        return bytes.withUnsafeBytes { body($0) }
    }
}
