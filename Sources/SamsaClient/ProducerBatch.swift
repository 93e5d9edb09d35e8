import NIOCore
import SamsaRecords

/// A topic and partition.
struct TopicPartitionKey: Hashable, Sendable {
    var topic: String
    var partition: Int32
}

/// Records of one partition on their way to the broker: filled while open, then built (compressed,
/// CRC) once, and resent as built when a retriable error sends it back. A class so the hot path
/// mutates it in place (no copy of the struct per record).
final class ProducerBatch: @unchecked Sendable {
    // @unchecked: a batch has one owner at a time — the producer's state (under its lock) while open or
    // queued, then the one request that took it out; it is handed on, never shared.
    let destination: TopicPartitionKey
    var builder: RecordBatchBuilder?
    var built: RecordBatch?
    /// Callbacks by the record's position in the batch.
    var callbacks: [(position: Int32, callback: DeliveryCallback)] = []
    /// Each record's opaque value, in order, when the producer has a delivery report (nil otherwise).
    var opaques: [UInt64]?
    /// Whether the batch is still the open one of its partition (the producer's fast path checks it).
    var isOpen = true
    var recordCount: Int32 = 0
    /// Bytes reserved from the producer's buffer (the uncompressed size).
    var reservedBytes = 0
    /// When the first record went in (monotonic nanoseconds).
    let createdAt: UInt64
    var attempts = 0

    init(destination: TopicPartitionKey, compression: CompressionCodec, capacity: Int, now: UInt64, reportsDelivery: Bool) {
        self.destination = destination
        self.builder = RecordBatchBuilder(compression: compression, capacity: capacity)
        self.createdAt = now
        if reportsDelivery { opaques = [] }
    }

    func append(
        timestamp: Int64, key: ByteBuffer?, value: ByteBuffer?, headers: [RecordHeader], reserving bytes: Int, opaque: UInt64,
        callback: DeliveryCallback?
    ) {
        builder!.append(timestamp: timestamp, key: key, value: value, headers: headers)
        if let callback { callbacks.append((recordCount, callback)) }
        opaques?.append(opaque)
        recordCount += 1
        reservedBytes += bytes
    }

    /// Bytes the batch would send (its uncompressed size until built).
    var size: Int { built?.sizeInBytes ?? builder?.uncompressedSize ?? 0 }

    /// Builds the batch if it is not built yet.
    func build() throws(RecordBatchError) -> RecordBatch {
        if let built { return built }
        // Take the builder out first: a second reference would make build() copy the records.
        var builder = self.builder!
        self.builder = nil
        let batch = try builder.build()
        self.built = batch
        return batch
    }

    /// Every callback with the same outcome, offsets counted from `baseOffset` (-1 when unknown), then
    /// the batch's delivery report.
    func complete(_ outcome: Result<Int64, KafkaClientError>, report: DeliveryReportHandler?) {
        defer {
            if let report {
                report(DeliveryReport(
                    topic: destination.topic, partition: destination.partition, recordCount: Int(recordCount),
                    result: outcome.map { $0 < 0 ? -1 : $0 }, opaques: opaques ?? []))
            }
        }
        for (position, callback) in callbacks {
            switch outcome {
            case .success(let base):
                callback(.success(KafkaRecordMetadata(topic: destination.topic, partition: destination.partition, offset: base < 0 ? -1 : base + Int64(position))))
            case .failure(let error):
                callback(.failure(error))
            }
        }
    }
}
