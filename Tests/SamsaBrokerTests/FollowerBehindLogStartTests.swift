import Foundation
import SamsaProtocol
import SamsaStorage
import Testing
@testable import SamsaBroker
import SamsaTestSupport

/// A follower away while its leader's retention deleted what it had not copied: its fetch is
/// OFFSET_OUT_OF_RANGE below the leader's log start, so it restarts its log there (Kafka's
/// `truncateFullyAndStartAt`), catches up and rejoins the ISR, instead of asking forever.
@Suite("Follower behind the leader's log start")
struct FollowerBehindLogStartTests {
    @Test("a follower whose log end fell below the leader's log start restarts its log there, catches up and rejoins the ISR")
    func restartsAtLeaderLogStart() async throws {
        let cluster = try await TestCluster.start(lagMs: 1500)
        do {
            let admin = try await cluster.connection(1)
            let created = try await admin.createTopic("short", replicationFactor: 3, configs: ["segment.bytes": "2048", "retention.bytes": "4096"])
            #expect(created.errorCode == 0)
            try await admin.close()
            let state = try await cluster.settled("short")
            let follower = try #require(state.isr.first { $0 != state.leader })
            let connection = try await cluster.connection(state.leader)
            #expect(try await connection.produce("short", count: 20, startingAt: 0).errorCode == 0)
            try await eventually("the follower has the first batch") { cluster.log(follower, "short")?.logEndOffset == 20 }

            cluster.links.cut(follower, state.leader)
            for round in 1..<40 {
                let produced = try await connection.produce("short", count: 20, startingAt: round * 20, acks: 1)
                #expect(produced.errorCode == 0)
            }
            let leaderBroker = try requireBroker(cluster.broker(state.leader))
            #expect(await leaderBroker.dispatcher.retention.enforce() > 0)
            let leaderLog = try #require(cluster.log(state.leader, "short"))
            #expect(leaderLog.logStartOffset > 20, "the leader deleted what the follower has not copied")

            cluster.links.heal()
            try await eventually("the follower restarted at the leader's log start and caught up") {
                guard let log = cluster.log(follower, "short") else { return false }
                return log.logStartOffset == leaderLog.logStartOffset && log.logEndOffset == 800
            }
            try await eventually("the follower is back in the ISR") { try await cluster.state("short").isr.contains(follower) }
            let leaderBatches = try cluster.batches(state.leader, "short", below: 800)
            let followerBatches = try cluster.batches(follower, "short", below: 800)
            #expect(followerBatches.map(\.0) == leaderBatches.map(\.0))
            #expect(followerBatches.map(\.2) == leaderBatches.map(\.2))
            try await connection.close()
        } catch {
            try await cluster.stopAll()
            throw error
        }
        try await cluster.stopAll()
    }
}
