import NIOCore

extension RecordBatch {
    /// An iterator over the batch's records, decompressing the records section first if needed.
    public func records(limits: RecordBatchLimits = .default) throws(RecordBatchError) -> RecordIterator {
        var section = storedRecords
        if compression != .none {
            let codec = compression
            section = try section.withUnsafeReadableBytes { raw throws(RecordBatchError) in
                try RecordCompression.decompress(raw, codec: codec, limit: limits.maxDecompressedSize)
            }
        }
        return RecordIterator(batch: self, section: section)
    }

    /// Every record of the batch, decoded and checked.
    public func decodeRecords(limits: RecordBatchLimits = .default) throws(RecordBatchError) -> [Record] {
        var iterator = try records(limits: limits)
        var result: [Record] = []
        result.reserveCapacity(Int(min(recordCount, 1 << 16)))
        while let record = try iterator.next() { result.append(record) }
        return result
    }
}

/// Decodes a batch's records one at a time. Each record is checked as it is read: field bounds, varint
/// widths, its length against its content, offset deltas increasing and within the header's last
/// offset delta; at the end, the count against the header and no trailing bytes.
public struct RecordIterator: Sendable {
    private let section: ByteBuffer
    private let baseOffset: Int64
    private let baseTimestamp: Int64
    private let maxTimestamp: Int64
    private let logAppendTime: Bool
    private let expectedCount: Int32
    private let lastOffsetDelta: Int32
    private var position = 0
    private var decoded: Int32 = 0
    private var previousOffsetDelta: Int32 = -1

    init(batch: RecordBatch, section: ByteBuffer) {
        self.section = section
        self.baseOffset = batch.baseOffset
        self.baseTimestamp = batch.baseTimestamp
        self.maxTimestamp = batch.maxTimestamp
        self.logAppendTime = batch.timestampType == .logAppendTime
        self.expectedCount = batch.recordCount
        self.lastOffsetDelta = batch.lastOffsetDelta
    }

    /// The next record, or `nil` after the last one.
    public mutating func next() throws(RecordBatchError) -> Record? {
        let available = section.readableBytes
        if decoded == expectedCount {
            guard position == available else {
                throw RecordBatchError(
                    .recordCountMismatch, at: position,
                    "\(available - position) bytes follow the \(expectedCount) records the header counts")
            }
            return nil
        }
        guard position < available else {
            throw RecordBatchError(
                .recordCountMismatch, at: position, "header counts \(expectedCount) records but only \(decoded) are present")
        }
        let section = self.section
        let start = position
        let parsed = section.withUnsafeReadableBytes { raw -> Result<ParsedRecord, RecordBatchError> in
            var cursor = ByteCursor(raw, position: start)
            do throws(RecordBatchError) {
                return .success(try Self.parseRecord(&cursor, section: section))
            } catch {
                return .failure(error)
            }
        }
        let record: ParsedRecord
        switch parsed {
        case .success(let value): record = value
        case .failure(let error): throw error
        }
        guard record.offsetDelta > previousOffsetDelta, record.offsetDelta <= lastOffsetDelta else {
            throw RecordBatchError(
                .malformedRecord, at: start,
                "offset delta \(record.offsetDelta) after \(previousOffsetDelta) (last offset delta \(lastOffsetDelta))")
        }
        previousOffsetDelta = record.offsetDelta
        position = record.end
        decoded += 1
        let readerIndex = section.readerIndex
        return Record(
            offset: baseOffset + Int64(record.offsetDelta),
            timestamp: logAppendTime ? maxTimestamp : baseTimestamp &+ record.timestampDelta,
            key: record.keyStart < 0 ? nil : section.getSlice(at: readerIndex + record.keyStart, length: record.keyLength),
            value: record.valueStart < 0
                ? nil : section.getSlice(at: readerIndex + record.valueStart, length: record.valueLength),
            headers: record.headers)
    }

    private struct ParsedRecord {
        var end: Int
        var timestampDelta: Int64
        var offsetDelta: Int32
        var keyStart: Int, keyLength: Int
        var valueStart: Int, valueLength: Int
        var headers: [RecordHeader]
    }

    /// Parses one record at the cursor. Byte fields are returned as positions (-1 for null).
    private static func parseRecord(_ outer: inout ByteCursor, section: ByteBuffer) throws(RecordBatchError)
        -> ParsedRecord
    {
        let recordStart = outer.position
        let length = Int(try outer.readVarint())
        guard length >= 6 else {
            throw RecordBatchError(.malformedRecord, at: recordStart, "record length \(length) is below the minimum of 6")
        }
        let bodyStart = try outer.skip(length, reading: "a record body")
        // Parse the body with a cursor that ends where the record's length says it ends.
        var cursor = ByteCursor(UnsafeRawBufferPointer(rebasing: outer.bytes[..<(bodyStart + length)]), position: bodyStart)
        _ = try cursor.readUInt8()  // record attributes: unused in v2
        let timestampDelta = try cursor.readVarlong()
        let offsetDelta = try cursor.readVarint()
        let (keyStart, keyLength) = try readBytesField(&cursor, what: "key")
        let (valueStart, valueLength) = try readBytesField(&cursor, what: "value")
        let headerCount = try cursor.readVarint()
        guard headerCount >= 0 else {
            throw RecordBatchError(.malformedRecord, at: cursor.position, "header count \(headerCount) is negative")
        }
        var headers: [RecordHeader] = []
        for _ in 0..<headerCount {
            let (nameStart, nameLength) = try readBytesField(&cursor, what: "header key")
            guard nameStart >= 0 else {
                throw RecordBatchError(.malformedRecord, at: cursor.position, "header key is null")
            }
            let name = String(decoding: UnsafeRawBufferPointer(rebasing: cursor.bytes[nameStart..<(nameStart + nameLength)]), as: UTF8.self)
            let (headerValueStart, headerValueLength) = try readBytesField(&cursor, what: "header value")
            let value = headerValueStart < 0
                ? nil : section.getSlice(at: section.readerIndex + headerValueStart, length: headerValueLength)
            headers.append(RecordHeader(key: name, value: value))
        }
        guard cursor.position == bodyStart + length else {
            throw RecordBatchError(
                .malformedRecord, at: recordStart,
                "record length says \(length) bytes but its fields take \(cursor.position - bodyStart)")
        }
        return ParsedRecord(
            end: cursor.position, timestampDelta: timestampDelta, offsetDelta: offsetDelta,
            keyStart: keyStart, keyLength: keyLength, valueStart: valueStart, valueLength: valueLength, headers: headers)
    }

    /// A varint length then that many bytes; length -1 is null, returned as start -1.
    private static func readBytesField(_ cursor: inout ByteCursor, what: StaticString) throws(RecordBatchError)
        -> (start: Int, length: Int)
    {
        let at = cursor.position
        let length = Int(try cursor.readVarint())
        if length == -1 { return (-1, 0) }
        guard length >= 0 else {
            throw RecordBatchError(.malformedRecord, at: at, "\(what) length \(length) is negative")
        }
        return (try cursor.skip(length, reading: what), length)
    }
}
