import Glibc

/// The only owner of a memory mapping in Samsa: a shared, read-write mapping of the first `length`
/// bytes of a file, with bounds-checked, unaligned, big-endian loads and stores. Nothing else in Samsa
/// touches the mapped pointer.
///
/// `@unchecked Sendable`: the mapping's address and length never change after `init`; concurrent access
/// is safe as long as callers never read bytes another thread is storing, which the index types
/// guarantee by publishing their entry count only after an entry is fully written.
final class MappedRegion: @unchecked Sendable {
    private let base: UnsafeMutableRawPointer
    let length: Int
    let path: String

    /// Whether stores are allowed: false for a descriptor opened read-only (a read-only data directory).
    let writable: Bool

    /// Maps `length` bytes of `fd` (the file must already be at least that long), read-write when the
    /// descriptor allows it, read-only otherwise.
    init(fd: Int32, length: Int, path: String) throws(StorageError) {
        precondition(length > 0, "cannot map an empty region")
        let writable = fcntl(fd, F_GETFL) & O_ACCMODE != O_RDONLY
        self.writable = writable
        guard let address = mmap(nil, length, writable ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED, fd, 0), address != MAP_FAILED else {
            throw StorageError(.io, path: path, errno: errno, "mmap of \(length) bytes failed")
        }
        self.base = address
        self.length = length
        self.path = path
    }

    deinit {
        munmap(base, length)
    }

    @inline(__always)
    private func check(_ offset: Int, _ size: Int) {
        precondition(offset >= 0 && offset + size <= length, "offset \(offset)+\(size) outside mapping of \(length) bytes")
    }

    func loadUInt32(at offset: Int) -> UInt32 {
        check(offset, 4)
        return UInt32(bigEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    func loadInt64(at offset: Int) -> Int64 {
        check(offset, 8)
        return Int64(bigEndian: base.loadUnaligned(fromByteOffset: offset, as: Int64.self))
    }

    func store(_ value: UInt32, at offset: Int) {
        check(offset, 4)
        precondition(writable, "store into a read-only mapping of \(path)")
        base.storeBytes(of: value.bigEndian, toByteOffset: offset, as: UInt32.self)
    }

    func store(_ value: Int64, at offset: Int) {
        check(offset, 8)
        precondition(writable, "store into a read-only mapping of \(path)")
        base.storeBytes(of: value.bigEndian, toByteOffset: offset, as: Int64.self)
    }

    /// Sets `count` bytes from `offset` to zero.
    func zero(at offset: Int, count: Int) {
        check(offset, count)
        precondition(writable, "store into a read-only mapping of \(path)")
        (base + offset).initializeMemory(as: UInt8.self, repeating: 0, count: count)
    }

    /// Writes the mapped pages back to the file and waits for the disk.
    func sync() throws(StorageError) {
        if msync(base, length, MS_SYNC) != 0 {
            throw StorageError(.syncFailed, path: path, errno: errno, "msync failed")
        }
    }
}
