package import Glibc
import Synchronization

/// A `FileSystem` for tests: passes calls to a real one, fails chosen calls with a chosen errno, and can
/// simulate a power cut by undoing every write and truncation that no completed fsync covered.
///
/// Power-cut model: bytes reach the disk only through a successful `fsync`/`fdatasync` of their file;
/// everything else is lost. (Directory entries are treated as durable at once, and memory-mapped index
/// writes are not tracked: indexes are rebuilt by recovery and must never be trusted after a crash.)
package final class FaultInjectingFileSystem: FileSystem {
    package enum Operation: Sendable, Hashable {
        case open, write, read, fdatasync, fsync, ftruncate, fallocate, rename, unlink
    }

    private struct Fault {
        var operation: Operation
        var errno: Int32
        var pathContains: String
        var remaining: Int
    }

    /// What to restore for one write or truncation not yet covered by an fsync.
    private enum Undo {
        case write(offset: Int, previous: [UInt8], sizeBefore: Int)
        case truncate(sizeBefore: Int, removed: [UInt8])
    }

    private struct State {
        var faults: [Fault] = []
        var pathOfDescriptor: [Int32: String] = [:]
        var pending: [String: [Undo]] = [:]
        var syncCalls = 0
    }

    private let base: any FileSystem
    private let state = Mutex(State())

    package init(base: any FileSystem = PosixFileSystem()) {
        self.base = base
    }

    /// Makes the next `times` calls of `operation` whose path contains `pathContains` fail with `errno`.
    package func inject(_ operation: Operation, errno: Int32, pathContains: String = "", times: Int = 1) {
        state.withLock { $0.faults.append(Fault(operation: operation, errno: errno, pathContains: pathContains, remaining: times)) }
    }

    /// fsync and fdatasync calls that reached the disk.
    package var syncCalls: Int { state.withLock { $0.syncCalls } }
    /// Injected faults not yet triggered.
    package var faultsRemaining: Int { state.withLock { $0.faults.reduce(0) { $0 + $1.remaining } } }

    package func clearFaults() {
        state.withLock { $0.faults.removeAll() }
    }

    /// Undoes, file by file, every write and truncation since the file's last successful sync, as if
    /// the machine had lost power. Call it after the code under test has stopped using the files.
    package func simulatePowerCut() {
        let pending = state.withLock { state -> [String: [Undo]] in
            defer { state.pending.removeAll() }
            return state.pending
        }
        for (path, undos) in pending {
            let fd = Glibc.open(path, O_RDWR | O_CLOEXEC)
            guard fd >= 0 else { continue }
            for undo in undos.reversed() {
                switch undo {
                case .write(let offset, let previous, let sizeBefore):
                    previous.withUnsafeBytes { _ = Glibc.pwrite(fd, $0.baseAddress, $0.count, off_t(offset)) }
                    var info = stat()
                    fstat(fd, &info)
                    if Int(info.st_size) > sizeBefore { _ = Glibc.ftruncate(fd, off_t(sizeBefore)) }
                case .truncate(let sizeBefore, let removed):
                    var info = stat()
                    fstat(fd, &info)
                    let cut = Int(info.st_size)
                    removed.withUnsafeBytes { _ = Glibc.pwrite(fd, $0.baseAddress, $0.count, off_t(cut)) }
                    _ = Glibc.ftruncate(fd, off_t(sizeBefore))
                }
            }
            Glibc.close(fd)
        }
    }

    private func check(_ operation: Operation, _ path: String) throws(StorageError) {
        let errno: Int32? = state.withLock { state in
            guard let index = state.faults.firstIndex(where: {
                $0.operation == operation && ($0.pathContains.isEmpty || path.contains($0.pathContains))
            }) else { return nil }
            let errno = state.faults[index].errno
            state.faults[index].remaining -= 1
            if state.faults[index].remaining <= 0 { state.faults.remove(at: index) }
            return errno
        }
        if let errno {
            let code: StorageError.Code = operation == .fsync || operation == .fdatasync ? .syncFailed : .io
            throw StorageError(code, path: path, errno: errno, "\(operation) failed (injected)")
        }
    }

    private func record(_ undo: Undo, path: String) {
        state.withLock { $0.pending[path, default: []].append(undo) }
    }

    private func bytes(of fd: Int32, at offset: Int, count: Int) -> [UInt8] {
        guard count > 0 else { return [] }
        var bytes = [UInt8](repeating: 0, count: count)
        let n = bytes.withUnsafeMutableBytes { Glibc.pread(fd, $0.baseAddress, count, off_t(offset)) }
        return Array(bytes.prefix(max(n, 0)))
    }

    private func size(of fd: Int32) -> Int {
        var info = stat()
        fstat(fd, &info)
        return Int(info.st_size)
    }

    // MARK: FileSystem

    package func open(_ path: String, flags: Int32, mode: mode_t) throws(StorageError) -> Int32 {
        try check(.open, path)
        let existed = base.fileExists(path)
        let fd = try base.open(path, flags: flags, mode: mode)
        state.withLock { $0.pathOfDescriptor[fd] = path }
        if !existed && flags & O_CREAT != 0 {
            // A new file is empty until synced: a power cut leaves it empty.
            record(.truncate(sizeBefore: 0, removed: []), path: path)
        }
        return fd
    }

    package func close(_ fd: Int32) {
        state.withLock { _ = $0.pathOfDescriptor.removeValue(forKey: fd) }
        base.close(fd)
    }

    package func pwrite(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, at offset: Int, path: String) throws(StorageError) {
        try check(.write, path)
        let sizeBefore = size(of: fd)
        let previous = self.bytes(of: fd, at: offset, count: min(bytes.count, max(0, sizeBefore - offset)))
        try base.pwrite(fd, bytes, at: offset, path: path)
        record(.write(offset: offset, previous: previous, sizeBefore: sizeBefore), path: path)
    }

    package func pwrite(_ fd: Int32, head: UnsafeRawBufferPointer, tail: UnsafeRawBufferPointer, at offset: Int, path: String)
        throws(StorageError)
    {
        // Two tracked writes: the undo log restores each.
        try pwrite(fd, head, at: offset, path: path)
        try pwrite(fd, tail, at: offset + head.count, path: path)
    }

    package func pread(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, at offset: Int, path: String) throws(StorageError) -> Int {
        try check(.read, path)
        return try base.pread(fd, into: buffer, at: offset, path: path)
    }

    package func fdatasync(_ fd: Int32, path: String) throws(StorageError) {
        try check(.fdatasync, path)
        try base.fdatasync(fd, path: path)
        state.withLock {
            $0.syncCalls += 1
            _ = $0.pending.removeValue(forKey: path)
        }
    }

    package func fsync(_ fd: Int32, path: String) throws(StorageError) {
        try check(.fsync, path)
        try base.fsync(fd, path: path)
        state.withLock {
            $0.syncCalls += 1
            _ = $0.pending.removeValue(forKey: path)
        }
    }

    package func ftruncate(_ fd: Int32, to size: Int, path: String) throws(StorageError) {
        try check(.ftruncate, path)
        let sizeBefore = self.size(of: fd)
        let removed = size < sizeBefore ? bytes(of: fd, at: size, count: sizeBefore - size) : []
        try base.ftruncate(fd, to: size, path: path)
        record(.truncate(sizeBefore: sizeBefore, removed: removed), path: path)
    }

    package func fallocate(_ fd: Int32, size: Int, path: String) throws(StorageError) {
        try check(.fallocate, path)
        let sizeBefore = self.size(of: fd)
        try base.fallocate(fd, size: size, path: path)
        record(.truncate(sizeBefore: sizeBefore, removed: []), path: path)
    }

    package func fileSize(_ fd: Int32, path: String) throws(StorageError) -> Int {
        try base.fileSize(fd, path: path)
    }

    package func rename(_ from: String, to: String) throws(StorageError) {
        try check(.rename, from)
        try base.rename(from, to: to)
        state.withLock { state in
            if let undos = state.pending.removeValue(forKey: from) { state.pending[to] = undos }
        }
    }

    package func unlink(_ path: String) throws(StorageError) {
        try check(.unlink, path)
        try base.unlink(path)
        state.withLock { _ = $0.pending.removeValue(forKey: path) }
    }

    package func makeDirectory(_ path: String) throws(StorageError) {
        try base.makeDirectory(path)
    }

    package func removeDirectory(_ path: String) throws(StorageError) {
        try base.removeDirectory(path)
    }

    package func listDirectory(_ path: String) throws(StorageError) -> [String] {
        try base.listDirectory(path)
    }

    package func fileExists(_ path: String) -> Bool {
        base.fileExists(path)
    }
}
