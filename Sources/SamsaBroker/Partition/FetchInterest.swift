import SamsaWaiting
import SamsaStorage
import Synchronization

/// What a long-polling fetch waits for (Kafka's `DelayedFetch.tryComplete`), checked without I/O
/// when the purgatory reports an append or a high-watermark move on one of its partitions: new
/// records must be visible to it (past the high watermark, for a consumer) and the partitions must
/// have grown by the bytes it still needs. Growth is counted in bytes appended, an overestimate (of
/// the bytes a read returns, which limits cap): a fetch may wake to find too little and wait again,
/// but an event that brings enough always completes it. A check reads two atomics per watch: 2,000
/// parked fetches cost an append 2,000 loads, no lock.
///
/// A fetch takes its watches (the logs' positions) before it reads, and waits with them only if the
/// read found too little: the first check counts what was appended since, so nothing appended
/// between the read and the wait is missed.
final class FetchInterest: Sendable {
    /// The partition a watch looks at: what it can tell without I/O or a lock.
    protocol Watched: AnyObject, Sendable {
        /// The end offset a reader with `limit` sees.
        func visibleEnd(_ limit: ReadLimit) -> Int64
        /// Bytes appended since the partition was opened here (only ever grows).
        var appendedBytes: Int { get }
    }

    /// What a fetch watches on one partition, and how far the log was before its read.
    struct Watch: Sendable {
        /// More growth than any fetch needs (its budget is at most 1 GiB), so sums of many stay far
        /// from overflowing.
        static let enough = Int(Int32.max)

        let partition: TopicPartition
        /// Nil for a partition the broker did not have: the fetch does not wait (its read answered
        /// UNKNOWN_TOPIC_OR_PARTITION, or found the partition just created).
        let log: (any Watched)?
        let limit: ReadLimit
        let seenEnd: Int64
        let seenBytes: Int

        init(_ partition: TopicPartition, log: (any Watched)?, limit: ReadLimit) {
            self.partition = partition
            self.log = log
            self.limit = limit
            seenEnd = log?.visibleEnd(limit) ?? 0
            seenBytes = log?.appendedBytes ?? 0
        }

        /// How much the log grew, for this fetch, since the watch was taken: 0 until records past
        /// `seenEnd` are visible, then the bytes appended (at least 1, at most `enough`).
        var growth: Int {
            guard let log else { return Self.enough }
            guard log.visibleEnd(limit) > seenEnd else { return 0 }
            return min(max(1, log.appendedBytes - seenBytes), Self.enough)
        }
    }

    private struct Growth {
        /// Per watch, as of the last look at its partition, and their sum: an event costs the same
        /// however many partitions the fetch reads.
        var perWatch: [Int]
        var total = 0
    }

    let watches: [Watch]
    /// Bytes the partitions must grow by before the fetch can be satisfied.
    let needed: Int
    private let growth: Mutex<Growth>

    /// `watches` name distinct partitions.
    init(_ watches: [Watch], needing bytes: Int) {
        self.watches = watches
        needed = bytes
        growth = Mutex(Growth(perWatch: Array(repeating: 0, count: watches.count)))
    }

    /// The purgatory's keys: watch `i` is key `i`.
    var partitions: [TopicPartition] { watches.map(\.partition) }

    /// The purgatory's check: true once the fetch may be satisfied, looking at the watch an event
    /// came from (its position; nil: all of them); nil while it may not.
    func satisfied(after event: Int?) -> Bool? {
        if let event { return look(at: event) ? true : nil }
        var reached = false
        for index in watches.indices { reached = look(at: index) }
        return reached ? true : nil
    }

    /// Updates the growth seen by watch `index`; whether the total now reaches what the fetch needs.
    private func look(at index: Int) -> Bool {
        let grown = watches[index].growth
        return growth.withLock { growth in
            growth.total += grown - growth.perWatch[index]
            growth.perWatch[index] = grown
            return growth.total >= needed
        }
    }
}

extension Partition: FetchInterest.Watched {
    func visibleEnd(_ limit: ReadLimit) -> Int64 {
        switch limit {
        case .logEnd: log.logEndOffset
        case .flushed: log.flushedOffset
        case .highWatermark: log.highWatermark
        }
    }
}
