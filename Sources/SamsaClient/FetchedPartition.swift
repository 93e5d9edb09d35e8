import NIOCore
public import SamsaRecords

/// One partition's part of a Fetch response: the complete record batches it carried (a batch cut off
/// by the size limit is dropped, to be fetched whole next time) and the partition's offsets.
public struct FetchedPartition: Sendable {
    public var topic: String
    public var partition: Int32
    /// The offset asked for; records before it (earlier in the first batch) are not part of the result.
    public var fetchOffset: Int64
    public var highWatermark: Int64
    public var lastStableOffset: Int64
    public var logStartOffset: Int64
    /// The batches, CRC-checked.
    public var batches: [RecordBatch]

    /// The offset to fetch from next.
    public var nextOffset: Int64 { batches.last.map { max($0.nextOffset, fetchOffset) } ?? fetchOffset }

    /// The records at or after `fetchOffset`, decoded.
    public func records() throws -> [Record] {
        var records: [Record] = []
        for batch in batches {
            for record in try batch.decodeRecords() where record.offset >= fetchOffset { records.append(record) }
        }
        return records
    }

    /// Calls `body` with each record at or after `fetchOffset` in place (nothing copied).
    public func forEachRecord(_ body: (RecordView) throws -> Void) throws {
        for batch in batches {
            try batch.forEachRecord { record in
                if record.offset >= fetchOffset { try body(record) }
            }
        }
    }

    /// Splits a partition's record bytes into whole batches.
    static func batches(in records: ByteBuffer?) throws -> [RecordBatch] {
        guard var remaining = records else { return [] }
        var batches: [RecordBatch] = []
        while let size = try RecordBatch.size(ofBatchAtStartOf: remaining, limits: RecordBatchLimits(maxBatchSize: Int(Int32.max))),
            size <= remaining.readableBytes
        {
            batches.append(try RecordBatch(validating: remaining, limits: RecordBatchLimits(maxBatchSize: Int(Int32.max))))
            remaining.moveReaderIndex(forwardBy: size)
        }
        return batches
    }
}

/// Which offset ListOffsets looks up.
public enum OffsetSpec: Sendable, Hashable {
    /// The log start offset.
    case earliest
    /// The log end offset (the next offset to be written).
    case latest
    /// The first offset whose record's timestamp is at or after this many milliseconds since 1970.
    case timestamp(Int64)

    var wireValue: Int64 {
        switch self {
        case .earliest: -2
        case .latest: -1
        case .timestamp(let milliseconds): milliseconds
        }
    }
}
