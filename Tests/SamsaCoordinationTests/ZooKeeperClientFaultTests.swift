import Foundation
import SamsaCoordination
import Testing
import SamsaTestSupport

/// Samsa's ZooKeeper client against servers that fail on purpose (a fake server closing at chosen
/// points) and against a real one (closing, size limits).
@Suite("ZooKeeper client under faults", .offCooperativePool, .timeLimit(.minutes(3)))
struct ZooKeeperClientFaultTests {
    static let closePoints: [FakeFault] = [
        .onAccept, .afterConnectRequest, .midConnectResponse, .afterConnectResponse, .afterReply(1), .afterReply(2), .afterReply(3),
    ]

    @Test(
        "a close at any point of the handshake or after any reply: requests fail with connectionLoss or succeed, the session reconnects, nothing hangs",
        arguments: closePoints, 1...3)
    func closeAtEveryPoint(point: FakeFault, faultyConnections: Int) async throws {
        let server = try FakeZooKeeperServer(faults: Array(repeating: point, count: faultyConnections))
        defer { server.stop() }
        let session = try await ZooKeeperSession.connect(servers: [server.server], sessionTimeout: .seconds(20))
        for _ in 0..<6 {
            let result = await outcome(within: .seconds(8)) { _ = try await session.data("/x") }
            switch result {
            case .succeeded: break
            case .failed: #expect(result.errorCode == .connectionLoss, "\(point): \(result)")
            case .hung: Issue.record("\(point), \(faultyConnections) faulty connections: a request hung (state \(session.state))")
            }
        }
        // The faults end (pings use up faulty connections' replies too): the session serves again.
        var last = Outcome.hung
        for _ in 0..<6 {
            last = await outcome(within: .seconds(8)) { _ = try await session.data("/x") }
            guard last.errorCode == .connectionLoss else { break }
        }
        guard case .succeeded = last else {
            Issue.record("\(point): after the faults: \(last) (state \(session.state))")
            await session.close()
            return
        }
        // The connection that answered may close right after (afterReply): it comes back.
        #expect(await eventually { session.state == .connected }, "\(point): \(session.state)")
        await session.close()
        #expect(session.state == .closed)
    }

    @Test("a server that stops answering: the connection is dropped one read timeout (2/3 of the session timeout) after its last answer")
    func silentServerDetectedWithinReadTimeout() async throws {
        // Two answers (a ping's, a request's), then silence. (Three such
        // connections: one starved of CPU before its pings were answered does not count.)
        let server = try FakeZooKeeperServer(faults: Array(repeating: .silentAfterReply(2), count: 3))
        defer { server.stop() }
        let timeout = Duration.seconds(6)
        let session = try await ZooKeeperSession.connect(servers: [server.server], sessionTimeout: timeout)
        // The last answer comes between two pings (a request's), not right after one: a heartbeat that
        // checks silence only on its ping ticks notices it up to a tick later than the read timeout.
        try await Task.sleep(for: timeout * 23 / 60)
        _ = await outcome(within: timeout) { _ = try await session.data("/x") }
        var detected: Duration?
        for await state in session.states() where state == .suspended {
            if let last = server.lastReplyAt {
                detected = last.duration(to: .now)
                break
            }
        }
        let drop = try #require(detected)
        // Java's client: read timeout 2/3 of the session timeout; allow scheduling delay, not a whole ping period.
        #expect(drop >= timeout * 6 / 10, "dropped \(drop) after the last answer")
        #expect(drop < timeout * 9 / 10, "dropped \(drop) after the last answer")
        #expect(await eventually { session.state == .connected })
        await session.close()
    }

    @Test("a session closed by its owner ends closed, never expired (many closes on a real ZooKeeper)")
    func closeIsNeverExpiry() async throws {
        let servers = try await SharedZooKeeper.shared.servers()
        let root = testRoot()
        let setup = try await ZooKeeperSession.connect(servers: servers, sessionTimeout: .seconds(10))
        _ = try await setup.create(root)
        for index in 0..<30 {
            let session = try await ZooKeeperSession.connect(servers: servers, sessionTimeout: .seconds(10))
            let seen = Task {
                var states: [SessionState] = []
                for await state in session.states() { states.append(state) }
                return states
            }
            _ = try await session.create(root + "/e\(index)", data: [], mode: .ephemeral)
            await session.close()
            #expect(session.state == .closed)
            #expect(await seen.value.last == .closed)
            #expect(try await setup.exists(root + "/e\(index)") == nil)
        }
        await setup.close()
    }

    @Test("16,000 watches (over 1 MB of paths) are re-armed after a reconnect, in chunks a server accepts")
    func manyWatchesSurviveReconnect() async throws {
        let servers = try await SharedZooKeeper.shared.servers()
        let upstream = try #require(Int(servers[0].split(separator: ":").last!))
        let proxy = try FaultProxy(upstreamPort: upstream)
        defer { proxy.stop() }
        let root = testRoot()
        let writer = try await ZooKeeperSession.connect(servers: servers, sessionTimeout: .seconds(10))
        _ = try await writer.create(root)
        let watcher = try await ZooKeeperSession.connect(servers: [proxy.server], sessionTimeout: .seconds(10))
        let padding = String(repeating: "p", count: 60)
        let watches = try await withThrowingTaskGroup(of: [Watch].self) { group in
            for lane in 0..<16 {
                group.addTask {
                    var watches: [Watch] = []
                    for index in stride(from: lane, to: 16_000, by: 16) {
                        if let watch = try await watcher.exists(root + "/\(padding)-\(index)", watch: true).watch { watches.append(watch) }
                    }
                    return watches
                }
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
        #expect(watches.count == 16_000)
        proxy.resetAll()
        #expect(await eventually { watcher.state != .connected })
        #expect(await eventually(.seconds(15)) { watcher.state == .connected })
        // Connected and staying so: a request answers, and watches set before the reset fire.
        _ = try await watcher.exists(root)
        _ = try await writer.create(root + "/\(padding)-15999")
        let fired = try #require(watches.first { $0.path.hasSuffix("-15999") })
        #expect(await outcome(within: .seconds(10)) { _ = try await fired.event() }.isSuccess)
        #expect(watcher.state == .connected)
        await watcher.close()
        await writer.close()
    }
}

extension Outcome {
    var isSuccess: Bool {
        if case .succeeded = self { return true }
        return false
    }
}
