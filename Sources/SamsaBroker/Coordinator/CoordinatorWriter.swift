import NIOCore
import SamsaProtocol
import SamsaRecords
import Synchronization

/// A coordinator partition's writes, in the order they were asked for, one round at a time: each
/// round appends what is queued as one batch (or a few, for a large one) with acks=all under the
/// shard's leader epoch, waits for the high watermark to pass it, then applies each write to the
/// shard's memory in log order and answers it. Writes queued meanwhile go in the next round, so
/// commits from many clients share one append and one wait (group commit), and the memory is always
/// what replaying the committed log gives: the state a compaction copies is exact.
///
/// A round that fails after appending (a timeout, the ISR shrinking, storage) leaves records whose
/// fate is unknown: the writes get the error, the writer closes (later writes get NOT_COORDINATOR,
/// clients retry) and `failed` makes the runtime reload the partition once it has stopped.
final class CoordinatorWriter: Sendable {
    /// One record: a key and a value (nil: a tombstone).
    typealias Record = (key: ByteBuffer, value: ByteBuffer?)

    private struct Write: Sendable {
        var records: [Record]
        var bytes: Int
        var apply: @Sendable (Int64) -> Void
        var reply: CheckedContinuation<ErrorCode, Never>
    }

    /// A queued write, or work that runs alone between rounds (a compaction).
    private enum Work: Sendable {
        case write(Write)
        case exclusive(@Sendable () async -> Void, done: CheckedContinuation<Bool, Never>)
    }

    private struct Queue {
        var pending: [Work] = []
        var running = false
        var closed = false
        /// The task running the rounds, while one runs (`close` waits for it).
        var draining: Task<Void, Never>?
    }

    /// The largest batch written (Kafka's `message.max.bytes` default, which `__consumer_offsets` inherits).
    static let maxBatchBytes = 1_048_588
    static let maxBatchRecords = 1000
    /// How long a round waits for the ISR (Kafka's `offsets.commit.timeout.ms`).
    static let commitTimeout = Duration.seconds(5)

    let partition: Partition
    let epoch: LeaderEpoch
    private let minInsyncReplicas: @Sendable () -> Int
    /// Tells the runtime the shard's memory may no longer match the log (it reloads the partition).
    private let failed: @Sendable () -> Void
    private let queue = Mutex(Queue())

    /// `failed` runs after a round whose records may be in the log though unanswered.
    init(partition: Partition, epoch: LeaderEpoch, minInsyncReplicas: @escaping @Sendable () -> Int, failed: @escaping @Sendable () -> Void) {
        self.partition = partition
        self.epoch = epoch
        self.minInsyncReplicas = minInsyncReplicas
        self.failed = failed
    }

    /// The bytes a record takes in a batch at most (framing, key and value).
    static func recordBytes(_ record: Record) -> Int { 24 + record.key.readableBytes + (record.value?.readableBytes ?? 0) }

    /// Appends `records` in the next round; once they are committed runs `apply` with the offset of
    /// the first (in log order with every other write's) and answers `.none`; else the error
    /// (NOT_COORDINATOR: leadership moved; COORDINATOR_NOT_AVAILABLE: too few replicas in sync or
    /// the wait timed out; MESSAGE_SIZE_TOO_LARGE: `records` alone exceed a batch; KAFKA_STORAGE_ERROR).
    func write(_ records: [Record], apply: @escaping @Sendable (Int64) -> Void) async -> ErrorCode {
        guard !records.isEmpty else { return .none }
        let bytes = RecordBatchLayout.headerLength + records.reduce(0) { $0 + Self.recordBytes($1) }
        guard records.count <= Self.maxBatchRecords, bytes <= Self.maxBatchBytes else { return .messageSizeTooLarge }
        return await withCheckedContinuation { continuation in
            if !enqueue(.write(Write(records: records, bytes: bytes, apply: apply, reply: continuation))) {
                continuation.resume(returning: .notCoordinator)
            }
        }
    }

    /// Runs `body` alone, after every write queued before it is answered and before any queued after
    /// it: the shard's memory is then exactly the committed log, and `body` may `append` (a
    /// compaction's copies). False if the writer is closed (`body` did not run).
    func exclusively(_ body: @escaping @Sendable () async -> Void) async -> Bool {
        await withCheckedContinuation { continuation in
            if !enqueue(.exclusive(body, done: continuation)) { continuation.resume(returning: false) }
        }
    }

    /// Queues `work`, starting the drain if none runs; false if closed.
    private func enqueue(_ work: Work) -> Bool {
        let start = queue.withLock { queue -> Bool? in
            guard !queue.closed else { return nil }
            queue.pending.append(work)
            guard !queue.running else { return false }
            queue.running = true
            return true
        }
        guard let start else { return false }
        if start {
            let task = Task { await self.drain() }
            queue.withLock { $0.draining = task }
        }
        return true
    }

    /// Whether the writer refuses work (closed, or failed and waiting for its reload).
    var isClosed: Bool { queue.withLock { $0.closed } }

    /// Answers every queued write NOT_COORDINATOR, refuses new ones, and returns once the round or
    /// exclusive work already running has ended: after it, nothing of this writer reaches the log,
    /// so a replay (the shard loaded again) sees everything it wrote.
    func close() async {
        refuseFurtherWork()
        await queue.withLock { $0.draining }?.value
    }

    /// Closes the writer without waiting (from inside a round) and has the runtime reload the
    /// partition: records whose fate is unknown may be in the log, and no later write may be applied
    /// to memory that lacks them.
    func failAndReload() {
        refuseFurtherWork()
        failed()
    }

    private func refuseFurtherWork() {
        let waiting = queue.withLock { queue in
            queue.closed = true
            defer { queue.pending.removeAll() }
            return queue.pending
        }
        for work in waiting {
            switch work {
            case .write(let write): write.reply.resume(returning: .notCoordinator)
            case .exclusive(_, let done): done.resume(returning: false)
            }
        }
    }

    private func drain() async {
        while let round = nextRound() {
            switch round {
            case .exclusive(let body, let done):
                await body()
                done.resume(returning: true)
            case .writes(let writes):
                switch await append(writes.flatMap(\.records)) {
                case .success(let base):
                    var offset = base
                    for write in writes {
                        write.apply(offset)
                        offset += Int64(write.records.count)
                        write.reply.resume(returning: .none)
                    }
                case .failure(let failure):
                    for write in writes { write.reply.resume(returning: failure.code) }
                    if failure.appended { failAndReload() }
                }
            }
        }
    }

    private enum Round {
        case writes([Write])
        case exclusive(@Sendable () async -> Void, done: CheckedContinuation<Bool, Never>)
    }

    /// The next round: an exclusive work alone, or the writes queued before the next exclusive one,
    /// up to one batch's size (at least one).
    private func nextRound() -> Round? {
        queue.withLock { queue -> Round? in
            guard let first = queue.pending.first, !queue.closed else {
                queue.running = false
                return nil
            }
            if case .exclusive(let body, let done) = first {
                queue.pending.removeFirst()
                return .exclusive(body, done: done)
            }
            var bytes = RecordBatchLayout.headerLength
            var records = 0
            var writes: [Write] = []
            for work in queue.pending {
                guard case .write(let write) = work else { break }
                if !writes.isEmpty && (bytes + write.bytes > Self.maxBatchBytes || records + write.records.count > Self.maxBatchRecords) { break }
                bytes += write.bytes
                records += write.records.count
                writes.append(write)
            }
            queue.pending.removeFirst(writes.count)
            return .writes(writes)
        }
    }

    struct Failure: Error {
        var code: ErrorCode
        /// Whether records may have been appended.
        var appended: Bool
    }

    /// Appends one batch of `records` with acks=all under the shard's epoch: the offset of its first
    /// record once committed. Callers keep a batch within `maxBatchBytes` and `maxBatchRecords`.
    func append(_ records: [Record]) async -> Result<Int64, Failure> {
        var builder = RecordBatchBuilder()
        let now = WallClock.nowMilliseconds
        for record in records { builder.append(timestamp: now, key: record.key, value: record.value) }
        do {
            let produced = try await partition.append(
                try builder.build().buffer, acks: -1, timeout: Self.commitTimeout, minInsyncReplicas: minInsyncReplicas(),
                maxMessageBytes: Self.maxBatchBytes + 1024, transactionalId: nil, requiredEpoch: epoch)
            switch produced.error {
            case .none:
                return .success(produced.baseOffset)
            case .notLeaderOrFollower, .fencedLeaderEpoch:
                // Leadership moved: its role event unloads the shard anyway.
                return .failure(Failure(code: .notCoordinator, appended: false))
            case .notEnoughReplicas:
                return .failure(Failure(code: .coordinatorNotAvailable, appended: false))
            case .notEnoughReplicasAfterAppend, .requestTimedOut:
                return .failure(Failure(code: .coordinatorNotAvailable, appended: true))
            case let code:
                return .failure(Failure(code: code, appended: true))
            }
        } catch {
            return .failure(Failure(code: .notCoordinator, appended: true))
        }
    }
}
