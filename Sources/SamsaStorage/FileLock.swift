import Glibc
import Synchronization

/// A `flock` on a file (exclusive unless asked for a shared one), taken without waiting. `flock`
/// locks belong to the open file, so the kernel drops one when its process dies, however it dies: a
/// `kill -9` leaves nothing that blocks the next holder (the file stays; its presence means nothing).
/// The lock file is never deleted, since a process could lock a file just unlinked while another
/// locks its replacement.
///
/// The file is created 0600 and narrowed to 0600 if it was wider: `flock` needs only a descriptor,
/// and any user who can open the file could take the lock and keep the owner out. A symlink in its
/// place is refused (`O_NOFOLLOW`), not followed.
public final class FileLock: Sendable {
    public let path: String
    private let descriptor: Int32
    private let released = Atomic<Bool>(false)

    /// Takes the lock on `path` without waiting; throws `.locked` with `held` (and `heldPath`) when
    /// another open holds it (another process, or another open of it in this one). `shared`: a shared
    /// lock, which any number of holders take together and which keeps out only an exclusive one.
    public init(path: String, held: @autoclosure () -> String, heldPath: String? = nil, shared: Bool = false) throws(StorageError) {
        self.path = path
        let fd = Glibc.open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { throw StorageError(.io, path: path, errno: errno, "cannot open the lock file") }
        var info = stat()
        if fstat(fd, &info) == 0, info.st_uid == geteuid(), info.st_mode & 0o077 != 0 {
            _ = fchmod(fd, 0o600)
        }
        guard flock(fd, (shared ? LOCK_SH : LOCK_EX) | LOCK_NB) == 0 else {
            let reason = errno
            Glibc.close(fd)
            if reason == EWOULDBLOCK { throw StorageError(.locked, path: heldPath ?? path, held()) }
            throw StorageError(.io, path: path, errno: reason, "cannot take the lock")
        }
        descriptor = fd
    }

    /// Releases the lock (closing the file releases it too, as does the process's death).
    public func release() {
        guard !released.exchange(true, ordering: .acquiringAndReleasing) else { return }
        flock(descriptor, LOCK_UN)
        Glibc.close(descriptor)
    }

    deinit { release() }
}
