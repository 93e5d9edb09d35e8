/// What a partition log must hold: every batch written, in offset order, with whether its flush policy
/// acknowledged it, the log start, and how far a power cut may not reach.
struct LogModel {
    struct Batch {
        var base: Int64
        var contents: BatchContents
        var next: Int64 { base + Int64(contents.count) }
    }

    /// Written batches (the log returned their offsets), oldest first.
    private(set) var batches: [Batch] = []
    var start: Int64 = 0
    /// Every offset below this was made durable (flush, close, a sync the log reported, a truncation's
    /// sync): a power cut must leave at least this much.
    var durableEnd: Int64 = 0
    /// Every offset below this was acknowledged by the flush policy: a process crash must keep it.
    var acknowledgedEnd: Int64 = 0

    var end: Int64 { batches.last?.next ?? start }
    var recordCount: Int { batches.reduce(0) { $0 + $1.contents.count } }

    /// Whether a batch ends exactly at `offset` (or the log is empty there).
    func isBoundary(_ offset: Int64) -> Bool {
        offset == start || batches.contains { $0.next == offset }
    }

    /// Adds batches the log wrote; concurrent appenders report out of order, the log's offsets decide.
    mutating func add(_ written: [Batch]) {
        batches += written
        batches.sort { $0.base < $1.base }
    }

    /// Keeps the batches wholly below `offset` (a truncation, or what a power cut left).
    mutating func truncate(to offset: Int64) {
        batches.removeAll { $0.next > offset }
        durableEnd = min(durableEnd, end)
        acknowledgedEnd = min(acknowledgedEnd, end)
    }

    /// A log opened (recovered): it synced what it holds, and its group commit starts afresh.
    mutating func reopened() {
        durableEnd = end
    }

    /// Drops batches below a new log start.
    mutating func advanceStart(to offset: Int64) {
        start = max(start, offset)
        batches.removeAll { $0.next <= start }
        durableEnd = max(durableEnd, start)
        acknowledgedEnd = max(acknowledgedEnd, start)
    }

    /// The batch holding `offset`, if any.
    func batch(holding offset: Int64) -> Batch? {
        batches.first { $0.base <= offset && offset < $0.next }
    }
}
