import Foundation
import Glibc
import SamsaCoordination
import SamsaProtocol
import SamsaTestSupport
import Testing

/// Issue 22's availability through coordination trouble, with real processes: a 3-node ZooKeeper
/// ensemble, three `samsa broker`s (RF 3, min ISR 2) and an acks=all idempotent confluent-kafka
/// producer throughout: ZooKeeper's quorum lost for 30 s, then a broker SIGKILLed (the stall it
/// causes), then a broker SIGKILLed and restarted at once, within its session timeout (KIP-380).
@Suite("Cluster on a ZooKeeper ensemble through coordination trouble")
struct ZooKeeperOutageProcessTests {
    typealias Ensemble = EnsembleFailoverTests

    /// [partition, offset, value, wall-clock time] as confluent_cluster_producer.py prints it.
    struct Delivery: Decodable {
        var partition: Int32
        var offset: Int64?
        var value: String
        var time: Double

        init(from decoder: any Decoder) throws {
            var container = try decoder.unkeyedContainer()
            partition = try container.decode(Int32.self)
            offset = try container.decodeIfPresent(Int64.self)
            value = try container.decode(String.self)
            time = try container.decode(Double.self)
        }
    }

    struct Outcome: Decodable {
        var delivered: [Delivery]
        var errors: [String]
        var undelivered: Int
        var consumed: [EnsembleFailoverTests.Triple]
    }

    /// The longest time one of `partitions` went without a delivery within [from, to] (a gap
    /// crossing the window's edges counts in full), and that partition.
    static func longestStall(_ deliveries: [Delivery], from: Double, to: Double, partitions: Set<Int32>) -> (seconds: Double, partition: Int32) {
        var longest = (seconds: 0.0, partition: Int32(-1))
        for partition in partitions {
            let times = deliveries.filter { $0.partition == partition }.map(\.time).sorted()
            let before = times.last { $0 < from } ?? from
            let after = times.first { $0 > to } ?? to
            let inside = [before] + times.filter { $0 >= from && $0 <= to } + [after]
            for (a, b) in zip(inside, inside.dropFirst()) where b - a > longest.seconds { longest = (b - a, partition) }
        }
        return longest
    }

    @Test("ZooKeeper's quorum lost for 30 s: leaders keep serving acks=all and Metadata; the cluster fails over when it is back; a dead broker and a restarted one handled at once")
    func quorumLossAndKills() async throws {
        let ensemble = try await blocking { try ZooKeeperEnsemble(count: 3) }
        let root = temporaryPath("samsa-outage")
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        let brokers = try EnsembleFailoverTests.Brokers(root: root, coordination: "zookeeper://\(ensemble.connectString.joined(separator: ","))/samsa")
        var producer: BackgroundClient?
        var keep = ProcessInfo.processInfo.environment["SAMSA_CLUSTER_LOG"] != nil
        defer {
            producer?.kill()
            brokers.killAll()
            ensemble.stopAll()
            if keep {
                FileHandle.standardError.write(Data("ZooKeeperOutageProcessTests: logs kept in \(root)\n".utf8))
            } else {
                try? FileManager.default.removeItem(atPath: root)
            }
        }
        do {
            for id in Int32(1)...3 { try await brokers.start(id) }
            let admin = try await TestConnection(port: brokers.ports[1]!)
            let created = try await admin.createTopic(Ensemble.topic, partitions: Ensemble.partitions, replicationFactor: 3, configs: ["min.insync.replicas": "2"])
            #expect(created.errorCode == 0)
            try await admin.close()
            _ = try await Ensemble.fullIsr(brokers, "after creation")
            producer = try BackgroundClient(
                [PythonClient.python, PythonClient.interop.appendingPathComponent("confluent_cluster_producer.py").path, brokers.bootstrap, Ensemble.topic,
                 "\(Ensemble.partitions)"], errors: "\(root)/producer.log")
            var marks = try await Ensemble.progressed(brokers, since: [:], by: 200, "the start")
            let all = Set(0..<Ensemble.partitions)

            // 1. Two of three ZooKeeper servers down for 30 s (the leader among them).
            let zooKeeperLeader = try await eventually("the ensemble has a leader") { () -> Int? in try await blocking { ensemble.leaderIndex() } }
            let down = [zooKeeperLeader, (zooKeeperLeader + 1) % 3]
            let before = try #require(await Ensemble.metadata(brokers))
            let outageBegan = Date().timeIntervalSince1970
            for index in down { try await blocking { ensemble.kill(index) } }
            for _ in 0..<3 {
                try await Task.sleep(for: .seconds(10))
                // Every broker still answers Metadata with the leaders it had, and the leaders serve.
                for id in brokers.live {
                    let partitions = try #require(await Self.partitions(brokers, id), "broker \(id) answers Metadata during the outage")
                    #expect(partitions.mapValues(\.leaderId) == before.mapValues(\.leaderId), "broker \(id)")
                }
                marks = try await Ensemble.progressed(brokers, since: marks, "ZooKeeper lost its quorum")
            }
            for index in down { try await blocking { try ensemble.restart(index) } }
            let outageEnded = Date().timeIntervalSince1970
            marks = try await Ensemble.progressed(brokers, since: marks, "ZooKeeper is back")

            // 2. The cluster carries on: a leader SIGKILLed (kept down), another leads at a new epoch.
            let victim = before[0]!.leaderId
            let killedAt = Date().timeIntervalSince1970
            try await brokers.signal(victim, SIGKILL)
            _ = try await eventually("another broker leads partition 0 after broker \(victim) was killed") { () -> Bool? in
                guard let now = await Ensemble.metadata(brokers)?[0], now.leaderId >= 0, now.leaderId != victim, now.leaderEpoch > before[0]!.leaderEpoch else { return nil }
                return true
            }
            marks = try await Ensemble.progressed(brokers, since: marks, "broker \(victim) was killed")
            let killWindowEnd = Date().timeIntervalSince1970
            let ledByVictim = Set(before.filter { $0.value.leaderId == victim }.map(\.key))
            try await brokers.start(victim)
            let settled = try await Ensemble.fullIsr(brokers, "after broker \(victim) restarted")
            marks = try await Ensemble.progressed(brokers, since: marks, "broker \(victim) restarted")

            // 3. A leader SIGKILLed and restarted at once, within its session timeout: a new broker epoch,
            // and every partition it led moves to a new leader epoch.
            let bounced = try #require(settled.values.map(\.leaderId).filter { $0 >= 0 }.min())
            let observer = try await ZooKeeperSession.connect(servers: ensemble.connectString, sessionTimeout: .seconds(30))
            let oldEpoch = try #require(try await observer.exists("/samsa/brokers/ids/\(bounced)")?.czxid)
            let led = settled.filter { $0.value.leaderId == bounced }
            try await brokers.signal(bounced, SIGKILL)
            try await brokers.start(bounced)
            let newEpoch = try await eventually("broker \(bounced) registered again") { () -> Int64? in
                guard let czxid = try await observer.exists("/samsa/brokers/ids/\(bounced)")?.czxid, czxid != oldEpoch else { return nil }
                return czxid
            }
            #expect(newEpoch > oldEpoch)
            // Its leaderships move on to new epochs (never back to it at the epoch it had), and the ISRs fill again.
            _ = try await eventually("the partitions broker \(bounced) led have new leader epochs and full ISRs", timeout: .seconds(90)) { () -> Bool? in
                guard let now = await Ensemble.metadata(brokers) else { return nil }
                for (partition, state) in led {
                    guard let current = now[partition], current.leaderEpoch > state.leaderEpoch, current.isrNodes.count == 3 else { return nil }
                }
                return true
            }
            await observer.close()
            marks = try await Ensemble.progressed(brokers, since: marks, "broker \(bounced) restarted")

            let outcome = try JSONDecoder().decode(Outcome.self, from: try await producer!.finish())
            producer = nil
            #expect(outcome.errors.isEmpty && outcome.undelivered == 0, "\(outcome.errors.prefix(10)), \(outcome.undelivered) undelivered")
            var consumedAt: [[Int64]: String] = [:]
            for record in outcome.consumed { consumedAt[[Int64(record.partition), record.offset ?? -1]] = record.value }
            let lost = outcome.delivered.filter { consumedAt[[Int64($0.partition), $0.offset ?? -1]] != $0.value }
            #expect(lost.isEmpty, "\(lost.count) acknowledged records not consumed at their offsets: \(lost.prefix(5).map { "\($0.partition)/\($0.offset ?? -1)=\($0.value)" })")
            #expect(Set(outcome.consumed.map(\.value)).count == outcome.consumed.count, "a record in the logs twice")

            let outage = Self.longestStall(outcome.delivered, from: outageBegan, to: outageEnded, partitions: all)
            let followed = Self.longestStall(outcome.delivered, from: killedAt, to: killWindowEnd, partitions: all.subtracting(ledByVictim))
            let failover = Self.longestStall(outcome.delivered, from: killedAt, to: killWindowEnd, partitions: ledByVictim)
            #expect(outage.seconds < 10, "a partition stalled \(outage.seconds) s while ZooKeeper had no quorum")
            FileHandle.standardError.write(Data("""
                ZooKeeperOutageProcessTests: \(outcome.delivered.count) records acknowledged; longest stall during the 30 s quorum loss: \
                \(String(format: "%.3f", outage.seconds)) s (partition \(outage.partition)); broker \(victim) SIGKILLed: longest stall of a \
                partition it followed \(String(format: "%.3f", followed.seconds)) s, of one it led \(String(format: "%.3f", failover.seconds)) s \
                (\(EnsembleFailoverTests.sessionTimeoutMs) ms session timeout); broker epoch of \(bounced): \(oldEpoch) -> \(newEpoch)

                """.utf8))
        } catch {
            keep = true
            Issue.record("\(error)\n\(brokers.logs())")
            throw error
        }
    }

    /// The topic's partitions as broker `id` answers Metadata (nil if it does not, or lacks one).
    static func partitions(_ brokers: EnsembleFailoverTests.Brokers, _ id: Int32) async -> [Int32: MetadataResponse.MetadataResponsePartition]? {
        guard let connection = try? await TestConnection(port: brokers.ports[id]!) else { return nil }
        defer { Task { try? await connection.close() } }
        var request = MetadataRequest()
        var wanted = MetadataRequest.MetadataRequestTopic()
        wanted.name = EnsembleFailoverTests.topic
        request.topics = [wanted]
        guard let response = try? await connection.request(request, version: 12, expecting: MetadataResponse.self), let topic = response.topics.first,
            topic.errorCode == 0, topic.partitions.count == Int(EnsembleFailoverTests.partitions)
        else { return nil }
        return Dictionary(uniqueKeysWithValues: topic.partitions.map { ($0.partitionIndex, $0) })
    }
}
