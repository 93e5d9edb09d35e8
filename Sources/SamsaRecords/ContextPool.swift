import Synchronization

/// A small free list of C codec contexts, so hot paths reuse them instead of allocating per call.
///
/// `@unchecked Sendable`: the raw context pointers are only reachable through the mutex, and a context
/// taken from the pool is used by one caller at a time until it is returned.
final class ContextPool: @unchecked Sendable {
    /// A context pointer handed between threads only through the pool.
    private struct Handle: @unchecked Sendable { let pointer: OpaquePointer }

    private let free = Mutex<[Handle]>([])
    private let make: () -> OpaquePointer?
    private let destroy: (OpaquePointer) -> Void
    private let keepAtMost: Int

    init(keepAtMost: Int = 16, make: @escaping () -> OpaquePointer?, destroy: @escaping (OpaquePointer) -> Void) {
        self.make = make
        self.destroy = destroy
        self.keepAtMost = keepAtMost
    }

    /// Runs `body` with a context; a context that `body` reports as poisoned (returned `false`) is freed
    /// rather than reused.
    func withContext<R>(_ body: (OpaquePointer) throws(RecordBatchError) -> R) throws(RecordBatchError) -> R {
        let context = free.withLock { $0.popLast()?.pointer } ?? make()
        guard let context else {
            throw RecordBatchError(.compressionFailed, at: 0, "could not allocate a codec context")
        }
        do {
            let result = try body(context)
            giveBack(context)
            return result
        } catch {
            // A context that saw an error may hold partial state; do not hand it to the next caller.
            destroy(context)
            throw error
        }
    }

    private func giveBack(_ context: OpaquePointer) {
        let kept = free.withLock { list -> Bool in
            guard list.count < keepAtMost else { return false }
            list.append(Handle(pointer: context))
            return true
        }
        if !kept { destroy(context) }
    }
}
