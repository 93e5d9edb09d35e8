import SamsaWaiting
import NIOCore

/// The group coordinator's deadlines: each member's session, each rebalance, and the oldest member id
/// handed out and not used yet (Kafka's heartbeat and join purgatories; in its newer coordinator, the
/// keyed `CoordinatorTimer`). One timer per key on an event loop (NIO's timer heap, as the
/// `Purgatory`'s); scheduling a key again replaces its timer (a heartbeat pushes the session deadline
/// back), and a key cancelled, or completed by its firing, leaves nothing behind.
///
/// Why not the `Purgatory`: its operations complete a request that waits for them, while no request
/// waits for these (a member that stopped heartbeating sends nothing), so a deadline here must run
/// coordinator code rather than resume a waiter. The coordinator actor's executor is the same loop
/// the timers fire on, so a firing timer is already isolated to it and calls it synchronously: no
/// task per member, no sweep, no hop.
///
/// Not thread-safe: owned by the coordinator actor, used on its loop.
struct GroupDeadlines {
    enum Key: Hashable, Sendable {
        case session(group: String, member: String)
        case rebalance(group: String)
        /// The member id at the front of `PendingMembers` (they leave in the order issued).
        case pendingMembers
    }

    private struct Armed {
        var deadline: NIODeadline
        /// Which scheduling this is: a timer whose key was rescheduled or cancelled after it was
        /// taken off the loop's heap (two due at once) must not fire.
        var token: Int
        var timer: Scheduled<Void>
    }

    let loop: any EventLoop
    private var armed: [Key: Armed] = [:]
    private var tokens = 0

    init(loop: any EventLoop) {
        self.loop = loop
    }

    /// Timers armed (tests: none is left once a group is gone).
    var count: Int { armed.count }

    func deadline(_ key: Key) -> NIODeadline? { armed[key]?.deadline }

    /// Arms `key` for `deadline`, replacing its timer; `fire` gets the key and the token `take` wants.
    mutating func schedule(_ key: Key, at deadline: NIODeadline, fire: @escaping @Sendable (Key, Int) -> Void) {
        armed[key]?.timer.cancel()
        tokens += 1
        let token = tokens
        armed[key] = Armed(deadline: deadline, token: token, timer: loop.scheduleTask(deadline: deadline) { fire(key, token) })
    }

    mutating func cancel(_ key: Key) {
        armed.removeValue(forKey: key)?.timer.cancel()
    }

    mutating func cancelAll() {
        for entry in armed.values { entry.timer.cancel() }
        armed = [:]
    }

    /// Disarms `key` as its timer fires; false if that timer is stale (rescheduled or cancelled since).
    mutating func take(_ key: Key, token: Int) -> Bool {
        guard armed[key]?.token == token else { return false }
        armed[key] = nil
        return true
    }

    /// The keys due at `instant`, earliest first (tests: deadlines run ahead of the loop's clock).
    func due(by instant: NIODeadline) -> [Key] {
        armed.filter { $0.value.deadline <= instant }.sorted { $0.value.deadline < $1.value.deadline }.map(\.key)
    }

    /// Disarms `key` if it is (still) due at `instant`.
    mutating func take(_ key: Key, ifDueBy instant: NIODeadline) -> Bool {
        guard let entry = armed[key], entry.deadline <= instant else { return false }
        entry.timer.cancel()
        armed[key] = nil
        return true
    }
}
