import Synchronization

/// Something whose memory mapping can be dropped and remade on demand: a sealed segment's index.
protocol EvictableMapping: AnyObject, Sendable {
    /// Drops the mapping; it is remade on next use. Readers holding the old one keep it until done.
    func dropMapping()
}

/// Bounds how many sealed indexes are mapped at once, least recently used dropped first, so a data
/// directory of many thousands of segments stays under `vm.max_map_count`. Active segments' indexes are
/// never registered here: they stay mapped while they take appends.
public final class MappingCache: Sendable {
    private struct Entry {
        weak var mapping: (any EvictableMapping)?
        var lastUse: UInt64
    }

    private struct State {
        var entries: [ObjectIdentifier: Entry] = [:]
        var clock: UInt64 = 0
    }

    private let state = Mutex(State())
    /// Sealed index mappings kept at most.
    public let capacity: Int

    public init(capacity: Int = 2048) {
        self.capacity = max(capacity, 2)
    }

    /// Mapped sealed indexes right now (for tests and tools).
    public var mappedCount: Int { state.withLock { $0.entries.count } }

    /// Records a use of `mapping` (mapping it counts as one); drops the least recently used ones past
    /// the capacity.
    func touch(_ mapping: any EvictableMapping) {
        let victims = state.withLock { state -> [any EvictableMapping] in
            state.clock += 1
            state.entries[ObjectIdentifier(mapping)] = Entry(mapping: mapping, lastUse: state.clock)
            guard state.entries.count > capacity else { return [] }
            let excess = state.entries.count - capacity
            let oldest = state.entries.sorted { $0.value.lastUse < $1.value.lastUse }.prefix(excess)
            var victims: [any EvictableMapping] = []
            for (key, entry) in oldest {
                state.entries.removeValue(forKey: key)
                if let victim = entry.mapping { victims.append(victim) }
            }
            return victims
        }
        // Outside the cache's lock: a mapping takes its own lock to drop itself.
        for victim in victims { victim.dropMapping() }
    }

    /// `mapping` is gone or unmapped for good.
    func remove(_ mapping: any EvictableMapping) {
        _ = state.withLock { $0.entries.removeValue(forKey: ObjectIdentifier(mapping)) }
    }
}
