import Foundation
import SamsaCoordination
import SamsaProtocol
import SamsaTestSupport
import Testing
@testable import SamsaBroker

/// Broker epochs (KIP-380): a broker's registration made anew is a restart even when the controller
/// never saw the old one go.
@Suite("Broker epochs")
struct BrokerEpochTests {
    @Test("a stale leader and bounced ISR members are what a state must not count on; a broker does not lead from a state written before it registered")
    func staleness() {
        let state = PartitionStateNode(leader: 2, leaderEpoch: LeaderEpoch(4), isr: [2, 1, 3], controllerEpoch: 1)
        let epochs = BrokerEpochs(live: [1: 10, 2: 50, 3: 30], bounced: [])
        #expect(epochs.stale(state, writtenAt: 40) == [2])  // broker 2 registered (zxid 50) after the write (40)
        #expect(epochs.stale(state, writtenAt: 60).isEmpty)
        #expect(BrokerEpochs(live: [1: 10, 2: 20, 3: 30], bounced: [3]).stale(state, writtenAt: 60) == [3])
        #expect(BrokerEpochs(live: [1: 10, 2: 20, 3: 30], bounced: [3]).stale(PartitionStateNode(leader: 2, leaderEpoch: LeaderEpoch(4), isr: [2, 1], controllerEpoch: 1), writtenAt: 60).isEmpty)
        let own = OwnBrokerEpoch()
        #expect(!own.predates(5))
        own.set(50)
        #expect(own.predates(40) && !own.predates(60))
    }

    @Test("a broker's registration replaced in one transaction (a restart the controller sees only as a new epoch): its leaderships move to a new epoch, it leaves and rejoins the ISRs, other leaders keep theirs")
    func bouncedBrokerIsFailedThenJoined() async throws {
        let cluster = try await TestCluster.start()
        let session = try cluster.coordinator.connect(sessionTimeout: .seconds(30))
        do {
            let connection = try await cluster.connection(1)
            #expect(try await connection.createTopic("bounced", partitions: 3, replicationFactor: 3).errorCode == 0)
            var before: [Int32: PartitionStateNode] = [:]
            for partition in Int32(0)..<3 { before[partition] = try await cluster.settled("bounced", partition) }
            let victim = before[0]!.leader
            let path = ClusterPaths(root: "").broker(victim)
            let (registration, stat) = try await session.data(path)
            // Gone and back in one step: the live brokers' list is the same, only the epoch changed.
            _ = try await session.multi([.delete(path: path, version: -1), .create(path: path, data: registration, mode: .ephemeral)])
            let epoch = try #require(try await session.exists(path)?.czxid)
            #expect(epoch > stat.czxid)

            try await eventually("the partitions broker \(victim) led have a new leader epoch") {
                for (partition, state) in before where state.leader == victim {
                    guard try await cluster.state("bounced", partition).leaderEpoch > state.leaderEpoch else { return false }
                }
                return true
            }
            try await eventually("every ISR is full again", timeout: .seconds(30)) {
                for partition in Int32(0)..<3 { guard try await cluster.state("bounced", partition).isr.count == 3 else { return false } }
                return true
            }
            for (partition, state) in before where state.leader != victim {
                #expect(try await cluster.state("bounced", partition).leaderEpoch == state.leaderEpoch, "partition \(partition)")
            }
            let moved = try await cluster.settled("bounced", 0)
            let produced = try await cluster.connection(moved.leader).produce("bounced", count: 5, startingAt: 0)
            #expect(produced.errorCode == 0, "\(produced)")
        } catch {
            await session.close()
            try await cluster.stopAll()
            throw error
        }
        await session.close()
        try await cluster.stopAll()
    }
}
