import Foundation
import SamsaCoordination
import Testing
import SamsaTestSupport

/// Leader election through network faults between its candidates and a real ZooKeeper (a fault
/// proxy in front of the shared server): connection resets, outages, lost replies.
@Suite("Leader election under faults", .offCooperativePool, .timeLimit(.minutes(3)))
struct ElectionFaultTests {
    /// The shared ZooKeeper behind a new proxy.
    static func proxiedZooKeeper() async throws -> (direct: [String], proxy: FaultProxy) {
        let servers = try await SharedZooKeeper.shared.servers()
        let port = try #require(Int(servers[0].split(separator: ":").last!))
        return (servers, try FaultProxy(upstreamPort: port))
    }

    @Test("every connection reset at once: the sessions come back and the leader whose node survived leads again")
    func leaderAfterConnectionReset() async throws {
        let (_, proxy) = try await Self.proxiedZooKeeper()
        defer { proxy.stop() }
        let root = testRoot() + "/election"
        var elections: [LeaderElection] = []
        for index in 0..<3 {
            let session = try await ZooKeeperSession.connect(servers: [proxy.server], sessionTimeout: .seconds(9))
            let election = LeaderElection(session: session, path: root, candidate: "c\(index)")
            try await election.start()
            elections.append(election)
        }
        #expect(await eventually { elections.filter(\.isLeader).count == 1 })
        let ids = elections.map(\.session.sessionID)
        proxy.resetAll()
        #expect(await eventually { elections.allSatisfy { $0.session.state != .connected } || elections.filter(\.isLeader).isEmpty })
        #expect(await eventually(.seconds(8)) { elections.allSatisfy { $0.session.state == .connected } })
        #expect(elections.map(\.session.sessionID) == ids, "the same sessions")
        #expect(await eventually(.seconds(5)) { elections.filter(\.isLeader).count == 1 }, "no leader after the reconnect")
        #expect(elections[0].isLeader, "the first candidate's node is still first")
        for election in elections { await election.session.close() }
    }

    @Test("a candidate's create whose reply is lost: one node per candidate (none orphaned), and a leader")
    func lostCreateReply() async throws {
        let (direct, proxy) = try await Self.proxiedZooKeeper()
        defer { proxy.stop() }
        let root = testRoot() + "/election"
        let lossy = try await ZooKeeperSession.connect(servers: [proxy.server], sessionTimeout: .seconds(9))
        // The candidate's create (ephemeral sequential: mode 3, the request's last int) executes on
        // the server; its reply never reaches the client.
        proxy.loseNextReply { opCode, request in opCode == 1 && request.count >= 4 && JuteBytes.int(request, at: request.count - 4) == 3 }
        let first = LeaderElection(session: lossy, path: root, candidate: "lossy")
        // A caller's retry, as it would after connectionLoss.
        var attempts = 0
        while true {
            attempts += 1
            do {
                try await first.start()
                break
            } catch let error as CoordinationError where error.code == .connectionLoss && attempts < 5 {
                continue
            }
        }
        #expect(proxy.lostReplies == 1)
        let other = try await ZooKeeperSession.connect(servers: direct, sessionTimeout: .seconds(9))
        let second = LeaderElection(session: other, path: root, candidate: "direct")
        try await second.start()
        #expect(try await other.children(root).count == 2, "one node per candidate")
        #expect(await eventually(.seconds(5)) { [first, second].filter(\.isLeader).count == 1 }, "no leader")
        #expect(first.isLeader, "the lossy candidate's node is first")
        await lossy.close()
        await other.close()
    }

    static let seeds: [UInt64] = {
        if let replay = ProcessInfo.processInfo.environment["SAMSA_ELECTION_SEED"], let seed = UInt64(replay) { return [seed] }
        return [1, 2, 3, 4, 5, 6]
    }()

    @Test("randomized faults (seeded; SAMSA_ELECTION_SEED=n replays one): never two leaders, and exactly one once the faults stop", arguments: seeds)
    func randomizedFaults(seed: UInt64) async throws {
        var random = SplitMix64(seed: seed)
        let (_, proxy) = try await Self.proxiedZooKeeper()
        defer { proxy.stop() }
        let root = testRoot() + "/election"
        let timeout = Duration.seconds(4)
        let candidates = Candidates(count: 3, servers: [proxy.server], path: root, timeout: timeout)
        try await candidates.fillUp()
        #expect(await eventually { candidates.current.filter(\.isLeader).count == 1 })
        let observations = Observations()
        let observer = Task {
            while !Task.isCancelled {
                observations.record(candidates.current.filter(\.isLeader).count)
                try? await Task.sleep(for: .milliseconds(2))
            }
        }
        var schedule: [String] = []
        for _ in 0..<10 {
            switch random.next() % 4 {
            case 0:
                schedule.append("reset")
                proxy.resetAll()
            case 1:
                // Create, exists, getChildren2, ping: whichever comes next loses its reply.
                let codes: [Int32] = [1, 3, 12, 11]
                let code = codes[Int(random.next() % UInt64(codes.count))]
                schedule.append("lose reply of op \(code)")
                proxy.loseNextReply { opCode, _ in opCode == code }
            case 2:
                // Mostly shorter than the session timeout; sometimes longer (the sessions expire).
                let outage = random.next() % 8 == 0 ? Duration.milliseconds(4500) : .milliseconds(100 + Int(random.next() % 1400))
                schedule.append("outage \(outage)")
                proxy.setDown(true)
                try await Task.sleep(for: outage)
                proxy.setDown(false)
            default:
                schedule.append("quiet")
            }
            try await Task.sleep(for: .milliseconds(50 + Int(random.next() % 400)))
            // Candidates whose session ended join again on a new one, as a broker would.
            try await candidates.fillUp()
        }
        // The faults stop: exactly one leader, and no candidate node left behind.
        proxy.setDown(false)
        let settled = await eventually(timeout * 3) {
            try? await candidates.fillUp()
            return candidates.current.filter(\.isLeader).count == 1
        }
        observer.cancel()
        _ = await observer.value
        #expect(settled, "seed \(seed): no single leader after \(schedule)")
        #expect(observations.maximum <= 1, "seed \(seed): two leaders at once during \(schedule)")
        let checker = try await ZooKeeperSession.connect(servers: try await SharedZooKeeper.shared.servers(), sessionTimeout: .seconds(10))
        #expect(
            await eventually(timeout * 2) {
                let live = Set(candidates.current.filter { $0.session.state == .connected }.compactMap(\.node).map { String($0.split(separator: "/").last!) })
                return (try? await Set(checker.children(root))) == live
            }, "seed \(seed): candidate nodes without a live candidate after \(schedule)")
        await candidates.closeAll()
        await checker.close()
    }
}

/// A fixed number of election candidates, each on its own session; `fillUp` replaces those whose
/// session ended.
final class Candidates: @unchecked Sendable {
    // @unchecked: `elections` is guarded by `lock`.
    private let lock = NSLock()
    private var elections: [LeaderElection?]
    let servers: [String]
    let path: String
    let timeout: Duration

    init(count: Int, servers: [String], path: String, timeout: Duration) {
        elections = Array(repeating: nil, count: count)
        self.servers = servers
        self.path = path
        self.timeout = timeout
    }

    var current: [LeaderElection] { lock.withLock { elections.compactMap { $0 } } }

    func fillUp() async throws {
        for slot in lock.withLock({ Array(elections.indices) }) {
            let existing = lock.withLock { elections[slot] }
            if let existing, existing.session.state != .expired && existing.session.state != .closed { continue }
            do {
                let session = try await ZooKeeperSession.connect(servers: servers, sessionTimeout: timeout)
                let election = LeaderElection(session: session, path: path, candidate: "slot\(slot)")
                try await election.start()
                lock.withLock { elections[slot] = election }
            } catch let error as CoordinationError where error.code == .connectionLoss || error.code == .sessionExpired {
                // The network is down or the new session already ended: the next round tries again.
                continue
            }
        }
    }

    func closeAll() async {
        for election in current { await election.session.close() }
    }
}

/// A small seeded generator, so a failing schedule replays from its seed.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
