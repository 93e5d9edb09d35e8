import NIOCore

/// Member ids the coordinator handed out with MEMBER_ID_REQUIRED (KIP-394) that no JoinGroup has used
/// yet: each is good once, for the group it was issued for, until its deadline (the session timeout
/// of the join that asked). At most `capacity` are kept; past it the oldest is dropped.
///
/// Only a hash of the group id is kept, so a storm of joins to long, new group ids costs a few dozen
/// bytes each, not the group ids (a collision could only let an id issued for one group be used for
/// another, which is harmless: any client may join any group). Ids leave in the order issued: one
/// with a long deadline can hold later ones in memory past theirs (never past the capacity), but
/// `claim` checks each deadline, so none is accepted late. One timer, at the front's deadline
/// (`nextDeadline`), drives `expire`.
struct PendingMembers {
    private struct Entry {
        var group: Int
        var deadline: NIODeadline
    }

    let capacity: Int
    private var entries: [String: Entry] = [:]
    /// Ids in the order issued, from `head` on (claimed ones are skipped when reached).
    private var order: [String] = []
    private var head = 0

    init(capacity: Int) {
        self.capacity = max(1, capacity)
    }

    var count: Int { entries.count }

    mutating func issue(_ id: String, group: String, expiring deadline: NIODeadline) {
        entries[id] = Entry(group: group.hashValue, deadline: deadline)
        order.append(id)
        while entries.count > capacity { dropFront() }
    }

    /// Whether `id` was issued for `group` and is still good at `now` (before its deadline); it is used up either way.
    mutating func claim(_ id: String, group: String, at now: NIODeadline) -> Bool {
        guard let entry = entries.removeValue(forKey: id) else { return false }
        return entry.group == group.hashValue && now < entry.deadline
    }

    /// Drops the ids at the front whose deadline passed (or that were claimed).
    mutating func expire(now: NIODeadline) {
        while head < order.count {
            if let entry = entries[order[head]], entry.deadline > now { break }
            dropFront()
        }
    }

    /// When the front id expires (claimed ones at the front are dropped first); nil when none is left.
    mutating func nextDeadline() -> NIODeadline? {
        while head < order.count {
            if let entry = entries[order[head]] { return entry.deadline }
            dropFront()
        }
        return nil
    }

    private mutating func dropFront() {
        guard head < order.count else { return }
        entries[order[head]] = nil
        head += 1
        // Reclaim the consumed front once it is most of the array.
        if head >= 1024 && head * 2 >= order.count {
            order.removeFirst(head)
            head = 0
        }
    }
}
