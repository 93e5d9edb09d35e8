public import NIOCore
import NIOPosix
public import Synchronization

/// The broker's one way to wait (Kafka's `DelayedOperationPurgatory`): an operation watches keys
/// (partitions), is checked when an event on one of them is reported (`checkAndComplete`), and
/// completes once: when its check gives an outcome, when its deadline passes, or when the task
/// waiting for it is cancelled. Used by long-polling fetches (appends and high-watermark moves) and
/// acks=all produces (the high watermark, a change of leader), JoinGroup and SyncGroup, a follower's
/// fetcher waiting for work, and the embedded queue's consumers (`Signal`).
///
/// Deadlines are timers on an event loop (NIO's timer heap, Kafka's timing wheel), cancelled when the
/// operation completes: no task sleeps, and nothing outlives the request an operation serves.
public final class Purgatory<Key: Hashable & Sendable>: Sendable {
    // Usable from inline so `checkAndComplete`, the hot path of every append, is specialized for
    // its key type in the caller's module (unspecialized, it looked up generic metadata per waiter).
    @usableFromInline let watchers = Mutex<[Key: [ObjectIdentifier: Registration]]>([:])

    /// An operation in the table under one of its keys, and that key's position in its `keys`.
    @usableFromInline struct Registration: Sendable {
        @usableFromInline let operation: any Watching
        @usableFromInline let position: Int

        @usableFromInline init(operation: any Watching, position: Int) {
            self.operation = operation
            self.position = position
        }
    }
    private let timers: any EventLoop
    @usableFromInline let completedByEvents = Atomic<Int>(0)

    /// Deadlines fire on `timers` (nil: a loop of NIO's shared event loop group).
    public init(timers: (any EventLoop)? = nil) {
        self.timers = timers ?? MultiThreadedEventLoopGroup.singleton.any()
    }

    /// Waits for an outcome: `check` runs now and after each event on one of `keys` (with that key's
    /// position in `keys`, so a check needs no lookup; nil for the first look, which covers every
    /// key), and its first non-nil answer completes the wait. `expired` comes at `deadline` (nil: none), or at once if the task is cancelled.
    public func wait<Outcome: Sendable>(
        on keys: [Key], until deadline: ContinuousClock.Instant?, expired: Outcome, check: @escaping @Sendable (Int?) -> Outcome?
    ) async -> Outcome {
        let operation = watch(keys, until: deadline, expired: expired, check: check)
        defer { unwatch(operation) }
        return await operation.outcome()
    }

    /// Registers an operation (for callers that must look at it between registering and waiting;
    /// `wait` is the usual way). `unwatch` it once done.
    public func watch<Outcome: Sendable>(
        _ keys: [Key], until deadline: ContinuousClock.Instant?, expired: Outcome, check: @escaping @Sendable (Int?) -> Outcome?
    ) -> DelayedOperation<Key, Outcome> {
        let operation = DelayedOperation(keys: keys, expired: expired, check: check)
        watchers.withLock { table in
            for (position, key) in keys.enumerated() {
                table[key, default: [:]][ObjectIdentifier(operation)] = Registration(operation: operation, position: position)
            }
        }
        // Events from now on are the table's; those before, this look's.
        if let outcome = check(nil) {
            operation.complete(outcome)
            return operation
        }
        guard let deadline else { return operation }
        let delay = deadline - .now
        let timer = timers.scheduleTask(in: .nanoseconds(max(0, delay.nanoseconds))) { _ = operation.complete(expired) }
        operation.arm(timer)
        return operation
    }

    public func unwatch<Outcome>(_ operation: DelayedOperation<Key, Outcome>) {
        operation.complete(operation.expired)  // cancels its timer if it is still waiting
        watchers.withLock { table in
            for key in operation.keys {
                table[key]?[ObjectIdentifier(operation)] = nil
                if table[key]?.isEmpty == true { table[key] = nil }
            }
        }
    }

    /// An event on `key`: checks the operations watching it (outside the table's lock, each under
    /// its own) and completes those it satisfies.
    @inlinable
    public func checkAndComplete(_ key: Key) {
        let watching = watchers.withLock { $0[key].map { Array($0.values) } ?? [] }
        for registration in watching where registration.operation.keyChanged(at: registration.position) {
            completedByEvents.add(1, ordering: .relaxed)
        }
    }

    /// Operations watching `key` now.
    public func waiting(on key: Key) -> Int { watchers.withLock { $0[key]?.count ?? 0 } }

    /// Operations registered now (tests: act once a request waits).
    public var waiting: Int { watchers.withLock { Set($0.values.flatMap(\.keys)).count } }

    /// Operations completed by events so far (tests: which events woke whom).
    public var completions: Int { completedByEvents.load(ordering: .relaxed) }
}

/// What the purgatory's table holds: an operation of any outcome type.
public protocol Watching: AnyObject, Sendable {
    /// Checks the operation after an event on its key at `position`; true if that completed it.
    func keyChanged(at position: Int) -> Bool
}

/// One waiting operation: completed at most once, its waiter resumed then.
public final class DelayedOperation<Key: Sendable, Outcome: Sendable>: Watching, Sendable {
    private struct State {
        var outcome: Outcome?
        var waiter: CheckedContinuation<Outcome, Never>?
        var timer: Scheduled<Void>?
    }

    public let keys: [Key]
    public let expired: Outcome
    private let check: @Sendable (Int?) -> Outcome?
    private let state = Mutex(State())
    /// Set once an outcome is (the events' fast path reads it without the lock).
    private let done = Atomic<Bool>(false)

    public init(keys: [Key], expired: Outcome, check: @escaping @Sendable (Int?) -> Outcome?) {
        self.keys = keys
        self.expired = expired
        self.check = check
    }

    public var isCompleted: Bool { done.load(ordering: .acquiring) }

    public func keyChanged(at position: Int) -> Bool {
        guard !isCompleted, let outcome = check(position) else { return false }
        return complete(outcome)
    }

    /// Completes with `outcome` unless already completed; true if this call did.
    @discardableResult
    public func complete(_ outcome: Outcome) -> Bool {
        let (completed, waiter, timer) = state.withLock { state -> (Bool, CheckedContinuation<Outcome, Never>?, Scheduled<Void>?) in
            guard state.outcome == nil else { return (false, nil, nil) }
            state.outcome = outcome
            done.store(true, ordering: .releasing)
            defer { (state.waiter, state.timer) = (nil, nil) }
            return (true, state.waiter, state.timer)
        }
        timer?.cancel()
        waiter?.resume(returning: outcome)
        return completed
    }

    fileprivate func arm(_ timer: Scheduled<Void>) {
        let completed = state.withLock { state -> Bool in
            if state.outcome == nil { state.timer = timer }
            return state.outcome != nil
        }
        if completed { timer.cancel() }
    }

    /// The outcome, once there is one; cancelling the waiting task completes it with `expired`.
    public func outcome() async -> Outcome {
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let ready = state.withLock { state -> Outcome? in
                    if state.outcome == nil { state.waiter = continuation }
                    return state.outcome
                }
                if let ready { continuation.resume(returning: ready) }
            }
        } onCancel: {
            complete(expired)
        }
    }
}

extension Duration {
    /// The whole duration in nanoseconds (saturating).
    package var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        let (scaled, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return seconds < 0 ? .min : .max }
        return scaled.addingReportingOverflow(attoseconds / 1_000_000_000).overflow ? .max : scaled + attoseconds / 1_000_000_000
    }
}
