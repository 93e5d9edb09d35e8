import NIOCore
import SamsaRecords
import SamsaStorage

/// A partition's idempotent-producer state as of an offset, kept in `<partition>/producer.snapshot`
/// (Kafka's `.snapshot` files): written at each segment roll, so a restart replays only the batches
/// after it instead of the whole log, and a producer whose last batches are in older segments is
/// still known.
///
/// The snapshot names the last batch it covers (base offset and CRC). It is used only if that batch is
/// still in the log as it was: a log that lost its tail in a crash (or was truncated and written again)
/// makes it stale, and the state is then rebuilt from the active segment as without one.
///
/// Layout (big-endian): "SPS2", covered end (int64), last batch base offset (int64) and CRC (uint32),
/// producer count (int32), per producer: id (int64), epoch (int16), last append time (int64, wall-clock
/// milliseconds, for `producer.id.expiration.ms`), batch count (int8) and per batch first and last
/// sequence (int32 each) and base offset (int64); then CRC-32C of all of it (uint32). A snapshot of the
/// previous layout ("SPS1", without the append time) is still read: its producers count as having
/// appended when it is loaded.
struct ProducerSnapshot {
    static let fileName = "producer.snapshot"
    private static let magic: [UInt8] = Array("SPS2".utf8)
    private static let magicWithoutTimes: [UInt8] = Array("SPS1".utf8)

    /// Every batch below this offset is in `state`; replay resumes here.
    var coveredEnd: Int64
    var lastBatchBaseOffset: Int64
    var lastBatchCRC: UInt32
    var state: ProducerState

    static func path(in directory: String) -> String { "\(directory)/\(fileName)" }

    func write(to directory: String, files: any FileSystem) throws(StorageError) {
        var buffer = ByteBuffer()
        buffer.writeBytes(Self.magic)
        buffer.writeInteger(coveredEnd)
        buffer.writeInteger(lastBatchBaseOffset)
        buffer.writeInteger(lastBatchCRC)
        let producers = state.producers.sorted { $0.key < $1.key }
        buffer.writeInteger(Int32(clamping: producers.count))
        for (id, entry) in producers {
            buffer.writeInteger(id)
            buffer.writeInteger(entry.epoch)
            buffer.writeInteger(entry.lastAppendMs)
            buffer.writeInteger(Int8(clamping: entry.batches.count))
            for batch in entry.batches {
                buffer.writeInteger(batch.firstSequence)
                buffer.writeInteger(batch.lastSequence)
                buffer.writeInteger(batch.baseOffset)
            }
        }
        buffer.writeInteger(CRC32C.checksum(buffer))
        try files.writeFileAtomically(Self.path(in: directory), Array(buffer.readableBytesView))
    }

    /// The snapshot in `directory`, if there is one that decodes and whose last batch is in `log`
    /// unchanged; nil otherwise (a damaged or stale snapshot is ignored: the log is the truth).
    static func load(
        from directory: String, matching log: PartitionLog, files: any FileSystem, expirationMs: Int64 = ProducerState.defaultExpirationMs
    ) -> ProducerSnapshot? {
        let path = path(in: directory)
        guard files.fileExists(path), let bytes = try? files.readFile(path), let snapshot = decode(bytes, expirationMs: expirationMs) else { return nil }
        guard snapshot.coveredEnd <= log.logEndOffset, snapshot.lastBatchBaseOffset >= log.logStartOffset,
            let read = try? log.read(from: snapshot.lastBatchBaseOffset, maxBytes: 1),
            let batch = try? RecordBatch(validating: read),
            batch.baseOffset == snapshot.lastBatchBaseOffset, batch.crc == snapshot.lastBatchCRC, batch.nextOffset == snapshot.coveredEnd
        else { return nil }
        return snapshot
    }

    /// Decodes a snapshot; `loadedAtMs` stands for the append times a snapshot without them lacks.
    static func decode(
        _ bytes: [UInt8], expirationMs: Int64 = ProducerState.defaultExpirationMs, loadedAtMs: Int64 = WallClock.nowMilliseconds
    ) -> ProducerSnapshot? {
        guard bytes.count >= 4 + 8 + 8 + 4 + 4 + 4 else { return nil }
        let withTimes = Array(bytes.prefix(4)) == magic
        guard withTimes || Array(bytes.prefix(4)) == magicWithoutTimes else { return nil }
        var body = ByteBuffer(bytes: bytes.dropLast(4))
        var trailer = ByteBuffer(bytes: bytes.suffix(4))
        guard trailer.readInteger(as: UInt32.self) == CRC32C.checksum(body) else { return nil }
        body.moveReaderIndex(forwardBy: 4)
        guard let coveredEnd = body.readInteger(as: Int64.self), let lastBase = body.readInteger(as: Int64.self),
            let lastCRC = body.readInteger(as: UInt32.self), let count = body.readInteger(as: Int32.self), count >= 0
        else { return nil }
        var state = ProducerState(expirationMs: expirationMs)
        for _ in 0..<count {
            guard let id = body.readInteger(as: Int64.self), let epoch = body.readInteger(as: Int16.self),
                let lastAppendMs = withTimes ? body.readInteger(as: Int64.self) : loadedAtMs,
                let batches = body.readInteger(as: Int8.self), batches >= 0, batches <= ProducerState.retainedBatches
            else { return nil }
            var entry = ProducerState.Entry(epoch: epoch, lastAppendMs: lastAppendMs)
            for _ in 0..<batches {
                guard let first = body.readInteger(as: Int32.self), let last = body.readInteger(as: Int32.self),
                    let base = body.readInteger(as: Int64.self)
                else { return nil }
                entry.batches.append(ProducerState.BatchRecord(firstSequence: first, lastSequence: last, baseOffset: base))
            }
            state.restore(producerId: id, entry)
        }
        guard body.readableBytes == 0 else { return nil }
        // Producers that expired while the broker was down are not brought back.
        state.removeExpired(at: loadedAtMs)
        return ProducerSnapshot(coveredEnd: coveredEnd, lastBatchBaseOffset: lastBase, lastBatchCRC: lastCRC, state: state)
    }
}
