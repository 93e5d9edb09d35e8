public import Glibc

/// A file system that can only read: every open is read-only and every call that would change a file
/// or a directory fails with `.readOnly`. A read-only `LogManager` runs on it, so "reading never
/// writes" (no checkpoint, no recovery cut, no index rebuild, no free space needed) is enforced in one
/// place rather than promised by every caller.
public struct ReadOnlyFileSystem: FileSystem {
    private let base: any FileSystem

    public init(base: any FileSystem = PosixFileSystem()) {
        self.base = base
    }

    public var isReadOnly: Bool { true }

    private func refuse(_ what: String, _ path: String) -> StorageError {
        StorageError(.readOnly, path: path, "\(what) refused: opened read-only")
    }

    public func open(_ path: String, flags: Int32, mode: mode_t) throws(StorageError) -> Int32 {
        if flags & O_ACCMODE == O_WRONLY || flags & O_TRUNC != 0 { throw refuse("opening for writing", path) }
        // Read-write opens (the index and segment code asks for them) become read-only; creation is not
        // allowed, so a missing file is reported as missing.
        let readOnlyFlags = (flags & ~(O_ACCMODE | O_CREAT | O_EXCL)) | O_RDONLY
        return try base.open(path, flags: readOnlyFlags, mode: 0)
    }

    public func close(_ fd: Int32) { base.close(fd) }

    public func pwrite(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, at offset: Int, path: String) throws(StorageError) {
        throw refuse("write", path)
    }

    public func pwrite(_ fd: Int32, head: UnsafeRawBufferPointer, tail: UnsafeRawBufferPointer, at offset: Int, path: String) throws(StorageError) {
        throw refuse("write", path)
    }

    public func pread(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, at offset: Int, path: String) throws(StorageError) -> Int {
        try base.pread(fd, into: buffer, at: offset, path: path)
    }

    public func fdatasync(_ fd: Int32, path: String) throws(StorageError) { throw refuse("fdatasync", path) }
    public func fsync(_ fd: Int32, path: String) throws(StorageError) { throw refuse("fsync", path) }
    public func ftruncate(_ fd: Int32, to size: Int, path: String) throws(StorageError) { throw refuse("truncate", path) }
    public func fallocate(_ fd: Int32, size: Int, path: String) throws(StorageError) { throw refuse("fallocate", path) }
    public func fileSize(_ fd: Int32, path: String) throws(StorageError) -> Int { try base.fileSize(fd, path: path) }
    public func rename(_ from: String, to: String) throws(StorageError) { throw refuse("rename", from) }
    public func unlink(_ path: String) throws(StorageError) { throw refuse("unlink", path) }
    public func makeDirectory(_ path: String) throws(StorageError) { throw refuse("mkdir", path) }
    public func removeDirectory(_ path: String) throws(StorageError) { throw refuse("rmdir", path) }
    public func listDirectory(_ path: String) throws(StorageError) -> [String] { try base.listDirectory(path) }
    public func fileExists(_ path: String) -> Bool { base.fileExists(path) }
}
