/// The exclusive lock a process holds on a data directory while it writes it: a `FileLock` on
/// `<dir>/.lock`. Every writer takes it (Samsa.open, the broker, the `crash-writer` tool); read-only
/// openers do not, nor do processes that only consume as groups (each holds its group's own lock).
public final class DirectoryLock: Sendable {
    public static let fileName = ".lock"

    private let lock: FileLock
    public var path: String { lock.path }

    /// Takes the lock without waiting; throws when another process (or another open in this one)
    /// holds it.
    public init(directory: String) throws(StorageError) {
        lock = try FileLock(
            path: "\(directory)/\(Self.fileName)", held: "the data directory is open in another process (or another writer in this one)",
            heldPath: directory)
    }

    /// Releases the lock (closing the file releases it too, as does the process's death).
    public func release() { lock.release() }
}
