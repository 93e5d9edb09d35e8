import Dispatch
import SamsaStorage
import Synchronization

/// The in-process coordination service: one node's ZooKeeper, for a single machine and for tests.
///
/// Sessions stay alive while their client heartbeats (every third of the timeout) and expire when
/// the heartbeats stop for a whole timeout: their ephemeral nodes go and their watches fire with
/// `sessionEnded`. With a directory, every transaction is logged and synced before it is
/// acknowledged, and persistent nodes survive a restart (`TransactionLog`).
///
/// Threads: any. The tree, sessions and watches live behind one lock; syncs happen outside it (group
/// commit), and watches fire after the transaction that fired them is durable.
public final class EmbeddedCoordinator: Sendable {
    struct Registered: Sendable {
        var watch: Watch
        var session: Int64
    }

    struct SessionRecord: Sendable {
        var timeout: Duration
        var lastHeard: ContinuousClock.Instant
        let broadcaster: SessionStateBroadcaster
    }

    struct State: Sendable {
        var tree: DataTree
        var zxid: Int64
        var sessions: [Int64: SessionRecord] = [:]
        var nextSession: Int64
        var dataWatches: [String: [Registered]] = [:]
        var childWatches: [String: [Registered]] = [:]
        var closed = false
    }

    let state: Mutex<State>
    private let log: TransactionLog?
    private let expiryTimer = Mutex<(any DispatchSourceTimer)?>(nil)
    /// Sessions may ask for timeouts within these bounds (ZooKeeper's 2 and 20 ticks of 2 s).
    public let minimumSessionTimeout: Duration
    public let maximumSessionTimeout: Duration

    /// Opens the service; with `directory`, its nodes persist there (created if absent).
    public static func open(directory: String? = nil, minimumSessionTimeout: Duration = .milliseconds(200), maximumSessionTimeout: Duration = .seconds(40))
        throws -> EmbeddedCoordinator
    {
        var tree = DataTree()
        var zxid: Int64 = 0
        var log: TransactionLog?
        if let directory {
            let opened = try TransactionLog.open(directory: directory)
            (log, tree, zxid) = (opened.log, opened.tree, opened.zxid)
        }
        let coordinator = EmbeddedCoordinator(tree: tree, zxid: zxid, log: log, minimum: minimumSessionTimeout, maximum: maximumSessionTimeout)
        coordinator.startExpiry()
        return coordinator
    }

    private init(tree: DataTree, zxid: Int64, log: TransactionLog?, minimum: Duration, maximum: Duration) {
        // Session ids: the start time's low bits above a counter, so ids differ across restarts.
        let base = (Clock.nowMilliseconds & 0xff_ffff) << 32
        state = Mutex(State(tree: tree, zxid: zxid, nextSession: base + 1))
        self.log = log
        minimumSessionTimeout = minimum
        maximumSessionTimeout = maximum
    }

    /// Starts a session. Its timeout is `timeout` bounded by the service's minimum and maximum.
    public func connect(sessionTimeout timeout: Duration = .seconds(10)) throws -> EmbeddedSession {
        let granted = min(max(timeout, minimumSessionTimeout), maximumSessionTimeout)
        let broadcaster = SessionStateBroadcaster(.connected)
        let id = try state.withLock { state throws(CoordinationError) -> Int64 in
            guard !state.closed else { throw CoordinationError(.connectionLoss, "the coordinator is closed") }
            let id = state.nextSession
            state.nextSession += 1
            state.sessions[id] = SessionRecord(timeout: granted, lastHeard: .now, broadcaster: broadcaster)
            return id
        }
        return EmbeddedSession(coordinator: self, id: id, timeout: granted, broadcaster: broadcaster)
    }

    /// Test hook: expires a session now, as if its heartbeats had stopped.
    public func expireSession(_ id: Int64) async {
        await endSession(id, as: .expired)
    }

    /// Ids of the live sessions.
    public var sessionIDs: [Int64] { state.withLock { Array($0.sessions.keys).sorted() } }

    /// Ends every session, snapshots the tree and closes the log.
    public func close() throws {
        expiryTimer.withLock { $0?.cancel() }
        let (sessions, tree, zxid) = state.withLock { state -> ([SessionRecord], DataTree, Int64) in
            state.closed = true
            defer { state.sessions.removeAll() }
            return (Array(state.sessions.values), state.tree, state.zxid)
        }
        for session in sessions { session.broadcaster.move(to: .expired) }
        try log?.snapshot(tree, zxid: zxid)
        try log?.close()
    }

    // MARK: - Requests from sessions

    func heartbeat(_ id: Int64) {
        state.withLock { state in state.sessions[id]?.lastHeard = .now }
    }

    /// Applies `operations` as one transaction of `session`, durably; fires the watches it triggers.
    func commit(_ operations: [Operation], session: Int64) async throws -> [OperationResult] {
        let (results, fired, appended) = try state.withLock { state throws -> ([OperationResult], [(Watch, WatchEvent)], AppendResult?) in
            try Self.checkAlive(session, in: state)
            var changes: [DataTree.Change] = []
            let zxid = state.zxid + 1
            let time = Clock.nowMilliseconds
            var results: [OperationResult] = []
            if operations.count == 1 {
                // One operation checks everything before it changes anything: apply it in place
                // (copying the tree per write would cost O(nodes)).
                results.append(try state.tree.apply(operations[0], session: session, zxid: zxid, time: time, changes: &changes))
            } else {
                // A multi works on a copy: all or nothing.
                var tree = state.tree
                for operation in operations {
                    results.append(try tree.apply(operation, session: session, zxid: zxid, time: time, changes: &changes))
                }
                if !changes.isEmpty { state.tree = tree }
            }
            // Checks alone change nothing: no transaction.
            guard !changes.isEmpty else { return (results, [], nil) }
            state.zxid = zxid
            let appended: AppendResult?
            do {
                appended = try log?.append(Transaction(zxid: zxid, time: time, session: session, operations: operations.map(Transaction.LoggedOperation.init)))
            } catch {
                // The tree holds a change the log could not take: serve nothing more (a restart
                // recovers the logged state), never acknowledge it.
                state.closed = true
                throw CoordinationError(.systemError, "the transaction log failed: \(error)")
            }
            return (results, Self.takeWatches(for: changes, in: &state), appended)
        }
        if let appended, let log { try await log.waitUntilDurable(appended) }
        for (watch, event) in fired { watch.fire(event) }
        return results
    }

    /// Reads a node for `session`, registering a watch if asked.
    func read<T>(_ path: String, session: Int64, watch: WatchKind?, _ body: (DataTree.Node?) throws -> T) throws -> (T, Watch?) {
        try NodePath.validate(path)
        return try state.withLock { state throws -> (T, Watch?) in
            try Self.checkAlive(session, in: state)
            let node = state.tree.node(path)
            let result = try body(node)
            var registered: Watch?
            if let watch {
                let created = Watch(path: path)
                switch watch {
                case .data: state.dataWatches[path, default: []].append(Registered(watch: created, session: session))
                case .children: state.childWatches[path, default: []].append(Registered(watch: created, session: session))
                }
                registered = created
            }
            return (result, registered)
        }
    }

    enum WatchKind { case data, children }

    /// Ends a session: deletes its ephemeral nodes (one logged transaction), fires the watches that
    /// fires, ends its own watches with `sessionEnded`, and moves it to its final state.
    func endSession(_ id: Int64, as final: SessionState) async {
        let ended = state.withLock { state -> (SessionRecord, [(Watch, WatchEvent)], AppendResult?)? in
            guard let record = state.sessions.removeValue(forKey: id) else { return nil }
            var fired: [(Watch, WatchEvent)] = []
            var appended: AppendResult?
            if !state.tree.ephemerals(of: id).isEmpty {
                state.zxid += 1
                var changes: [DataTree.Change] = []
                state.tree.removeEphemerals(of: id, zxid: state.zxid, changes: &changes)
                appended = try? log?.append(Transaction(zxid: state.zxid, time: Clock.nowMilliseconds, session: id, operations: nil))
                fired = Self.takeWatches(for: changes, in: &state)
            }
            // The session's own watches will never fire otherwise.
            for path in Array(state.dataWatches.keys) {
                for registered in state.dataWatches[path]! where registered.session == id {
                    fired.append((registered.watch, WatchEvent(type: .sessionEnded, path: path)))
                }
                state.dataWatches[path]!.removeAll { $0.session == id }
            }
            for path in Array(state.childWatches.keys) {
                for registered in state.childWatches[path]! where registered.session == id {
                    fired.append((registered.watch, WatchEvent(type: .sessionEnded, path: path)))
                }
                state.childWatches[path]!.removeAll { $0.session == id }
            }
            return (record, fired, appended)
        }
        guard let (record, fired, appended) = ended else { return }
        if let appended, let log { try? await log.waitUntilDurable(appended) }
        record.broadcaster.move(to: final)
        for (watch, event) in fired { watch.fire(event) }
    }

    private static func checkAlive(_ session: Int64, in state: State) throws(CoordinationError) {
        guard !state.closed else { throw CoordinationError(.connectionLoss, "the coordinator is closed") }
        guard state.sessions[session] != nil else { throw CoordinationError(.sessionExpired, "session 0x\(String(session, radix: 16)) has ended (expired or closed)") }
    }

    /// Removes and returns the watches `changes` fire, with their events (ZooKeeper's rules: a data
    /// watch fires on creation, deletion and data change; a child watch on a child's creation or
    /// deletion, and on the node's own deletion).
    private static func takeWatches(for changes: [DataTree.Change], in state: inout State) -> [(Watch, WatchEvent)] {
        var fired: [(Watch, WatchEvent)] = []
        func take(_ registry: inout [String: [Registered]], _ path: String, _ type: WatchEventType) {
            guard let watches = registry.removeValue(forKey: path) else { return }
            for registered in watches { fired.append((registered.watch, WatchEvent(type: type, path: path))) }
        }
        for change in changes {
            switch change {
            case .created(let path): take(&state.dataWatches, path, .nodeCreated)
            case .dataChanged(let path): take(&state.dataWatches, path, .nodeDataChanged)
            case .deleted(let path):
                take(&state.dataWatches, path, .nodeDeleted)
                take(&state.childWatches, path, .nodeDeleted)
            case .childrenChanged(let path): take(&state.childWatches, path, .nodeChildrenChanged)
            }
        }
        return fired
    }

    private func startExpiry() {
        let weak = WeakCoordinator(self)
        expiryTimer.withLock { slot in
            let timer = DispatchSource.makeTimerSource(queue: DispatchQueue.global(qos: .utility))
            timer.schedule(deadline: .now() + .milliseconds(50), repeating: .milliseconds(50))
            timer.setEventHandler {
                guard let coordinator = weak.coordinator else { return }
                let now = ContinuousClock.now
                let expired = coordinator.state.withLock { state in
                    state.sessions.filter { $0.value.lastHeard.duration(to: now) > $0.value.timeout }.map(\.key)
                }
                for id in expired { Task { await coordinator.endSession(id, as: .expired) } }
            }
            timer.resume()
            slot = timer
        }
    }
}

private final class WeakCoordinator: @unchecked Sendable {
    // @unchecked: set once before the timer starts.
    weak var coordinator: EmbeddedCoordinator?
    init(_ coordinator: EmbeddedCoordinator) { self.coordinator = coordinator }
}
