import Foundation
import NIOCore
import SamsaProtocol
import SamsaStorage
import Testing
@testable import SamsaBroker
import SamsaTestSupport

/// Seeded random schedules of produces (acks=all and acks=1), broker stops and restarts, and cut and
/// healed links on a three-broker cluster; then everything heals and the checks are: every record
/// acknowledged with acks=all is in the leader's log exactly once and in acknowledgement order, and
/// every replica's log is identical to the leader's up to the high watermark.
/// `SAMSA_REPLICATION_SEED=n swift test --filter randomizedReplicationFaults` replays one seed (the schedule is
/// printed on failure; timing is real, so a replay repeats the faults, not the exact interleaving).
@Suite("Replication under random faults")
struct RandomizedReplicationTests {
    /// SplitMix64: a small seeded generator.
    struct Generator {
        var state: UInt64
        mutating func next(_ bound: Int) -> Int {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return Int((z ^ (z >> 31)) % UInt64(bound))
        }
    }

    static var seeds: [UInt64] {
        if let text = ProcessInfo.processInfo.environment["SAMSA_REPLICATION_SEED"], let seed = UInt64(text) { return [seed] }
        return [1, 2, 3]
    }

    @Test("randomized faults (seeded; SAMSA_REPLICATION_SEED=n replays one): no acknowledged acks=all record lost, replicas identical up to the high watermark", arguments: seeds)
    func randomizedReplicationFaults(seed: UInt64) async throws {
        let cluster = try await TestCluster.start(lagMs: 1500)
        var schedule: [String] = []
        do {
            let admin = try await cluster.connection(1)
            #expect(try await admin.createTopic("random", replicationFactor: 3, configs: ["min.insync.replicas": "2"]).errorCode == 0)
            try await admin.close()
            _ = try await cluster.settled("random")
            var random = Generator(state: seed)
            var acknowledged: [String] = []
            var next = 0
            for _ in 0..<14 {
                let action = random.next(10)
                switch action {
                case 0...4:
                    let acks: Int16 = action == 4 ? 1 : -1
                    let values = (next..<next + 3).map { "value-\($0)" }
                    let first = next
                    next += 3
                    guard let state = try? await cluster.settled("random", timeout: .seconds(10)) else {
                        schedule.append("produce skipped: no leader")
                        continue
                    }
                    let connection = try await cluster.connection(state.leader)
                    let produced = try await connection.produce("random", count: 3, startingAt: first, acks: acks, timeoutMs: 3000)
                    try await connection.close()
                    schedule.append("produce acks=\(acks) to \(state.leader) at epoch \(state.leaderEpoch): error \(produced.errorCode)")
                    if acks == -1 && produced.errorCode == 0 { acknowledged += values }
                case 5, 6:
                    if cluster.running.count == 3 {
                        let victim = BrokerID(Int32(random.next(3) + 1))
                        schedule.append("kill \(victim)")
                        try await cluster.kill(victim)
                    } else if let stopped = (Int32(1)...3).map({ BrokerID($0) }).first(where: { !cluster.running.contains($0) }) {
                        schedule.append("start \(stopped)")
                        try await cluster.start(stopped)
                    }
                case 7, 8:
                    let from = BrokerID(Int32(random.next(3) + 1))
                    let to = BrokerID(from.rawValue % 3 + 1)
                    schedule.append("cut \(from) -> \(to)")
                    cluster.links.cut(from, to)
                default:
                    schedule.append("heal")
                    cluster.links.heal()
                }
            }
            cluster.links.heal()
            for id in (Int32(1)...3).map({ BrokerID($0) }) where !cluster.running.contains(id) { try await cluster.start(id) }
            try await eventually("every replica is back in the ISR", timeout: .seconds(60)) { try await cluster.state("random").isr.count == 3 }
            let state = try await cluster.settled("random")
            try await eventually("every replica has the leader's high watermark", timeout: .seconds(60)) {
                let end = cluster.log(state.leader, "random")?.logEndOffset
                return cluster.running.allSatisfy { cluster.log($0, "random")?.highWatermark == end }
            }
            #expect(!acknowledged.isEmpty, "schedule: \(schedule)")
            let values = try cluster.values(state.leader, "random")
            let positions = acknowledged.map { value in values.indices.filter { values[$0] == value } }
            #expect(positions.allSatisfy { $0.count == 1 }, "acknowledged records missing or duplicated; schedule: \(schedule)")
            let order = positions.compactMap(\.first)
            #expect(order == order.sorted(), "acknowledged records out of order; schedule: \(schedule)")
            try ReplicationTests.expectIdentical(cluster, "random", leader: state.leader)
        } catch {
            try await cluster.stopAll()
            throw Timeout(what: "\(error); schedule: \(schedule)")
        }
        try await cluster.stopAll()
    }
}
