public import NIOCore

extension RecordBatch {
    /// An iterator over the batch's records, decompressing the records section first if needed.
    public func records(limits: RecordBatchLimits = .default) throws(RecordBatchError) -> RecordIterator {
        RecordIterator(batch: self, section: try recordsSection(limits: limits))
    }

    /// Every record of the batch, decoded and checked.
    public func decodeRecords(limits: RecordBatchLimits = .default) throws(RecordBatchError) -> [Record] {
        var iterator = try records(limits: limits)
        var result: [Record] = []
        result.reserveCapacity(Int(min(recordCount, 1 << 16)))
        while let record = try iterator.next() { result.append(record) }
        return result
    }

    /// Calls `body` with each record in place, checked as `records()` checks it. The views' bytes are
    /// valid only during the call; nothing is allocated per record except for headers. Errors from
    /// `body` end the walk and are rethrown.
    public func forEachRecord(limits: RecordBatchLimits = .default, _ body: (RecordView) throws -> Void) throws {
        let section = try recordsSection(limits: limits)
        var sequence = RecordSequenceCheck(batch: self)
        try section.withUnsafeReadableBytes { raw in
            var cursor = ByteCursor(raw)
            while try sequence.expectsAnother(at: cursor.position, available: raw.count) {
                var record = ParsedRecord()
                let start = cursor.position
                try parseRecord(&cursor, into: &record, section: section)
                let offset = try sequence.accept(record, at: start)
                try body(RecordView(
                    offset: offset, timestamp: sequence.timestamp(of: record),
                    key: record.keyStart < 0 ? nil : UnsafeRawBufferPointer(rebasing: raw[record.keyStart..<(record.keyStart + record.keyLength)]),
                    value: record.valueStart < 0 ? nil : UnsafeRawBufferPointer(rebasing: raw[record.valueStart..<(record.valueStart + record.valueLength)]),
                    headers: record.headers))
                cursor.position = record.end
                cursor.end = raw.count
            }
        }
    }

    /// Calls `body` with the records section (decompressed if needed) and each record's offset,
    /// timestamp and key and value ranges in it, checked as `records()` checks them: for readers that
    /// keep one reference to the section instead of a slice per field. Errors from `body` end the
    /// walk and are rethrown.
    public func forEachRecordLocation(limits: RecordBatchLimits = .default, _ body: (ByteBuffer, RecordLocation) throws -> Void) throws {
        let section = try recordsSection(limits: limits)
        var sequence = RecordSequenceCheck(batch: self)
        var position = 0
        while try sequence.expectsAnother(at: position, available: section.readableBytes) {
            var record = ParsedRecord()
            try section.withUnsafeReadableBytes { raw throws(RecordBatchError) in
                var cursor = ByteCursor(raw, position: position)
                try parseRecord(&cursor, into: &record, section: section)
            }
            let offset = try sequence.accept(record, at: position)
            position = record.end
            try body(section, RecordLocation(
                offset: offset, timestamp: sequence.timestamp(of: record),
                key: record.keyStart < 0 ? nil : record.keyStart..<(record.keyStart + record.keyLength),
                value: record.valueStart < 0 ? nil : record.valueStart..<(record.valueStart + record.valueLength),
                headers: record.headers))
        }
    }

    /// The records section, decompressed when the batch is compressed.
    func recordsSection(limits: RecordBatchLimits) throws(RecordBatchError) -> ByteBuffer {
        let section = storedRecords
        guard compression != .none else { return section }
        let codec = compression
        return try section.withUnsafeReadableBytes { raw throws(RecordBatchError) in
            try RecordCompression.decompress(raw, codec: codec, limit: limits.maxDecompressedSize)
        }
    }
}

/// A record seen in place by `RecordBatch.forEachRecord`: its key and value point into the batch's
/// bytes and are valid only inside the closure. `Record` is the owning form.
public struct RecordView {
    public let offset: Int64
    public let timestamp: Int64
    public let key: UnsafeRawBufferPointer?
    public let value: UnsafeRawBufferPointer?
    public let headers: [RecordHeader]
}

/// Where a record lies in its batch's records section (`RecordBatch.forEachRecordLocation`): key and
/// value as ranges of the section's readable bytes, nil for null.
public struct RecordLocation: Sendable {
    public let offset: Int64
    public let timestamp: Int64
    public let key: Range<Int>?
    public let value: Range<Int>?
    public let headers: [RecordHeader]
}

/// Decodes a batch's records one at a time, each checked as it is read. `Record`'s key and value are
/// slices of the batch's (decompressed) bytes.
public struct RecordIterator: Sendable {
    private let section: ByteBuffer
    private var sequence: RecordSequenceCheck
    private var position = 0

    init(batch: RecordBatch, section: ByteBuffer) {
        self.section = section
        self.sequence = RecordSequenceCheck(batch: batch)
    }

    /// The next record, or `nil` after the last one.
    public mutating func next() throws(RecordBatchError) -> Record? {
        guard try sequence.expectsAnother(at: position, available: section.readableBytes) else { return nil }
        var record = ParsedRecord()
        let failure: RecordBatchError? = section.withUnsafeReadableBytes { raw in
            var cursor = ByteCursor(raw, position: position)
            do throws(RecordBatchError) {
                try parseRecord(&cursor, into: &record, section: section)
                return nil
            } catch {
                return error
            }
        }
        if let failure { throw failure }
        let offset = try sequence.accept(record, at: position)
        position = record.end
        let base = section.readerIndex
        return Record(
            offset: offset, timestamp: sequence.timestamp(of: record),
            key: record.keyStart < 0 ? nil : section.getSlice(at: base + record.keyStart, length: record.keyLength),
            value: record.valueStart < 0 ? nil : section.getSlice(at: base + record.valueStart, length: record.valueLength),
            headers: record.headers)
    }
}

/// The checks that span records: the header's count against the records present (and no trailing
/// bytes), offset deltas increasing and within the header's last offset delta.
struct RecordSequenceCheck: Sendable {
    private let baseOffset: Int64
    private let baseTimestamp: Int64
    private let maxTimestamp: Int64
    private let logAppendTime: Bool
    private let expectedCount: Int32
    private let lastOffsetDelta: Int32
    private var decoded: Int32 = 0
    private var previousOffsetDelta: Int32 = -1

    init(batch: RecordBatch) {
        baseOffset = batch.baseOffset
        baseTimestamp = batch.baseTimestamp
        maxTimestamp = batch.maxTimestamp
        logAppendTime = batch.timestampType == .logAppendTime
        expectedCount = batch.recordCount
        lastOffsetDelta = batch.lastOffsetDelta
    }

    /// True when another record should start at `position`; false at a clean end.
    func expectsAnother(at position: Int, available: Int) throws(RecordBatchError) -> Bool {
        if decoded == expectedCount {
            guard position == available else {
                throw RecordBatchError(
                    .recordCountMismatch, at: position,
                    "\(available - position) bytes follow the \(expectedCount) records the header counts")
            }
            return false
        }
        guard position < available else {
            throw RecordBatchError(
                .recordCountMismatch, at: position, "header counts \(expectedCount) records but only \(decoded) are present")
        }
        return true
    }

    /// Checks a parsed record's offset delta and returns its absolute offset.
    mutating func accept(_ record: ParsedRecord, at position: Int) throws(RecordBatchError) -> Int64 {
        guard record.offsetDelta > previousOffsetDelta, record.offsetDelta <= lastOffsetDelta else {
            throw RecordBatchError(
                .malformedRecord, at: position,
                "offset delta \(record.offsetDelta) after \(previousOffsetDelta) (last offset delta \(lastOffsetDelta))")
        }
        previousOffsetDelta = record.offsetDelta
        decoded += 1
        return baseOffset + Int64(record.offsetDelta)
    }

    func timestamp(of record: ParsedRecord) -> Int64 {
        logAppendTime ? maxTimestamp : baseTimestamp &+ record.timestampDelta
    }
}

/// Where one record's fields lie in the section; byte fields as positions, -1 for null.
struct ParsedRecord {
    var end = 0
    var timestampDelta: Int64 = 0
    var offsetDelta: Int32 = 0
    var keyStart = -1, keyLength = 0
    var valueStart = -1, valueLength = 0
    var headers: [RecordHeader] = []
}

/// Parses the record at the cursor: `[length][attributes][timestampDelta][offsetDelta][key][value][headers]`,
/// leaving the cursor bounded to the record (the caller moves on to `record.end`).
@inline(__always)
func parseRecord(_ cursor: inout ByteCursor, into record: inout ParsedRecord, section: ByteBuffer) throws(RecordBatchError) {
    let recordStart = cursor.position
    let length = Int(try cursor.readVarint())
    guard length >= 6 else {
        throw RecordBatchError(.malformedRecord, at: recordStart, "record length \(length) is below the minimum of 6")
    }
    let bodyStart = try cursor.skip(length, reading: "a record body")
    // Parse the body within the bounds the record's length gives it.
    let recordEnd = cursor.position
    cursor.position = bodyStart
    cursor.end = recordEnd
    _ = try cursor.readUInt8()  // record attributes: unused in v2
    record.timestampDelta = try cursor.readVarlong()
    record.offsetDelta = try cursor.readVarint()
    (record.keyStart, record.keyLength) = try readBytesField(&cursor, what: "key")
    (record.valueStart, record.valueLength) = try readBytesField(&cursor, what: "value")
    var headerCount = try cursor.readVarint()
    guard headerCount >= 0 else {
        throw RecordBatchError(.malformedRecord, at: cursor.position, "header count \(headerCount) is negative")
    }
    while headerCount > 0 {
        record.headers.append(try readHeader(&cursor, section: section))
        headerCount -= 1
    }
    guard cursor.position == recordEnd else {
        throw RecordBatchError(
            .malformedRecord, at: recordStart, "record length says \(length) bytes but its fields take \(cursor.position - bodyStart)")
    }
    record.end = recordEnd
}

private func readHeader(_ cursor: inout ByteCursor, section: ByteBuffer) throws(RecordBatchError) -> RecordHeader {
    let (nameStart, nameLength) = try readBytesField(&cursor, what: "header key")
    guard nameStart >= 0 else {
        throw RecordBatchError(.malformedRecord, at: cursor.position, "header key is null")
    }
    let name = String(decoding: UnsafeRawBufferPointer(rebasing: cursor.bytes[nameStart..<(nameStart + nameLength)]), as: UTF8.self)
    let (valueStart, valueLength) = try readBytesField(&cursor, what: "header value")
    let value = valueStart < 0 ? nil : section.getSlice(at: section.readerIndex + valueStart, length: valueLength)
    return RecordHeader(key: name, value: value)
}

/// A varint length then that many bytes; length -1 is null, returned as start -1.
@inline(__always)
private func readBytesField(_ cursor: inout ByteCursor, what: StaticString) throws(RecordBatchError) -> (start: Int, length: Int) {
    let at = cursor.position
    let length = Int(try cursor.readVarint())
    if length == -1 { return (-1, 0) }
    guard length >= 0 else {
        throw RecordBatchError(.malformedRecord, at: at, "\(what) length \(length) is negative")
    }
    return (try cursor.skip(length, reading: what), length)
}
