import SamsaProtocol
import SamsaRecords

/// One partition's idempotent-producer state (Kafka's `ProducerStateManager`): per producer id, its
/// epoch and the sequence ranges and offsets of its last 5 batches.
///
/// Rules, as Kafka applies them: an older epoch is INVALID_PRODUCER_EPOCH; a newer epoch must start at
/// sequence 0; a batch whose sequences match one of the last 5 is a duplicate and gets the original
/// offsets back without being written again; any other sequence than the last one + 1 is
/// OUT_OF_ORDER_SEQUENCE_NUMBER. A producer id this partition has no state for is accepted at any
/// sequence (its state may predate a restart: see the broker notes).
///
/// A producer that appended nothing for `expirationMs` (`producer.id.expiration.ms`, 24 hours) is
/// forgotten, as Kafka forgets it, so producer ids that come and go (or a client inventing a million
/// of them) do not hold memory for ever. Times are the broker's wall clock at each append (Kafka uses
/// the batch's own timestamp, which a client could set far in the future). Expired producers are
/// dropped by a sweep that `record` runs at most once per `sweepIntervalMs`.
///
/// Not thread-safe: owned by its partition's serial writer.
struct ProducerState {
    struct BatchRecord {
        var firstSequence: Int32
        var lastSequence: Int32
        var baseOffset: Int64
    }

    struct Entry {
        var epoch: Int16
        var batches: [BatchRecord] = []
        /// Wall-clock milliseconds of the producer's last append here.
        var lastAppendMs: Int64
        var lastSequence: Int32 { batches.last?.lastSequence ?? -1 }
    }

    static let retainedBatches = 5
    /// `producer.id.expiration.ms`'s default: 24 hours.
    static let defaultExpirationMs: Int64 = 86_400_000
    /// How often expired producers are looked for (Kafka's `producer.id.expiration.check.interval.ms`
    /// default, 10 minutes; sooner when the expiration itself is shorter).
    var sweepIntervalMs: Int64 { min(expirationMs, 600_000) }

    enum Verdict: Equatable {
        case append
        case duplicate(baseOffset: Int64)
        case reject(ErrorCode)
    }

    private(set) var producers: [Int64: Entry] = [:]
    let expirationMs: Int64
    private var nextSweepMs = Int64.min

    init(expirationMs: Int64 = Self.defaultExpirationMs) {
        // Capped at 2^52 ms (142,000 years) so no arithmetic on it overflows.
        self.expirationMs = min(max(1, expirationMs), 1 << 52)
    }

    /// What to do with a batch from `producerId` (>= 0) with `epoch` and sequences `first...last`.
    func check(producerId: Int64, epoch: Int16, firstSequence: Int32, lastSequence: Int32) -> Verdict {
        guard let entry = producers[producerId] else { return .append }
        if epoch < entry.epoch { return .reject(.invalidProducerEpoch) }
        if epoch > entry.epoch { return firstSequence == 0 ? .append : .reject(.outOfOrderSequenceNumber) }
        if let earlier = entry.batches.first(where: { $0.firstSequence == firstSequence && $0.lastSequence == lastSequence }) {
            return .duplicate(baseOffset: earlier.baseOffset)
        }
        let expected = entry.lastSequence == Int32.max ? 0 : entry.lastSequence + 1
        return firstSequence == expected ? .append : .reject(.outOfOrderSequenceNumber)
    }

    /// Records an appended batch, appended at `nowMs` (wall-clock milliseconds), and drops expired
    /// producers when a sweep is due.
    mutating func record(
        producerId: Int64, epoch: Int16, firstSequence: Int32, lastSequence: Int32, baseOffset: Int64, at nowMs: Int64 = WallClock.nowMilliseconds
    ) {
        var entry = producers[producerId].flatMap { $0.epoch == epoch ? $0 : nil } ?? Entry(epoch: epoch, lastAppendMs: nowMs)
        entry.batches.append(BatchRecord(firstSequence: firstSequence, lastSequence: lastSequence, baseOffset: baseOffset))
        if entry.batches.count > Self.retainedBatches { entry.batches.removeFirst(entry.batches.count - Self.retainedBatches) }
        entry.lastAppendMs = max(entry.lastAppendMs, nowMs)
        producers[producerId] = entry
        if nowMs >= nextSweepMs {
            removeExpired(at: nowMs)
            nextSweepMs = nowMs + sweepIntervalMs
        }
    }

    /// `duration` in whole milliseconds, at most 2^52 (the cap on `expirationMs`).
    static func milliseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        guard seconds < (1 << 52) / 1000 else { return 1 << 52 }
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }

    /// Puts back a producer's entry as a snapshot kept it.
    mutating func restore(producerId: Int64, _ entry: Entry) {
        producers[producerId] = entry
    }

    /// The producers that appended something in the `expirationMs` before `nowMs`.
    func active(at nowMs: Int64) -> [Int64: Entry] {
        let cutoff = nowMs - expirationMs
        return producers.filter { $0.value.lastAppendMs > cutoff }
    }

    /// Forgets every producer that appended nothing in the `expirationMs` before `nowMs`.
    mutating func removeExpired(at nowMs: Int64) {
        producers = active(at: nowMs)
    }
}
