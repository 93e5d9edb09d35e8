import Glibc
import Synchronization

/// How one kind of index lays out its fixed-size entries.
protocol IndexEntryLayout {
    /// Bytes per entry.
    static var entrySize: Int { get }
    /// True when the slot at `index` was never written: a zero-filled, preallocated slot. (No valid
    /// entry is all zeros: each layout rules that out.)
    static func isUnwritten(_ region: MappedRegion, at index: Int) -> Bool
}

/// A file of fixed-size index entries, memory mapped: the shared machinery of `OffsetIndex` and
/// `TimeIndex` (Kafka's `AbstractIndex`).
///
/// An index that is written to is preallocated to `maxSize` and mapped whole; its entry count is found
/// by binary search for the first unwritten slot, so a zero-filled tail is never read as entries.
/// `trim()` cuts the file to its entries (on roll and clean close). Indexes are not checksummed: after
/// a crash they are sanity-checked and rebuilt from their segment, never trusted.
///
/// One writer; any number of readers, who see entries up to the count published after each append.
final class IndexFile<Layout: IndexEntryLayout>: EvictableMapping, @unchecked Sendable {
    // @unchecked: the mapping is read and replaced only under `mapping`'s lock, and a reader keeps the
    // `MappedRegion` it got alive (and mapped) until it is done; everything else is atomic.
    let path: String
    private let files: any FileSystem
    private let mappings: MappingCache?
    private let mapping = Mutex<MappedRegion?>(nil)
    private let published = Atomic<Int>(0)
    private let evictable = Atomic<Bool>(false)
    private let slots: Atomic<Int>
    /// Entries the file has room for.
    var capacity: Int { slots.load(ordering: .acquiring) }

    var entryCount: Int { published.load(ordering: .acquiring) }
    var isFull: Bool { entryCount >= capacity }
    var sizeInBytes: Int { entryCount * Layout.entrySize }

    /// Opens or creates the index at `path`. When `writable`, `maxSize` bytes are preallocated (so
    /// appends never grow the file) and the mapping is kept; otherwise it is mapped on demand and
    /// `mappings` may drop it when many sealed indexes are mapped.
    init(path: String, maxSize: Int, writable: Bool, files: any FileSystem, mappings: MappingCache?) throws(StorageError) {
        self.path = path
        self.files = files
        self.mappings = mappings
        let fd: Int32
        do throws(StorageError) {
            fd = try files.open(path, flags: O_RDWR | O_CREAT | O_CLOEXEC, mode: 0o600)
        } catch where files.isReadOnly && error.errno == ENOENT {
            // Read-only and never written (a crash before the index was made): no entries; lookups
            // scan from the segment's start.
            slots = Atomic(0)
            return
        }
        defer { files.close(fd) }
        let existing = try files.fileSize(fd, path: path)
        var length = existing - existing % Layout.entrySize
        // A file shorter than the preallocation was trimmed (or is new): every entry in it is written,
        // and searching the extended zero tail would only fault its pages in.
        var knownEntries: Int?
        if writable {
            let preallocated = max(maxSize - maxSize % Layout.entrySize, Layout.entrySize)
            if existing < preallocated {
                // Really allocated, not a sparse extension: a store into a mapped hole that the file
                // system cannot back (a full disk) would raise SIGBUS; fallocate fails cleanly instead.
                do throws(StorageError) {
                    try files.fallocate(fd, size: preallocated, path: path)
                } catch {
                    try? files.ftruncate(fd, to: existing, path: path)
                    throw error
                }
                knownEntries = length / Layout.entrySize
                length = preallocated
            }
        } else {
            // Mapped for reading only: never past the first hole (an untrimmed index written sparse by
            // an older version), whose pages a full file system could not back either.
            length = min(length, files.dataLength(fd, size: existing) / Layout.entrySize * Layout.entrySize)
        }
        slots = Atomic(length / Layout.entrySize)
        let capacity = length / Layout.entrySize
        let region = length > 0 ? try MappedRegion(fd: fd, length: length, path: path) : nil
        // (Unless its last slot is unwritten: a file preallocated smaller by an earlier configuration.)
        if let known = knownEntries, known > 0, let region, Layout.isUnwritten(region, at: known - 1) { knownEntries = nil }
        published.store(knownEntries ?? Self.countWrittenEntries(region, capacity: capacity), ordering: .releasing)
        if writable {
            mapping.withLock { $0 = region }
        }
        // A read-only index is unmapped now (`region` goes) and mapped again on first use.
    }

    deinit {
        mappings?.remove(self)
    }

    /// Entries are written front to back, so unwritten slots form a suffix: binary search for its start.
    private static func countWrittenEntries(_ region: MappedRegion?, capacity: Int) -> Int {
        guard let region, capacity > 0 else { return 0 }
        var low = 0, high = capacity
        while low < high {
            let middle = (low + high) / 2
            if Layout.isUnwritten(region, at: middle) { high = middle } else { low = middle + 1 }
        }
        return low
    }

    /// The mapping, made on demand for a sealed index; nil when the index has no entries' room at all.
    private func currentRegion() -> MappedRegion? {
        guard capacity > 0 else { return nil }
        let region = mapping.withLock { slot -> MappedRegion? in
            if let region = slot { return region }
            slot = try? map()
            return slot
        }
        if region != nil, evictable.load(ordering: .relaxed), let mappings { mappings.touch(self) }
        return region
    }

    private func map() throws(StorageError) -> MappedRegion {
        let fd = try files.open(path, flags: O_RDWR | O_CLOEXEC, mode: 0)
        defer { files.close(fd) }
        return try MappedRegion(fd: fd, length: capacity * Layout.entrySize, path: path)
    }

    func dropMapping() {
        mapping.withLock { $0 = nil }
    }

    /// The mapped entries for a layout to read; nil when the index has none (or cannot be mapped, in
    /// which case lookups fall back to the segment's start: slower, never wrong).
    func withRegion<R>(_ body: (MappedRegion, Int) -> R) -> R? {
        guard let region = currentRegion() else { return nil }
        return body(region, entryCount)
    }

    /// Writes the next entry with `write` and publishes it to readers.
    func append(_ write: (MappedRegion, Int) -> Void) throws(StorageError) {
        let count = entryCount
        guard count < capacity, let region = currentRegion() else {
            throw StorageError(.indexFull, path: path, "index holds \(capacity) entries")
        }
        write(region, count * Layout.entrySize)
        published.store(count + 1, ordering: .releasing)
    }

    /// Drops entries from the end while `isPastCut(slot)` holds for the last one.
    func dropTrailing(while isPastCut: (Int) -> Bool) {
        var keep = entryCount
        while keep > 0 && isPastCut(keep - 1) { keep -= 1 }
        truncate(toEntries: keep)
    }

    /// Stops using the entries without touching the file (a read-only open whose index failed its
    /// sanity check: lookups then scan from the segment's start, slower but never wrong).
    func ignoreEntries() {
        published.store(0, ordering: .releasing)
    }

    /// Forgets entries from `count` on (used by truncation and after a failed sanity check).
    func truncate(toEntries count: Int) {
        precondition(count >= 0 && count <= entryCount)
        let previous = entryCount
        // Publish the shorter count first: lock-free lookups read only published entries, so none can
        // see a slot while it is being zeroed (a half-zeroed entry would point past its target).
        published.store(count, ordering: .releasing)
        guard let region = currentRegion() else { return }
        // Zero the dropped slots so a reopened, untrimmed file does not count them again.
        region.zero(at: count * Layout.entrySize, count: (previous - count) * Layout.entrySize)
    }

    /// Flushes the mapped entries to disk.
    func sync() throws(StorageError) {
        try currentRegion()?.sync()
    }

    /// Cuts the file to its entries; from now on the index is read-only, mapped on demand and may be
    /// unmapped under pressure. No sync: mapped writes are already in the page cache, and an index is
    /// rebuilt if a crash loses them.
    func trim() throws(StorageError) {
        let size = sizeInBytes
        // Shrink the capacity before the mapping goes, so a reader remaps only the trimmed length.
        slots.store(size / Layout.entrySize, ordering: .releasing)
        mapping.withLock { $0 = nil }
        let fd = try files.open(path, flags: O_RDWR | O_CLOEXEC, mode: 0)
        defer { files.close(fd) }
        try files.ftruncate(fd, to: size, path: path)
        evictable.store(true, ordering: .relaxed)
    }

    /// Unmaps the index for good.
    func close() {
        mapping.withLock { $0 = nil }
        mappings?.remove(self)
    }
}
