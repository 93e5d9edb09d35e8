import Dispatch
import Synchronization

/// A counter that waiters can sleep on: `notify` bumps it and wakes everyone waiting for a change.
/// Consumers wait on their topics' signals (bumped when records become visible) and on their group's
/// (bumped by a rebalance) instead of polling.
final class Signal: Sendable {
    private struct State {
        var version: UInt64 = 0
        var wakers: [ObjectIdentifier: Waker] = [:]
    }

    private let state = Mutex(State())

    var version: UInt64 { state.withLock { $0.version } }

    /// Tasks asleep on this signal now (tests use it to know a reader is waiting before they write).
    var sleepers: Int { state.withLock { $0.wakers.count } }

    func notify() {
        let wakers = state.withLock { state -> [Waker] in
            state.version &+= 1
            defer { state.wakers.removeAll() }
            return Array(state.wakers.values)
        }
        for waker in wakers { waker.wake() }
    }

    /// Adds `waker` unless the version moved past `seen` (then the caller must not sleep).
    fileprivate func register(_ waker: Waker, seen: UInt64) -> Bool {
        state.withLock { state in
            guard state.version == seen else { return false }
            state.wakers[ObjectIdentifier(waker)] = waker
            return true
        }
    }

    fileprivate func unregister(_ waker: Waker) {
        _ = state.withLock { $0.wakers.removeValue(forKey: ObjectIdentifier(waker)) }
    }

    /// Sleeps until any signal moves past the version seen, `timeout` passes, or the task is cancelled
    /// (then it returns at once; the caller checks for cancellation).
    static func wait(forAny signals: [(Signal, seen: UInt64)], timeout: Duration? = nil) async {
        let waker = Waker()
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                waker.arm(continuation)
                if Task.isCancelled {
                    waker.wake()
                    return
                }
                for (signal, seen) in signals where !signal.register(waker, seen: seen) {
                    waker.wake()
                    break
                }
                if let timeout {
                    let nanoseconds = max(0, timeout.components.seconds * 1_000_000_000 + timeout.components.attoseconds / 1_000_000_000)
                    DispatchQueue.global().asyncAfter(deadline: .now() + .nanoseconds(Int(nanoseconds))) { waker.wake() }
                }
            }
        } onCancel: {
            waker.wake()
        }
        for (signal, _) in signals { signal.unregister(waker) }
    }
}

/// One sleeping waiter: resumed exactly once, by whichever of its signals, timer or cancellation
/// comes first.
private final class Waker: Sendable {
    private let continuation = Mutex<CheckedContinuation<Void, Never>?>(nil)
    private let woken = Atomic<Bool>(false)

    func arm(_ continuation: CheckedContinuation<Void, Never>) {
        let wokeEarly = self.continuation.withLock { slot -> Bool in
            if woken.load(ordering: .acquiring) { return true }
            slot = continuation
            return false
        }
        if wokeEarly { continuation.resume() }
    }

    func wake() {
        guard !woken.exchange(true, ordering: .acquiringAndReleasing) else { return }
        continuation.withLock { $0.take() }?.resume()
    }
}
