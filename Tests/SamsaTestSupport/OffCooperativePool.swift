import Dispatch
import Foundation
public import Testing

/// Runs blocking work (a child process to wait for, a JVM to start, a semaphore) on a thread of its
/// own and awaits it: on the few threads of Swift's cooperative pool (two on a two-core machine) it
/// would stall every other test's tasks.
public func blocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread.detachNewThread {
            continuation.resume(with: Result { try body() })
        }
    }
}

/// A suite or test trait: runs each test body (and its child tasks) on `BlockingTestExecutor`
/// instead of the cooperative pool, for tests whose bodies do synchronous disk or CPU work, wait
/// for child processes or block on semaphores. Tasks the code under test starts (`Task {}`,
/// actors, event loops) still run where they would in production.
public struct OffCooperativePool: TestTrait, SuiteTrait, TestScoping {
    public var isRecursive: Bool { true }

    public func provideScope(
        for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void
    ) async throws {
        // The suite's own scope runs no body: only each test case's is moved.
        guard testCase != nil else { return try await function() }
        try await withTaskExecutorPreference(BlockingTestExecutor.shared) { try await function() }
    }
}

extension Trait where Self == OffCooperativePool {
    /// Test bodies run on threads of their own (see `OffCooperativePool`).
    public static var offCooperativePool: Self { Self() }
}

/// A task executor that runs every job on a dispatch thread from the overcommitting pool: a job that
/// blocks holds its own thread and never delays another (each job gets a fresh serial queue, so no
/// job waits behind a blocked one).
public final class BlockingTestExecutor: TaskExecutor {
    public static let shared = BlockingTestExecutor()

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let executor = asUnownedTaskExecutor()
        DispatchQueue(label: "samsa.tests.blocking").async { job.runSynchronously(on: executor) }
    }
}
