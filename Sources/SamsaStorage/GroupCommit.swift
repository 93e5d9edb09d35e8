import Dispatch
import Synchronization

/// Coalesces durability requests into shared fdatasync calls (group commit).
///
/// An appender asks for its offset to become durable. If no flush is running, one starts at once on a
/// dedicated queue (never on Swift's cooperative threads: fdatasync blocks); appenders arriving while a
/// flush runs are served together by the next one, as ZooKeeper's and BookKeeper's journals batch their
/// syncs. A flush first captures the log end, then syncs, so it covers exactly the appends that had
/// returned from `write` before it began. A failed flush fails every waiter and every later request:
/// data the failed sync may have lost is never acknowledged.
final class GroupCommit: Sendable {
    private struct Waiter {
        var offset: Int64
        /// Called once, with nil when durable or the error that stopped flushing.
        var complete: @Sendable (StorageError?) -> Void
    }

    private struct State {
        var waiters: [Waiter] = []
        var flushing = false
        var durableEnd: Int64
        var failure: StorageError?
    }

    private let state: Mutex<State>
    private let queue: DispatchQueue
    /// Syncs what is written and returns the log end offset captured before the sync began.
    private let sync: @Sendable () throws(StorageError) -> Int64

    init(label: String, durableEnd: Int64, sync: @escaping @Sendable () throws(StorageError) -> Int64) {
        self.state = Mutex(State(durableEnd: durableEnd))
        self.queue = DispatchQueue(label: "samsa.flush.\(label)")
        self.sync = sync
    }

    /// The offset below which everything is on disk.
    var durableEnd: Int64 { state.withLock { $0.durableEnd } }

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
            state.withLock { $0.durableEnd = max($0.durableEnd, covered) }
        } catch {
            fail(with: error)
            throw error
        }
    }

    private func flushWhileWaited() {
        while true {
            let outcome: Result<Int64, StorageError> = Result { () throws(StorageError) in try sync() }
            var ready: [Waiter] = []
            var failed: [Waiter] = []
            var failure: StorageError?
            let again = state.withLock { state -> Bool in
                switch outcome {
                case .success(let covered):
                    state.durableEnd = max(state.durableEnd, covered)
                    let durable = state.durableEnd
                    ready = state.waiters.filter { $0.offset <= durable }
                    state.waiters.removeAll { $0.offset <= durable }
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

    private func fail(with error: StorageError) {
        let failed = state.withLock { state -> [Waiter] in
            state.failure = error
            defer { state.waiters.removeAll() }
            return state.waiters
        }
        for waiter in failed { waiter.complete(error) }
    }
}
