import Foundation
import SamsaCoordination
import SamsaTestSupport
import Testing

@Suite("Embedded coordinator", .offCooperativePool, .timeLimit(.minutes(2)))
struct EmbeddedTests {
    @Test("a session whose heartbeats stop expires after its timeout, not before")
    func heartbeatTimeout() async throws {
        let coordinator = try EmbeddedCoordinator.open()
        defer { try? coordinator.close() }
        // Long enough that a loaded machine's scheduling delays do not expire them by accident.
        let quiet = try coordinator.connect(sessionTimeout: .milliseconds(1500))
        let alive = try coordinator.connect(sessionTimeout: .milliseconds(1500))
        _ = try await quiet.create("/lock", data: [], mode: .ephemeral)
        // Heartbeats keep both alive well past the timeout.
        try await Task.sleep(for: .milliseconds(3000))
        #expect(quiet.state == .connected && alive.state == .connected)
        quiet.stopHeartbeats()
        let start = ContinuousClock.now
        #expect(await eventually { quiet.state == .expired })
        // The last heartbeat came at most a third of the timeout before they stopped.
        #expect(start.duration(to: .now) >= .milliseconds(1000))
        #expect(try await alive.exists("/lock") == nil)
        #expect(alive.state == .connected)
        await alive.close()
    }

    @Test("persistent nodes, versions and sequence numbers survive a restart; ephemeral ones do not")
    func persistence() async throws {
        let directory = temporaryPath("samsa-coord")
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

    @Test("commits and session ends write and sync the log off the caller's task, outside the coordinator's lock")
    func logWritesOffTheCallersTask() async throws {
        let directory = temporaryPath("samsa-coord")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let files = TaskWatchingFileSystem()
        let coordinator = try EmbeddedCoordinator.open(directory: directory, files: files)
        let opening = files.callsInTasks.count  // opening is synchronous, on the caller's thread
        let session = try coordinator.connect()
        let watcher = try coordinator.connect()
        _ = try await session.create("/node", data: [1])
        _ = try await session.create("/member", data: [], mode: .ephemeral)
        _ = try await session.setData("/node", data: [2])
        await session.close()  // its ephemeral node's removal is logged
        #expect(try await watcher.exists("/member") == nil)
        #expect(try await watcher.data("/node").data == [2])
        #expect(Array(files.callsInTasks.dropFirst(opening)) == [])
        await watcher.close()
        try coordinator.close()
        // What was acknowledged is on disk.
        let reopened = try EmbeddedCoordinator.open(directory: directory)
        let reader = try reopened.connect()
        #expect(try await reader.data("/node").data == [2])
        await reader.close()
        try reopened.close()
    }

    @Test("a log write failing when a session ends stops the coordinator, as a failing commit does")
    func logFailureAtSessionEndStops() async throws {
        for failingStep in ["session end", "commit"] {
            let directory = temporaryPath("samsa-coord")
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let (coordinator, failLogWrites) = try EmbeddedCoordinator.openWithFailingLog(directory: directory)
            let ending = try coordinator.connect()
            let other = try coordinator.connect()
            _ = try await ending.create("/member", data: [], mode: .ephemeral)
            failLogWrites()
            if failingStep == "session end" {
                await ending.close()
            } else {
                do {
                    _ = try await ending.create("/x")
                    Issue.record("a commit whose log write failed was acknowledged")
                } catch {}
            }
            #expect(!coordinator.isServing, "\(failingStep): the coordinator still serves")
            do {
                _ = try await other.exists("/member")
                Issue.record("\(failingStep): a read was served after the log failed")
            } catch let error as CoordinationError {
                #expect(error.code == .connectionLoss)
            }
            try coordinator.close()
            // The logged state comes back: the ephemeral node went with the restart, nothing else changed.
            let reopened = try EmbeddedCoordinator.open(directory: directory)
            let session = try reopened.connect()
            #expect(try await session.exists("/member") == nil)
            #expect(try await session.exists("/x") == nil)
            await session.close()
            try reopened.close()
        }
    }

    /// SAMSA_SNAPSHOT_GROUPS=100 makes it 100,000 nodes (for a release build's figure).
    static let snapshotGroups = Int(ProcessInfo.processInfo.environment["SAMSA_SNAPSHOT_GROUPS"] ?? "") ?? 1

    @Test("a snapshot of thousands of nodes reloads (binary) with every node, its data and stat")
    func largeSnapshotReloads() async throws {
        let directory = temporaryPath("samsa-coord")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var expected: [String: NodeStat] = [:]
        do {
            let coordinator = try EmbeddedCoordinator.open(directory: directory)
            let session = try coordinator.connect()
            for group in 0..<Self.snapshotGroups {
                let parent = "/g\(group)"
                var operations: [SamsaCoordination.Operation] = [.create(path: parent, data: Array("group \(group)".utf8), mode: .persistent)]
                for index in 0..<999 { operations.append(.create(path: parent + "/n\(index)", data: [UInt8(index % 256)], mode: .persistent)) }
                _ = try await session.multi(operations)
            }
            for path in ["/g0", "/g0/n0", "/g0/n998", "/g0/n500"] { expected[path] = try await session.exists(path) }
            await session.close()
            try coordinator.close()
        }
        let (coordinator, opened) = try await blocking {
            let start = ContinuousClock.now
            let coordinator = try EmbeddedCoordinator.open(directory: directory)
            return (coordinator, start.duration(to: .now))
        }
        print("embedded coordinator: reopened \(Self.snapshotGroups * 1000) nodes in \(opened)")
        let session = try coordinator.connect()
        #expect(try await session.children("/").count == Self.snapshotGroups + 1)
        #expect(try await session.children("/g0").count == 999)
        for (path, stat) in expected { #expect(try await session.exists(path) == stat, "\(path)") }
        #expect(try await session.data("/g0/n500").data == [UInt8(500 % 256)])
        #expect(try await session.data("/g0").data == Array("group 0".utf8))
        await session.close()
        try coordinator.close()
    }

    @Test("a JSON snapshot and log written by the previous version are still read")
    func legacySnapshotReads() async throws {
        let directory = temporaryPath("samsa-coord")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        func stat(_ zxid: Int, children: Int, version: Int = 0) -> String {
            #"{"czxid":\#(zxid),"mzxid":\#(zxid),"ctime":1,"mtime":1,"version":\#(version),"cversion":\#(children),"aversion":0,"ephemeralOwner":0,"dataLength":1,"numChildren":\#(children),"pzxid":\#(zxid)}"#
        }
        let json = #"{"zxid":2,"logOffset":0,"nodes":{"/":{"data":[],"stat":\#(stat(0, children: 1)),"children":["config"]},"/config":{"data":[98],"stat":\#(stat(2, children: 0, version: 1)),"children":[]}}}"#
        try json.write(toFile: directory + "/snapshot.json", atomically: true, encoding: .utf8)
        let coordinator = try EmbeddedCoordinator.open(directory: directory)
        let session = try coordinator.connect()
        let (data, nodeStat) = try await session.data("/config")
        #expect(data == Array("b".utf8) && nodeStat.version == 1)
        // The next zxid follows the snapshot's.
        #expect(try await session.setData("/config", data: [1]).mzxid == 3)
        await session.close()
        try coordinator.close()
        #expect(!FileManager.default.fileExists(atPath: directory + "/snapshot.json"), "replaced by the binary snapshot")
    }
}

@Suite("Recipes", .offCooperativePool, .timeLimit(.minutes(2)))
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
