import NIOCore
import SamsaProtocol
import SamsaRecords

/// Checks the record batches of one partition in a Produce request before anything is written: magic 2
/// only, lengths, CRC-32C, codec, size limit, and (by parsing every record in place) the record count.
enum BatchValidation {
    struct Failure: Error {
        var code: ErrorCode
        var message: String
    }

    static func batches(in records: ByteBuffer, maxMessageBytes: Int) -> Result<[RecordBatch], Failure> {
        var remaining = records
        var batches: [RecordBatch] = []
        guard remaining.readableBytes > 0 else { return .failure(Failure(code: .corruptMessage, message: "no record batch")) }
        let limits = RecordBatchLimits(maxBatchSize: Int(Int32.max))
        while remaining.readableBytes > 0 {
            let start = remaining.readerIndex
            guard remaining.readableBytes >= RecordBatchLayout.sizeProbeLength,
                let magic = remaining.getInteger(at: start + RecordBatchLayout.magicOffset, as: Int8.self),
                let length = remaining.getInteger(at: start + RecordBatchLayout.batchLengthOffset, as: Int32.self)
            else { return .failure(Failure(code: .corruptMessage, message: "truncated record batch header")) }
            guard magic >= 2 else {
                return .failure(Failure(code: .unsupportedForMessageFormat, message: "message format v\(magic) is not supported (only record batches v2)"))
            }
            if Int(length) + RecordBatchLayout.lengthPrefixLength > maxMessageBytes {
                return .failure(Failure(code: .messageSizeTooLarge, message: "batch of \(length) bytes exceeds message.max.bytes \(maxMessageBytes)"))
            }
            let batch: RecordBatch
            do {
                batch = try RecordBatch(validating: remaining, limits: limits)
                let count = try batch.checkRecords()
                guard count == batch.recordCount, count > 0 else {
                    return .failure(Failure(code: .invalidRecord, message: "batch holds \(count) records, header says \(batch.recordCount)"))
                }
            } catch where error.code == .checksumMismatch || error.code == .lengthOutOfBounds || error.code == .badMagic {
                return .failure(Failure(code: .corruptMessage, message: error.description))
            } catch {
                return .failure(Failure(code: .invalidRecord, message: "\(error)"))
            }
            remaining.moveReaderIndex(forwardBy: batch.sizeInBytes)
            batches.append(batch)
        }
        return .success(batches)
    }
}
