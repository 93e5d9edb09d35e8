import Foundation
import SamsaProtocol
import Testing
@testable import SamsaBroker
import SamsaTestSupport

/// Seeded random schedules on three in-process brokers (embedded coordination) of offset commits by
/// simple consumers (generation -1) and by members of joined groups (within their generation), joins,
/// leaves, and kills of the broker FindCoordinator names (uncontrolled, sometimes with a commit in
/// flight) and restarts, all through the Kafka protocol. A model keeps every acknowledged commit; after
/// each kill and restart and at the end, OffsetFetch through the group's current coordinator must answer
/// for every partition at least the last acknowledged offset (exactly it unless a later commit is in
/// doubt) and never less than it answered before; a generation never goes back; a member keeps its
/// generation through a failover; a broker that does not coordinate the group answers NOT_COORDINATOR.
/// `SAMSA_GROUP_SEED=n swift test --filter randomizedGroupFaults` replays one seed (the seed is printed;
/// timing is real, so a replay repeats the schedule, not the exact interleaving).
@Suite("Consumer groups under random coordinator failures")
struct RandomizedGroupTests {
    static var seeds: [UInt64] {
        if let text = ProcessInfo.processInfo.environment["SAMSA_GROUP_SEED"], let seed = UInt64(text) { return [seed] }
        return [1, 2, 3]
    }

    @Test("randomized coordinator kills (seeded; SAMSA_GROUP_SEED=n replays one): no acknowledged commit lost, offsets and generations never go back, NOT_COORDINATOR elsewhere",
          arguments: seeds)
    func randomizedGroupFaults(seed: UInt64) async throws {
        FileHandle.standardError.write(Data("RandomizedGroupTests: seed \(seed)\n".utf8))
        let cluster = try await TestCluster.start(lagMs: 1500)
        let run = GroupSchedule(cluster: cluster, seed: seed)
        do {
            try await run.play(steps: 30)
        } catch {
            try await cluster.stopAll()
            throw Timeout(what: "\(error); seed \(seed); schedule: \(run.schedule)")
        }
        try await cluster.stopAll()
    }
}

/// One seed's schedule against a cluster, and the model of what the groups committed.
final class GroupSchedule {
    /// What the test knows of one group's committed offsets, by partition.
    struct Model {
        /// The last commit answered with success.
        var acknowledged: [Int32: Int64] = [:]
        /// Commits sent since then without a success answer (they may or may not have been written).
        var inDoubt: [Int32: Set<Int64>] = [:]
        /// The highest offset OffsetFetch answered.
        var fetched: [Int32: Int64] = [:]
        /// The last offset used: every commit uses a higher one.
        var used: [Int32: Int64] = [:]
    }

    struct Member {
        var id: String
        var generation: Int32
    }

    let cluster: TestCluster
    let seed: UInt64
    var random: RandomizedReplicationTests.Generator
    var schedule: [String] = []
    let topic = "tracked"
    let partitions: [Int32] = [0, 1, 2, 3]
    let simple = ["simple-0", "simple-1", "simple-2"]
    let joined = ["joined-0", "joined-1"]
    var models: [String: Model] = [:]
    var members: [String: Member] = [:]
    var generations: [String: Int32] = [:]
    /// FindCoordinator requests sent (their version rotates through 1-4; not from the seed, as retries vary).
    var finds = 0
    /// Long enough that a member's session outlives the slowest step seen on two loaded cores (a full
    /// suite beside release builds made one step take ~25x its usual time and a 20 s session expired,
    /// which the checks read as a lost generation); no step waits for an expiry.
    static let sessionMs: Int32 = 60_000

    init(cluster: TestCluster, seed: UInt64) {
        self.cluster = cluster
        self.seed = seed
        random = RandomizedReplicationTests.Generator(state: seed)
    }

    var groups: [String] { simple + joined }

    func fail(_ message: String) {
        Issue.record("seed \(seed): \(message); last steps: \(schedule.suffix(12))")
    }

    func play(steps: Int) async throws {
        let admin = try await cluster.connection(1)
        #expect(try await admin.createTopic(topic, partitions: Int32(partitions.count), replicationFactor: 3, configs: ["min.insync.replicas": "2"]).errorCode == 0)
        try await admin.close()
        for partition in partitions { _ = try await cluster.settled(topic, partition) }
        for _ in 0..<steps {
            let stopped = (Int32(1)...3).map { BrokerID($0) }.first { !cluster.running.contains($0) }
            switch random.next(12) {
            case 0...2: try await commit(simple[random.next(simple.count)], member: nil)
            case 3, 4:
                let group = joined[random.next(joined.count)]
                if let member = members[group] { try await commit(group, member: member) } else { try await join(group) }
            case 5:
                let group = joined[random.next(joined.count)]
                if members[group] != nil { try await leave(group) } else { try await join(group) }
            case 6, 7:
                if let stopped { try await restart(stopped) } else { try await killCoordinator(of: groups[random.next(groups.count)]) }
            case 8:
                if let stopped { try await restart(stopped) } else { try await commit(simple[random.next(simple.count)], member: nil) }
            case 9:
                if let stopped { try await restart(stopped) } else { try await commitRacingKill(simple[random.next(simple.count)]) }
            case 10: try await probeNonCoordinator(groups[random.next(groups.count)])
            default: try await verify(groups[random.next(groups.count)])
            }
            try await heartbeats()
        }
        for id in (Int32(1)...3).map({ BrokerID($0) }) where !cluster.running.contains(id) { try await restart(id) }
        for group in joined where members[group] != nil { try await leave(group) }
        try await verifyAll()
        // Every broker names the same coordinator for each group.
        for group in groups {
            var answers: [BrokerID: Int32] = [:]
            let agreed = (try? await eventually("every broker names one coordinator for \(group)", timeout: .seconds(30)) { () -> Bool? in
                answers = [:]
                for id in cluster.running {
                    let connection = try await cluster.connection(id)
                    defer { Task { try? await connection.close() } }
                    answers[id] = try await GroupWire.findCoordinator([group], version: 3, on: connection)[group]?.node
                }
                return Set(answers.values).count == 1 && answers.count == cluster.running.count ? true : nil
            }) ?? false
            if !agreed { fail("the brokers name different coordinators for \(group): \(answers)") }
        }
        #expect(schedule.contains { $0.hasPrefix("kill") }, "seed \(seed) killed no coordinator: \(schedule)")
    }

    // MARK: Finding the coordinator

    /// The broker FindCoordinator names for `group` (asking the running brokers in turn, at versions
    /// 1-3 one key and 4 batched with every group), retried while none is named, for at most 30 s.
    func find(_ group: String) async throws -> BrokerID {
        let groups = groups
        return try await eventually("a running broker coordinates \(group)", timeout: .seconds(30)) { () -> BrokerID? in
            finds += 1
            let running = cluster.running
            guard !running.isEmpty else { return nil }
            let version = Int16(finds % 4 + 1)
            let connection = try await cluster.connection(running[finds % running.count])
            defer { Task { try? await connection.close() } }
            let answers = try await withDeadline(.seconds(5)) {
                try await GroupWire.findCoordinator(version >= 4 ? groups : [group], version: version, on: connection)
            }
            guard let answer = answers[group], answer.error == 0, running.contains(BrokerID(answer.node)) else { return nil }
            return BrokerID(answer.node)
        }
    }

    /// Sends `body` to the group's coordinator, finding it again after NOT_COORDINATOR,
    /// COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE or a lost connection, for at most 30 s.
    /// Returns the last answer's error code and value (nil value: no answer), and where it went.
    func atCoordinator<Value: Sendable>(_ group: String, deadline limit: Duration = .seconds(10), _ body: @escaping @Sendable (TestConnection) async throws -> (Int16, Value))
        async throws -> (code: Int16, value: Value?, at: BrokerID)
    {
        let deadline = ContinuousClock.now + .seconds(30)
        while true {
            let coordinator = try await find(group)
            var answer: (Int16, Value)?
            if let connection = try? await cluster.connection(coordinator) {
                answer = try? await withDeadline(limit) { try await body(connection) }
                try? await connection.close()
            }
            if let answer, !GroupWire.refind.contains(answer.0) { return (answer.0, answer.1, coordinator) }
            if ContinuousClock.now > deadline { return (answer?.0 ?? ErrorCode.requestTimedOut.rawValue, answer?.1, coordinator) }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    // MARK: Commits

    /// New offsets, above every one used before, for a random non-empty subset of the partitions.
    func nextOffsets(_ group: String) -> [Int32: Int64] {
        var chosen = partitions.filter { _ in random.next(2) == 0 }
        if chosen.isEmpty { chosen = [partitions[random.next(partitions.count)]] }
        var offsets: [Int32: Int64] = [:]
        for partition in chosen {
            let offset = (models[group, default: Model()].used[partition] ?? 0) + Int64(1 + random.next(20))
            models[group, default: Model()].used[partition] = offset
            models[group, default: Model()].inDoubt[partition, default: []].insert(offset)
            offsets[partition] = offset
        }
        return offsets
    }

    /// The model after a commit's per-partition answers (nil: no answer; the commits stay in doubt).
    func record(_ group: String, _ offsets: [Int32: Int64], _ codes: [Int32: Int16]?) {
        for (partition, offset) in offsets where codes?[partition] == 0 {
            models[group, default: Model()].acknowledged[partition] = offset
            models[group, default: Model()].inDoubt[partition] = []
        }
    }

    func commit(_ group: String, member: Member?) async throws {
        let offsets = nextOffsets(group)
        let (topic, generation, memberId) = (topic, member?.generation ?? -1, member?.id ?? "")
        let answer = try await atCoordinator(group) { connection -> (Int16, [Int32: Int16]) in
            let codes = try await GroupWire.commit(group, topic: topic, offsets: offsets, generation: generation, member: memberId, on: connection)
            return (codes.values.first { $0 != 0 } ?? (codes.count == offsets.count ? 0 : ErrorCode.unknown.rawValue), codes)
        }
        record(group, offsets, answer.value)
        schedule.append("commit \(group) \(offsets.sorted { $0.key < $1.key }) generation \(generation) at \(answer.at): \(answer.code)")
        if answer.code != 0 {
            fail("a commit of \(group) (generation \(generation)) was not acknowledged within 30 s of retries: error \(answer.code)")
            if member != nil { members[group] = nil }
        }
    }

    /// A commit sent to the coordinator as it is killed: acknowledged or in doubt.
    func commitRacingKill(_ group: String) async throws {
        let offsets = nextOffsets(group)
        let victim = try await find(group)
        let connection = try await cluster.connection(victim)
        let topic = topic
        async let answer = try? withDeadline(.seconds(15)) { try await GroupWire.commit(group, topic: topic, offsets: offsets, on: connection) }
        try await cluster.kill(victim)
        let codes = await answer
        try? await connection.close()
        record(group, offsets, codes)
        schedule.append("kill \(victim) with a commit of \(group) \(offsets.sorted { $0.key < $1.key }) in flight: \(codes.map { "\($0)" } ?? "no answer")")
        try await verifyAll()
    }

    // MARK: Members

    func join(_ group: String) async throws {
        var memberId = ""
        for _ in 0..<6 {
            let asked = memberId
            let joined = try await atCoordinator(group, deadline: .seconds(30)) { connection -> (Int16, JoinGroupResponse) in
                let response = try await GroupTests.join(group, member: asked, on: connection, version: 5, sessionMs: GroupSchedule.sessionMs)
                return (response.errorCode, response)
            }
            guard let response = joined.value else { break }
            if joined.code == ErrorCode.memberIdRequired.rawValue {
                memberId = response.memberId
                continue
            }
            if joined.code == ErrorCode.unknownMemberId.rawValue {
                memberId = ""
                continue
            }
            guard joined.code == 0 else { break }
            let (id, generation) = (response.memberId, response.generationId)
            let synced = try await atCoordinator(group) { connection -> (Int16, Bool) in
                (try await GroupTests.sync(group, member: id, generation: generation, assignments: [id: [0, 1]], on: connection).errorCode, true)
            }
            schedule.append("join \(group) as \(id) generation \(generation) at \(joined.at): sync \(synced.code)")
            if let last = generations[group], generation <= last { fail("\(group)'s generation went from \(last) to \(generation)") }
            generations[group] = max(generation, generations[group] ?? 0)
            guard synced.code == 0 else { break }
            members[group] = Member(id: id, generation: generation)
            return
        }
        fail("could not join \(group)")
    }

    func leave(_ group: String) async throws {
        guard let member = members.removeValue(forKey: group) else { return }
        let left = try await atCoordinator(group) { connection -> (Int16, Bool) in (try await GroupWire.leave(group, member: member.id, on: connection), true) }
        schedule.append("leave \(group) \(member.id) at \(left.at): \(left.code)")
        if left.code != 0 { fail("\(member.id) could not leave \(group): error \(left.code)") }
        // Left with neither members nor committed offsets, the group is gone (Samsa forgets it at once, Kafka
        // at its next cleanup): a group of that id made later starts again at generation 1, as in Kafka.
        if models[group]?.acknowledged.isEmpty ?? true { generations[group] = nil }
    }

    /// Each member heartbeats (through failovers its generation must still be current).
    func heartbeats() async throws {
        for (group, member) in members.sorted(by: { $0.key < $1.key }) {
            let beat = try await atCoordinator(group) { connection -> (Int16, Bool) in
                (try await GroupTests.heartbeat(group, member: member.id, generation: member.generation, on: connection), true)
            }
            if beat.code != 0 {
                schedule.append("heartbeat \(group) \(member.id) generation \(member.generation) at \(beat.at): \(beat.code)")
                fail("\(group)'s member \(member.id) lost its generation \(member.generation): heartbeat error \(beat.code)")
                members[group] = nil
            }
        }
    }

    // MARK: Faults

    func killCoordinator(of group: String) async throws {
        let victim = try await find(group)
        schedule.append("kill \(victim), coordinator of \(group)")
        try await cluster.kill(victim)
        try await verifyAll()
    }

    /// Starts a killed broker and waits until it is back in the ISR of every `__consumer_offsets`
    /// partition it holds: one failure at a time. (A kill while a restarted broker still catches up
    /// leaves a partition one in-sync replica, below its min.insync.replicas of 2: its coordinator
    /// then refuses every write with COORDINATOR_NOT_AVAILABLE, as Kafka's does, and a member whose
    /// assignment could not be stored is rebalanced away; that is unavailability, not a loss.)
    func restart(_ id: BrokerID) async throws {
        schedule.append("start \(id)")
        try await cluster.start(id)
        let deadline = ContinuousClock.now + .seconds(30)
        for partition in Int32(0)..<50 {
            while let state = try? await cluster.state(GroupPlacement.topic, partition), !state.isr.contains(id), ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(20))
            }
        }
        try await verifyAll()
    }

    // MARK: Checks

    func verifyAll() async throws {
        for group in groups { try await verify(group) }
    }

    /// OffsetFetch through the coordinator against the model.
    func verify(_ group: String) async throws {
        let (topic, partitions) = (topic, partitions)
        let version: Int16 = random.next(2) == 0 ? 5 : 8
        let answer = try await atCoordinator(group) { connection -> (Int16, [Int32: Int64]) in
            let fetched = try await GroupWire.fetch(group, topic: topic, partitions: partitions, version: version, on: connection)
            return (fetched.error, fetched.offsets)
        }
        guard answer.code == 0, let offsets = answer.value else {
            fail("OffsetFetch of \(group) answered error \(answer.code) after 30 s of retries")
            return
        }
        let model = models[group, default: Model()]
        for partition in partitions {
            let got = offsets[partition] ?? -2
            let acknowledged = model.acknowledged[partition] ?? -1
            let allowed = model.inDoubt[partition, default: []].union([acknowledged])
            if got < acknowledged {
                fail("\(group)-\(partition): the acknowledged commit \(acknowledged) is lost: \(answer.at) answers \(got)")
            } else if let before = model.fetched[partition], got < before {
                fail("\(group)-\(partition)'s committed offset went back from \(before), answered earlier, to \(got) (at \(answer.at))")
            } else if !allowed.contains(got) {
                fail("\(group)-\(partition): \(answer.at) answers \(got), neither the acknowledged \(acknowledged) nor one in doubt \(allowed.sorted())")
            } else {
                models[group, default: Model()].fetched[partition] = got
                continue
            }
            // Reported once: from here the model follows the answer, so the next report is a new loss.
            models[group, default: Model()].acknowledged[partition] = got
            models[group, default: Model()].inDoubt[partition] = []
            models[group, default: Model()].fetched[partition] = got
        }
        schedule.append("fetch \(group) v\(version) at \(answer.at): \(offsets.sorted { $0.key < $1.key }.map(\.value))")
    }

    /// A broker other than the coordinator answers OffsetFetch and OffsetCommit with NOT_COORDINATOR
    /// (unless it has become the coordinator meanwhile).
    func probeNonCoordinator(_ group: String) async throws {
        let coordinator = try await find(group)
        let others = cluster.running.filter { $0 != coordinator }
        guard !others.isEmpty else { return }
        let other = others[random.next(others.count)]
        let connection = try await cluster.connection(other)
        let (topic, partitions) = (topic, partitions)
        let fetched = try await withDeadline(.seconds(10)) { try await GroupWire.fetch(group, topic: topic, partitions: partitions, version: 8, on: connection).error }
        let offsets = nextOffsets(group)
        let codes = try? await withDeadline(.seconds(10)) { try await GroupWire.commit(group, topic: topic, offsets: offsets, on: connection) }
        try? await connection.close()
        record(group, offsets, codes)
        schedule.append("probe \(other) (coordinator \(coordinator)) for \(group): fetch \(fetched), commit \(codes.map { "\($0)" } ?? "no answer")")
        let notCoordinator = ErrorCode.notCoordinator.rawValue
        if fetched != notCoordinator || codes?.values.contains(where: { $0 != notCoordinator }) ?? false, try await find(group) != other {
            fail("broker \(other), which does not coordinate \(group) (\(coordinator) does), answered OffsetFetch \(fetched) and OffsetCommit \(codes.map { "\($0)" } ?? "nothing")")
        }
    }
}

/// `body`'s value, or `Timeout` after `limit` (the body is cancelled).
func withDeadline<Value: Sendable>(_ limit: Duration, _ body: @escaping @Sendable () async throws -> Value) async throws -> Value {
    try await withThrowingTaskGroup(of: Value?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: limit)
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let value = first else { throw Timeout(what: "an answer within \(limit)") }
        return value
    }
}
