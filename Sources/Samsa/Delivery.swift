import Synchronization

/// The outcome of one sent record: resolved once its batch is written and the topic's flush policy is
/// satisfied (or the write failed). Await `result()` from any number of tasks.
public final class Delivery: Sendable {
    public let topic: String
    public let partition: Int

    private struct State {
        var outcome: Result<RecordMetadata, SamsaError>?
        var waiters: [CheckedContinuation<RecordMetadata, any Error>] = []
        var callbacks: [@Sendable (Result<RecordMetadata, SamsaError>) -> Void] = []
    }

    private let state = Mutex(State())

    init(topic: String, partition: Int) {
        self.topic = topic
        self.partition = partition
    }

    /// Where the record landed, once acknowledged; throws the error that kept it from being written.
    nonisolated(nonsending) public func result() async throws -> RecordMetadata {
        try await withCheckedThrowingContinuation { continuation in
            let outcome = state.withLock { state -> Result<RecordMetadata, SamsaError>? in
                if state.outcome == nil { state.waiters.append(continuation) }
                return state.outcome
            }
            if let outcome { continuation.resume(with: outcome) }
        }
    }

    /// Calls `body` once the record is acknowledged or failed (at once if it already is), on the thread
    /// that resolves it: keep it short. For callers tracking many records without a task each.
    public func whenResolved(_ body: @escaping @Sendable (Result<RecordMetadata, SamsaError>) -> Void) {
        let outcome = state.withLock { state -> Result<RecordMetadata, SamsaError>? in
            if state.outcome == nil { state.callbacks.append(body) }
            return state.outcome
        }
        if let outcome { body(outcome) }
    }

    /// True once the record is acknowledged or failed.
    public var isResolved: Bool { state.withLock { $0.outcome != nil } }

    func resolve(_ outcome: Result<RecordMetadata, SamsaError>) {
        let (waiters, callbacks) = state.withLock { state in
            guard state.outcome == nil else { return ([CheckedContinuation<RecordMetadata, any Error>](), [@Sendable (Result<RecordMetadata, SamsaError>) -> Void]()) }
            state.outcome = outcome
            defer {
                state.waiters.removeAll()
                state.callbacks.removeAll()
            }
            return (state.waiters, state.callbacks)
        }
        for callback in callbacks { callback(outcome) }
        for waiter in waiters { waiter.resume(with: outcome) }
    }
}
