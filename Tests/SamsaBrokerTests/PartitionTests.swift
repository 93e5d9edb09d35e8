import SamsaWaiting
import Foundation
import NIOCore
import SamsaProtocol
import SamsaRecords
import SamsaStorage
import Synchronization
import Testing
@testable import SamsaBroker

/// The broker's partition object (issue 21): its high-watermark rules, ISR shrink and expand, epoch
/// fencing, the cluster of one, and acks=all waits, in process with a real log.
@Suite("Partition", .timeLimit(.minutes(1)))
struct PartitionTests {
    let id = TopicPartition(topic: "t", partition: 0)

    /// A partition over a new log in a temporary directory (removed by `close`).
    final class Fixture: Sendable {
        let directory: String
        let log: PartitionLog
        let partition: Partition
        let context: PartitionContext

        init(_ id: TopicPartition, brokerId: BrokerID = 1, replicated: Bool) throws {
            directory = FileManager.default.temporaryDirectory.appendingPathComponent("samsa-partition-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
            log = try PartitionLog.open(directory: "\(directory)/\(id.directoryName)").log
            let leadership: Leadership = replicated ? .replicated(try LeaderEpochs(dataDirectory: directory)) : .local
            context = PartitionContext(
                brokerId: brokerId, leadership: leadership, fetchWaits: Purgatory(), produceWaits: Purgatory(), isrChanges: IsrChangeCounts(),
                producerIdExpiration: .seconds(60), decompression: DecompressionPermits())
            partition = Partition(id, log: log, context: context)
        }

        /// Appends `count` records as the leader with `acks`, waiting at most `timeout`.
        func produce(_ count: Int, acks: Int16 = 1, minInsync: Int = 1, timeout: Duration = .seconds(10)) async throws -> Partition.Produced {
            try await partition.append(
                try makeBatch(count: count).buffer, acks: acks, timeout: timeout, minInsyncReplicas: minInsync, maxMessageBytes: 1 << 20,
                transactionalId: nil)
        }

        func close() {
            try? log.close()
            try? FileManager.default.removeItem(atPath: directory)
        }
    }

    /// Broker 1 leading at `epoch` with replicas 1, 2, 3 and the ISR `isr`.
    func lead(_ fixture: Fixture, epoch: LeaderEpoch = 1, isr: [BrokerID] = [1, 2, 3], version: Int32 = 1) -> Partition.Transition {
        fixture.partition.applyNow(PartitionStateNode(leader: 1, leaderEpoch: epoch, isr: isr, controllerEpoch: 1), version: version, replicas: [1, 2, 3])
    }

    @Test("A cluster of one leads at once, and its high watermark follows every append (the metric stayed 0)")
    func clusterOfOne() async throws {
        let fixture = try Fixture(id, replicated: false)
        defer { fixture.close() }
        #expect(fixture.partition.role == .leader && fixture.partition.leaderEpoch == 0)
        #expect(fixture.partition.snapshot.isr == [1])
        let produced = try await fixture.produce(5)
        #expect(produced.error == .none && produced.baseOffset == 0)
        #expect(fixture.log.logEndOffset == 5 && fixture.log.highWatermark == 5)
        // acks=all waits for the flush policy and the ISR (itself): answered, not timed out.
        #expect(try await fixture.produce(2, acks: -1).error == .none)
        #expect(fixture.log.highWatermark == 7)
        // min.insync.replicas above the ISR of one: refused before writing.
        let refused = try await fixture.produce(1, acks: -1, minInsync: 2)
        #expect(refused.error == .notEnoughReplicas && fixture.log.logEndOffset == 7)
    }

    @Test("A partition reopened as a cluster of one shows everything already in its log")
    func reopenedClusterOfOne() async throws {
        let fixture = try Fixture(id, replicated: false)
        defer { fixture.close() }
        _ = try await fixture.produce(3)
        try fixture.log.close()
        let reopened = try PartitionLog.open(directory: fixture.log.directory).log
        defer { try? reopened.close() }
        #expect(reopened.highWatermark == 0, "a log opens with nothing replicated")
        let again = Partition(id, log: reopened, context: fixture.context)
        #expect(again.log.highWatermark == 3)
    }

    @Test("The high watermark is the smallest log end of the ISR, only rises, and never passes the log end")
    func highWatermarkRules() async throws {
        let fixture = try Fixture(id, replicated: true)
        defer { fixture.close() }
        #expect(lead(fixture) == .becameLeader(epoch: 1))
        _ = try await fixture.produce(10)
        #expect(fixture.log.highWatermark == 0, "followers 2 and 3 have nothing yet")
        _ = fixture.partition.followerFetched(2, offset: 6)
        #expect(fixture.log.highWatermark == 0, "follower 3 is still at nothing")
        _ = fixture.partition.followerFetched(3, offset: 4)
        #expect(fixture.log.highWatermark == 4)
        // A follower fetching from further back (restarted, say) does not lower it.
        _ = fixture.partition.followerFetched(3, offset: 2)
        #expect(fixture.log.highWatermark == 4)
        // Nobody can raise it past the log end.
        #expect(!fixture.log.raiseHighWatermark(to: 1_000) || fixture.log.highWatermark == fixture.log.logEndOffset)
        #expect(fixture.log.highWatermark <= fixture.log.logEndOffset)
        _ = fixture.partition.followerFetched(2, offset: 10)
        _ = fixture.partition.followerFetched(3, offset: 10)
        #expect(fixture.log.highWatermark == 10)
    }

    @Test("Only a truncation lowers the high watermark, with the log end")
    func truncationLowersHighWatermark() async throws {
        let fixture = try Fixture(id, replicated: true)
        defer { fixture.close() }
        _ = lead(fixture, isr: [1])
        for _ in 0..<10 { _ = try await fixture.produce(1) }
        #expect(fixture.log.highWatermark == 10)
        #expect(!fixture.log.raiseHighWatermark(to: 3))
        #expect(fixture.log.highWatermark == 10)
        // Demoted, the follower cuts its divergent tail.
        _ = fixture.partition.applyNow(PartitionStateNode(leader: 2, leaderEpoch: 2, isr: [2], controllerEpoch: 1), version: 2, replicas: [1, 2, 3])
        let cut = try await fixture.partition.whileFollowing(2, epoch: 2) { follower -> Bool in
            try follower.truncate(to: 4)
            return true
        }
        #expect(cut == true)
        #expect(fixture.log.logEndOffset == 4 && fixture.log.highWatermark == 4)
    }

    @Test("A follower writes only under the leader and epoch it was told to follow")
    func followerGuard() async throws {
        let fixture = try Fixture(id, replicated: true)
        defer { fixture.close() }
        _ = fixture.partition.applyNow(PartitionStateNode(leader: 2, leaderEpoch: 3, isr: [1, 2], controllerEpoch: 1), version: 1, replicas: [1, 2])
        #expect(try await fixture.partition.whileFollowing(2, epoch: 3) { _ in true } == true)
        #expect(try await fixture.partition.whileFollowing(2, epoch: 2) { _ in true } == nil, "an older epoch")
        #expect(try await fixture.partition.whileFollowing(3, epoch: 3) { _ in true } == nil, "another leader")
        // As a follower it refuses produces.
        #expect(try await fixture.produce(1).error == .notLeaderOrFollower)
        #expect(fixture.log.logEndOffset == 0)
    }

    @Test("Requests naming an older leader epoch are fenced, a newer one is unknown")
    func epochFencing() throws {
        let fixture = try Fixture(id, replicated: true)
        defer { fixture.close() }
        #expect(fixture.partition.checkLeader(epoch: LeaderEpoch.none) == .notLeaderOrFollower)
        _ = lead(fixture, epoch: 5)
        #expect(fixture.partition.checkLeader(epoch: LeaderEpoch.none) == nil)
        #expect(fixture.partition.checkLeader(epoch: LeaderEpoch(5)) == nil)
        #expect(fixture.partition.checkLeader(epoch: LeaderEpoch(4)) == .fencedLeaderEpoch)
        #expect(fixture.partition.checkLeader(epoch: LeaderEpoch(6)) == .unknownLeaderEpoch)
        // A state node older than the one applied changes nothing.
        #expect(fixture.partition.applyNow(PartitionStateNode(leader: 2, leaderEpoch: 4, isr: [2], controllerEpoch: 1), version: 0, replicas: [1, 2, 3]) == .unchanged)
        #expect(fixture.partition.role == .leader)
    }

    @Test("The ISR shrinks by followers that fell behind for longer than the lag limit, and grows by one that caught up")
    func isrShrinkAndExpand() async throws {
        let fixture = try Fixture(id, replicated: true)
        defer { fixture.close() }
        let start = ContinuousClock.now
        _ = fixture.partition.applyNow(
            PartitionStateNode(leader: 1, leaderEpoch: 1, isr: [1, 2, 3], controllerEpoch: 1), version: 1, replicas: [1, 2, 3], now: start)
        _ = try await fixture.produce(10)
        _ = fixture.partition.followerFetched(2, offset: 10, now: start + .seconds(1))
        _ = fixture.partition.followerFetched(3, offset: 3, now: start + .seconds(1))
        #expect(fixture.partition.shrunkIsr(maxLag: .seconds(30), now: start + .seconds(10)) == nil)
        let shrunk = try #require(fixture.partition.shrunkIsr(maxLag: .seconds(30), now: start + .seconds(31)))
        #expect(shrunk == [1, 2])
        let (node, version) = try #require(fixture.partition.beginIsrChange(shrunk))
        #expect(fixture.partition.beginIsrChange([1]) == nil, "one ISR change at a time")
        fixture.partition.endIsrChange(node, acceptedVersion: version + 1)
        #expect(fixture.partition.snapshot.isr == [1, 2])
        #expect(fixture.context.isrChanges.shrinkCount == 1)
        // With 3 out, the high watermark follows the remaining ISR.
        #expect(fixture.log.highWatermark == 10)
        // Follower 3 catches up: it may join again.
        let grown = try #require(fixture.partition.followerFetched(3, offset: 10, now: start + .seconds(40)))
        #expect(grown == [1, 2, 3])
        let expansion = try #require(fixture.partition.beginIsrChange(grown))
        fixture.partition.endIsrChange(expansion.node, acceptedVersion: expansion.version + 1)
        #expect(fixture.partition.snapshot.isr == [1, 2, 3] && fixture.context.isrChanges.expandCount == 1)
        // A refused write (another version won) changes nothing.
        let refused = try #require(fixture.partition.beginIsrChange([1]))
        fixture.partition.endIsrChange(refused.node, acceptedVersion: nil)
        #expect(fixture.partition.snapshot.isr == [1, 2, 3])
    }

    @Test("acks=all is answered when the ISR has the records, NOT_LEADER when leadership goes first, REQUEST_TIMED_OUT after its timeout")
    func acksAllOutcomes() async throws {
        let fixture = try Fixture(id, replicated: true)
        defer { fixture.close() }
        _ = lead(fixture, isr: [1, 2])
        async let replicated = fixture.produce(2, acks: -1)
        while fixture.context.produceWaits.waiting == 0 { await Task.yield() }
        _ = fixture.partition.followerFetched(2, offset: 2)
        #expect(try await replicated.error == .none)

        async let demoted = fixture.produce(1, acks: -1)
        while fixture.context.produceWaits.waiting == 0 { await Task.yield() }
        _ = fixture.partition.applyNow(PartitionStateNode(leader: 2, leaderEpoch: 2, isr: [2], controllerEpoch: 1), version: 2, replicas: [1, 2])
        #expect(try await demoted.error == .notLeaderOrFollower)

        _ = lead(fixture, epoch: 3, isr: [1, 2], version: 3)
        let timedOut = try await fixture.produce(1, acks: -1, timeout: .milliseconds(50))
        #expect(timedOut.error == .requestTimedOut)
        #expect(fixture.context.produceWaits.waiting == 0, "no wait outlives its produce")
    }

    @Test("Resigning answers waiting produces at once")
    func resignAnswersWaiters() async throws {
        let fixture = try Fixture(id, replicated: true)
        defer { fixture.close() }
        _ = lead(fixture, isr: [1, 2])
        async let waiting = fixture.produce(1, acks: -1, timeout: .seconds(3_600))
        while fixture.context.produceWaits.waiting == 0 { await Task.yield() }
        fixture.partition.resign()
        #expect(try await waiting.error == .notLeaderOrFollower)
    }
}
