import Synchronization

/// Where an acknowledged batch landed: its records hold offsets `baseOffset ..< baseOffset + recordCount`.
public struct BatchMetadata: Sendable, Hashable {
    public var topic: String
    public var partition: Int
    public var baseOffset: Int64
    public var recordCount: Int

    public init(topic: String, partition: Int, baseOffset: Int64, recordCount: Int) {
        self.topic = topic
        self.partition = partition
        self.baseOffset = baseOffset
        self.recordCount = recordCount
    }
}

/// The acknowledgement shared by every record of one producer batch (Kafka's `ProduceRequestResult`):
/// resolved once, when the batch is written and the topic's flush policy covers it, or its write
/// failed. A record's own outcome is this plus its index in the batch (see `Delivery`), so sending a
/// record allocates nothing of its own and a batch is acknowledged with one lock, not one per record.
public final class BatchTicket: Sendable {
    public let topic: String
    public let partition: Int

    private struct State {
        var outcome: Result<BatchMetadata, SamsaError>?
        var waiters: [CheckedContinuation<BatchMetadata, any Error>] = []
        var callbacks: [@Sendable (Result<BatchMetadata, SamsaError>) -> Void] = []
    }

    private let state = Mutex(State())

    init(topic: String, partition: Int) {
        self.topic = topic
        self.partition = partition
    }

    /// Where the batch landed, once acknowledged; throws the error that kept it from being written.
    nonisolated(nonsending) public func result() async throws -> BatchMetadata {
        try await withCheckedThrowingContinuation { continuation in
            let outcome = state.withLock { state -> Result<BatchMetadata, SamsaError>? in
                if state.outcome == nil { state.waiters.append(continuation) }
                return state.outcome
            }
            if let outcome { continuation.resume(with: outcome) }
        }
    }

    /// Calls `body` once the batch is acknowledged or failed (at once if it already is), on the thread
    /// that resolves it: keep it short.
    public func whenResolved(_ body: @escaping @Sendable (Result<BatchMetadata, SamsaError>) -> Void) {
        let outcome = state.withLock { state -> Result<BatchMetadata, SamsaError>? in
            if state.outcome == nil { state.callbacks.append(body) }
            return state.outcome
        }
        if let outcome { body(outcome) }
    }

    /// True once the batch is acknowledged or failed.
    public var isResolved: Bool { state.withLock { $0.outcome != nil } }

    func resolve(_ outcome: Result<BatchMetadata, SamsaError>) {
        let (waiters, callbacks) = state.withLock { state in
            guard state.outcome == nil else {
                return ([CheckedContinuation<BatchMetadata, any Error>](), [@Sendable (Result<BatchMetadata, SamsaError>) -> Void]())
            }
            state.outcome = outcome
            defer {
                state.waiters = []
                state.callbacks = []
            }
            return (state.waiters, state.callbacks)
        }
        for callback in callbacks { callback(outcome) }
        for waiter in waiters { waiter.resume(with: outcome) }
    }
}
