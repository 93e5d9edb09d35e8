public import Glibc
public import SamsaStorage
import Synchronization

/// A `FileSystem` that passes every call to a real one and records the blocking ones (writes,
/// syncs, renames, truncations) that ran inside a Swift task: code that means to keep its file work
/// off the cooperative pool must leave `callsInTasks` empty. A call on a dispatch queue or a thread
/// of its own runs in no task.
public final class TaskWatchingFileSystem: FileSystem {
    private let base: any FileSystem
    private let recorded = Mutex<[String]>([])

    public init(base: any FileSystem = PosixFileSystem()) { self.base = base }

    /// The blocking calls made inside a task, as `operation path`.
    public var callsInTasks: [String] { recorded.withLock { $0 } }

    private func watch(_ operation: String, _ path: String) {
        let inTask = withUnsafeCurrentTask { $0 != nil }
        if inTask { recorded.withLock { $0.append("\(operation) \(path)") } }
    }

    public func open(_ path: String, flags: Int32, mode: mode_t) throws(StorageError) -> Int32 { try base.open(path, flags: flags, mode: mode) }
    public func close(_ fd: Int32) { base.close(fd) }
    public func pwrite(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, at offset: Int, path: String) throws(StorageError) {
        watch("pwrite", path)
        try base.pwrite(fd, bytes, at: offset, path: path)
    }
    public func pwrite(_ fd: Int32, head: UnsafeRawBufferPointer, tail: UnsafeRawBufferPointer, at offset: Int, path: String) throws(StorageError) {
        watch("pwrite", path)
        try base.pwrite(fd, head: head, tail: tail, at: offset, path: path)
    }
    public func pread(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, at offset: Int, path: String) throws(StorageError) -> Int {
        try base.pread(fd, into: buffer, at: offset, path: path)
    }
    public func fdatasync(_ fd: Int32, path: String) throws(StorageError) {
        watch("fdatasync", path)
        try base.fdatasync(fd, path: path)
    }
    public func fsync(_ fd: Int32, path: String) throws(StorageError) {
        watch("fsync", path)
        try base.fsync(fd, path: path)
    }
    public func ftruncate(_ fd: Int32, to size: Int, path: String) throws(StorageError) {
        watch("ftruncate", path)
        try base.ftruncate(fd, to: size, path: path)
    }
    public func fallocate(_ fd: Int32, size: Int, path: String) throws(StorageError) { try base.fallocate(fd, size: size, path: path) }
    public func fileSize(_ fd: Int32, path: String) throws(StorageError) -> Int { try base.fileSize(fd, path: path) }
    public func rename(_ from: String, to: String) throws(StorageError) {
        watch("rename", to)
        try base.rename(from, to: to)
    }
    public func unlink(_ path: String) throws(StorageError) { try base.unlink(path) }
    public func makeDirectory(_ path: String) throws(StorageError) { try base.makeDirectory(path) }
    public func removeDirectory(_ path: String) throws(StorageError) { try base.removeDirectory(path) }
    public func listDirectory(_ path: String) throws(StorageError) -> [String] { try base.listDirectory(path) }
    public func fileExists(_ path: String) -> Bool { base.fileExists(path) }
}
