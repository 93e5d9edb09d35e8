import Dispatch

/// A serial queue for blocking file work (pwrite, fsync, rename) that async code awaits, so no task
/// holds one of Swift's cooperative threads (as many as cores: two on a small machine) in a syscall.
///
/// Work runs on a dispatch thread in submission order; the awaiting task is suspended meanwhile. The
/// queue targets dispatch's overcommitting pool, so a blocked work item never waits for a free core.
package struct BlockingQueue: Sendable {
    private let queue: DispatchQueue

    package init(label: String) {
        queue = DispatchQueue(label: label)
    }

    /// Runs `body` on the queue, after everything submitted before it, and returns its result.
    package func run<Value: Sendable>(_ body: @escaping @Sendable () throws -> Value) async throws -> Value {
        try await withCheckedThrowingContinuation { continuation in
            queue.async { continuation.resume(with: Result { try body() }) }
        }
    }

    /// Submits `body` without waiting (callers that keep submission order under their own lock).
    package func submit(_ body: @escaping @Sendable () -> Void) {
        queue.async(execute: body)
    }

    /// Returns once everything submitted so far has run (for synchronous close paths).
    package func drain() {
        queue.sync {}
    }
}
