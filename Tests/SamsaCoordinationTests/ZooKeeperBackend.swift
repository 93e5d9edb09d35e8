import SamsaCoordination
import SamsaTestSupport

/// One standalone ZooKeeper shared by every test of this process that runs on the ZooKeeper backend
/// (each test works under its own root path).
actor SharedZooKeeper {
    static let shared = SharedZooKeeper()
    /// One start, awaited by every caller (the actor is re-entered while the JVM starts).
    private var starting: Task<ZooKeeperEnsemble, any Error>?

    func servers() async throws -> [String] {
        if starting == nil { starting = Task { try await blocking { try ZooKeeperEnsemble(count: 1) } } }
        return try await starting!.value.connectString
    }
}

final class ZooKeeperBackend: CoordinationBackend {
    let name = "zookeeper"
    let servers: [String]

    init(servers: [String]) { self.servers = servers }

    func connect(timeout: Duration) async throws -> any CoordinationSession {
        try await ZooKeeperSession.connect(servers: servers, sessionTimeout: timeout)
    }

    func expire(_ session: any CoordinationSession) async throws {
        guard let session = session as? ZooKeeperSession else { return }
        try await session.expireForTesting()
    }

    func shutdown() async throws {}
}
