import Foundation
import SamsaCoordination
import Testing

@Suite("Embedded coordinator", .timeLimit(.minutes(2)))
struct EmbeddedTests {
    @Test("a session whose heartbeats stop expires after its timeout, not before")
    func heartbeatTimeout() async throws {
        let coordinator = try EmbeddedCoordinator.open()
        defer { try? coordinator.close() }
        let quiet = try coordinator.connect(sessionTimeout: .milliseconds(400))
        let alive = try coordinator.connect(sessionTimeout: .milliseconds(400))
        _ = try await quiet.create("/lock", data: [], mode: .ephemeral)
        // Heartbeats keep both alive well past the timeout.
        try await Task.sleep(for: .milliseconds(900))
        #expect(quiet.state == .connected && alive.state == .connected)
        quiet.stopHeartbeats()
        let start = ContinuousClock.now
        #expect(await eventually { quiet.state == .expired })
        // The last heartbeat came at most a third of the timeout before they stopped.
        #expect(start.duration(to: .now) >= .milliseconds(200))
        #expect(try await alive.exists("/lock") == nil)
        #expect(alive.state == .connected)
        await alive.close()
    }

    @Test("persistent nodes, versions and sequence numbers survive a restart; ephemeral ones do not")
    func persistence() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("samsa-coord-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        do {
            let coordinator = try EmbeddedCoordinator.open(directory: directory)
            let session = try coordinator.connect()
            _ = try await session.create("/config", data: Array("a".utf8))
            try await session.setData("/config", data: Array("b".utf8))
            _ = try await session.create("/queue")
            _ = try await session.create("/queue/item-", data: [], mode: .persistentSequential)
            _ = try await session.create("/queue/item-", data: [], mode: .ephemeralSequential)
            _ = try await session.create("/temp", data: [], mode: .ephemeral)
            // No close: as if the process died with the session open.
        }
        do {
            let coordinator = try EmbeddedCoordinator.open(directory: directory)
            let session = try coordinator.connect()
            let (data, stat) = try await session.data("/config")
            #expect(data == Array("b".utf8) && stat.version == 1)
            #expect(try await session.exists("/temp") == nil)
            #expect(try await session.children("/queue") == ["item-0000000000"])
            // Numbering continues after the ephemeral that went: never reused.
            #expect(try await session.create("/queue/item-", data: [], mode: .persistentSequential) == "/queue/item-0000000003")
            await session.close()
            try coordinator.close()
        }
        do {
            // A clean close leaves a snapshot; the third start reads it.
            let coordinator = try EmbeddedCoordinator.open(directory: directory)
            let session = try coordinator.connect()
            #expect(Set(try await session.children("/queue")) == ["item-0000000000", "item-0000000003"])
            await session.close()
            try coordinator.close()
        }
    }
}

@Suite("Recipes", .timeLimit(.minutes(2)))
struct RecipeTests {
    @Test("three candidates: one leader; when its session expires exactly one new leader, never two at once", arguments: BackendKind.allCases)
    func leaderElection(kind: BackendKind) async throws {
        let backend = try await kind.make()
        let root = testRoot() + "/election"
        var sessions: [any CoordinationSession] = []
        var elections: [LeaderElection] = []
        for index in 0..<3 {
            let session = try await backend.connect(timeout: .seconds(15))
            sessions.append(session)
            let election = LeaderElection(session: session, path: root, candidate: "candidate-\(index)")
            try await election.start()
            elections.append(election)
        }
        #expect(await eventually { elections.filter(\.isLeader).count == 1 })
        let leader = try #require(elections.firstIndex { $0.isLeader })
        #expect(leader == 0, "the first candidate has the lowest number")
        // Observe continuously while the leader's session is expired.
        let observations = Observations()
        let candidates = elections
        let observer = Task {
            while !Task.isCancelled {
                observations.record(candidates.filter(\.isLeader).count)
                try? await Task.sleep(for: .milliseconds(1))
            }
        }
        try await backend.expire(sessions[leader])
        #expect(await eventually { elections.filter(\.isLeader).count == 1 && !elections[leader].isLeader })
        observer.cancel()
        _ = await observer.value
        #expect(observations.maximum <= 1, "two leaders were seen at once")
        let next = try #require(elections.firstIndex { $0.isLeader })
        #expect(next == 1, "the next candidate in line leads")
        // The new leader resigns: the last one takes over.
        await elections[next].resign()
        #expect(await eventually { elections[2].isLeader })
        for session in sessions { await session.close() }
        try await backend.shutdown()
    }

    @Test("membership lists the live members and follows joins, leaves and expiries", arguments: BackendKind.allCases)
    func membership(kind: BackendKind) async throws {
        let backend = try await kind.make()
        let root = testRoot() + "/members"
        let watcherSession = try await backend.connect(timeout: .seconds(15))
        let watcher = Membership(session: watcherSession, path: root)
        var changes = watcher.changes().makeAsyncIterator()
        #expect(try await changes.next() == [])
        let a = try await backend.connect(timeout: .seconds(15))
        let b = try await backend.connect(timeout: .seconds(15))
        try await Membership(session: a, path: root).join("broker-a", data: Array("host-a:9092".utf8))
        #expect(try await changes.next() == ["broker-a"])
        try await Membership(session: b, path: root).join("broker-b")
        #expect(try await changes.next() == ["broker-a", "broker-b"])
        try await backend.expire(a)
        #expect(try await changes.next() == ["broker-b"])
        try await Membership(session: b, path: root).leave("broker-b")
        #expect(try await changes.next() == [])
        await b.close()
        await watcherSession.close()
        try await backend.shutdown()
    }
}

final class Observations: @unchecked Sendable {
    // @unchecked: guarded by `lock`.
    private let lock = NSLock()
    private var max = 0
    func record(_ value: Int) { lock.withLock { max = Swift.max(max, value) } }
    var maximum: Int { lock.withLock { max } }
}
