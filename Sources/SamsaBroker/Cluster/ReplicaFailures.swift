import SamsaStorage
import Synchronization

/// Why a replica's storage work failed, as logged: the message, and the OS error where there was one.
struct ReplicaFailure: Sendable, Equatable, CustomStringConvertible {
    var message: String
    /// The errno of a storage failure (ENOSPC for a full disk), 0 for other failures.
    var errno: Int32
    /// What tells two failures apart for the log (the code and errno, not the path in the message):
    /// a retry failing the same way is no news.
    var kind: String

    init(_ error: any Error) {
        let storage: StorageError?
        switch error {
        case let error as StorageError: storage = error
        case TopicTable.CreateError.storage(let error): storage = error
        default: storage = nil
        }
        message = "\(storage.map { "\($0)" } ?? "\(error)")"
        errno = storage?.errno ?? 0
        kind = storage.map { "\($0.code)/\($0.errno)" } ?? message
    }

    var description: String { message }
}

/// Storage work of this broker's replicas that failed and waits to be retried (Kafka's offline
/// replicas, KIP-112, kept per topic or partition rather than per log directory): a topic whose
/// logs could not be made here, a partition whose fetched records could not be appended. Each waits
/// out a back-off before its next try: `replica.fetch.backoff.ms` after the first failure, doubled
/// per further one up to `replicaFetchBackoffMaxMs`. A failure that comes back within that longest
/// back-off of the last one keeps doubling, so a replica that fails, recovers and fails again (a
/// nearly full disk) settles at one try per longest back-off.
///
/// `failed` and `succeeded` say when a failure begins, changes (another error) or ends, so each is
/// logged once, never per retry. Thread-safe.
final class ReplicaFailures<Key: Hashable & Sendable>: Sendable {
    struct Entry: Sendable {
        var failure: ReplicaFailure
        var failures: Int
        var failing: Bool
        var lastFailure: ContinuousClock.Instant
        var retryAt: ContinuousClock.Instant
    }

    let initialBackoff: Duration
    let maximumBackoff: Duration
    private let entries = Mutex<[Key: Entry]>([:])

    init(initialBackoff: Duration, maximumBackoff: Duration) {
        self.initialBackoff = initialBackoff
        self.maximumBackoff = max(initialBackoff, maximumBackoff)
    }

    /// The wait before the next try after `failures` consecutive failures.
    func backoff(afterFailures failures: Int) -> Duration {
        var delay = initialBackoff
        for _ in 1..<max(1, failures) where delay < maximumBackoff { delay *= 2 }
        return min(delay, maximumBackoff)
    }

    /// Records a failure of `key`; true when it is news (it was not failing, or failed otherwise).
    @discardableResult
    func failed(_ key: Key, _ failure: ReplicaFailure, now: ContinuousClock.Instant = .now) -> Bool {
        entries.withLock { entries in
            var entry = entries[key] ?? Entry(failure: failure, failures: 0, failing: false, lastFailure: now, retryAt: now)
            let news = !entry.failing || entry.failure.kind != failure.kind
            // Failing again soon after recovering continues the back-off instead of starting over.
            entry.failures = entry.failing || now - entry.lastFailure < maximumBackoff ? entry.failures + 1 : 1
            entry.failure = failure
            entry.failing = true
            entry.lastFailure = now
            entry.retryAt = now + backoff(afterFailures: entry.failures)
            entries[key] = entry
            return news
        }
    }

    /// Records that work on `key` succeeded; the failure that this ends, if it was failing.
    func succeeded(_ key: Key, now: ContinuousClock.Instant = .now) -> Entry? {
        entries.withLock { entries in
            guard var entry = entries[key] else { return nil }
            guard entry.failing else {
                // Remembered only while a new failure would still continue its back-off.
                if now - entry.lastFailure >= maximumBackoff { entries.removeValue(forKey: key) }
                return nil
            }
            let ended = entry
            entry.failing = false
            entries[key] = entry
            return ended
        }
    }

    /// The failure of `key` if it is failing now.
    func failure(_ key: Key) -> Entry? { entries.withLock { $0[key].flatMap { $0.failing ? $0 : nil } } }

    func isFailing(_ key: Key) -> Bool { failure(key) != nil }

    /// Whether `key` is failing and its back-off has not ended yet.
    func isWaiting(_ key: Key, now: ContinuousClock.Instant = .now) -> Bool { failure(key).map { now < $0.retryAt } ?? false }

    /// Those of `keys` failing and still in their back-off (one lock for all: the fetcher asks per round).
    func waiting(among keys: some Sequence<Key>, now: ContinuousClock.Instant = .now) -> Set<Key> {
        entries.withLock { entries in
            if entries.isEmpty { return [] }
            return Set(keys.filter { key in entries[key].map { $0.failing && now < $0.retryAt } ?? false })
        }
    }

    /// When the first back-off among `keys` ends; nil if none of them is failing.
    func nextRetry(among keys: some Sequence<Key>) -> ContinuousClock.Instant? {
        entries.withLock { entries in keys.compactMap { entries[$0] }.filter(\.failing).map(\.retryAt).min() }
    }

    func removeAll() { entries.withLock { $0.removeAll() } }
}
