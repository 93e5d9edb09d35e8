import Synchronization

/// One client session with a coordination service: ZooKeeper's API, async. The embedded backend
/// (`EmbeddedCoordinator.connect`) and the ZooKeeper backend (`ZooKeeperSession.connect`) both
/// provide it, and the recipes (`LeaderElection`, `Membership`) use nothing else.
///
/// Errors are `CoordinationError`s with ZooKeeper's codes. Versions: -1 matches any. A watch asked
/// for is returned as a `Watch`, fired at most once.
public protocol CoordinationSession: Sendable {
    /// The session's id, as ephemeral nodes' `ephemeralOwner` shows it.
    var sessionID: Int64 { get }
    /// The timeout the service granted.
    var sessionTimeout: Duration { get }
    /// The current state.
    var state: SessionState { get }
    /// State changes from now on, starting with the current state; finishes after a final state.
    func states() -> AsyncStream<SessionState>

    /// Creates a node; returns its real path (a sequential node's with its number appended).
    func create(_ path: String, data: [UInt8], mode: CreateMode) async throws -> String
    /// Deletes a node whose version is `version` (-1: any). Fails with `notEmpty` if it has children.
    func delete(_ path: String, version: Int32) async throws
    /// The node's stat, or nil if absent; with `watch`, a watch for its creation, deletion or change.
    func exists(_ path: String, watch: Bool) async throws -> (stat: NodeStat?, watch: Watch?)
    /// The node's data and stat; with `watch`, a watch for its change or deletion.
    func data(_ path: String, watch: Bool) async throws -> (data: [UInt8], stat: NodeStat, watch: Watch?)
    /// Replaces the node's data if its version is `version` (-1: any); returns the new stat.
    func setData(_ path: String, data: [UInt8], version: Int32) async throws -> NodeStat
    /// The names of the node's children (unsorted, as ZooKeeper returns them) and its stat; with
    /// `watch`, a watch for a child's creation or deletion, or the node's deletion.
    func children(_ path: String, watch: Bool) async throws -> (names: [String], stat: NodeStat, watch: Watch?)
    /// Applies every operation or none; on failure throws the first failing operation's error.
    func multi(_ operations: [Operation]) async throws -> [OperationResult]
    /// Ends the session: its ephemeral nodes go at once.
    func close() async
}

extension CoordinationSession {
    public func create(_ path: String, data: [UInt8] = [], mode: CreateMode = .persistent) async throws -> String {
        try await create(path, data: data, mode: mode)
    }
    public func delete(_ path: String) async throws { try await delete(path, version: -1) }
    public func exists(_ path: String) async throws -> NodeStat? { try await exists(path, watch: false).stat }
    public func data(_ path: String) async throws -> (data: [UInt8], stat: NodeStat) {
        let result = try await data(path, watch: false)
        return (result.data, result.stat)
    }
    @discardableResult
    public func setData(_ path: String, data: [UInt8]) async throws -> NodeStat { try await setData(path, data: data, version: -1) }
    public func children(_ path: String) async throws -> [String] { try await children(path, watch: false).names }
}

/// A one-shot watch: `event()` returns what fired it, waiting until it does. Any number of tasks may
/// wait on one watch.
public final class Watch: Sendable {
    public let path: String
    private struct State {
        var event: WatchEvent?
        var waiters: [Int: CheckedContinuation<WatchEvent, any Error>] = [:]
    }
    private let state = Mutex(State())

    init(path: String) { self.path = path }

    /// The event that fired the watch (waits for it). Throws `CancellationError` if the waiting task
    /// is cancelled first (the watch stays armed for other waiters).
    public func event() async throws -> WatchEvent {
        let id = Waiter.next()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<WatchEvent, any Error>) in
                let fired = state.withLock { state -> WatchEvent? in
                    if state.event == nil { state.waiters[id] = continuation }
                    return state.event
                }
                if let fired { continuation.resume(returning: fired) }
                if Task.isCancelled { cancelWaiter(id) }
            }
        } onCancel: {
            cancelWaiter(id)
        }
    }

    private func cancelWaiter(_ id: Int) {
        state.withLock { $0.waiters.removeValue(forKey: id) }?.resume(throwing: CancellationError())
    }

    /// The event, if the watch has fired.
    public var firedEvent: WatchEvent? { state.withLock { $0.event } }

    /// Fires the watch; later calls do nothing.
    func fire(_ event: WatchEvent) {
        let waiters = state.withLock { state -> [CheckedContinuation<WatchEvent, any Error>] in
            guard state.event == nil else { return [] }
            state.event = event
            defer { state.waiters.removeAll() }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume(returning: event) }
    }
}

/// Ids for a watch's waiters.
private enum Waiter {
    private static let counter = Atomic<Int>(0)
    static func next() -> Int { counter.add(1, ordering: .relaxed).newValue }
}

/// A session's state and the streams that follow it.
final class SessionStateBroadcaster: Sendable {
    private struct State {
        var current: SessionState
        var streams: [Int: AsyncStream<SessionState>.Continuation] = [:]
        var next = 0
    }
    private let state: Mutex<State>

    init(_ initial: SessionState) { state = Mutex(State(current: initial)) }

    var current: SessionState { state.withLock { $0.current } }

    var isFinal: Bool { state.withLock { $0.current == .expired || $0.current == .closed } }

    func stream() -> AsyncStream<SessionState> {
        let (stream, continuation) = AsyncStream<SessionState>.makeStream(bufferingPolicy: .unbounded)
        let final = state.withLock { state -> Bool in
            continuation.yield(state.current)
            if state.current == .expired || state.current == .closed { return true }
            state.streams[state.next] = continuation
            state.next += 1
            return false
        }
        if final { continuation.finish() }
        return stream
    }

    /// Moves to `new` (no change after a final state); returns false when it did not move.
    @discardableResult
    func move(to new: SessionState) -> Bool {
        let (moved, streams, final) = state.withLock { state -> (Bool, [AsyncStream<SessionState>.Continuation], Bool) in
            guard state.current != new, state.current != .expired, state.current != .closed else { return (false, [], false) }
            state.current = new
            let final = new == .expired || new == .closed
            let streams = Array(state.streams.values)
            if final { state.streams.removeAll() }
            return (true, streams, final)
        }
        for stream in streams {
            stream.yield(new)
            if final { stream.finish() }
        }
        return moved
    }
}
