import SamsaProtocol

/// One partition's idempotent-producer state (Kafka's `ProducerStateManager`): per producer id, its
/// epoch and the sequence ranges and offsets of its last 5 batches.
///
/// Rules, as Kafka applies them: an older epoch is INVALID_PRODUCER_EPOCH; a newer epoch must start at
/// sequence 0; a batch whose sequences match one of the last 5 is a duplicate and gets the original
/// offsets back without being written again; any other sequence than the last one + 1 is
/// OUT_OF_ORDER_SEQUENCE_NUMBER. A producer id this partition has no state for is accepted at any
/// sequence (its state may predate a restart: see the broker notes).
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
        var lastSequence: Int32 { batches.last?.lastSequence ?? -1 }
    }

    static let retainedBatches = 5

    enum Verdict: Equatable {
        case append
        case duplicate(baseOffset: Int64)
        case reject(ErrorCode)
    }

    private(set) var producers: [Int64: Entry] = [:]

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

    /// Records an appended batch.
    mutating func record(producerId: Int64, epoch: Int16, firstSequence: Int32, lastSequence: Int32, baseOffset: Int64) {
        var entry = producers[producerId].flatMap { $0.epoch == epoch ? $0 : nil } ?? Entry(epoch: epoch)
        entry.batches.append(BatchRecord(firstSequence: firstSequence, lastSequence: lastSequence, baseOffset: baseOffset))
        if entry.batches.count > Self.retainedBatches { entry.batches.removeFirst(entry.batches.count - Self.retainedBatches) }
        producers[producerId] = entry
    }
}
