import Dispatch
import Glibc
import NIOCore
import SamsaRecords
package import SamsaStorage
import Synchronization

/// The in-process coordination service: one node's ZooKeeper, for a single machine and for tests.
///
/// Sessions stay alive while their client heartbeats (every third of the timeout) and expire when
/// the heartbeats stop for a whole timeout: their ephemeral nodes go and their watches fire with
/// `sessionEnded`. With a directory, every transaction is logged and synced before it is
/// acknowledged, and persistent nodes survive a restart (`TransactionLog`).
///
/// Visibility, as on a ZooKeeper server: a change is visible to reads only once it is durable, and
/// in the same step the watches it triggers fire, so no session reads new data before the watch it
/// set on the old data has fired. Until then reads see the node as it was (`Shadow`); writes are
/// checked against every change already accepted (as ZooKeeper's outstanding changes).
///
/// Threads: any. The tree, sessions and watches live behind one lock; log records are encoded
/// before it is taken and queued under it (so the log holds them in zxid order), and the log writes
/// and syncs them on its own queues, never under the lock nor on the caller's (cooperative) thread. If the log fails (a write or a
/// sync), the coordinator stops serving: every later request fails with `connectionLoss`, nothing
/// unlogged is ever acknowledged or snapshotted, and a restart recovers the logged state.
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

    /// What reads see of a node that changes not yet durable touched: the node as last published
    /// (nil: absent), until the change numbered `lastZxid` is published.
    struct Shadow: Sendable {
        var node: DataTree.Node?
        var lastZxid: Int64
    }

    /// A logged transaction waiting for its sync: its changes, and the nodes it left.
    struct Unpublished: Sendable {
        var zxid: Int64
        var changes: [DataTree.Change]
        var after: [PathKey: DataTree.Node?]
    }

    struct State: Sendable {
        /// Every accepted change, durable or not: writes are checked against it.
        var tree: DataTree
        var shadows: [PathKey: Shadow] = [:]
        var unpublished: [Unpublished] = []
        var zxid: Int64
        var sessions: [Int64: SessionRecord] = [:]
        var nextSession: Int64
        var dataWatches: [PathKey: [Registered]] = [:]
        var childWatches: [PathKey: [Registered]] = [:]
        var closed = false
        /// The log failed: the tree holds changes it does not.
        var failed = false

        func visibleNode(_ path: String) -> DataTree.Node? {
            let key = PathKey(path)
            if let shadow = shadows[key] { return shadow.node }
            return tree.nodes[key]
        }
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
        try open(directory: directory, files: PosixFileSystem(), minimum: minimumSessionTimeout, maximum: maximumSessionTimeout)
    }

    /// Test hook: opens on `directory` with a log whose writes fail (EIO) from the moment
    /// `failLogWrites` is called.
    package static func openWithFailingLog(directory: String) throws -> (coordinator: EmbeddedCoordinator, failLogWrites: @Sendable () -> Void) {
        let files = FaultInjectingFileSystem()
        let coordinator = try open(directory: directory, files: files, minimum: .milliseconds(200), maximum: .seconds(40))
        return (coordinator, { files.inject(.write, errno: EIO, pathContains: "txnlog", times: 1_000) })
    }

    /// Opens with `files` for every file call of the log (a test hook).
    package static func open(directory: String?, files: any FileSystem, minimum: Duration = .milliseconds(200), maximum: Duration = .seconds(40))
        throws -> EmbeddedCoordinator
    {
        var tree = DataTree()
        var zxid: Int64 = 0
        var log: TransactionLog?
        if let directory {
            let opened = try TransactionLog.open(directory: directory, files: files)
            (log, tree, zxid) = (opened.log, opened.tree, opened.zxid)
        }
        let coordinator = EmbeddedCoordinator(tree: tree, zxid: zxid, log: log, minimum: minimum, maximum: maximum)
        coordinator.startExpiry()
        return coordinator
    }

    private init(tree: DataTree, zxid: Int64, log: TransactionLog?, minimum: Duration, maximum: Duration) {
        // Session ids: the start time's low bits above a counter, so ids differ across restarts.
        let base = (WallClock.nowMilliseconds & 0xff_ffff) << 32
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

    /// False once the coordinator stopped serving (closed, or its log failed).
    public var isServing: Bool { state.withLock { !$0.closed } }

    /// Ends every session, snapshots the tree and closes the log. After a log failure nothing is
    /// snapshotted (the tree holds what the log refused).
    public func close() throws {
        expiryTimer.withLock { $0?.cancel() }
        let (sessions, tree, zxid, failed) = state.withLock { state -> ([SessionRecord], DataTree, Int64, Bool) in
            state.closed = true
            defer { state.sessions.removeAll() }
            return (Array(state.sessions.values), state.tree, state.zxid, state.failed)
        }
        for session in sessions { session.broadcaster.move(to: .expired) }
        if failed {
            try? log?.close()
            return
        }
        try log?.snapshot(tree, zxid: zxid)
        try log?.close()
    }

    // MARK: - Requests from sessions

    func heartbeat(_ id: Int64) {
        state.withLock { state in state.sessions[id]?.lastHeard = .now }
    }

    /// Applies `operations` as one transaction of `session`, durably; its changes become visible,
    /// and the watches they trigger fire, once it is durable.
    func commit(_ operations: [Operation], session: Int64) async throws -> [OperationResult] {
        let size = JuteLimits.requestBytes(operations)
        guard size <= JuteLimits.maximumFrameBytes else {
            throw CoordinationError(.badArguments, "a request of \(size) bytes exceeds ZooKeeper's jute.maxbuffer (\(JuteLimits.maximumFrameBytes))")
        }
        // The heavy part of the log record, before the lock.
        let payload = log == nil ? nil : TransactionCodec.encodeOperations(operations)
        return try await withCheckedThrowingContinuation { continuation in
            do {
                try accept(operations, session: session, payload: payload) { continuation.resume(with: $0) }
            } catch {
                continuation.resume(throwing: error)
            }
        }
    }

    /// Applies `operations` under the lock and queues their log record (in zxid order: the queue is
    /// the log's, entered under the lock); `done` gets the results once the transaction is durable
    /// and published. Throws (without calling `done`) when the operations are refused.
    private func accept(
        _ operations: [Operation], session: Int64, payload: ByteBuffer?, done: @escaping @Sendable (Result<[OperationResult], any Error>) -> Void
    ) throws {
        try state.withLock { state throws in
            try Self.checkAlive(session, in: state)
            var changes: [DataTree.Change] = []
            let zxid = state.zxid + 1
            let time = WallClock.nowMilliseconds
            let before = log == nil ? [:] : Self.nodes(at: operations.flatMap { [$0.path, NodePath.parent(of: $0.path)] }, in: state.tree)
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
            guard !changes.isEmpty else { return done(.success(results)) }
            state.zxid = zxid
            guard let log, let payload else {
                // In memory: durable at once.
                Self.fireWatches(for: changes, in: &state)
                return done(.success(results))
            }
            Self.hold(changes, zxid: zxid, before: before, in: &state)
            let accepted = results
            log.append(zxid: zxid, time: time, session: session, operations: payload) { failure in
                // A change the log could not take is never acknowledged (a restart recovers the
                // logged state).
                done(Result<Void, any Error> { try self.publish(upTo: zxid, failure: failure) }.map { accepted })
            }
        }
    }

    /// Reads a node as published for `session`, registering a watch if asked.
    func read<T>(_ path: String, session: Int64, watch: WatchKind?, _ body: (DataTree.Node?) throws -> T) throws -> (T, Watch?) {
        try NodePath.validate(path)
        return try state.withLock { state throws -> (T, Watch?) in
            try Self.checkAlive(session, in: state)
            let result = try body(state.visibleNode(path))
            var registered: Watch?
            if let watch {
                let created = Watch(path: path)
                switch watch {
                case .data: state.dataWatches[PathKey(path), default: []].append(Registered(watch: created, session: session))
                case .children: state.childWatches[PathKey(path), default: []].append(Registered(watch: created, session: session))
                }
                registered = created
            }
            return (result, registered)
        }
    }

    enum WatchKind { case data, children }

    /// Ends a session: deletes its ephemeral nodes (one logged transaction), fires the watches that
    /// fires once it is durable, ends its own watches with `sessionEnded`, and moves it to its final
    /// state. A log failure stops the coordinator, as in `commit`.
    func endSession(_ id: Int64, as final: SessionState) async {
        await withCheckedContinuation { continuation in endSession(id, as: final) { continuation.resume() } }
    }

    /// `endSession`, calling `done` once the session is in its final state (from the log's flusher
    /// when its ephemeral nodes' removal had to be logged).
    private func endSession(_ id: Int64, as final: SessionState, then done: @escaping @Sendable () -> Void) {
        let ended = state.withLock { state -> (record: SessionRecord, logged: Bool)? in
            guard let record = state.sessions.removeValue(forKey: id) else { return nil }
            var logged = false
            let ephemerals = state.tree.ephemerals(of: id)
            if !ephemerals.isEmpty && !state.closed {
                state.zxid += 1
                let zxid = state.zxid
                let before = log == nil ? [:] : Self.nodes(at: ephemerals.flatMap { [$0, NodePath.parent(of: $0)] }, in: state.tree)
                var changes: [DataTree.Change] = []
                state.tree.removeEphemerals(of: id, zxid: zxid, changes: &changes)
                if let log {
                    Self.hold(changes, zxid: zxid, before: before, in: &state)
                    logged = true
                    log.append(zxid: zxid, time: WallClock.nowMilliseconds, session: id, operations: TransactionCodec.encodeOperations(nil)) { failure in
                        _ = try? self.publish(upTo: zxid, failure: failure)
                        record.broadcaster.move(to: final)
                        done()
                    }
                } else {
                    Self.fireWatches(for: changes, in: &state)
                }
            }
            // The session's own watches will never fire otherwise.
            for registry in [\State.dataWatches, \State.childWatches] as [WritableKeyPath<State, [PathKey: [Registered]]>] {
                for key in Array(state[keyPath: registry].keys) {
                    for registered in state[keyPath: registry][key]! where registered.session == id {
                        registered.watch.fire(WatchEvent(type: .sessionEnded, path: key.string))
                    }
                    state[keyPath: registry][key]!.removeAll { $0.session == id }
                    if state[keyPath: registry][key]!.isEmpty { state[keyPath: registry][key] = nil }
                }
            }
            return (record, logged)
        }
        guard let ended else { return done() }
        if !ended.logged {
            ended.record.broadcaster.move(to: final)
            done()
        }
    }

    // MARK: - Publishing durable changes

    /// The nodes at `paths` now (nil: absent), before a change: what reads keep seeing until it is durable.
    private static func nodes(at paths: [String], in tree: DataTree) -> [PathKey: DataTree.Node?] {
        var nodes: [PathKey: DataTree.Node?] = [:]
        for path in paths {
            let key = PathKey(path)
            if nodes[key] == nil { nodes[key] = .some(tree.nodes[key]) }
        }
        return nodes
    }

    /// Keeps reads on the published nodes until transaction `zxid` (logged, not yet synced) is published.
    private static func hold(_ changes: [DataTree.Change], zxid: Int64, before: [PathKey: DataTree.Node?], in state: inout State) {
        var after: [PathKey: DataTree.Node?] = [:]
        for change in changes {
            let key = PathKey(change.path)
            if state.shadows[key] == nil {
                // Not among `before`: a sequential node this transaction created (absent before).
                state.shadows[key] = Shadow(node: before[key] ?? nil, lastZxid: zxid)
            } else {
                state.shadows[key]!.lastZxid = zxid
            }
            after[key] = .some(state.tree.nodes[key])
        }
        state.unpublished.append(Unpublished(zxid: zxid, changes: changes, after: after))
    }

    /// Transaction `zxid` is durable (`failure` nil): publishes it and every earlier one (the log
    /// writes and syncs in order). A failed write or sync stops the coordinator, and throws.
    private func publish(upTo zxid: Int64, failure: (any Error)?) throws(CoordinationError) {
        if let failure {
            state.withLock { Self.stopServing(&$0) }
            throw CoordinationError(.systemError, "the transaction log failed: \(failure)")
        }
        state.withLock { state in
            while let next = state.unpublished.first, next.zxid <= zxid {
                state.unpublished.removeFirst()
                for (key, node) in next.after {
                    if state.shadows[key]?.lastZxid == next.zxid { state.shadows[key] = nil } else { state.shadows[key]?.node = node }
                }
                // In the step that makes the change visible: no read sees it before its watches fire.
                Self.fireWatches(for: next.changes, in: &state)
            }
        }
    }

    private static func stopServing(_ state: inout State) {
        state.closed = true
        state.failed = true
    }

    private static func checkAlive(_ session: Int64, in state: State) throws(CoordinationError) {
        guard !state.closed else { throw CoordinationError(.connectionLoss, "the coordinator is closed") }
        guard state.sessions[session] != nil else { throw CoordinationError(.sessionExpired, "session 0x\(String(session, radix: 16)) has ended (expired or closed)") }
    }

    /// Fires (under the lock, with the change's publication) the watches `changes` trigger:
    /// ZooKeeper's rules: a data watch fires on creation, deletion and data change; a child watch on
    /// a child's creation or deletion, and on the node's own deletion. Firing only resumes waiters.
    private static func fireWatches(for changes: [DataTree.Change], in state: inout State) {
        func take(_ registry: inout [PathKey: [Registered]], _ path: String, _ type: WatchEventType) {
            guard let watches = registry.removeValue(forKey: PathKey(path)) else { return }
            for registered in watches { registered.watch.fire(WatchEvent(type: type, path: path)) }
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
                for id in expired { coordinator.endSession(id, as: .expired) {} }
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
