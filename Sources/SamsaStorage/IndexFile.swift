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
/// An index that is written to is preallocated one page at first and doubled as entries need it, up to
/// `maxSize`, and mapped whole; its entry count is found by binary search for the first unwritten slot,
/// so a zero-filled tail is never read as entries. (Preallocating `maxSize` at once cost 20 MiB of disk
/// per partition before its first record: a create of many partitions filled disks.)
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
    /// Set once the file carries its `.deleted` name (see `markRenamed`).
    private let renamedAway = Atomic<Bool>(false)
    private let slots: Atomic<Int>
    /// Entries the file may grow to hold (its room now, for an index that is not written to).
    private let maxSlots: Int
    /// Entries the file has room for now.
    var capacity: Int { slots.load(ordering: .acquiring) }

    /// The first preallocation of an index that is written to: one page.
    static var initialBytes: Int { 4096 }

    var entryCount: Int { published.load(ordering: .acquiring) }
    /// No room for another entry, even by growing: the segment should roll.
    var isFull: Bool { entryCount >= maxSlots }
    var sizeInBytes: Int { entryCount * Layout.entrySize }

    /// Opens or creates the index at `path`. When `writable`, `maxSize` bytes are preallocated (so
    /// appends never grow the file) and the mapping is kept; otherwise it is mapped on demand and
    /// `mappings` may drop it when many sealed indexes are mapped.
    /// With `load` false the file is not read at all (read-only opens of a live writer's active
    /// segment, whose index it trims on roll): no entries; lookups scan from the segment's start.
    init(path: String, maxSize: Int, writable: Bool, load: Bool = true, files: any FileSystem, mappings: MappingCache?) throws(StorageError) {
        self.path = path
        self.files = files
        self.mappings = mappings
        let maxLength = max(maxSize - maxSize % Layout.entrySize, Layout.entrySize)
        guard load else {
            slots = Atomic(0)
            maxSlots = 0
            return
        }
        let fd: Int32
        let existed = files.fileExists(path)
        do throws(StorageError) {
            fd = try files.open(path, flags: O_RDWR | O_CREAT | O_CLOEXEC, mode: 0o600)
        } catch where files.isReadOnly && error.errno == ENOENT {
            // Read-only and never written (a crash before the index was made): no entries; lookups
            // scan from the segment's start.
            slots = Atomic(0)
            maxSlots = 0
            return
        }
        defer { files.close(fd) }
        let existing = try files.fileSize(fd, path: path)
        var length = existing - existing % Layout.entrySize
        // A new index has no entries; an existing one's are counted by binary search below.
        var knownEntries: Int?
        if writable && !existed {
            // A new index: its first page, really allocated, not a sparse extension: a store into a
            // mapped hole that the file system cannot back (a full disk) would raise SIGBUS;
            // fallocate fails cleanly instead. An existing one keeps its size: reopening needs no
            // fresh space (a restart after a crash on a full disk), it grows when an entry needs room.
            let initial = min(maxLength, max(Self.initialBytes - Self.initialBytes % Layout.entrySize, Layout.entrySize))
            do throws(StorageError) {
                try files.fallocate(fd, size: initial, path: path)
            } catch {
                try? files.ftruncate(fd, to: existing, path: path)
                throw error
            }
            knownEntries = 0
            length = initial
        } else {
            // Mapped for reading only: never past the first hole (an untrimmed index written sparse by
            // an older version), whose pages a full file system could not back either.
            length = min(length, files.dataLength(fd, size: existing) / Layout.entrySize * Layout.entrySize)
        }
        slots = Atomic(length / Layout.entrySize)
        let capacity = length / Layout.entrySize
        maxSlots = writable ? max(capacity, maxLength / Layout.entrySize) : capacity
        // Read-only opens copy the entries instead of mapping them, and keep the copy (see
        // `MappedRegion(copyOf:)`); everything else maps the file.
        let copy = files.isReadOnly
        let region =
            length == 0 ? nil
            : copy ? try MappedRegion(copyOf: fd, length: length, path: path, files: files) : try MappedRegion(fd: fd, length: length, path: path)
        // (Unless its last slot is unwritten: a file preallocated smaller by an earlier configuration.)
        if let known = knownEntries, known > 0, let region, Layout.isUnwritten(region, at: known - 1) { knownEntries = nil }
        published.store(knownEntries ?? Self.countWrittenEntries(region, capacity: capacity), ordering: .releasing)
        if writable || copy {
            mapping.withLock { $0 = region }
        }
        // A sealed index is unmapped now (`region` goes) and mapped again on first use.
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
        // After the rename the original name may belong to another segment's index (a cleaned segment
        // swapped in at the same base offset): this index maps only its own file, checked again once
        // it is open.
        if !renamedAway.load(ordering: .sequentiallyConsistent) {
            let fd = try files.open(path, flags: O_RDWR | O_CLOEXEC, mode: 0)
            defer { files.close(fd) }
            if !renamedAway.load(ordering: .sequentiallyConsistent) {
                return try MappedRegion(fd: fd, length: capacity * Layout.entrySize, path: path)
            }
        }
        let renamed = path + SegmentFiles.deletedSuffix
        let fd = try files.open(renamed, flags: O_RDONLY | O_CLOEXEC, mode: 0)
        defer { files.close(fd) }
        return try MappedRegion(fd: fd, length: capacity * Layout.entrySize, path: renamed)
    }

    /// The file was renamed to its `.deleted` name: later mappings open that name.
    func markRenamed() {
        renamedAway.store(true, ordering: .sequentiallyConsistent)
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

    /// Makes room for the next entry, growing the file (doubling, up to its maximum) if it is full
    /// now. Appenders call this before writing the log, so a full disk fails an append cleanly.
    func reserveNextEntry() throws(StorageError) {
        let room = capacity
        guard entryCount >= room, room < maxSlots else { return }
        let grown = min(maxSlots, max(room * 2, Self.initialBytes / Layout.entrySize, 1))
        let length = grown * Layout.entrySize
        let fd = try files.open(path, flags: O_RDWR | O_CLOEXEC, mode: 0)
        defer { files.close(fd) }
        // Allocated for real, as at creation (a mapped hole on a full disk would be a SIGBUS).
        try files.fallocate(fd, size: length, path: path)
        let region = try MappedRegion(fd: fd, length: length, path: path)
        // The new mapping first, then the room: a reader that sees the new capacity maps the new
        // length; one holding the old mapping reads published entries, which both hold. The old
        // mapping is let go after the lock (its munmap, if this was the last holder, runs outside it).
        let previous = mapping.withLock { current in
            defer { current = region }
            return current
        }
        slots.store(grown, ordering: .releasing)
        withExtendedLifetime(previous) {}
    }

    /// Writes the next entry with `write` and publishes it to readers.
    func append(_ write: (MappedRegion, Int) -> Void) throws(StorageError) {
        try reserveNextEntry()
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

    /// Forgets every entry and zeroes the whole mapped file, not only the counted entries: after a
    /// power cut the file may hold stale entries past an unwritten slot, which a later count could
    /// take for entries of the rebuilt index (recovery, before a rebuild).
    func reset() {
        published.store(0, ordering: .releasing)
        guard let region = currentRegion(), region.writable else { return }
        region.zero(at: 0, count: capacity * Layout.entrySize)
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
