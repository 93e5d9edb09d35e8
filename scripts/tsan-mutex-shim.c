// ThreadSanitizer cannot see Synchronization.Mutex's contended path; this shim shows it to it.
//
// Mutex's fast paths are inlined into our (instrumented) code as atomic compare-exchanges, which TSan
// sees. Its slow paths, `_lockSlow`/`_tryLockSlow`/`_unlockSlow` in libswiftSynchronization.so (built
// without TSan), spin with plain `lock cmpxchg` and hand the lock over through the kernel
// (futex FUTEX_LOCK_PI / FUTEX_UNLOCK_PI): a thread that waited for the lock acquires it without an
// operation TSan observes, so the previous holder's writes look unordered with its reads and every
// contended `withLock` body can be reported as a race (reproduction: the README's ThreadSanitizer part).
//
// Loaded with LD_PRELOAD by scripts/tsan.sh, these wrappers interpose the three slow paths, call the
// real ones (dlsym RTLD_NEXT) and add exactly the missing edges: release before unlocking, acquire
// after locking, on the mutex's futex word. Nothing else is suppressed. `self` (the futex word) is
// passed in Swift's self register, which clang's swiftcall `swift_context` parameter names. The TSan
// entry points are weak so the processes `swift test` starts without TSan (the build tools) load it too.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdbool.h>
#include <stdint.h>

__attribute__((weak)) void __tsan_acquire(void *address);
__attribute__((weak)) void __tsan_release(void *address);

#define SWIFTCALL __attribute__((swiftcall))
#define SWIFT_SELF __attribute__((swift_context))

#define LOCK_SLOW "$s15Synchronization12_MutexHandleV9_lockSlowyys6UInt32VF"
#define TRY_LOCK_SLOW "$s15Synchronization12_MutexHandleV12_tryLockSlowSbyF"
#define UNLOCK_SLOW "$s15Synchronization12_MutexHandleV11_unlockSlowyyF"

typedef SWIFTCALL void (*LockSlow)(uint32_t threadId, void *SWIFT_SELF futex);
typedef SWIFTCALL bool (*TryLockSlow)(void *SWIFT_SELF futex);
typedef SWIFTCALL void (*UnlockSlow)(void *SWIFT_SELF futex);

static void *real(const char *name) {
    return dlsym(RTLD_NEXT, name);
}

SWIFTCALL void lockSlow(uint32_t threadId, void *SWIFT_SELF futex) __asm__(LOCK_SLOW);
SWIFTCALL void lockSlow(uint32_t threadId, void *SWIFT_SELF futex) {
    static LockSlow next;
    if (!next) next = (LockSlow)real(LOCK_SLOW);
    next(threadId, futex);
    if (__tsan_acquire) __tsan_acquire(futex);
}

SWIFTCALL bool tryLockSlow(void *SWIFT_SELF futex) __asm__(TRY_LOCK_SLOW);
SWIFTCALL bool tryLockSlow(void *SWIFT_SELF futex) {
    static TryLockSlow next;
    if (!next) next = (TryLockSlow)real(TRY_LOCK_SLOW);
    bool locked = next(futex);
    if (locked && __tsan_acquire) __tsan_acquire(futex);
    return locked;
}

SWIFTCALL void unlockSlow(void *SWIFT_SELF futex) __asm__(UNLOCK_SLOW);
SWIFTCALL void unlockSlow(void *SWIFT_SELF futex) {
    static UnlockSlow next;
    if (!next) next = (UnlockSlow)real(UNLOCK_SLOW);
    if (__tsan_release) __tsan_release(futex);
    next(futex);
}
