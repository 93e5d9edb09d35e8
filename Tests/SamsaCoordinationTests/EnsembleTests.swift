import Foundation
import SamsaCoordination
import SamsaTestSupport
import Testing

@Suite("A real 3-node ZooKeeper ensemble", .offCooperativePool, .serialized, .timeLimit(.minutes(3)))
struct EnsembleTests {
    @Test("killing the ZooKeeper leader: sessions, ephemeral nodes and watches survive; a new leader serves; nothing acknowledged is lost")
    func leaderFailover() async throws {
        let ensemble = try await blocking { try ZooKeeperEnsemble(count: 3) }
        defer { ensemble.stopAll() }
        let servers = ensemble.connectString
        let leader = try #require(try await blocking { ensemble.leaderIndex() })
        // Clients connect to followers first (the list rotated away from the leader), and one to the
        // leader itself, so the kill cuts at least one connection.
        let onLeader = try await ZooKeeperSession.connect(servers: [servers[leader]] + servers.enumerated().filter { $0.offset != leader }.map(\.element), sessionTimeout: .seconds(10))
        let other = try await ZooKeeperSession.connect(servers: servers, sessionTimeout: .seconds(10))
        let root = testRoot()
        _ = try await onLeader.create(root)
        var acknowledged: [String] = []
        for index in 0..<20 {
            acknowledged.append(try await onLeader.create(root + "/item-", data: Array("\(index)".utf8), mode: .persistentSequential))
        }
        _ = try await onLeader.create(root + "/owner", data: [], mode: .ephemeral)
        _ = try await other.create(root + "/other", data: [], mode: .ephemeral)
        let dataWatch = try await other.data(root + "/item-0000000000", watch: true).watch
        let childWatch = try await onLeader.children(root, watch: true).watch
        let sessionsBefore = (onLeader.sessionID, other.sessionID)

        try await blocking { ensemble.kill(leader) }
        // A new leader is elected among the two left.
        var newLeader: Int?
        for _ in 0..<100 where newLeader == nil {
            newLeader = try await blocking { ensemble.servers.indices.first { $0 != leader && ensemble.mode(of: $0) == "leader" } }
            if newLeader == nil { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(newLeader != nil, "no new ZooKeeper leader")

        // Both sessions come back on a surviving server, with the same ids.
        #expect(await eventually(.seconds(20)) { onLeader.state == .connected && other.state == .connected })
        #expect((onLeader.sessionID, other.sessionID) == sessionsBefore)
        #expect(onLeader.currentServer != servers[leader])
        // Everything acknowledged before the kill is there; the ephemeral nodes too.
        let children = try await other.children(root)
        for path in acknowledged { #expect(children.contains(String(path.split(separator: "/").last!)), "\(path) lost") }
        #expect(try await other.exists(root + "/owner")?.ephemeralOwner == onLeader.sessionID)
        #expect(try await onLeader.exists(root + "/other")?.ephemeralOwner == other.sessionID)
        // Watches set before the failover still fire.
        try await onLeader.setData(root + "/item-0000000000", data: Array("changed".utf8))
        #expect(try await dataWatch?.event() == WatchEvent(type: .nodeDataChanged, path: root + "/item-0000000000"))
        _ = try await other.create(root + "/late")
        #expect(try await childWatch?.event() == WatchEvent(type: .nodeChildrenChanged, path: root))
        await onLeader.close()
        #expect(try await other.exists(root + "/owner") == nil)
        await other.close()
    }

    @Test("leader election across processes' sessions on the ensemble: exactly one leader after the leader's session expires")
    func electionOnEnsemble() async throws {
        let ensemble = try await blocking { try ZooKeeperEnsemble(count: 3) }
        defer { ensemble.stopAll() }
        let backend = ZooKeeperBackend(servers: ensemble.connectString)
        let root = testRoot() + "/election"
        var sessions: [any CoordinationSession] = []
        var elections: [LeaderElection] = []
        for index in 0..<3 {
            let session = try await backend.connect(timeout: .seconds(15))
            sessions.append(session)
            let election = LeaderElection(session: session, path: root, candidate: "c\(index)")
            try await election.start()
            elections.append(election)
        }
        #expect(await eventually { elections.filter(\.isLeader).count == 1 })
        let leader = try #require(elections.firstIndex { $0.isLeader })
        let start = ContinuousClock.now
        try await backend.expire(sessions[leader])
        #expect(await eventually(.seconds(8)) { elections.filter(\.isLeader).count == 1 && !elections[leader].isLeader })
        #expect(start.duration(to: .now) < .seconds(8), "a new leader within the session timeout and a margin")
        for session in sessions { await session.close() }
    }

    @Test("the ZooKeeper server restarts within the session timeout: the sessions come back and the election has a leader again")
    func electionThroughServerRestart() async throws {
        let ensemble = try await blocking { try ZooKeeperEnsemble(count: 1) }
        defer { ensemble.stopAll() }
        let root = testRoot() + "/election"
        var elections: [LeaderElection] = []
        for index in 0..<3 {
            let session = try await ZooKeeperSession.connect(servers: ensemble.connectString, sessionTimeout: .seconds(40))
            let election = LeaderElection(session: session, path: root, candidate: "c\(index)")
            try await election.start()
            elections.append(election)
        }
        #expect(await eventually { elections.filter(\.isLeader).count == 1 })
        let ids = elections.map(\.session.sessionID)
        // A long session timeout: a JVM restart on a loaded machine can take many seconds.
        try await blocking { try ensemble.restart(0) }
        #expect(await eventually(.seconds(20)) { elections.allSatisfy { $0.session.state == .connected } }, "\(elections.map(\.session.state))")
        #expect(elections.map(\.session.sessionID) == ids, "the same sessions")
        #expect(await eventually(.seconds(5)) { elections.filter(\.isLeader).count == 1 }, "no leader after the restart")
        for election in elections { await election.session.close() }
    }
}
