import Dispatch
import Synchronization

/// A session with an `EmbeddedCoordinator`. It heartbeats every third of its timeout until closed
/// (or until a test calls `stopHeartbeats()` to play a client that hangs).
public final class EmbeddedSession: CoordinationSession {
    public let sessionID: Int64
    public let sessionTimeout: Duration
    private let coordinator: EmbeddedCoordinator
    private let broadcaster: SessionStateBroadcaster
    private let heartbeats = Mutex<(any DispatchSourceTimer)?>(nil)

    init(coordinator: EmbeddedCoordinator, id: Int64, timeout: Duration, broadcaster: SessionStateBroadcaster) {
        self.coordinator = coordinator
        self.sessionID = id
        self.sessionTimeout = timeout
        self.broadcaster = broadcaster
        let interval = Int(timeout.milliseconds) / 3
        heartbeats.withLock { slot in
            let timer = DispatchSource.makeTimerSource(queue: DispatchQueue.global(qos: .userInitiated))
            timer.schedule(deadline: .now() + .milliseconds(interval), repeating: .milliseconds(max(1, interval)))
            timer.setEventHandler { [weak coordinator] in coordinator?.heartbeat(id) }
            timer.resume()
            slot = timer
        }
    }

    deinit {
        heartbeats.withLock { $0?.cancel() }
    }

    public var state: SessionState { broadcaster.current }
    public func states() -> AsyncStream<SessionState> { broadcaster.stream() }

    /// Test hook: the client stops heartbeating, so the session expires after its timeout.
    public func stopHeartbeats() {
        heartbeats.withLock { $0?.cancel() }
    }

    public func create(_ path: String, data: [UInt8], mode: CreateMode) async throws -> String {
        guard case .created(let created) = try await coordinator.commit([.create(path: path, data: data, mode: mode)], session: sessionID).first else {
            throw CoordinationError(.runtimeInconsistency, path: path)
        }
        return created
    }

    public func delete(_ path: String, version: Int32) async throws {
        _ = try await coordinator.commit([.delete(path: path, version: version)], session: sessionID)
    }

    public func exists(_ path: String, watch: Bool) async throws -> (stat: NodeStat?, watch: Watch?) {
        let (stat, registered) = try coordinator.read(path, session: sessionID, watch: watch ? .data : nil) { $0?.stat }
        return (stat, registered)
    }

    public func data(_ path: String, watch: Bool) async throws -> (data: [UInt8], stat: NodeStat, watch: Watch?) {
        // The body throws for a missing node before any watch is registered (as ZooKeeper sets none).
        let ((data, stat), registered) = try coordinator.read(path, session: sessionID, watch: watch ? .data : nil) { node throws -> ([UInt8], NodeStat) in
            guard let node else { throw CoordinationError(.noNode, path: path) }
            return (node.data, node.stat)
        }
        return (data, stat, registered)
    }

    public func setData(_ path: String, data: [UInt8], version: Int32) async throws -> NodeStat {
        guard case .set(let stat) = try await coordinator.commit([.setData(path: path, data: data, version: version)], session: sessionID).first else {
            throw CoordinationError(.runtimeInconsistency, path: path)
        }
        return stat
    }

    public func children(_ path: String, watch: Bool) async throws -> (names: [String], stat: NodeStat, watch: Watch?) {
        let ((names, stat), registered) = try coordinator.read(path, session: sessionID, watch: watch ? .children : nil) { node throws -> ([String], NodeStat) in
            guard let node else { throw CoordinationError(.noNode, path: path) }
            return (node.children.map(\.string), node.stat)
        }
        return (names, stat, registered)
    }

    public func multi(_ operations: [Operation]) async throws -> [OperationResult] {
        try await coordinator.commit(operations, session: sessionID)
    }

    public func close() async {
        heartbeats.withLock { $0?.cancel() }
        await coordinator.endSession(sessionID, as: .closed)
    }
}
