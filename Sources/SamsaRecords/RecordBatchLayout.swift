/// The byte layout of a Kafka RecordBatch v2 header (magic 2), each field's offset derived from the one
/// before it, as Kafka's `DefaultRecordBatch` does. All integers are big-endian.
///
/// ```
/// baseOffset: int64                 ─┐ not covered by the CRC: a log stamps these
/// batchLength: int32                 │ (bytes after this field)
/// partitionLeaderEpoch: int32       ─┘
/// magic: int8 (= 2)
/// crc: uint32                       CRC-32C of attributes … end of batch
/// attributes: int16                 bits 0-2 codec, 3 timestamp type, 4 transactional, 5 control
/// lastOffsetDelta: int32
/// baseTimestamp: int64
/// maxTimestamp: int64
/// producerId: int64
/// producerEpoch: int16
/// baseSequence: int32
/// recordCount: int32
/// records: [Record]                 possibly compressed as one frame
/// ```
public enum RecordBatchLayout {
    public static let baseOffsetOffset = 0
    public static let baseOffsetLength = 8
    public static let batchLengthOffset = baseOffsetOffset + baseOffsetLength
    public static let batchLengthLength = 4
    public static let partitionLeaderEpochOffset = batchLengthOffset + batchLengthLength
    public static let partitionLeaderEpochLength = 4
    public static let magicOffset = partitionLeaderEpochOffset + partitionLeaderEpochLength
    public static let magicLength = 1
    public static let crcOffset = magicOffset + magicLength
    public static let crcLength = 4
    public static let attributesOffset = crcOffset + crcLength
    public static let attributesLength = 2
    public static let lastOffsetDeltaOffset = attributesOffset + attributesLength
    public static let lastOffsetDeltaLength = 4
    public static let baseTimestampOffset = lastOffsetDeltaOffset + lastOffsetDeltaLength
    public static let baseTimestampLength = 8
    public static let maxTimestampOffset = baseTimestampOffset + baseTimestampLength
    public static let maxTimestampLength = 8
    public static let producerIdOffset = maxTimestampOffset + maxTimestampLength
    public static let producerIdLength = 8
    public static let producerEpochOffset = producerIdOffset + producerIdLength
    public static let producerEpochLength = 2
    public static let baseSequenceOffset = producerEpochOffset + producerEpochLength
    public static let baseSequenceLength = 4
    public static let recordCountOffset = baseSequenceOffset + baseSequenceLength
    public static let recordCountLength = 4
    public static let recordsOffset = recordCountOffset + recordCountLength

    /// Size of the header: 61 bytes.
    public static let headerLength = recordsOffset
    /// The bytes before the batch length field ends; `batchLength` counts what follows them.
    public static let lengthPrefixLength = batchLengthOffset + batchLengthLength
    /// Smallest legal value of `batchLength`: a header with no records.
    public static let minimumBatchLength = headerLength - lengthPrefixLength
    /// Enough bytes to know a batch's size and magic without reading the rest.
    public static let sizeProbeLength = magicOffset + magicLength
    /// The only record format Samsa reads and writes.
    public static let currentMagic: UInt8 = 2

    static let codecMask: UInt16 = 0x07
    static let timestampTypeMask: UInt16 = 0x08
    static let transactionalMask: UInt16 = 0x10
    static let controlMask: UInt16 = 0x20
    static let deleteHorizonMask: UInt16 = 0x40
}
