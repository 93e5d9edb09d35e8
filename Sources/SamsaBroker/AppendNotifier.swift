import SamsaStorage
import Synchronization

/// Wakes long-polling fetches when an append brings them what they wait for (Kafka's fetch
/// purgatory, without the timer wheel: the wait's deadline is a sleeping task, nobody polls).
///
/// Waiters are keyed by partition, and an append to a partition only looks at that partition's
/// waiters. Each tells, without I/O, whether the append could satisfy it: new records must be
/// visible to it (past the high watermark it reads to, for a consumer in a cluster) and the bytes
/// the partitions grew by since it registered must reach what it still needs (Kafka's
/// `DelayedFetch.tryComplete`). The growth is counted in log bytes, an overestimate (of the bytes
/// a read returns, which limits cap): a fetch may wake to find too little and wait again, but an
/// append that brings enough always wakes it.
///
/// A fetch takes its watches (the logs' positions) before it reads and registers them only if it
/// waits: registering counts what was appended since, so no append between the read and the wait is
/// missed, and a fetch that answers at once never touches the table.
final class AppendNotifier: Sendable {
    /// A waiter, in the table under the partition of its watch number `watch`.
    private struct Registration {
        let waiter: Waiter
        let watch: Int
    }

    private let waiters = Mutex<[TopicPartition: [ObjectIdentifier: Registration]]>([:])
    private let signals = Atomic<Int>(0)

    /// The log a waiter watches: what it can tell without I/O.
    protocol Watched: AnyObject, Sendable {
        /// The end offset a reader with `limit` sees.
        func visibleEnd(_ limit: ReadLimit) -> Int64
        /// Bytes of the log (all segments).
        var sizeInBytes: Int { get }
    }

    /// What a fetch watches on one partition, and how far the log was when it registered.
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
            seenBytes = log?.sizeInBytes ?? 0
        }

        /// How much the log grew, for this fetch, since it registered: 0 until records past
        /// `seenEnd` are visible, then the bytes appended (at least 1, at most `enough`). `sizes`
        /// keeps each log's size for the other waiters of one append.
        func growth(sizes: inout [ObjectIdentifier: Int]) -> Int {
            guard let log else { return Self.enough }
            guard log.visibleEnd(limit) > seenEnd else { return 0 }
            let size = sizes[ObjectIdentifier(log)] ?? log.sizeInBytes
            sizes[ObjectIdentifier(log)] = size
            return min(max(1, size - seenBytes), Self.enough)
        }
    }

    /// One waiting fetch: signalled at most once.
    final class Waiter: Sendable {
        private struct State {
            var signalled = false
            var continuation: CheckedContinuation<Void, Never>?
            /// Growth per watch, as of the last look at its partition, and their sum: an append
            /// costs the same however many partitions the fetch reads.
            var grown: [Int]
            var total = 0
        }
        private let state: Mutex<State>
        let watches: [Watch]
        /// Bytes the partitions must grow by before the fetch can be satisfied.
        let needed: Int

        init(_ watches: [Watch], needing bytes: Int) {
            self.watches = watches
            needed = bytes
            state = Mutex(State(grown: Array(repeating: 0, count: watches.count)))
        }

        /// Looks at the growth of watch number `index`; true when the fetch may now be satisfied
        /// (the first time).
        fileprivate func grew(watch index: Int, sizes: inout [ObjectIdentifier: Int]) -> Bool {
            let growth = watches[index].growth(sizes: &sizes)
            return state.withLock { state in
                state.total += growth - state.grown[index]
                state.grown[index] = growth
                return !state.signalled && state.total >= needed
            }
        }

        func signal() {
            let continuation = state.withLock { state -> CheckedContinuation<Void, Never>? in
                state.signalled = true
                defer { state.continuation = nil }
                return state.continuation
            }
            continuation?.resume()
        }

        /// Returns once signalled (at once if already).
        func wait() async {
            await withCheckedContinuation { continuation in
                let resumeNow = state.withLock { state -> Bool in
                    if state.signalled { return true }
                    state.continuation = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        }
    }

    /// A waiter for appends to the watched partitions (distinct) that bring `bytes` more than the
    /// fetch read; signalled at once if appends since the watches were taken already did.
    /// `unregister` it when done.
    func register(_ watches: [Watch], needing bytes: Int) -> Waiter {
        let waiter = Waiter(watches, needing: bytes)
        waiters.withLock { table in
            for (index, watch) in watches.enumerated() {
                table[watch.partition, default: [:]][ObjectIdentifier(waiter)] = Registration(waiter: waiter, watch: index)
            }
        }
        // Appends from now on are the table's; those before, these looks'.
        var sizes: [ObjectIdentifier: Int] = [:]
        var ready = false
        for index in watches.indices where waiter.grew(watch: index, sizes: &sizes) { ready = true }
        if ready { waiter.signal() }
        return waiter
    }

    func unregister(_ waiter: Waiter) {
        waiters.withLock { table in
            for watch in waiter.watches {
                table[watch.partition]?[ObjectIdentifier(waiter)] = nil
                if table[watch.partition]?.isEmpty == true { table[watch.partition] = nil }
            }
        }
    }

    /// Fetches waiting for appends now (for tests that must act while one waits).
    var waitingFetches: Int {
        waiters.withLock { Set($0.values.flatMap(\.keys)).count }
    }

    /// Fetches woken by appends after they registered, so far (tests: which appends woke whom).
    var wakeUps: Int { signals.load(ordering: .relaxed) }

    /// An append to `partition` (or its high watermark moved): wakes the fetches it may satisfy.
    /// The checks run outside the table's lock, each waiter under its own.
    func appended(to partition: TopicPartition) {
        let watching = waiters.withLock { $0[partition].map { Array($0.values) } ?? [] }
        var sizes: [ObjectIdentifier: Int] = [:]
        for registration in watching where registration.waiter.grew(watch: registration.watch, sizes: &sizes) {
            signals.add(1, ordering: .relaxed)
            registration.waiter.signal()
        }
    }

    /// Waits until the waiter is signalled or the deadline passes (or the task is cancelled).
    static func wait(_ waiter: Waiter, until deadline: ContinuousClock.Instant) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { try? await Task.sleep(until: deadline, clock: .continuous) }
            group.addTask {
                await withTaskCancellationHandler {
                    await waiter.wait()
                } onCancel: {
                    waiter.signal()
                }
            }
            await group.next()
            group.cancelAll()
        }
    }
}

extension PartitionLog: AppendNotifier.Watched {
    func visibleEnd(_ limit: ReadLimit) -> Int64 {
        switch limit {
        case .logEnd: logEndOffset
        case .flushed: flushedOffset
        case .highWatermark: highWatermark
        }
    }
}
