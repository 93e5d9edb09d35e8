import NIOCore
import Synchronization

/// A session with an Apache ZooKeeper ensemble, spoken natively over its wire protocol (jute frames
/// on TCP, SwiftNIO): the connect handshake with a negotiated timeout, pings, the operations, watch
/// events and `multi`.
///
/// Connection loss: a connection silent for two thirds of the session timeout (the read timeout) is
/// dropped, as the Java client drops it; pings go out every third of the read timeout. Whatever closes
/// a connection, requests in flight on it fail with `connectionLoss` (their outcome is unknown, as in
/// every ZooKeeper client), the session is `suspended`, and it moves to the next server of the
/// ensemble with its id and password, re-registering its watches (`SetWatches`, in chunks of at most
/// 128 KB). Requests made while suspended wait for the session to reconnect.
///
/// Expiry: reported only when a server says so (it refuses the session's handshake), as the Java
/// client reports `Expired` only on reconnecting. While no server answers the session stays
/// `suspended`, however long that lasts: the ensemble may have lost its quorum, which expires
/// nobody (its next leader gives every session a fresh timeout).
///
/// Requests larger than ZooKeeper's default `jute.maxbuffer` (1,048,575 bytes) are refused here with
/// `badArguments`: the server would drop the connection, failing other requests with it.
public final class ZooKeeperSession: CoordinationSession {
    struct Pending {
        var xid: Int32
        var continuation: CheckedContinuation<(Int32, JuteReader), any Error>
        /// A watch to register if the reply allows (in the same step that resumes the caller, so an
        /// event right after the reply cannot be missed).
        var watch: (Watch, WatchKind)?
    }

    enum WatchKind { case data, exists, children }

    /// Everything below changes under `guarded`. Invariant: `connection` is non-nil exactly while
    /// the broadcaster says `.connected`; both change in the same critical section.
    struct State {
        var connection: ZooKeeperConnection?
        /// Each connection attempt gets a new generation; frames and closes of older ones are ignored.
        var generation = 0
        /// The newest generation whose connection has closed (it may close before it is stored).
        var closedGeneration = 0
        var handshake: CheckedContinuation<ByteBuffer, any Error>?
        var pending: [Pending] = []
        var nextXid: Int32 = 1
        var lastZxid: Int64 = 0
        var sessionID: Int64 = 0
        var password: [UInt8] = Array(repeating: 0, count: 16)
        var timeout: Duration
        /// Watches by path, compared byte by byte as the server compares them.
        var dataWatches: [PathKey: [Watch]] = [:]
        var existWatches: [PathKey: [Watch]] = [:]
        var childWatches: [PathKey: [Watch]] = [:]
        /// The last frame of the current connection, handshake included: its read timeout.
        var lastHeard: ContinuousClock.Instant = .now
        /// The last frame sent: pings fill silences.
        var lastSent: ContinuousClock.Instant = .now
        var connectedWaiters: [CheckedContinuation<Void, any Error>] = []
        var serverIndex = 0
        /// True while no connection is stored and a task (connect or reconnect) is getting one.
        var reconnecting = true
        /// The owner called `close()`: no reconnect starts, and the end is `.closed`, never `.expired`.
        var closing = false
        /// Reconnects wait while a test hook closes this session from another connection.
        var reconnectHeld = false
        var heldReconnects: [CheckedContinuation<Void, Never>] = []
    }

    public let servers: [String]
    let requestedTimeout: Duration
    let guarded: Mutex<State>
    let broadcaster = SessionStateBroadcaster(.suspended)
    let heartbeat = Mutex<Task<Void, Never>?>(nil)

    init(servers: [String], timeout: Duration) {
        self.servers = servers
        self.requestedTimeout = timeout
        guarded = Mutex(State(timeout: timeout))
    }

    /// Opens a session on the first server of `servers` ("host:port" each) that takes it, trying
    /// them in turn for at most `sessionTimeout`.
    public static func connect(servers: [String], sessionTimeout: Duration = .seconds(10)) async throws -> ZooKeeperSession {
        guard !servers.isEmpty else { throw CoordinationError(.badArguments, "no ZooKeeper servers given") }
        let session = ZooKeeperSession(servers: servers, timeout: sessionTimeout)
        try await session.establishFirst()
        session.startHeartbeat()
        return session
    }

    public var sessionID: Int64 { guarded.withLock { $0.sessionID } }
    public var sessionTimeout: Duration { guarded.withLock { $0.timeout } }
    public var state: SessionState { broadcaster.current }
    public func states() -> AsyncStream<SessionState> { broadcaster.stream() }
    /// The server this session is connected to now, if any.
    public var currentServer: String? { guarded.withLock { $0.connection?.server } }

    // MARK: - Operations

    public func create(_ path: String, data: [UInt8], mode: CreateMode) async throws -> String {
        try NodePath.validate(path, sequential: mode.isSequential)
        let (error, reply) = try await request(.create) { $0.operation(.create(path: path, data: data, mode: mode)) }
        try check(error, path)
        var reader = reply
        return try reader.string()
    }

    public func delete(_ path: String, version: Int32) async throws {
        try NodePath.validate(path)
        let (error, _) = try await request(.delete) { $0.operation(.delete(path: path, version: version)) }
        try check(error, path)
    }

    public func exists(_ path: String, watch: Bool) async throws -> (stat: NodeStat?, watch: Watch?) {
        try NodePath.validate(path)
        let registered = watch ? Watch(path: path) : nil
        let (error, reply) = try await request(.exists, watch: registered.map { ($0, .exists) }) { writer in
            writer.string(path)
            writer.bool(watch)
        }
        if error == CoordinationError.Code.noNode.value { return (nil, registered) }
        try check(error, path)
        var reader = reply
        return (try reader.stat(), registered)
    }

    public func data(_ path: String, watch: Bool) async throws -> (data: [UInt8], stat: NodeStat, watch: Watch?) {
        try NodePath.validate(path)
        let registered = watch ? Watch(path: path) : nil
        let (error, reply) = try await request(.getData, watch: registered.map { ($0, .data) }) { writer in
            writer.string(path)
            writer.bool(watch)
        }
        try check(error, path)
        var reader = reply
        return (try reader.bytes() ?? [], try reader.stat(), registered)
    }

    public func setData(_ path: String, data: [UInt8], version: Int32) async throws -> NodeStat {
        try NodePath.validate(path)
        let (error, reply) = try await request(.setData) { $0.operation(.setData(path: path, data: data, version: version)) }
        try check(error, path)
        var reader = reply
        return try reader.stat()
    }

    public func children(_ path: String, watch: Bool) async throws -> (names: [String], stat: NodeStat, watch: Watch?) {
        try NodePath.validate(path)
        let registered = watch ? Watch(path: path) : nil
        let (error, reply) = try await request(.getChildren2, watch: registered.map { ($0, .children) }) { writer in
            writer.string(path)
            writer.bool(watch)
        }
        try check(error, path)
        var reader = reply
        return (try reader.strings(), try reader.stat(), registered)
    }

    public func multi(_ operations: [Operation]) async throws -> [OperationResult] {
        for operation in operations {
            if case .create(let path, _, let mode) = operation { try NodePath.validate(path, sequential: mode.isSequential) } else {
                try NodePath.validate(operation.path)
            }
        }
        let (headerError, reply) = try await request(.multi) { writer in
            for operation in operations {
                writer.int(operation.opCode.rawValue)
                writer.bool(false)
                writer.int(-1)
                writer.operation(operation)
            }
            writer.int(-1)
            writer.bool(true)
            writer.int(-1)
        }
        var reader = reply
        var results: [OperationResult] = []
        var failure: CoordinationError?
        var index = 0
        while true {
            let type = try reader.int()
            let done = try reader.bool()
            _ = try reader.int()
            if done { break }
            let path = index < operations.count ? operations[index].path : nil
            switch type {
            case OpCode.create.rawValue: results.append(.created(path: try reader.string()))
            case OpCode.delete.rawValue: results.append(.deleted)
            case OpCode.setData.rawValue: results.append(.set(try reader.stat()))
            case OpCode.check.rawValue: results.append(.checked)
            case OpCode.error.rawValue:
                let code = try reader.int()
                // The failing operation has its own code; the others say "rolled back" (-2) or ok.
                if code != 0 && code != CoordinationError.Code.runtimeInconsistency.value && failure == nil {
                    failure = CoordinationError(.from(wire: code), path: path)
                }
            default:
                throw CoordinationError(.marshallingError, "unexpected multi result type \(type)")
            }
            index += 1
        }
        if let failure { throw failure }
        if headerError != 0 { throw CoordinationError(.from(wire: headerError)) }
        return results
    }

    /// Ends the session: asks the server to close it (its ephemeral nodes go now), waiting at most
    /// 2 s for the answer. Whatever happens meanwhile (the server closing the connection, as it does
    /// after the answer), the session ends `.closed`. Closed while suspended, it ends at once and the
    /// server removes it after its timeout.
    public func close() async {
        let connected = guarded.withLock { state -> Bool? in
            guard !broadcaster.isFinal, !state.closing else { return nil }
            state.closing = true
            return state.connection != nil
        }
        guard let connected else { return }
        heartbeat.withLock { $0?.cancel() }
        if connected {
            let answer = Task { _ = try? await request(.closeSession, waitForConnection: false) { _ in } }
            // No answer in time: ending the session fails the request, which ends `answer`.
            let deadline = Task { [weak self] in
                guard (try? await Task.sleep(for: .seconds(2))) != nil else { return }
                self?.finish(as: .closed)
            }
            await answer.value
            deadline.cancel()
        }
        finish(as: .closed)
    }
}
