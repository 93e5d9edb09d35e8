import Glibc
/// The cleaner's map from key to the latest offset seen for it (Kafka's `SkimpyOffsetMap`): an array
/// of slots with open addressing (linear probing), mapped once for a memory budget and sized per pass
/// (`clear(capacity:)`) to what that pass can need, within the budget.
///
/// A key is stored as a 128-bit hash, not as its bytes, so every key costs the same 24 bytes (hash and
/// offset) however long it is. Two keys with the same 128-bit hash would make the cleaner drop the
/// older one's latest record; with 10^7 keys the chance is about 10^-25 (Kafka accepts MD5's 128 bits
/// on the same reasoning).
///
/// Not thread-safe: each cleaner thread owns one map and reuses it pass after pass (`clear`).
final class OffsetMap {
    /// Bytes each slot takes: the key's hash (16) and its offset (8).
    static let bytesPerEntry = 24

    /// Slots: hash high, hash low, offset + 1 (0 marks a free slot), one triple per slot, in an
    /// anonymous mapping this map alone owns. Why not an array: the pages are zero until touched, so
    /// a map costs memory only for the slots used, and `clear` hands them back (`MADV_DONTNEED`)
    /// instead of writing 128 MiB of zeros per pass; and huge pages (`MADV_HUGEPAGE`) spare a TLB
    /// miss, a costly nested page walk in a VM, on nearly every lookup: the profile of a clean spent
    /// half its time in `get` and `put` and a sixth zeroing the array.
    private let slots: UnsafeMutablePointer<UInt64>
    private let mappedBytes: Int
    /// Slots the memory budget holds: no pass uses more.
    let maximumCapacity: Int
    /// Slots of this pass. Only their pages are touched, so a pass over a few thousand records faults
    /// in (and the kernel zeroes) a page or two, not the whole budget: the profile of small passes was
    /// a third kernel page zeroing.
    private(set) var capacity: Int
    /// Keys stored.
    private(set) var size = 0
    /// The last offset the map covers: every record at or below it was offered to the map.
    private(set) var latestOffset: Int64 = -1

    /// A map whose slots fit in `memoryBytes` (at least one slot).
    init(memoryBytes: Int) {
        maximumCapacity = max(1, memoryBytes / Self.bytesPerEntry)
        capacity = maximumCapacity
        let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))
        mappedBytes = (maximumCapacity * Self.bytesPerEntry + pageSize - 1) / pageSize * pageSize
        let region = mmap(nil, mappedBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        guard let region, region != MAP_FAILED else { fatalError("the cleaner cannot map \(mappedBytes) bytes for its offset map: errno \(errno)") }
        _ = madvise(region, mappedBytes, MADV_HUGEPAGE)
        slots = region.bindMemory(to: UInt64.self, capacity: maximumCapacity * 3)
    }

    deinit {
        munmap(slots, mappedBytes)
    }

    /// Forgets every key and takes `requested` slots (at least one, at most `maximumCapacity`) for the
    /// next pass; the pages used go back to the system (zero again when next touched).
    func clear(capacity requested: Int) {
        if size > 0 {
            // Whole huge pages: handing back part of one would split it.
            let hugePage = 2 << 20
            let used = (capacity * Self.bytesPerEntry + hugePage - 1) / hugePage * hugePage
            if madvise(slots, min(used, mappedBytes), MADV_DONTNEED) != 0 { slots.update(repeating: 0, count: capacity * 3) }
        }
        capacity = min(max(1, requested), maximumCapacity)
        size = 0
        latestOffset = -1
    }

    /// Share of the budget's slots in use (Kafka's buffer utilization), whatever this pass's capacity.
    var utilization: Double { Double(size) / Double(maximumCapacity) }

    /// The home slot of `key`: the high half of `low × capacity` (Lemire's reduction, no division).
    @inline(__always)
    private func home(_ key: KeyHash) -> Int {
        Int(truncatingIfNeeded: key.low.multipliedFullWidth(by: UInt64(capacity)).high)
    }

    /// Records `offset` as the latest for `key` (offsets are offered in increasing order).
    func put(_ key: KeyHash, offset: Int64) {
        precondition(size < capacity, "offset map full")
        var slot = home(key)
        while true {
            let at = slots + slot * 3
            if at[2] == 0 {
                at[0] = key.high
                at[1] = key.low
                at[2] = UInt64(offset + 1)
                size += 1
                break
            }
            if at[0] == key.high && at[1] == key.low {
                at[2] = UInt64(offset + 1)
                break
            }
            slot = slot + 1 == capacity ? 0 : slot + 1
        }
        if offset > latestOffset { latestOffset = offset }
    }

    /// The latest offset recorded for `key`, or -1.
    func get(_ key: KeyHash) -> Int64 {
        var slot = home(key)
        for _ in 0..<capacity {
            let at = slots + slot * 3
            if at[2] == 0 { return -1 }
            if at[0] == key.high && at[1] == key.low { return Int64(at[2]) - 1 }
            slot = slot + 1 == capacity ? 0 : slot + 1
        }
        return -1
    }

    /// Raises the covered offset without a key (batches without keys, gaps between segments).
    func updateLatestOffset(_ offset: Int64) {
        if offset > latestOffset { latestOffset = offset }
    }
}

/// A 128-bit hash of a record key: two 64-bit hashes of the bytes with independent seeds and
/// multipliers, each finished with MurmurHash3's 64-bit avalanche.
struct KeyHash: Hashable {
    var high: UInt64
    var low: UInt64

    init(_ key: UnsafeRawBufferPointer) {
        high = Self.hash(key, seed: 0x9E37_79B9_7F4A_7C15, multiplier: 0xC2B2_AE3D_27D4_EB4F)
        low = Self.hash(key, seed: 0x1656_67B1_9E37_79F9, multiplier: 0x87C3_7B91_1142_53D5)
    }

    init(_ key: [UInt8]) {
        self = key.withUnsafeBytes { KeyHash($0) }
    }

    private static func hash(_ bytes: UnsafeRawBufferPointer, seed: UInt64, multiplier: UInt64) -> UInt64 {
        var h = seed ^ (UInt64(bytes.count) &* multiplier)
        var index = 0
        while index + 8 <= bytes.count {
            let word = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self))
            h = (h ^ mix(word &* multiplier)) &* 0x9FB2_1C65_1E98_DF25
            h = (h << 27) | (h >> 37)
            index += 8
        }
        var tail: UInt64 = 0
        var shift: UInt64 = 0
        while index < bytes.count {
            tail |= UInt64(bytes[index]) << shift
            shift += 8
            index += 1
        }
        h = (h ^ mix(tail &* multiplier ^ shift)) &* 0x9FB2_1C65_1E98_DF25
        return mix(h)
    }

    /// MurmurHash3's fmix64.
    private static func mix(_ value: UInt64) -> UInt64 {
        var k = value
        k ^= k >> 33
        k &*= 0xFF51_AFD7_ED55_8CCD
        k ^= k >> 33
        k &*= 0xC4CE_B9FE_1A85_EC53
        k ^= k >> 33
        return k
    }
}
