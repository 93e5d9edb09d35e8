import Foundation
import SamsaCoordination
import SamsaTestSupport
import Synchronization
import Testing

@Suite("A ZooKeeper ensemble that loses its quorum", .offCooperativePool, .serialized, .timeLimit(.minutes(4)))
struct QuorumLossTests {
    @Test("two of three servers down for 3x the session timeout: the session stays suspended (never expired locally), then comes back with its id, ephemeral node and watches")
    func sessionOutlivesQuorumLoss() async throws {
        let ensemble = try await blocking { try ZooKeeperEnsemble(count: 3) }
        defer { ensemble.stopAll() }
        let timeout = Duration.seconds(4)
        let session = try await ZooKeeperSession.connect(servers: ensemble.connectString, sessionTimeout: timeout)
        let root = testRoot()
        _ = try await session.create(root)
        _ = try await session.create(root + "/owner", data: [], mode: .ephemeral)
        let watch = try await session.data(root, watch: true).watch
        let id = session.sessionID
        let seen = Mutex<[SessionState]>([])
        let states = session.states()
        let recorder = Task {
            for await state in states { seen.withLock { $0.append(state) } }
        }
        defer { recorder.cancel() }

        let leader = try #require(try await blocking { ensemble.leaderIndex() })
        let down = [leader, (leader + 1) % 3]
        for index in down { try await blocking { ensemble.kill(index) } }
        #expect(await eventually(.seconds(20)) { session.state == .suspended })
        // Long past the session timeout, no server can tell: the client does not decide for them.
        try await Task.sleep(for: timeout * 3)
        #expect(session.state == .suspended)
        for index in down { try await blocking { try ensemble.restart(index) } }

        #expect(await eventually(.seconds(60)) { session.state == .connected }, "\(session.state)")
        #expect(session.sessionID == id)
        #expect(!seen.withLock { $0 }.contains(.expired), "\(seen.withLock { $0 })")
        #expect(try await session.exists(root + "/owner")?.ephemeralOwner == id)
        try await session.setData(root, data: Array("changed".utf8))
        #expect(try await watch?.event() == WatchEvent(type: .nodeDataChanged, path: root))
        await session.close()
    }
}
