import SamsaCoordination
import Synchronization

/// The broker's coordination session, replaced by a new one after it expires (`renew`), so the
/// cluster components keep one reference and use whichever session is current. An expired ZooKeeper
/// session cannot be revived: its ephemeral nodes and watches are gone, so after `renew` the broker
/// registers again and its components restart their watches (see `Cluster`).
final class RenewableSession: CoordinationSession {
    private let current: Mutex<any CoordinationSession>
    private let connect: @Sendable () async throws -> any CoordinationSession

    init(_ session: any CoordinationSession, connect: @escaping @Sendable () async throws -> any CoordinationSession) {
        current = Mutex(session)
        self.connect = connect
    }

    private var session: any CoordinationSession { current.withLock { $0 } }

    /// Opens a new session and makes it current; the old one is closed.
    func renew() async throws {
        let fresh = try await connect()
        let old = current.withLock { slot in
            defer { slot = fresh }
            return slot
        }
        await old.close()
    }

    var sessionID: Int64 { session.sessionID }
    var sessionTimeout: Duration { session.sessionTimeout }
    var state: SessionState { session.state }
    /// The current session's states (it finishes when that session ends; ask again after `renew`).
    func states() -> AsyncStream<SessionState> { session.states() }
    func create(_ path: String, data: [UInt8], mode: CreateMode) async throws -> String { try await session.create(path, data: data, mode: mode) }
    func delete(_ path: String, version: Int32) async throws { try await session.delete(path, version: version) }
    func exists(_ path: String, watch: Bool) async throws -> (stat: NodeStat?, watch: Watch?) { try await session.exists(path, watch: watch) }
    func data(_ path: String, watch: Bool) async throws -> (data: [UInt8], stat: NodeStat, watch: Watch?) {
        try await session.data(path, watch: watch)
    }
    func setData(_ path: String, data: [UInt8], version: Int32) async throws -> NodeStat {
        try await session.setData(path, data: data, version: version)
    }
    func children(_ path: String, watch: Bool) async throws -> (names: [String], stat: NodeStat, watch: Watch?) {
        try await session.children(path, watch: watch)
    }
    func multi(_ operations: [Operation]) async throws -> [OperationResult] { try await session.multi(operations) }
    func close() async { await session.close() }
}
