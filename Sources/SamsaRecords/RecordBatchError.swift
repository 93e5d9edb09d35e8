/// Why bytes are not a valid record batch, or why a batch could not be built.
///
/// An extensible `code` to switch on, the byte `position` where the problem was found, and a sentence
/// for people. Positions are relative to the start of the batch for header problems, and to the start
/// of the (decompressed) records section for problems inside records.
public struct RecordBatchError: Error, Hashable, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let name: String
        init(_ name: String) { self.name = name }
        public var description: String { name }

        /// The batch length field is below the header size, beyond the bytes available, or over a limit.
        public static let lengthOutOfBounds = Code("lengthOutOfBounds")
        /// The magic byte is not 2.
        public static let badMagic = Code("badMagic")
        /// The CRC-32C stored in the header does not match the bytes it covers.
        public static let checksumMismatch = Code("checksumMismatch")
        /// A record or field runs past the end of the records section.
        public static let truncatedRecord = Code("truncatedRecord")
        /// A varint is longer than its width allows or its value does not fit.
        public static let varintOverflow = Code("varintOverflow")
        /// The header's record count does not match the records present.
        public static let recordCountMismatch = Code("recordCountMismatch")
        /// A record's fields are inconsistent (length, offset delta, negative sizes).
        public static let malformedRecord = Code("malformedRecord")
        /// The codec bits name no codec (5, 6 or 7).
        public static let unknownCodec = Code("unknownCodec")
        /// A known codec that Samsa does not read (gzip, snappy).
        public static let unsupportedCodec = Code("unsupportedCodec")
        /// Decompressing would exceed the configured limit.
        public static let decompressedSizeLimitExceeded = Code("decompressedSizeLimitExceeded")
        /// The compressed bytes are not a valid LZ4 or Zstd frame.
        public static let decompressionFailed = Code("decompressionFailed")
        /// The compressor reported an error.
        public static let compressionFailed = Code("compressionFailed")
        /// A batch must hold at least one record to be built.
        public static let emptyBatch = Code("emptyBatch")
    }

    public let code: Code
    /// Byte position of the problem (see the type's documentation for what it is relative to).
    public let position: Int
    public let message: String

    public init(_ code: Code, at position: Int, _ message: String) {
        self.code = code
        self.position = position
        self.message = message
    }

    public var description: String { "\(code) at byte \(position): \(message)" }

    static func truncated(at position: Int, reading what: StaticString) -> RecordBatchError {
        RecordBatchError(.truncatedRecord, at: position, "record data ends while reading \(what)")
    }

    static func varintOverflow(at position: Int) -> RecordBatchError {
        RecordBatchError(.varintOverflow, at: position, "varint is too long for its width")
    }
}
