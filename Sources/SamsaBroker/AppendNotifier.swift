import SamsaStorage
import Synchronization

/// Wakes long-polling fetches when an append lands on a partition they read (Kafka's fetch
/// purgatory, without the timer wheel: the wait's deadline is a sleeping task, nobody polls).
///
/// A fetch registers before it reads, so an append between its read and its wait still wakes it.
final class AppendNotifier: Sendable {
    private let waiters = Mutex<[TopicPartition: [ObjectIdentifier: Waiter]]>([:])

    /// One waiting fetch: signalled at most once.
    final class Waiter: Sendable {
        private struct State {
            var signalled = false
            var continuation: CheckedContinuation<Void, Never>?
        }
        private let state = Mutex(State())

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

    /// A waiter signalled by the next append to any of `partitions`; `unregister` it when done.
    func register(_ partitions: [TopicPartition]) -> Waiter {
        let waiter = Waiter()
        waiters.withLock { table in
            for partition in partitions { table[partition, default: [:]][ObjectIdentifier(waiter)] = waiter }
        }
        return waiter
    }

    func unregister(_ waiter: Waiter, from partitions: [TopicPartition]) {
        waiters.withLock { table in
            for partition in partitions {
                table[partition]?[ObjectIdentifier(waiter)] = nil
                if table[partition]?.isEmpty == true { table[partition] = nil }
            }
        }
    }

    /// Fetches registered now (for tests that must act while one waits).
    var waitingFetches: Int {
        waiters.withLock { Set($0.values.flatMap(\.keys)).count }
    }

    /// Signals every fetch waiting on the partition.
    func appended(to partition: TopicPartition) {
        let woken = waiters.withLock { $0[partition].map { Array($0.values) } ?? [] }
        for waiter in woken { waiter.signal() }
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
