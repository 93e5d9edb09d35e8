import SamsaWaiting
import Synchronization

/// A counter that waiters can sleep on: `notify` bumps it and wakes everyone waiting for a change.
/// Consumers wait on their topics' signals (bumped when records become visible) and on their group's
/// (bumped by a rebalance) instead of polling. The sleeping is the broker's one way to wait, a
/// `Purgatory` keyed by signal: a timeout is a timer cancelled when the wait ends.
final class Signal: Sendable {
    /// Every signal's sleepers, keyed by the signal they wait on.
    private static let sleeping = Purgatory<ObjectIdentifier>()

    private let counter = Atomic<UInt64>(0)
    /// Waits under way on this signal: `notify` looks at the purgatory (a lock every signal shares)
    /// only when there is one, so the producer's hot path pays an atomic load. Sequentially consistent
    /// with `counter`: a waiter counts itself before its first check, a notifier bumps before it
    /// looks, so either the notifier sees the waiter or the waiter's check sees the new version.
    private let waits = Atomic<Int>(0)

    var version: UInt64 { counter.load(ordering: .acquiring) }

    /// Tasks asleep on this signal now (tests use it to know a reader is waiting before they write).
    var sleepers: Int { Self.sleeping.waiting(on: ObjectIdentifier(self)) }

    func notify() {
        counter.add(1, ordering: .sequentiallyConsistent)
        guard waits.load(ordering: .sequentiallyConsistent) > 0 else { return }
        Self.sleeping.checkAndComplete(ObjectIdentifier(self))
    }

    /// Sleeps until any signal moves past the version seen, `timeout` passes, or the task is cancelled
    /// (then it returns at once; the caller checks for cancellation).
    static func wait(forAny signals: [(Signal, seen: UInt64)], timeout: Duration? = nil) async {
        let keys = signals.map { ObjectIdentifier($0.0) }
        for (signal, _) in signals { signal.waits.add(1, ordering: .sequentiallyConsistent) }
        defer { for (signal, _) in signals { signal.waits.subtract(1, ordering: .sequentiallyConsistent) } }
        // Registered before the first check, and `notify` bumps before it checks: no change is missed.
        _ = await sleeping.wait(on: keys, until: timeout.map { .now + $0 }, expired: ()) { _ in
            signals.contains { signal, seen in signal.counter.load(ordering: .sequentiallyConsistent) != seen } ? () : nil
        }
    }
}
