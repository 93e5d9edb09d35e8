import NIOCore
import SamsaProtocol
import SamsaRecords

/// Checks the record batches of one partition in a Produce request before anything is written: magic 2
/// only, lengths, CRC-32C, codec, size limit, (by parsing every record in place) the record count, and
/// what Kafka refuses from clients (`LogValidator.validateBatch`): an offset range that disagrees with
/// the count, control batches, a producer id with a negative sequence, and transactional batches
/// (this broker has no transactions: without a transactional id Kafka answers
/// TRANSACTIONAL_ID_AUTHORIZATION_FAILED, with one the partition cannot be in a transaction).
enum BatchValidation {
    struct Failure: Error, Sendable {
        var code: ErrorCode
        var message: String
    }

    /// The largest batch any log accepts, whatever `max.message.bytes` says: the size storage reads
    /// back in recovery and replication (`RecordBatchLimits.default`), so an acknowledged batch is
    /// always recoverable. `max.message.bytes` above it is refused (TopicConfig) or clamped.
    static let maxBatchBytes = RecordBatchLimits.default.maxBatchSize

    /// The request's batches, checked, each in the topic's codec: with a `compression` other than
    /// `producer`, a batch in another codec is recompressed (`BatchRecompression`), its records checked
    /// in the same walk.
    static func batches(
        in records: ByteBuffer, maxMessageBytes: Int, transactionalId: String? = nil, compression: BrokerCompressionType = .producer
    ) -> Result<[RecordBatch], Failure> {
        var remaining = records
        var batches: [RecordBatch] = []
        guard remaining.readableBytes > 0 else { return .failure(Failure(code: .corruptMessage, message: "no record batch")) }
        let maxMessageBytes = min(maxMessageBytes, maxBatchBytes)
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
            do throws(RecordBatchError) {
                batch = try RecordBatch(validating: remaining, limits: limits)
            } catch {
                return .failure(failure(for: error))
            }
            // The header's promises first: a refused batch is never decompressed.
            if let refusal = refusal(of: batch, transactionalId: transactionalId) { return .failure(refusal) }
            do throws(Failure) {
                if let codec = compression.codec, compression.recompresses(batch.compression) {
                    batches.append(try BatchRecompression.recompress(batch, to: codec, maxMessageBytes: maxMessageBytes))
                } else {
                    try checkRecords(of: batch)
                    batches.append(batch)
                }
            } catch {
                return .failure(error)
            }
            remaining.moveReaderIndex(forwardBy: batch.sizeInBytes)
        }
        return .success(batches)
    }

    /// Checks every record of a batch stored as produced (decompressing it if compressed).
    private static func checkRecords(of batch: RecordBatch) throws(Failure) {
        let count: Int32
        do throws(RecordBatchError) {
            count = try batch.checkRecords()
        } catch {
            throw failure(for: error)
        }
        try checkCount(count, of: batch)
    }

    /// The records found must be the count the header gives, and at least one.
    static func checkCount(_ count: Int32, of batch: RecordBatch) throws(Failure) {
        guard count == batch.recordCount, count > 0 else {
            throw Failure(code: .invalidRecord, message: "batch holds \(count) records, header says \(batch.recordCount)")
        }
    }

    /// A malformed batch's answer: damaged bytes are CORRUPT_MESSAGE, anything else INVALID_RECORD.
    static func failure(for error: RecordBatchError) -> Failure {
        if error.code == .checksumMismatch || error.code == .lengthOutOfBounds || error.code == .badMagic {
            return Failure(code: .corruptMessage, message: error.description)
        }
        return Failure(code: .invalidRecord, message: "\(error)")
    }

    /// What Kafka refuses in a client's well-formed batch, or nil.
    private static func refusal(of batch: RecordBatch, transactionalId: String?) -> Failure? {
        if Int64(batch.lastOffsetDelta) + 1 != Int64(batch.recordCount) {
            return Failure(
                code: .invalidRecord,
                message: "inconsistent batch offset range [0, \(batch.lastOffsetDelta)] and count of records \(batch.recordCount)")
        }
        if batch.isControlBatch {
            return Failure(code: .invalidRecord, message: "clients are not allowed to write control records")
        }
        if batch.hasDeleteHorizon {
            // Else the cleaner would take the client's base timestamp for a horizon it set, and drop tombstones early.
            return Failure(code: .invalidRecord, message: "clients are not allowed to set the delete horizon attribute (it is the log cleaner's)")
        }
        if batch.producerId >= 0 && batch.baseSequence < 0 {
            return Failure(code: .invalidRecord, message: "invalid sequence number \(batch.baseSequence) in record batch with producerId \(batch.producerId)")
        }
        if batch.isTransactional {
            guard transactionalId != nil else {
                return Failure(code: .transactionalIdAuthorizationFailed, message: "a transactional batch needs the request's transactional id")
            }
            return Failure(code: .invalidTxnState, message: "the partition is not in a transaction (transactions are not supported)")
        }
        return nil
    }
}
