import Glibc
import Synchronization

/// The exclusive lock a process holds on a data directory while it writes it: `flock` on
/// `<dir>/.lock`. Every writer takes it (Samsa.open, the broker, the `crash-writer` tool); read-only
/// openers do not.
///
/// The file is created 0600 and narrowed to 0600 if an older version left it wider: `flock` needs
/// only a descriptor, and any user who can open the file could take the lock and keep the owner out.
public final class DirectoryLock: Sendable {
    public static let fileName = ".lock"

    public let path: String
    private let descriptor: Int32
    private let released = Atomic<Bool>(false)

    /// Takes the lock without waiting; throws when another process (or another open in this one)
    /// holds it.
    public init(directory: String) throws(StorageError) {
        path = "\(directory)/\(Self.fileName)"
        let fd = Glibc.open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { throw StorageError(.io, path: path, errno: errno, "cannot open the lock file") }
        var info = stat()
        if fstat(fd, &info) == 0, info.st_uid == geteuid(), info.st_mode & 0o077 != 0 {
            _ = fchmod(fd, 0o600)
        }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let reason = errno
            Glibc.close(fd)
            if reason == EWOULDBLOCK {
                throw StorageError(.locked, path: directory, "the data directory is open in another process (or another writer in this one)")
            }
            throw StorageError(.io, path: path, errno: reason, "cannot lock the data directory")
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
