import NIOCore
import SamsaProtocol
import SamsaRecords
import SamsaStorage
import SamsaWaiting
import Synchronization

/// Replicates the partitions this broker follows from one leader (Kafka's `ReplicaFetcherThread`):
/// first OffsetForLeaderEpoch to find where the two logs agree and truncate there (KIP-101/279),
/// then Fetch requests with this broker's replica id from the log end, appending the batches as sent
/// (offsets and leader epochs kept) and taking the leader's high watermark.
///
/// A partition whose append or truncation fails here (a full disk) is not fetched until its
/// back-off ends (`ReplicaManager.offlinePartitions`): the manager takes this broker out of its ISR
/// meanwhile; the next fetch is the retry, and its first successful append brings it back.
final class ReplicaFetcher: Sendable {
    struct Following: Sendable, Equatable {
        var epoch: LeaderEpoch
        var needsTruncation = true
    }

    let leader: BrokerID
    private unowned let manager: ReplicaManager
    private let partitions = Mutex<[TopicPartition: Following]>([:])
    /// A `follow` came since the fetcher last looked (it waits for one in `work`).
    private let pending = Atomic<Bool>(false)
    private let work = Purgatory<BrokerID>()
    private let tasks = BackgroundTasks()
    /// The connection in use, so `stop` can close it under a request waiting for its answer.
    private let link = Mutex<BrokerLink?>(nil)
    /// Fetches sent: each starts one partition further on (see `fetch`).
    private let fetches = Atomic<Int>(0)

    init(leader: BrokerID, manager: ReplicaManager) {
        self.leader = leader
        self.manager = manager
    }

    func follow(_ partition: TopicPartition, epoch: LeaderEpoch) {
        partitions.withLock { $0[partition] = Following(epoch: epoch) }
        wake()
    }

    func unfollow(_ partition: TopicPartition) {
        partitions.withLock { _ = $0.removeValue(forKey: partition) }
    }

    func start() {
        tasks.start { await self.run() }
    }

    func stop() async {
        await tasks.stop {
            wake()
            link.withLock { $0 }?.close()
        }
    }

    private func wake() {
        pending.store(true, ordering: .sequentiallyConsistent)
        work.checkAndComplete(leader)
    }

    /// Returns at the next `follow` (or at once if one came since the last wait), at `deadline`, or
    /// when the task is cancelled.
    private func waitForWork(until deadline: ContinuousClock.Instant? = nil) async {
        _ = await work.wait(on: [leader], until: deadline, expired: ()) { [self] _ in
            pending.exchange(false, ordering: .sequentiallyConsistent) ? () : nil
        }
    }

    private func run() async {
        var link: BrokerLink?
        defer { link?.close() }
        while !Task.isCancelled {
            let current = partitions.withLock { $0 }
            if current.isEmpty {
                link?.close()
                link = nil
                await waitForWork()
                continue
            }
            let waiting = manager.fetchPaused(among: current.keys)
            if waiting.count == current.count {
                // Every partition waits out the back-off of a failed write (or the reassignment throttle).
                await waitForWork(until: manager.nextFetch(among: current.keys))
                continue
            }
            guard manager.settings.linkOpen(leader.rawValue) else {
                // The test seam cut this link: nothing goes through until it is open again.
                link?.close()
                link = nil
                try? await Task.sleep(for: .milliseconds(20))
                continue
            }
            do {
                let connected: BrokerLink
                if let link { connected = link } else { connected = try await manager.connect(to: leader) }
                link = connected
                self.link.withLock { $0 = connected }
                if Task.isCancelled { break }
                let truncating = current.filter { $0.value.needsTruncation && !waiting.contains($0.key) }
                if !truncating.isEmpty { try await truncate(truncating, over: connected) }
                let ready = partitions.withLock { $0.filter { !$0.value.needsTruncation && !waiting.contains($0.key) } }
                if ready.isEmpty {
                    // The leader does not know the epoch yet (or the truncation failed): retry shortly.
                    try await Task.sleep(for: .milliseconds(50))
                    continue
                }
                try await fetch(ready, over: connected)
            } catch {
                link?.close()
                link = nil
                try? await Task.sleep(for: .milliseconds(100))
            }
        }
    }

    // MARK: - Truncation

    private func truncate(_ truncating: [TopicPartition: Following], over link: BrokerLink) async throws {
        var request = OffsetForLeaderEpochRequest()
        request.replicaId = manager.brokerId.rawValue
        var asked: [TopicPartition: LeaderEpoch] = [:]
        var entries: [(String, OffsetForLeaderEpochRequest.OffsetForLeaderPartition)] = []
        for (partition, following) in truncating {
            guard let replica = manager.partition(partition) else { continue }
            guard let latest = manager.epochs.latest(partition)?.epoch else {
                // No epochs known: an empty log agrees with any leader; otherwise keep what is committed.
                let log = replica.log
                let target = log.highWatermark
                await writing(partition) { try await truncateLog(replica, epoch: following.epoch, to: log.logEndOffset == 0 ? 0 : target) }
                continue
            }
            asked[partition] = latest
            var entry = OffsetForLeaderEpochRequest.OffsetForLeaderPartition()
            entry.partition = partition.partition
            entry.currentLeaderEpoch = following.epoch.rawValue
            entry.leaderEpoch = latest.rawValue
            entries.append((partition.topic, entry))
        }
        request.topics = Self.byTopic(entries)
        guard !request.topics.isEmpty, let response = try await exchange(request, version: 3, expecting: OffsetForLeaderEpochResponse.self, over: link)
        else { return }
        for topic in response.topics {
            for result in topic.partitions {
                let partition = TopicPartition(topic: topic.topic, partition: result.partition)
                guard result.errorCode == 0, let following = truncating[partition], let replica = manager.partition(partition) else { continue }
                let log = replica.log
                let target: Int64
                if result.leaderEpoch < 0 && result.endOffset < 0 {
                    // The leader knows no epoch this old: keep only what was committed (Kafka's fallback).
                    target = log.highWatermark
                } else {
                    // Where our log and the leader's agree: the end of the last epoch both have.
                    let own = manager.epochs.endOffset(partition, for: LeaderEpoch(result.leaderEpoch), logEnd: log.logEndOffset).endOffset
                    target = min(result.endOffset, own < 0 ? log.logEndOffset : own)
                }
                await writing(partition) { try await truncateLog(replica, epoch: following.epoch, to: target) }
            }
        }
    }

    /// Runs a write to `partition`'s log; a storage failure is reported to the manager (the partition
    /// then waits out its back-off) instead of failing the other partitions' fetch.
    private func writing(_ partition: TopicPartition, _ body: () async throws -> Void) async {
        do {
            try await body()
        } catch {
            manager.replicaFailed(partition, error)
        }
    }

    /// Cuts the log at `target` (if it is shorter, nothing) while this broker still follows at
    /// `epoch`, and marks the partition ready to fetch.
    private func truncateLog(_ partition: Partition, epoch: LeaderEpoch, to target: Int64) async throws {
        guard try await partition.whileFollowing(leader, epoch: epoch, { try $0.truncate(to: target) }) != nil else { return }
        partitions.withLock { table in
            if table[partition.id] == Following(epoch: epoch) { table[partition.id]?.needsTruncation = false }
        }
    }

    /// Empties the log and restarts it at the leader's log start `start` (Kafka's
    /// `truncateFullyAndStartAt`) while this broker still follows at `epoch`.
    private func restartLog(_ partition: Partition, epoch: LeaderEpoch, at start: Int64) async throws {
        let restarted = try await partition.whileFollowing(leader, epoch: epoch) { log -> Int64? in
            guard log.log.logEndOffset < start else { return nil }
            let end = log.log.logEndOffset
            try log.restart(at: start)
            return end
        }
        if let end = restarted ?? nil {
            manager.logger.warning(
                "the log end is below the leader's log start: restarted the log there",
                metadata: ReplicaManager.metadata(partition.id, ["log_end": "\(end)", "leader": "\(leader)", "leader_log_start": "\(start)"]))
        }
    }

    // MARK: - Fetching

    private func fetch(_ ready: [TopicPartition: Following], over link: BrokerLink) async throws {
        var request = FetchRequest()
        request.replicaId = manager.brokerId.rawValue
        request.maxWaitMs = Int32(manager.settings.replicaFetchWaitMaxMs)
        request.minBytes = 1
        request.maxBytes = 16 << 20
        // Only the first partition with records may pass partitionMaxBytes (KIP-74): each request
        // starts one partition further on, so a batch over it comes when its partition is first.
        let ordered = ready.sorted(by: { $0.key < $1.key })
        let turn = fetches.add(1, ordering: .relaxed).oldValue % max(1, ordered.count)
        var entries: [(String, FetchRequest.FetchPartition)] = []
        for (partition, following) in ordered[turn...] + ordered[..<turn] {
            guard let replica = manager.partition(partition) else { continue }
            var entry = FetchRequest.FetchPartition()
            entry.partition = partition.partition
            entry.currentLeaderEpoch = following.epoch.rawValue
            entry.fetchOffset = replica.log.logEndOffset
            entry.lastFetchedEpoch = manager.epochs.latest(partition)?.epoch.rawValue ?? -1
            // The durable one: the leader counts a deletion done when every replica reports it.
            entry.logStartOffset = replica.log.durableLogStart
            entry.partitionMaxBytes = 1 << 20
            entries.append((partition.topic, entry))
        }
        request.topics = Self.byTopic(entries)
        guard !request.topics.isEmpty, let response = try await exchange(request, version: 12, expecting: FetchResponse.self, over: link) else { return }
        var backOff = false
        for topic in response.responses {
            for result in topic.partitions {
                let partition = TopicPartition(topic: topic.topic, partition: result.partitionIndex)
                guard let following = ready[partition], let replica = manager.partition(partition) else { continue }
                switch ErrorCode(rawValue: result.errorCode) {
                case .some(.none):
                    await writing(partition) {
                        try await append(
                            result.records ?? ByteBuffer(), to: replica, epoch: following.epoch, leaderHighWatermark: result.highWatermark,
                            leaderLogStart: result.logStartOffset)
                        manager.replicaSucceeded(partition)
                    }
                case .offsetOutOfRange where replica.log.logEndOffset < result.logStartOffset:
                    // Behind the leader's log start (its retention deleted what this follower still
                    // needed): only the leader's log from its start on is left to copy.
                    await writing(partition) { try await restartLog(replica, epoch: following.epoch, at: result.logStartOffset) }
                case .offsetOutOfRange:
                    // Ahead of the leader: find the agreeing point again.
                    partitions.withLock { table in
                        if table[partition] == following { table[partition]?.needsTruncation = true }
                    }
                default:
                    // Not (yet) the leader at our epoch, or fenced: the state watch brings the news.
                    backOff = true
                }
            }
        }
        if backOff { try await Task.sleep(for: .milliseconds(50)) }
    }

    /// Appends fetched batches that start at the log end, or past it (offsets the leader's cleaner
    /// removed: kept as a gap, the batch written as the leader has it), while this broker still
    /// follows at `epoch` (each new leader epoch recorded where its first batch starts), then takes
    /// the leader's high watermark and log start (DeleteRecords moves it).
    private func append(
        _ records: ByteBuffer, to partition: Partition, epoch: LeaderEpoch, leaderHighWatermark: Int64, leaderLogStart: Int64
    ) async throws {
        let diverged = try await partition.whileFollowing(leader, epoch: epoch) { follower -> Bool in
            let log = follower.log
            var remaining = records
            var last: AppendResult?
            var diverged = false
            // Also after a failed append: the batches before it are written and need their flush.
            defer { if let last { log.whenFlushPolicySatisfied(last) { _ in } } }
            while remaining.readableBytes >= RecordBatchLayout.headerLength {
                let batch: RecordBatch
                do {
                    batch = try RecordBatch(validating: remaining)
                } catch {
                    break  // a partial batch at the end of the response
                }
                remaining.moveReaderIndex(forwardBy: batch.sizeInBytes)
                if batch.nextOffset <= log.logEndOffset { continue }
                // Past the log end is a gap the leader's cleaner left (a compacted log keeps its
                // offsets); before it, a batch this log holds only part of.
                guard batch.baseOffset >= log.logEndOffset else {
                    diverged = true
                    break
                }
                last = try follower.append(batch)
            }
            follower.leaderHighWatermark(leaderHighWatermark)
            try follower.leaderLogStart(leaderLogStart)
            return diverged
        }
        // A moved log start is made durable before the next fetch reports it.
        if partition.log.durableLogStart < partition.log.logStartOffset { try await manager.checkpointLogStarts() }
        if diverged == true {
            partitions.withLock { table in
                if table[partition.id] == Following(epoch: epoch, needsTruncation: false) { table[partition.id]?.needsTruncation = true }
            }
        }
    }


    /// Sends a request to the leader; nil if the link was cut while it waited there (the test seam):
    /// what came back over it is dropped.
    private func exchange<Request: KafkaMessage, Response: KafkaMessage>(
        _ request: Request, version: Int16, expecting: Response.Type, over link: BrokerLink
    ) async throws -> Response? {
        let response = try await link.request(request, version: version, expecting: Response.self)
        return manager.settings.linkOpen(leader.rawValue) ? response : nil
    }

    /// Partition entries grouped under their topics, topics in the order first seen, as requests
    /// carry them.
    static func byTopic<Topic: PartitionedTopic>(_ entries: [(String, Topic.Entry)]) -> [Topic] {
        var order: [String] = []
        var grouped: [String: [Topic.Entry]] = [:]
        for (topic, entry) in entries {
            if grouped[topic] == nil { order.append(topic) }
            grouped[topic, default: []].append(entry)
        }
        return order.map { name in
            var topic = Topic()
            topic.topic = name
            topic.partitions = grouped[name]!
            return topic
        }
    }
}

/// A request's topic entry: a name and its partitions' entries.
protocol PartitionedTopic {
    associatedtype Entry
    init()
    var topic: String { get set }
    var partitions: [Entry] { get set }
}

extension FetchRequest.FetchTopic: PartitionedTopic {}
extension OffsetForLeaderEpochRequest.OffsetForLeaderTopic: PartitionedTopic {}
