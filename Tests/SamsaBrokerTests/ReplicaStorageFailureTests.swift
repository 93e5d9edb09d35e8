import Foundation
import Logging
import SamsaProtocol
import SamsaStorage
import Synchronization
import Testing
@testable import SamsaBroker
import SamsaTestSupport

/// A full disk on one broker of a cluster (issue 20, items 10 and 11), made in process by a
/// fault-injecting file system under that broker's data directory: its replicas leave their ISRs at
/// once, so acks=all goes on with the others; the failure is logged once at error with metadata;
/// once there is room again the broker makes or catches up its replicas and rejoins, without a
/// restart. The lag limit is one no test waits out, so only the failure handling can move the ISR.
@Suite("Replica storage failures")
struct ReplicaStorageFailureTests {
    /// Runs `body` on brokers 1-3, broker 3 on a fault-injecting file system (its disk) with its log
    /// lines captured, retries after 50 ms, at most 200 ms apart; stops them all in every outcome.
    static func withFaultyBroker3(_ body: (TestCluster, FaultInjectingFileSystem, CapturedLogs) async throws -> Void) async throws {
        let disk = FaultInjectingFileSystem()
        let logs = CapturedLogs()
        let cluster = try TestCluster(lagMs: 600_000)
        do {
            for id in (Int32(1)...3).map({ BrokerID($0) }) {
                try await cluster.start(id) { configuration in
                    configuration.cluster?.replicaFetchBackoffMs = 50
                    configuration.cluster?.replicaFetchBackoffMaxMs = 200
                    guard id == 3 else { return }
                    configuration.fileSystem = disk
                    configuration.logger = logs.logger
                }
            }
            try await body(cluster, disk, logs)
        } catch {
            try await cluster.stopAll()
            throw error
        }
        try await cluster.stopAll()
    }

    /// Creates `name` through broker 1: `partitions` partitions on all three brokers, min.insync.replicas 2.
    static func createTopic(_ name: String, partitions: Int32, on cluster: TestCluster, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let admin = try await cluster.connection(1)
        let created = try await admin.createTopic(name, partitions: partitions, replicationFactor: 3, configs: ["min.insync.replicas": "2"])
        #expect(created.errorCode == 0, sourceLocation: sourceLocation)
        try await admin.close()
    }

    /// Broker 3 logged exactly one error, about `topic`'s `partitions` and a full disk.
    static func expectOneError(_ logs: CapturedLogs, topic: String, partitions: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let errors = logs.entries.filter { $0.level == .error }
        #expect(errors.count == 1, "\(errors.map(\.message))", sourceLocation: sourceLocation)
        let expected = ["topic": topic, "partition": partitions, "broker": "3", "errno": "\(ENOSPC)"]
        #expect(errors.first?.metadata.filter { expected[$0.key] != nil } == expected, sourceLocation: sourceLocation)
    }

    @Test("Logs that cannot be made (a full disk) leave their ISRs and leaderships at once, are logged once at error, and are made once space returns, without a restart")
    func replicasMadeOnceSpaceReturns() async throws {
        try await Self.withFaultyBroker3 { cluster, disk, logs in
            // Partitions 0 and 1 are made, partition 2 fails: the whole topic is undone and retried.
            disk.inject(.open, errno: ENOSPC, pathContains: "/grow-2/", times: .max)
            try await Self.createTopic("grow", partitions: 6, on: cluster)
            try await eventually("broker 3 is in no ISR of grow and leads none of it", timeout: .seconds(20)) {
                for partition in Int32(0)..<6 {
                    let state = try await cluster.state("grow", partition)
                    if state.isr.contains(3) || state.leader == 3 { return false }
                }
                return true
            }
            // acks=all is answered on every partition by brokers 1 and 2.
            for partition in Int32(0)..<6 {
                let state = try await cluster.settled("grow", partition)
                let connection = try await cluster.connection(state.leader)
                let produced = try await connection.produce("grow", count: 2, startingAt: Int(partition) * 2, partition: partition, timeoutMs: 20_000)
                #expect(produced.errorCode == 0, "partition \(partition): \(ErrorCode(rawValue: produced.errorCode).map { "\($0)" } ?? "?")")
                try await connection.close()
            }
            // (Its logs of partitions 0 and 1 come and go with each try; the topic is never held.)
            #expect(cluster.broker(3)?.dispatcher.topics.topic("grow") == nil)
            // Several tries fail; one error line says so, with its metadata.
            try await eventually("three tries failed") { disk.faultsFired >= 3 }
            Self.expectOneError(logs, topic: "grow", partitions: "0,1,2,3,4,5")

            disk.clearFaults()
            try await eventually("broker 3 is back in every ISR of grow") {
                for partition in Int32(0)..<6 where try await !cluster.state("grow", partition).isr.contains(3) { return false }
                return true
            }
            for partition in Int32(0)..<6 {
                #expect(try cluster.values(3, "grow", partition) == ["value-\(partition * 2)", "value-\(partition * 2 + 1)"])
            }
            #expect(logs.entries.filter { $0.level == .error }.count == 1)
            #expect(logs.entries.contains { $0.level == .info && $0.message.contains("made the logs of topic grow") })
        }
    }

    @Test("A follower whose appends fail (a full disk) leaves the ISR at once, so acks=all goes on without it; logged once at error; it rejoins once it can write again")
    func followerLeavesIsrWhenItsAppendsFail() async throws {
        try await Self.withFaultyBroker3 { cluster, disk, logs in
            // Two partitions, so broker 3 follows at least one of them (partition p is led by the p-th).
            try await Self.createTopic("full", partitions: 2, on: cluster)
            var partition: Int32 = 0
            var state = try await cluster.settled("full", 0)
            if state.leader == 3 {
                partition = 1
                state = try await cluster.settled("full", 1)
            }
            #expect(state.leader != 3 && state.isr.contains(3))
            let connection = try await cluster.connection(state.leader)
            #expect(try await connection.produce("full", count: 3, startingAt: 0, partition: partition).errorCode == 0)
            try await eventually("broker 3 has the first batch") { cluster.log(3, "full", partition)?.logEndOffset == 3 }

            disk.inject(.write, errno: ENOSPC, pathContains: "/full-\(partition)/", times: .max)
            disk.inject(.fallocate, errno: ENOSPC, pathContains: "/full-\(partition)/", times: .max)
            // Answered once broker 3 has left the ISR: within a fetch and two coordination round trips
            // of its failed append, not after replica.lag.time.max.ms.
            let produced = try await connection.produce("full", count: 3, startingAt: 3, partition: partition, timeoutMs: 20_000)
            #expect(produced.errorCode == 0, "\(ErrorCode(rawValue: produced.errorCode).map { "\($0)" } ?? "?")")
            let shrunk = try await cluster.state("full", partition)
            #expect(shrunk.isr.sorted() == state.isr.filter { $0 != 3 }.sorted())
            #expect(shrunk.leader == state.leader && shrunk.leaderEpoch == state.leaderEpoch)
            #expect(cluster.log(3, "full", partition)?.logEndOffset == 3)
            // It keeps retrying (and failing) after its back-off; one error line says so.
            try await eventually("three appends failed") { disk.faultsFired >= 3 }
            #expect(try await !cluster.state("full", partition).isr.contains(3))
            Self.expectOneError(logs, topic: "full", partitions: "\(partition)")

            disk.clearFaults()
            try await eventually("broker 3 is back in the ISR") { try await cluster.state("full", partition).isr.contains(3) }
            #expect(try await connection.produce("full", count: 3, startingAt: 6, partition: partition).errorCode == 0)
            #expect(cluster.log(3, "full", partition)?.logEndOffset == 9)
            #expect(logs.entries.contains { $0.level == .info && $0.message.contains("writes full-\(partition) again") })
            #expect(try cluster.values(3, "full", partition) == cluster.values(state.leader, "full", partition))
            try await connection.close()
        }
    }

    @Test("A broker made leader that cannot record the new leader epoch (a full disk) hands the partition to another ISR member; it follows and rejoins once it can write")
    func leaderWithoutEpochHandsOver() async throws {
        try await Self.withFaultyBroker3 { cluster, disk, logs in
            disk.inject(.open, errno: ENOSPC, pathContains: "/\(LeaderEpochs.directoryName)/lead-", times: .max)
            // Three partitions on three brokers: broker 3 is named leader of one of them.
            try await Self.createTopic("lead", partitions: 3, on: cluster)
            // The partition whose assignment names broker 3 first (it may have handed it over already).
            let views = try await cluster.broker(1)?.dispatcher.cluster?.metadata.partitions(of: "lead") ?? []
            let partition = try #require(views.first { $0.replicas.first == 3 }?.index)
            try await eventually("broker 3 handed partition \(partition) over", timeout: .seconds(20)) {
                let state = try await cluster.state("lead", partition)
                return state.leader != 3 && !state.isr.contains(3)
            }
            let state = try await cluster.settled("lead", partition)
            #expect(state.leaderEpoch == 1)
            let connection = try await cluster.connection(state.leader)
            let produced = try await connection.produce("lead", count: 3, startingAt: 0, partition: partition, timeoutMs: 20_000)
            #expect(produced.errorCode == 0, "\(ErrorCode(rawValue: produced.errorCode).map { "\($0)" } ?? "?")")
            Self.expectOneError(logs, topic: "lead", partitions: "\(partition)")

            disk.clearFaults()
            try await eventually("broker 3 is back in the ISR") { try await cluster.state("lead", partition).isr.contains(3) }
            #expect(try cluster.values(3, "lead", partition) == ["value-0", "value-1", "value-2"])
            #expect(cluster.broker(3)?.dispatcher.cluster?.replicas.epochs.latest(TopicPartition(topic: "lead", partition: partition))?.epoch == 1)
            try await connection.close()
        }
    }

    @Test("A leader whose own appends fail (a full disk) answers KAFKA_STORAGE_ERROR and hands the partition to another ISR member at once; it follows and rejoins once it can write")
    func leaderWhoseAppendsFailHandsOver() async throws {
        try await Self.withFaultyBroker3 { cluster, disk, logs in
            try await Self.createTopic("own", partitions: 3, on: cluster)
            var led: (partition: Int32, state: PartitionStateNode)?
            for partition in Int32(0)..<3 {
                let state = try await cluster.settled("own", partition)
                if state.leader == 3 { led = (partition, state) }
            }
            let (partition, state) = try #require(led, "broker 3 leads none of the three partitions")
            let leader = try await cluster.connection(3)
            #expect(try await leader.produce("own", count: 3, startingAt: 0, partition: partition).errorCode == 0)

            disk.inject(.write, errno: ENOSPC, pathContains: "/own-\(partition)/", times: .max)
            disk.inject(.fallocate, errno: ENOSPC, pathContains: "/own-\(partition)/", times: .max)
            let refused = try await leader.produce("own", count: 3, startingAt: 3, partition: partition, timeoutMs: 20_000)
            #expect(refused.errorCode == ErrorCode.kafkaStorageError.rawValue)
            // Before: broker 3 went on leading, and every produce got KAFKA_STORAGE_ERROR until the disk had room.
            try await eventually("broker 3 handed partition \(partition) over", timeout: .seconds(20)) {
                let now = try await cluster.state("own", partition)
                return now.leader != 3 && !now.isr.contains(3)
            }
            let moved = try await cluster.settled("own", partition)
            #expect(moved.leaderEpoch > state.leaderEpoch)
            let connection = try await cluster.connection(moved.leader)
            let produced = try await connection.produce("own", count: 3, startingAt: 3, partition: partition, timeoutMs: 20_000)
            #expect(produced.errorCode == 0, "\(ErrorCode(rawValue: produced.errorCode).map { "\($0)" } ?? "?")")
            Self.expectOneError(logs, topic: "own", partitions: "\(partition)")

            disk.clearFaults()
            try await eventually("broker 3 is back in the ISR") { try await cluster.state("own", partition).isr.contains(3) }
            #expect(try cluster.values(3, "own", partition) == cluster.values(moved.leader, "own", partition))
            try await leader.close()
            try await connection.close()
        }
    }
}

@Suite("Replica failure back-off")
struct ReplicaFailuresTests {
    let failure = ReplicaFailure(StorageError(.io, path: "/data/t-0", errno: ENOSPC, "write failed"))

    @Test("The back-off doubles per failure up to its maximum; only a failure's start, change and end are news")
    func backoffAndNews() {
        let failures = ReplicaFailures<String>(initialBackoff: .milliseconds(100), maximumBackoff: .milliseconds(1000))
        #expect([1, 2, 3, 4, 5, 9].map { failures.backoff(afterFailures: $0) } == [100, 200, 400, 800, 1000, 1000].map { .milliseconds($0) })
        let start = ContinuousClock.now
        #expect(failures.failed("t", failure, now: start))
        #expect(failures.isWaiting("t", now: start + .milliseconds(99)))
        #expect(!failures.isWaiting("t", now: start + .milliseconds(100)))
        #expect(!failures.failed("t", failure, now: start + .milliseconds(100)))
        #expect(failures.failure("t")?.retryAt == start + .milliseconds(300))
        let other = ReplicaFailure(StorageError(.io, path: "/data/t-0", errno: EIO, "write failed"))
        #expect(failures.failed("t", other, now: start + .milliseconds(300)))
        #expect(failures.nextRetry(among: ["t"]) == start + .milliseconds(700))
        #expect(failures.succeeded("t")?.failures == 3)
        #expect(failures.succeeded("t") == nil)
        #expect(!failures.isFailing("t") && failures.nextRetry(among: ["t"]) == nil)
    }

    @Test("Failing again within the longest back-off continues it; later it starts over")
    func backoffContinues() {
        let failures = ReplicaFailures<String>(initialBackoff: .milliseconds(100), maximumBackoff: .milliseconds(1000))
        let start = ContinuousClock.now
        failures.failed("t", failure, now: start)
        failures.failed("t", failure, now: start)
        _ = failures.succeeded("t", now: start)
        #expect(failures.failed("t", failure, now: start + .milliseconds(500)))
        #expect(failures.failure("t")?.failures == 3)
        _ = failures.succeeded("t", now: start + .milliseconds(500))
        failures.failed("t", failure, now: start + .milliseconds(1600))
        #expect(failures.failure("t")?.failures == 1)
    }

    @Test("Withdrawing from a partition's state: a follower leaves the ISR; a leader hands over to the next live ISR member at the next epoch")
    func withdrawing() {
        let state = PartitionStateNode(leader: 1, leaderEpoch: 4, isr: [1, 2, 3], controllerEpoch: 2)
        #expect(state.withdrawing(3, replicas: [1, 2, 3], live: []) == PartitionStateNode(leader: 1, leaderEpoch: 4, isr: [1, 2], controllerEpoch: 2))
        #expect(state.withdrawing(1, replicas: [1, 3, 2], live: [1, 2, 3]) == PartitionStateNode(leader: 3, leaderEpoch: 5, isr: [2, 3], controllerEpoch: 2))
        #expect(state.withdrawing(1, replicas: [1, 3, 2], live: [1, 2]) == PartitionStateNode(leader: 2, leaderEpoch: 5, isr: [2, 3], controllerEpoch: 2))
        #expect(state.withdrawing(1, replicas: [1, 2, 3], live: [1]) == nil)
        #expect(state.withdrawing(4, replicas: [1, 2, 3], live: [1, 2, 3]) == nil)
        #expect(PartitionStateNode(leader: -1, leaderEpoch: 5, isr: [2], controllerEpoch: 2).withdrawing(2, replicas: [1, 2], live: [2]) == nil)
    }
}

@Suite("samsa broker replica back-off options")
struct ReplicaBackoffOptionsTests {
    @Test("replica-fetch-backoff-ms must be positive and at most replica-fetch-backoff-max-ms, from the command line or --config; refused before anything starts")
    func refusedOutOfRange() throws {
        let root = temporaryPath("samsa-backoff")
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        try "replica-fetch-backoff-ms = 5000\nreplica-fetch-backoff-max-ms = 4000\n".write(toFile: "\(root)/broker.conf", atomically: true, encoding: .utf8)
        for arguments in [["--replica-fetch-backoff-ms", "0"], ["--config", "\(root)/broker.conf"]] {
            let (status, stderr) = try BrokerConfigFileTests.run(["broker", "--dir", "\(root)/data"] + arguments)
            #expect(status != 0)
            #expect(stderr.contains("replica-fetch-backoff-ms must be positive"), "\(stderr)")
            #expect(!FileManager.default.fileExists(atPath: "\(root)/data"))
        }
    }
}

@Suite("Leader epochs on a full disk")
struct LeaderEpochsFullDiskTests {
    @Test("A leader epoch whose checkpoint cannot be written is not kept: the retry writes it, and a reopen reads it")
    func failedWriteIsRetried() throws {
        let directory = temporaryPath("samsa-epochs")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let disk = FaultInjectingFileSystem()
        let epochs = try LeaderEpochs(dataDirectory: directory, files: disk)
        let partition = TopicPartition(topic: "t", partition: 0)
        try epochs.assign(partition, epoch: 1, startOffset: 0)
        disk.inject(.write, errno: ENOSPC, pathContains: "t-0")
        #expect(throws: StorageError.self) { try epochs.assign(partition, epoch: 2, startOffset: 5) }
        #expect(epochs.latest(partition)?.epoch == 1)
        try epochs.assign(partition, epoch: 2, startOffset: 5)
        #expect(try LeaderEpochs(dataDirectory: directory).entries(partition).map(\.epoch) == [1, 2])
        disk.inject(.write, errno: ENOSPC, pathContains: "t-0")
        #expect(throws: StorageError.self) { try epochs.truncate(partition, from: 5) }
        #expect(epochs.latest(partition)?.epoch == 2)
        try epochs.truncate(partition, from: 5)
        #expect(try LeaderEpochs(dataDirectory: directory).entries(partition).map(\.epoch) == [1])
    }
}
