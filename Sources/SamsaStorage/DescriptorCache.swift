import Glibc
import Synchronization

/// The one owner of open segment files: a bounded set of descriptors, least recently used closed
/// first, so a log of many thousands of segments stays within the process's file limit.
///
/// The active segment's descriptor is pinned (never evicted) while it takes appends. A descriptor in
/// use by a reader is never closed under it: eviction and `forget` close only idle ones, and a
/// forgotten one in use closes when its last user is done. This is how a reader of a deleted segment
/// finishes its read.
public final class DescriptorCache: Sendable {
    private struct Entry {
        var fd: Int32
        var users: Int
        var lastUse: UInt64
        var forgotten = false
    }

    private struct State {
        var entries: [String: Entry] = [:]
        var forgotten: [Int32: Entry] = [:]
        var clock: UInt64 = 0
        /// Bumped by every `forget`: a descriptor opened across one may be of the file that name had
        /// before a rename (a segment swapped out by the cleaner, a truncation's roll), so it is not
        /// cached for later users of the name.
        var forgets: UInt64 = 0
    }

    private let state = Mutex(State())
    private let files: any FileSystem
    /// Idle descriptors kept open at most.
    public let capacity: Int
    /// The memory mappings of sealed indexes, bounded the same way.
    public let mappings: MappingCache

    public init(capacity: Int = 256, maxMappings: Int = 2048, files: any FileSystem = PosixFileSystem()) {
        self.capacity = max(capacity, 1)
        self.mappings = MappingCache(capacity: maxMappings)
        self.files = files
    }

    deinit {
        // No segment can use the cache any more (each holds a reference to it): close everything.
        let open = state.withLock { state in state.entries.values.map(\.fd) + state.forgotten.keys }
        for fd in open { files.close(fd) }
    }

    /// Open descriptors right now (for tests and tools).
    public var openCount: Int { state.withLock { $0.entries.count + $0.forgotten.count } }

    /// Runs `body` with a descriptor of `path` (opened read-write if the file exists, as needed).
    func withDescriptor<R>(_ path: String, _ body: (Int32) throws(StorageError) -> R) throws(StorageError) -> R {
        let fd = try acquire(path, create: false)
        defer { release(path, fd) }
        return try body(fd)
    }

    /// Opens (creating if asked) and holds a descriptor until `unpin`.
    func pin(_ path: String, create: Bool) throws(StorageError) -> Int32 {
        try acquire(path, create: create)
    }

    func unpin(_ path: String, _ fd: Int32) {
        release(path, fd)
    }

    /// The file was renamed or removed: close its descriptor once no one uses it.
    func forget(_ path: String) {
        let toClose: Int32? = state.withLock { state in
            state.forgets += 1
            guard var entry = state.entries.removeValue(forKey: path) else { return nil }
            if entry.users == 0 { return entry.fd }
            entry.forgotten = true
            state.forgotten[entry.fd] = entry
            return nil
        }
        if let toClose { files.close(toClose) }
    }

    private func acquire(_ path: String, create: Bool) throws(StorageError) -> Int32 {
        let (existing, forgets) = state.withLock { state -> (Int32?, UInt64) in
            state.clock += 1
            guard var entry = state.entries[path] else { return (nil, state.forgets) }
            entry.users += 1
            entry.lastUse = state.clock
            state.entries[path] = entry
            return (entry.fd, state.forgets)
        }
        if let existing { return existing }
        let fd: Int32
        do throws(StorageError) {
            fd = try files.open(path, flags: O_RDWR | (create ? O_CREAT : 0) | O_CLOEXEC, mode: 0o600)
        } catch where error.errno == ENOENT && !create {
            // Deleted since the caller found it: its `.deleted` file lives on for the delete delay.
            fd = try files.open(path + SegmentFiles.deletedSuffix, flags: O_RDONLY | O_CLOEXEC, mode: 0)
        }
        var evicted: [Int32] = []
        let chosen = state.withLock { state -> Int32 in
            state.clock += 1
            if state.forgets != forgets {
                // A name was forgotten while this one was opened: this caller's alone (its segment
                // checks it is its own file), closed when it is done, never handed to another.
                state.forgotten[fd] = Entry(fd: fd, users: 1, lastUse: state.clock, forgotten: true)
                return fd
            }
            if var raced = state.entries[path] {
                // Another thread opened it meanwhile: use theirs.
                raced.users += 1
                raced.lastUse = state.clock
                state.entries[path] = raced
                evicted.append(fd)
                return raced.fd
            }
            state.entries[path] = Entry(fd: fd, users: 1, lastUse: state.clock)
            let idle = state.entries.filter { $0.value.users == 0 }
            if state.entries.count > capacity && !idle.isEmpty {
                for (victim, entry) in idle.sorted(by: { $0.value.lastUse < $1.value.lastUse }).prefix(state.entries.count - capacity) {
                    state.entries.removeValue(forKey: victim)
                    evicted.append(entry.fd)
                }
            }
            return fd
        }
        for fd in evicted { files.close(fd) }
        return chosen
    }

    private func release(_ path: String, _ fd: Int32) {
        let toClose: Int32? = state.withLock { state in
            if var entry = state.entries[path], entry.fd == fd {
                entry.users -= 1
                state.entries[path] = entry
                return nil
            }
            guard var entry = state.forgotten[fd] else { return nil }
            entry.users -= 1
            if entry.users > 0 {
                state.forgotten[fd] = entry
                return nil
            }
            state.forgotten.removeValue(forKey: fd)
            return fd
        }
        if let toClose { files.close(toClose) }
    }
}
