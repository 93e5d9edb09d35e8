import Foundation
import SamsaCoordination
import SamsaTestSupport

/// A coordination service under test: how to open sessions on it and expire one.
protocol CoordinationBackend: Sendable {
    var name: String { get }
    func connect(timeout: Duration) async throws -> any CoordinationSession
    /// Ends `session` from the service's side, as a lost client's timeout would.
    func expire(_ session: any CoordinationSession) async throws
    func shutdown() async throws
}

final class EmbeddedBackend: CoordinationBackend {
    let name = "embedded"
    let coordinator: EmbeddedCoordinator
    let directory: String?

    init(persistent: Bool = false) throws {
        directory = persistent ? temporaryPath("samsa-coord") : nil
        coordinator = try EmbeddedCoordinator.open(directory: directory)
    }

    func connect(timeout: Duration) async throws -> any CoordinationSession {
        try coordinator.connect(sessionTimeout: timeout)
    }

    func expire(_ session: any CoordinationSession) async throws {
        await coordinator.expireSession(session.sessionID)
    }

    func shutdown() async throws {
        try coordinator.close()
        if let directory { try? FileManager.default.removeItem(atPath: directory) }
    }
}

/// Each test runs against every backend this machine can provide.
enum BackendKind: String, CaseIterable, Sendable, CustomStringConvertible {
    case embedded
    /// Embedded with a transaction log: changes wait for their fsync.
    case embeddedDurable
    case zookeeper
    var description: String { rawValue }

    func make() async throws -> any CoordinationBackend {
        switch self {
        case .embedded: try EmbeddedBackend()
        case .embeddedDurable: try EmbeddedBackend(persistent: true)
        case .zookeeper: ZooKeeperBackend(servers: try await SharedZooKeeper.shared.servers())
        }
    }
}

/// A fresh, unique directory for one test (so tests can share a real ZooKeeper).
func testRoot() -> String { "/samsa-test-\(UUID().uuidString.prefix(8).lowercased())" }

/// What an operation came to within a time limit.
enum Outcome: Sendable {
    case succeeded
    case failed(any Error)
    /// Still running at the limit (it is left running).
    case hung

    var errorCode: CoordinationError.Code? {
        if case .failed(let error) = self { return (error as? CoordinationError)?.code }
        return nil
    }
}

/// Runs `body`, waiting for it at most `limit`.
func outcome(within limit: Duration, _ body: @escaping @Sendable () async throws -> Void) async -> Outcome {
    let (stream, continuation) = AsyncStream<Outcome>.makeStream()
    Task {
        do {
            try await body()
            continuation.yield(.succeeded)
        } catch {
            continuation.yield(.failed(error))
        }
    }
    let timer = Task {
        try? await Task.sleep(for: limit)
        continuation.yield(.hung)
    }
    var iterator = stream.makeAsyncIterator()
    let first = await iterator.next() ?? .hung
    timer.cancel()
    continuation.finish()
    return first
}

