import Logging
import Synchronization

/// The bytes of requests the broker holds, over all connections: parts of requests still arriving
/// and whole requests not yet answered, bounded by `queued.max.request.bytes` (Kafka's memory pool).
///
/// Bytes are counted as they arrive, not by the size a frame declares: a peer that declares 100 MiB
/// and trickles a few bytes holds a few bytes. When the pool is full, connections stop being read
/// (TCP backpressure: their bytes wait in the kernel and then in the peer) until answered requests
/// free room, as Kafka mutes a connection its memory pool cannot serve. Nothing is closed and nothing
/// is lost; a peer that stalls half-way through a request is closed by `connections.max.idle.ms`.
///
/// Two exceptions keep everyone moving. A connection holding less than `allowance` (64 KiB) is
/// always read, so small requests (metadata, fetches, commits: nearly all of them) are served even
/// while hostile peers fill the pool with parts of big ones; only big requests wait. And so that
/// requests all half-received cannot wait on each other for good, one connection at a time may read
/// past the budget to finish the request it is in the middle of (the overdraft). What the pool holds
/// is therefore at most the budget, plus one request (`socket.request.max.bytes`), plus per connection
/// the allowance or one read (up to 4 x 64 KiB), whichever is more.
///
/// Thread-safe: connections on every event loop and their request tasks share it.
final class RequestMemoryPool: Sendable {
    /// `queued.max.request.bytes`.
    let budget: Int
    /// What any connection may hold whatever the pool holds.
    static let allowance = 64 << 10
    private let state = Mutex(State())
    private let logger: Logger
    private let fullWarning = LogThrottle(every: .seconds(60))

    private struct State {
        var used = 0
        var nextId = 0
        /// Bytes held per open connection.
        var held: [Int: Int] = [:]
        /// The connection reading past the budget to finish its request.
        var overdraft: Int?
        /// Connections waiting for room, each with how to wake it.
        var waiting: [Int: @Sendable () -> Void] = [:]
    }

    init(budget: Int, logger: Logger = Logger(label: "samsa.broker", factory: { _ in SwiftLogNoOpLogHandler() })) {
        precondition(budget > 0, "queued.max.request.bytes must be positive")
        self.budget = budget
        self.logger = logger
    }

    /// Bytes held now, over all connections.
    var used: Int { state.withLock { $0.used } }

    /// Registers a connection; `Connection.close` gives back everything it still holds.
    func open() -> Connection {
        let id = state.withLock { state in
            state.nextId += 1
            state.held[state.nextId] = 0
            return state.nextId
        }
        return Connection(pool: self, id: id)
    }

    /// One connection's share of the pool. Closing it is idempotent and may race with the others.
    struct Connection: Sendable {
        let pool: RequestMemoryPool
        let id: Int

        /// Bytes just read from the connection.
        func hold(_ bytes: Int) { pool.change(id, by: bytes) }
        /// A request's bytes (with its size prefix) once it was answered.
        func release(_ bytes: Int) { pool.change(id, by: -bytes) }
        /// Whether the connection may be read now; when not, `wake` runs (once, on any thread) when
        /// it should ask again. `midRequest`: part of a request has arrived (then it may take the
        /// overdraft).
        func mayRead(midRequest: Bool, wake: @escaping @Sendable () -> Void) -> Bool {
            pool.mayRead(id, midRequest: midRequest, wake: wake)
        }
        /// The connection holds no partial request any more: it gives up the overdraft if it had it.
        func betweenRequests() { pool.betweenRequests(id) }
        /// Gives back everything the connection holds (the connection closed).
        func close() { pool.close(id) }
    }

    private func change(_ id: Int, by bytes: Int) {
        let wake = state.withLock { state -> [@Sendable () -> Void] in
            guard let held = state.held[id] else { return [] }  // closed: its bytes were given back
            state.held[id] = held + bytes
            state.used += bytes
            return state.used < budget ? Self.takeWaiting(&state) : []
        }
        for action in wake { action() }
    }

    private func mayRead(_ id: Int, midRequest: Bool, wake: @escaping @Sendable () -> Void) -> Bool {
        let allowed = state.withLock { state in
            guard let held = state.held[id] else { return true }  // closed: reading ends by itself
            if state.used < budget || held < Self.allowance { return true }
            if midRequest && (state.overdraft == nil || state.overdraft == id) {
                state.overdraft = id
                return true
            }
            state.waiting[id] = wake
            return false
        }
        if !allowed && fullWarning.allows() {
            logger.warning(
                "requests being received fill queued.max.request.bytes: connections wait to be read", metadata: ["budget": "\(budget)", "held": "\(used)"])
        }
        return allowed
    }

    private func betweenRequests(_ id: Int) {
        let wake = state.withLock { state -> [@Sendable () -> Void] in
            guard state.overdraft == id else { return [] }
            state.overdraft = nil
            return Self.takeWaiting(&state)
        }
        for action in wake { action() }
    }

    private func close(_ id: Int) {
        let wake = state.withLock { state -> [@Sendable () -> Void] in
            guard let held = state.held.removeValue(forKey: id) else { return [] }
            state.used -= held
            state.waiting[id] = nil
            let freedOverdraft = state.overdraft == id
            if freedOverdraft { state.overdraft = nil }
            return state.used < budget || freedOverdraft ? Self.takeWaiting(&state) : []
        }
        for action in wake { action() }
    }

    /// Everyone waiting asks again (each re-checks; those still refused wait again).
    private static func takeWaiting(_ state: inout State) -> [@Sendable () -> Void] {
        guard !state.waiting.isEmpty else { return [] }
        defer { state.waiting.removeAll() }
        return Array(state.waiting.values)
    }
}
