import Synchronization

/// The tasks a component runs while it is started (a loop following coordination, a fetcher, a
/// periodic check): the one place the broker starts unstructured tasks that outlive a request, and
/// the one way they end — cancelled and awaited together by `stop`, so none outlives its owner.
final class BackgroundTasks: Sendable {
    private let running = Mutex<[Task<Void, Never>]>([])

    /// Starts `body`; it should return soon after it is cancelled.
    func start(_ body: @escaping @Sendable () async -> Void) {
        let task = Task { await body() }
        running.withLock { $0.append(task) }
    }

    /// Cancels every task, runs `interrupt` (to wake or close what a task may wait on that does not
    /// see cancellation), then waits until all have ended.
    func stop(interrupting interrupt: () -> Void = {}) async {
        let tasks = running.withLock { tasks in
            defer { tasks.removeAll() }
            return tasks
        }
        for task in tasks { task.cancel() }
        interrupt()
        for task in tasks { await task.value }
    }
}
