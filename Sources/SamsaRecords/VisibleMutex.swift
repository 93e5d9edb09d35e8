import Glibc

/// A mutex ThreadSanitizer can see: `Synchronization.Mutex` on Linux locks with raw futex calls that
/// TSan does not intercept, so every access under it is reported as a race (checked on Swift 6.3.1
/// with a two-thread counter). Builds for TSan (`-Xswiftc -DSAMSA_TSAN`, see README) alias `Mutex`
/// to this pthread mutex in each Samsa module; every other build uses `Synchronization.Mutex`.
///
/// `@unchecked Sendable`: the value is reached only inside `withLock`, under the lock.
package final class VisibleMutex<Value>: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private var value: Value

    package init(_ value: Value) {
        self.value = value
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    package func withLock<Result, E: Error>(_ body: (inout Value) throws(E) -> Result) throws(E) -> Result {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value)
    }
}

#if SAMSA_TSAN
typealias Mutex<Value> = VisibleMutex<Value>
#endif
