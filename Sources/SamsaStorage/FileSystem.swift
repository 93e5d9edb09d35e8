public import Glibc

/// The narrow layer every file system call of SamsaStorage goes through, so tests can inject errors
/// (`FaultInjectingFileSystem`) and simulate a power cut. Each method is one system call with its errno
/// turned into a `StorageError`; `EINTR` is retried here and nowhere else.
public protocol FileSystem: Sendable {
    func open(_ path: String, flags: Int32, mode: mode_t) throws(StorageError) -> Int32
    func close(_ fd: Int32)
    func pwrite(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, at offset: Int, path: String) throws(StorageError)
    /// Writes `head` then `tail` contiguously at `offset` in one call (pwritev).
    func pwrite(_ fd: Int32, head: UnsafeRawBufferPointer, tail: UnsafeRawBufferPointer, at offset: Int, path: String) throws(StorageError)
    /// Reads up to `buffer.count` bytes; returns how many (fewer only at end of file).
    func pread(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, at offset: Int, path: String) throws(StorageError) -> Int
    func fdatasync(_ fd: Int32, path: String) throws(StorageError)
    func fsync(_ fd: Int32, path: String) throws(StorageError)
    func ftruncate(_ fd: Int32, to size: Int, path: String) throws(StorageError)
    func fallocate(_ fd: Int32, size: Int, path: String) throws(StorageError)
    func fileSize(_ fd: Int32, path: String) throws(StorageError) -> Int
    func rename(_ from: String, to: String) throws(StorageError)
    func unlink(_ path: String) throws(StorageError)
    func makeDirectory(_ path: String) throws(StorageError)
    func removeDirectory(_ path: String) throws(StorageError)
    /// Names in a directory, without "." and "..".
    func listDirectory(_ path: String) throws(StorageError) -> [String]
    func fileExists(_ path: String) -> Bool
    /// True for a file system that refuses every change (`ReadOnlyFileSystem`).
    var isReadOnly: Bool { get }
}

extension FileSystem {
    public var isReadOnly: Bool { false }

    /// Bytes from the start of the file up to its first hole (`SEEK_HOLE`); `size` where it has none
    /// or the file system cannot tell.
    public func dataLength(_ fd: Int32, size: Int) -> Int {
        let hole = lseek(fd, 0, seekHole)
        return hole < 0 ? size : min(Int(hole), size)
    }

    /// fsyncs a directory so the names created, renamed or removed in it are durable.
    public func syncDirectory(_ path: String) throws(StorageError) {
        let fd = try open(path, flags: O_RDONLY | O_DIRECTORY | O_CLOEXEC, mode: 0)
        defer { close(fd) }
        try fsync(fd, path: path)
    }

    /// Writes `bytes` to a new file at `path` durably and atomically: temp file, fsync, rename,
    /// fsync of the directory. Readers see the old contents or the new, never a mix.
    public func writeFileAtomically(_ path: String, _ bytes: [UInt8]) throws(StorageError) {
        let temporary = path + ".tmp"
        let fd = try open(temporary, flags: O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode: 0o600)
        do throws(StorageError) {
            try bytes.withUnsafeBytes { raw in Result { () throws(StorageError) in try pwrite(fd, raw, at: 0, path: temporary) } }.get()
            try fsync(fd, path: temporary)
        } catch {
            close(fd)
            throw error
        }
        close(fd)
        try rename(temporary, to: path)
        try syncDirectory(directoryName(of: path))
    }

    /// The whole contents of a small file.
    public func readFile(_ path: String) throws(StorageError) -> [UInt8] {
        let fd = try open(path, flags: O_RDONLY | O_CLOEXEC, mode: 0)
        defer { close(fd) }
        let size = try fileSize(fd, path: path)
        var bytes = [UInt8](repeating: 0, count: size)
        let count = try bytes.withUnsafeMutableBytes { raw in
            Result { () throws(StorageError) in try pread(fd, into: raw, at: 0, path: path) }
        }.get()
        return Array(bytes.prefix(count))
    }
}

/// `SEEK_HOLE` (Linux; glibc declares it only under _GNU_SOURCE).
private let seekHole: Int32 = 4

func directoryName(of path: String) -> String {
    guard let slash = path.lastIndex(of: "/") else { return "." }
    return slash == path.startIndex ? "/" : String(path[..<slash])
}

/// Who may read what Samsa creates.
public struct FilePermissions: Sendable, Hashable {
    /// Mode of new files and of new directories.
    public var file: mode_t
    public var directory: mode_t

    public init(file: mode_t, directory: mode_t) {
        self.file = file
        self.directory = directory
    }

    /// The owner only (0600 / 0700): the default, as databases keep their data directories.
    public static let owner = FilePermissions(file: 0o600, directory: 0o700)
    /// The owner writes, the group reads (0640 / 0750).
    public static let group = FilePermissions(file: 0o640, directory: 0o750)
    /// The owner writes, everyone reads (0644 / 0755).
    public static let everyone = FilePermissions(file: 0o644, directory: 0o755)
}

/// The real file system: POSIX calls. Files and directories it creates get `permissions` (the umask
/// may narrow them further); the mode a caller passes is not used, so one setting decides for all of
/// Samsa's files.
public struct PosixFileSystem: FileSystem {
    public let permissions: FilePermissions

    public init(permissions: FilePermissions = .owner) {
        self.permissions = permissions
    }

    private func fail(_ what: String, _ path: String, code: StorageError.Code = .io) -> StorageError {
        StorageError(code, path: path, errno: errno, "\(what) failed")
    }

    public func open(_ path: String, flags: Int32, mode: mode_t) throws(StorageError) -> Int32 {
        while true {
            let fd = Glibc.open(path, flags, flags & O_CREAT != 0 ? permissions.file : 0)
            if fd >= 0 { return fd }
            if errno != EINTR { throw fail("open", path) }
        }
    }

    public func close(_ fd: Int32) {
        _ = Glibc.close(fd)
    }

    public func pwrite(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, at offset: Int, path: String) throws(StorageError) {
        var done = 0
        while done < bytes.count {
            let n = Glibc.pwrite(fd, bytes.baseAddress! + done, bytes.count - done, off_t(offset + done))
            if n < 0 {
                if errno == EINTR { continue }
                throw fail("write", path)
            }
            done += n
        }
    }

    public func pwrite(_ fd: Int32, head: UnsafeRawBufferPointer, tail: UnsafeRawBufferPointer, at offset: Int, path: String)
        throws(StorageError)
    {
        var vectors = [
            iovec(iov_base: UnsafeMutableRawPointer(mutating: head.baseAddress), iov_len: head.count),
            iovec(iov_base: UnsafeMutableRawPointer(mutating: tail.baseAddress), iov_len: tail.count),
        ]
        let total = head.count + tail.count
        var written = 0
        while true {
            let n = vectors.withUnsafeMutableBufferPointer { Glibc.pwritev(fd, $0.baseAddress, 2, off_t(offset + written)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw fail("write", path)
            }
            written += n
            if written == total { return }
            break  // a short write: finish the rest with plain writes below
        }
        let headLeft = max(0, head.count - written)
        if headLeft > 0 { try pwrite(fd, UnsafeRawBufferPointer(rebasing: head[(head.count - headLeft)...]), at: offset + written, path: path) }
        let tailDone = max(0, written - head.count)
        try pwrite(fd, UnsafeRawBufferPointer(rebasing: tail[tailDone...]), at: offset + head.count + tailDone, path: path)
    }

    public func pread(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, at offset: Int, path: String) throws(StorageError) -> Int {
        var done = 0
        while done < buffer.count {
            let n = Glibc.pread(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset + done))
            if n < 0 {
                if errno == EINTR { continue }
                throw fail("read", path)
            }
            if n == 0 { break }
            done += n
        }
        return done
    }

    public func fdatasync(_ fd: Int32, path: String) throws(StorageError) {
        // No retry on failure: after a failed fdatasync the kernel may have dropped the dirty pages, and
        // a second call can succeed without the data being on disk (the "fsyncgate" lesson).
        if Glibc.fdatasync(fd) != 0 { throw fail("fdatasync", path, code: .syncFailed) }
    }

    public func fsync(_ fd: Int32, path: String) throws(StorageError) {
        if Glibc.fsync(fd) != 0 { throw fail("fsync", path, code: .syncFailed) }
    }

    public func ftruncate(_ fd: Int32, to size: Int, path: String) throws(StorageError) {
        while Glibc.ftruncate(fd, off_t(size)) != 0 {
            if errno != EINTR { throw fail("ftruncate", path) }
        }
    }

    public func fallocate(_ fd: Int32, size: Int, path: String) throws(StorageError) {
        let status = posix_fallocate(fd, 0, off_t(size))
        if status != 0 { throw StorageError(.io, path: path, errno: status, "fallocate of \(size) bytes failed") }
    }

    public func fileSize(_ fd: Int32, path: String) throws(StorageError) -> Int {
        var info = stat()
        if fstat(fd, &info) != 0 { throw fail("fstat", path) }
        return Int(info.st_size)
    }

    public func rename(_ from: String, to: String) throws(StorageError) {
        if Glibc.rename(from, to) != 0 { throw fail("rename to \(to)", from) }
    }

    public func unlink(_ path: String) throws(StorageError) {
        if Glibc.unlink(path) != 0 && errno != ENOENT { throw fail("unlink", path) }
    }

    public func makeDirectory(_ path: String) throws(StorageError) {
        if mkdir(path, permissions.directory) != 0 && errno != EEXIST { throw fail("mkdir", path) }
    }

    public func removeDirectory(_ path: String) throws(StorageError) {
        if rmdir(path) != 0 && errno != ENOENT { throw fail("rmdir", path) }
    }

    public func listDirectory(_ path: String) throws(StorageError) -> [String] {
        guard let directory = opendir(path) else { throw fail("opendir", path) }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: Int(NAME_MAX) + 1) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    public func fileExists(_ path: String) -> Bool {
        access(path, F_OK) == 0
    }
}
