import Dispatch
import Synchronization

/// The one owner of a log's durable end: coalesces durability requests into shared fdatasync calls
/// (group commit) and is the only place that moves the durable end, up (a sync completed) or down (a
/// truncation).
///
/// An appender asks for its offset to become durable. If no flush is running, one starts at once on a
/// dedicated queue (never on Swift's cooperative threads: fdatasync blocks); appenders arriving while a
/// flush runs are served together by the next one, as ZooKeeper's and BookKeeper's journals batch their
/// syncs. A flush first captures the log end, then syncs, so it covers exactly the appends that had
/// returned from `write` before it began. A failed flush fails every waiter and every later request:
/// data the failed sync may have lost is never acknowledged.
///
/// Truncation: the log calls `truncated(to:)` while it holds its writer lock. That lowers the durable
/// end and bumps a generation; a sync captures the generation with the log end (under the same writer
/// lock), and a sync that began before a cut cannot raise the durable end when it completes (Redpanda's
/// segment `generation_id`). Waiters for offsets that the cut removed are failed: what they waited for
/// no longer exists.
final class GroupCommit: Sendable {
    /// What a sync covered: the log end captured before it began, and the truncation generation then.
    struct Coverage: Sendable {
        var end: Int64
        var generation: UInt64
    }

    private struct Waiter {
        var offset: Int64
        /// Called once, with nil when durable or the error that stopped flushing.
        var complete: @Sendable (StorageError?) -> Void
    }

    private struct State {
        var waiters: [Waiter] = []
        var flushing = false
        var durableEnd: Int64
        var generation: UInt64 = 0
        var failure: StorageError?
    }

    private let state: Mutex<State>
    /// `durableEnd`, for readers that must not take the lock (reads limited to the flushed offset).
    private let publishedDurableEnd: Atomic<Int64>
    private let queue: DispatchQueue
    private let label: String
    /// Syncs what is written and returns what the sync covered.
    private let sync: @Sendable () throws(StorageError) -> Coverage

    init(label: String, durableEnd: Int64, sync: @escaping @Sendable () throws(StorageError) -> Coverage) {
        self.state = Mutex(State(durableEnd: durableEnd))
        self.publishedDurableEnd = Atomic(durableEnd)
        self.queue = DispatchQueue(label: "samsa.flush.\(label)")
        self.label = label
        self.sync = sync
    }

    /// The offset below which everything is on disk.
    var durableEnd: Int64 { publishedDurableEnd.load(ordering: .acquiring) }

    /// The truncation generation a sync beginning now belongs to. The log reads it under its writer
    /// lock, together with the log end.
    var generation: UInt64 { state.withLock { $0.generation } }

    /// The error that stopped flushing, if any.
    var failure: StorageError? { state.withLock { $0.failure } }

    /// Returns once every offset below `end` is durable.
    func waitUntilDurable(_ end: Int64) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            whenDurable(end) { error in
                if let error { continuation.resume(throwing: error) } else { continuation.resume() }
            }
        }
    }

    /// Calls `complete` once every offset below `end` is durable (with nil), or flushing failed (with
    /// the error): at once, or on the flusher's queue. No task or thread waits meanwhile.
    func whenDurable(_ end: Int64, _ complete: @escaping @Sendable (StorageError?) -> Void) {
        enum Action { case resume, fail(StorageError), wait, startFlushing }
        let action = state.withLock { state -> Action in
            if let failure = state.failure { return .fail(failure) }
            if end <= state.durableEnd { return .resume }
            state.waiters.append(Waiter(offset: end, complete: complete))
            if state.flushing { return .wait }
            state.flushing = true
            return .startFlushing
        }
        switch action {
        case .resume: complete(nil)
        case .fail(let error): complete(error)
        case .wait: break
        case .startFlushing: queue.async { self.flushWhileWaited() }
        }
    }

    /// The log was cut at `end` (the caller holds the log's writer lock and has synced the cut): the
    /// durable end cannot be past it, syncs under way belong to the old generation, and waiters for
    /// removed offsets fail.
    func truncated(to end: Int64) {
        let removed = state.withLock { state -> [Waiter] in
            state.generation &+= 1
            if state.durableEnd > end {
                state.durableEnd = end
                publishedDurableEnd.store(end, ordering: .releasing)
            }
            let removed = state.waiters.filter { $0.offset > end }
            state.waiters.removeAll { $0.offset > end }
            return removed
        }
        let error = StorageError(.truncated, path: label, "the log was truncated to \(end) before these offsets became durable")
        for waiter in removed { waiter.complete(error) }
    }

    /// Runs a flush now (for the interval and message-count policies and for close); waits for it.
    func flushNow() throws(StorageError) {
        try queue.sync { Result { () throws(StorageError) in try self.flushOnce() } }.get()
    }

    /// Asks for a flush soon without waiting for it.
    func flushSoon() {
        queue.async { try? self.flushOnce() }
    }

    private func flushOnce() throws(StorageError) {
        if let failure = state.withLock({ $0.failure }) { throw failure }
        do {
            let covered = try sync()
            let ready = state.withLock { state in advance(&state, to: covered) }
            for waiter in ready { waiter.complete(nil) }
        } catch {
            fail(with: error)
            throw error
        }
    }

    private func flushWhileWaited() {
        while true {
            let outcome: Result<Coverage, StorageError> = Result { () throws(StorageError) in try sync() }
            var ready: [Waiter] = []
            var failed: [Waiter] = []
            var failure: StorageError?
            let again = state.withLock { state -> Bool in
                switch outcome {
                case .success(let covered):
                    ready = advance(&state, to: covered)
                case .failure(let error):
                    state.failure = error
                    failure = error
                    failed = state.waiters
                    state.waiters.removeAll()
                }
                state.flushing = !state.waiters.isEmpty
                return state.flushing
            }
            for waiter in ready { waiter.complete(nil) }
            if let failure { for waiter in failed { waiter.complete(failure) } }
            if !again { return }
        }
    }

    /// Raises the durable end to what a completed sync covered, unless a truncation came between the
    /// sync's start and now; returns the waiters it satisfies (removed from the state).
    private func advance(_ state: inout State, to covered: Coverage) -> [Waiter] {
        if covered.generation == state.generation && covered.end > state.durableEnd {
            state.durableEnd = covered.end
            publishedDurableEnd.store(covered.end, ordering: .releasing)
        }
        let durable = state.durableEnd
        let ready = state.waiters.filter { $0.offset <= durable }
        state.waiters.removeAll { $0.offset <= durable }
        return ready
    }

    /// Something other than a sync failed part-way through changing the files (a truncation): fail
    /// what waits and refuse every later request, as after a failed sync.
    func refuseWrites(after error: StorageError) {
        fail(with: error)
    }

    private func fail(with error: StorageError) {
        let failed = state.withLock { state -> [Waiter] in
            state.failure = error
            defer { state.waiters.removeAll() }
            return state.waiters
        }
        for waiter in failed { waiter.complete(error) }
    }
}
