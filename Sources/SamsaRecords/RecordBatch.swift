public import NIOCore

/// Bounds a decoder applies to untrusted bytes.
public struct RecordBatchLimits: Sendable, Hashable {
    /// Largest batch (all of it, header included) accepted.
    public var maxBatchSize: Int
    /// Largest records section a compressed batch may decompress to.
    public var maxDecompressedSize: Int

    public init(maxBatchSize: Int = 64 << 20, maxDecompressedSize: Int = 256 << 20) {
        self.maxBatchSize = maxBatchSize
        self.maxDecompressedSize = maxDecompressedSize
    }

    public static let `default` = RecordBatchLimits()
}

/// A view of one Kafka RecordBatch v2 in a buffer: header fields read in place, records decoded lazily.
///
/// `init(validating:)` checks the length, magic, CRC-32C and codec without decompressing, which is
/// all a log needs to store or recover a batch. `records()` decompresses if needed and decodes records
/// one at a time, checking each. The base offset and partition leader epoch lie outside the CRC and can
/// be set on a validated batch without recomputing it.
public struct RecordBatch: Sendable, Hashable {
    typealias Layout = RecordBatchLayout

    /// The batch's bytes: exactly `sizeInBytes` readable bytes.
    public private(set) var buffer: ByteBuffer

    /// Wraps bytes already known to be one well-formed batch (the builder's output).
    init(unchecked buffer: ByteBuffer) {
        self.buffer = buffer
    }

    /// Validates the first batch in `bytes` (length bounds, magic, CRC-32C, codec) and views it.
    /// Bytes after the batch are ignored; the view shares `bytes`' storage.
    public init(validating bytes: ByteBuffer, limits: RecordBatchLimits = .default) throws(RecordBatchError) {
        guard let size = try Self.size(ofBatchAtStartOf: bytes, limits: limits) else {
            throw RecordBatchError(
                .lengthOutOfBounds, at: 0,
                "\(bytes.readableBytes) bytes cannot hold a batch header of \(Layout.headerLength) bytes")
        }
        guard size <= bytes.readableBytes else {
            throw RecordBatchError(
                .lengthOutOfBounds, at: Layout.batchLengthOffset,
                "batch of \(size) bytes is longer than the \(bytes.readableBytes) bytes available")
        }
        self.buffer = bytes.getSlice(at: bytes.readerIndex, length: size)!
        // The CRC first: a damaged byte anywhere in the covered range is corruption, whatever field it hit.
        let stored = crc
        let computed = computeChecksum()
        guard stored == computed else {
            throw RecordBatchError(
                .checksumMismatch, at: Layout.crcOffset,
                "stored CRC-32C \(hex(stored)) but the batch's bytes give \(hex(computed))")
        }
        try validateHeader()
    }

    /// The total size of the batch that starts `bytes`, from its length field and magic, or `nil` when
    /// fewer than `RecordBatchLayout.sizeProbeLength` bytes are there to tell. The batch itself may
    /// extend past the bytes given; this is how a reader of a stream or file learns how much to read.
    public static func size(ofBatchAtStartOf bytes: ByteBuffer, limits: RecordBatchLimits = .default)
        throws(RecordBatchError) -> Int?
    {
        guard bytes.readableBytes >= Layout.sizeProbeLength else { return nil }
        let start = bytes.readerIndex
        let batchLength = Int(bytes.getInteger(at: start + Layout.batchLengthOffset, as: Int32.self)!)
        let magic = bytes.getInteger(at: start + Layout.magicOffset, as: UInt8.self)!
        guard batchLength >= Layout.minimumBatchLength else {
            throw RecordBatchError(
                .lengthOutOfBounds, at: Layout.batchLengthOffset,
                "batch length \(batchLength) is below the minimum of \(Layout.minimumBatchLength)")
        }
        let size = batchLength + Layout.lengthPrefixLength
        guard size <= limits.maxBatchSize else {
            throw RecordBatchError(
                .lengthOutOfBounds, at: Layout.batchLengthOffset,
                "batch of \(size) bytes exceeds the limit of \(limits.maxBatchSize) bytes")
        }
        guard magic == Layout.currentMagic else {
            throw RecordBatchError(.badMagic, at: Layout.magicOffset, "magic is \(magic), expected 2")
        }
        return size
    }

    private func validateHeader() throws(RecordBatchError) {
        let codecBits = UInt8(attributes & Layout.codecMask)
        guard let codec = CompressionCodec(rawValue: codecBits) else {
            throw RecordBatchError(.unknownCodec, at: Layout.attributesOffset, "codec bits \(codecBits) name no codec")
        }
        guard codec.isSupported else {
            throw RecordBatchError(
                .unsupportedCodec, at: Layout.attributesOffset, "\(codec) batches are not supported (use none, lz4 or zstd)")
        }
        guard recordCount >= 0 else {
            throw RecordBatchError(.recordCountMismatch, at: Layout.recordCountOffset, "record count \(recordCount) is negative")
        }
        guard lastOffsetDelta >= 0 else {
            throw RecordBatchError(
                .malformedRecord, at: Layout.lastOffsetDeltaOffset, "last offset delta \(lastOffsetDelta) is negative")
        }
        // Every record takes at least 7 bytes, so an uncompressed batch bounds its own count.
        if codec == .none && Int(recordCount) > (sizeInBytes - Layout.headerLength) / Self.minimumRecordLength {
            throw RecordBatchError(
                .recordCountMismatch, at: Layout.recordCountOffset,
                "record count \(recordCount) cannot fit in \(sizeInBytes - Layout.headerLength) bytes of records")
        }
    }

    /// Smallest encoded record: length, attributes, timestamp delta, offset delta, key, value, header count.
    static let minimumRecordLength = 7

    // MARK: - Header fields

    private func field<T: FixedWidthInteger>(_ offset: Int, as type: T.Type = T.self) -> T {
        buffer.getInteger(at: buffer.readerIndex + offset, as: T.self)!
    }

    public var sizeInBytes: Int { buffer.readableBytes }
    public var baseOffset: Int64 { field(Layout.baseOffsetOffset) }
    public var batchLength: Int32 { field(Layout.batchLengthOffset) }
    public var partitionLeaderEpoch: Int32 { field(Layout.partitionLeaderEpochOffset) }
    public var magic: UInt8 { field(Layout.magicOffset) }
    public var crc: UInt32 { field(Layout.crcOffset) }
    public var attributes: UInt16 { field(Layout.attributesOffset) }
    /// Attribute bit 6 (KIP-534): the log cleaner set the base timestamp to the batch's delete horizon.
    /// Only a cleaner writes it; a client's batch carrying it is refused.
    public var hasDeleteHorizon: Bool { attributes & Layout.deleteHorizonMask != 0 }
    public var lastOffsetDelta: Int32 { field(Layout.lastOffsetDeltaOffset) }
    public var baseTimestamp: Int64 { field(Layout.baseTimestampOffset) }
    public var maxTimestamp: Int64 { field(Layout.maxTimestampOffset) }
    public var producerId: Int64 { field(Layout.producerIdOffset) }
    public var producerEpoch: Int16 { field(Layout.producerEpochOffset) }
    public var baseSequence: Int32 { field(Layout.baseSequenceOffset) }
    public var recordCount: Int32 { field(Layout.recordCountOffset) }

    /// Offset of the last record (base offset + last offset delta).
    public var lastOffset: Int64 { baseOffset + Int64(lastOffsetDelta) }
    /// The offset the next batch in a log starts at.
    public var nextOffset: Int64 { lastOffset + 1 }
    /// The records' codec. Valid for every validated batch.
    public var compression: CompressionCodec { CompressionCodec(rawValue: UInt8(attributes & Layout.codecMask)) ?? .none }
    public var timestampType: TimestampType {
        attributes & Layout.timestampTypeMask != 0 ? .logAppendTime : .createTime
    }
    public var isTransactional: Bool { attributes & Layout.transactionalMask != 0 }
    public var isControlBatch: Bool { attributes & Layout.controlMask != 0 }

    /// The CRC-32C of the bytes the header's `crc` covers.
    public func computeChecksum() -> UInt32 {
        buffer.withUnsafeReadableBytes { raw in
            CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[Layout.attributesOffset...]))
        }
    }

    /// True when the stored CRC-32C matches the bytes.
    public var isChecksumValid: Bool { crc == computeChecksum() }

    // MARK: - Fields outside the CRC

    /// Sets the base offset (a log assigns it on append). The CRC stays valid.
    public mutating func setBaseOffset(_ offset: Int64) {
        buffer.setInteger(offset, at: buffer.readerIndex + Layout.baseOffsetOffset)
    }

    /// Sets the partition leader epoch (stamped by the leader on append). The CRC stays valid.
    public mutating func setPartitionLeaderEpoch(_ epoch: Int32) {
        buffer.setInteger(epoch, at: buffer.readerIndex + Layout.partitionLeaderEpochOffset)
    }

    /// The records section as stored (compressed when the batch is).
    public var storedRecords: ByteBuffer {
        buffer.getSlice(at: buffer.readerIndex + Layout.recordsOffset, length: sizeInBytes - Layout.recordsOffset)!
    }
}

func hex(_ value: UInt32) -> String {
    let digits = String(value, radix: 16)
    return "0x" + String(repeating: "0", count: 8 - digits.count) + digits
}
