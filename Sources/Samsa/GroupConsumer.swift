public import SamsaStorage
import Synchronization

/// How a group member consumes (Kafka's consumer settings of the same meaning).
public struct ConsumerConfiguration: Sendable, Hashable {
    /// Where a partition with no committed offset starts (`auto.offset.reset`).
    public enum StartPosition: Sendable, Hashable {
        case earliest, latest
    }

    public var startPosition: StartPosition
    /// At most this many records per `poll` (`max.poll.records`).
    public var maxPollRecords: Int
    /// Bytes read from one partition at a time (`max.partition.fetch.bytes`).
    public var maxPartitionFetchBytes: Int
    /// Commit the previous poll's positions at the start of each poll and on close
    /// (`enable.auto.commit`): records are committed only after the app asked for more, so a crash
    /// redelivers what it was processing — at least once.
    public var autoCommit: Bool

    public init(startPosition: StartPosition = .latest, maxPollRecords: Int = 500, maxPartitionFetchBytes: Int = 1 << 20, autoCommit: Bool = true) {
        self.startPosition = startPosition
        self.maxPollRecords = maxPollRecords
        self.maxPartitionFetchBytes = maxPartitionFetchBytes
        self.autoCommit = autoCommit
    }
}

extension Samsa {
    /// Joins `group` as a new member consuming `topics`. The group's partitions are shared among its
    /// members (of this process) and rebalanced when members join or leave; each partition resumes
    /// from the group's committed offset. The first member takes the group's lock and the last to
    /// close releases it: a group another process consumes is refused with `.locked`.
    public func consumer(group: String, topics: [String], configuration: ConsumerConfiguration = ConsumerConfiguration()) throws(SamsaError)
        -> GroupConsumer
    {
        try checkCommits("consume as group '\(group)' (a group commits offsets; open the directory with Samsa.open or Samsa.openForConsuming)")
        try OffsetStore.checkGroup(group)
        guard !topics.isEmpty else { throw SamsaError(.invalidArgument, "a consumer needs at least one topic") }
        for topic in topics { _ = try self.configuration(of: topic) }
        try offsets.open(group)
        let coordinator = coordinator(for: group)
        let member = coordinator.join(topics: topics, partitionsOf: partitionCount)
        return GroupConsumer(samsa: self, coordinator: coordinator, member: member, topics: topics, configuration: configuration)
    }

    /// The group's committed offset for a partition (the next offset it will consume), if any.
    /// Read from the group's file unless this process owns the group, so it follows another
    /// process's commits.
    public func committedOffset(group: String, topic: String, partition: Int) throws(SamsaError) -> Int64? {
        try OffsetStore.checkGroup(group)
        return try offsets.offsets(of: group)[TopicPartition(topic: topic, partition: Int32(partition))]
    }

    /// The groups with committed offsets (whoever committed them: this queue, a process beside it,
    /// or a broker's clients when a broker served the directory), sorted.
    public func groupIds() throws(SamsaError) -> [String] {
        try checkOpen()
        return try offsets.allGroups()
    }

    /// Every committed offset of a group (the next offset it will consume, per partition).
    /// Any group id a broker's clients used is read (only groups this queue consumes name files).
    public func committedOffsets(group: String) throws(SamsaError) -> [TopicPartition: Int64] {
        try checkOpen()
        return try offsets.offsets(of: group)
    }

    /// Commits offsets for a group directly (for apps that track their own positions), under the
    /// group's lock: `.locked` when another process consumes the group.
    public func commit(group: String, offsets committed: [TopicPartition: Int64]) throws(SamsaError) {
        try checkCommits("commit offsets")
        try OffsetStore.checkGroup(group)
        try offsets.commit(committed, group: group)
    }

    func partitionCount(_ topic: String) -> Int { registry.configuration(of: topic)?.partitions ?? 0 }
}

/// A member of a consumer group: `poll` returns records of the partitions assigned to it, waiting
/// (without polling) for new ones; `commit` stores its positions durably. Also an `AsyncSequence`
/// of records (`records`). Leaves the group on `close`.
public final class GroupConsumer: Sendable {
    public let group: String
    public let memberID: String
    public let topics: [String]
    public let configuration: ConsumerConfiguration
    private let samsa: Samsa
    private let coordinator: LocalGroupCoordinator
    /// Where `poll` commits: a commit fsyncs and renames, which must not block the caller's thread.
    private let committer = BlockingQueue(label: "samsa.consumer.commit")

    private struct State {
        var generation = -1
        var assigned: [TopicPartition] = []
        /// The next offset to return, per assigned partition.
        var positions: [TopicPartition: Int64] = [:]
        /// Where the next poll starts reading, so no partition starves.
        var cursor = 0
        var closed = false
    }

    private let state = Mutex(State())

    init(samsa: Samsa, coordinator: LocalGroupCoordinator, member: String, topics: [String], configuration: ConsumerConfiguration) {
        self.samsa = samsa
        self.coordinator = coordinator
        self.group = coordinator.group
        self.memberID = member
        self.topics = topics
        self.configuration = configuration
    }

    /// The partitions this member consumes now.
    public var assignment: [TopicPartition] {
        coordinator.assignment(of: memberID).partitions
    }

    /// Records from the assigned partitions: at most `maxPollRecords`, waiting up to `timeout` for
    /// the first (empty when none came). With auto-commit, first commits what the last poll returned
    /// (off the caller's thread: the commit is an fsync).
    nonisolated(nonsending) public func poll(timeout: Duration = .seconds(1)) async throws -> [ConsumerRecord] {
        let deadline = ContinuousClock.now + timeout
        if configuration.autoCommit { try await committer.run { try self.commit() } }
        while true {
            try Task.checkCancellation()
            if state.withLock({ $0.closed }) { throw SamsaError(.closed, "the consumer is closed") }
            try samsa.checkOpen()
            // Versions before reading: anything appended after the read wakes the wait below.
            let signals = [(coordinator.signal, coordinator.signal.version)] + topics.map { topic in
                let signal = samsa.signal(for: topic)
                return (signal, signal.version)
            }
            try refreshAssignment()
            let (records, moved) = try readAssigned()
            if !records.isEmpty { return records }
            // Past batches compaction emptied: there may be records after them, read on.
            if moved { continue }
            let remaining = ContinuousClock.now.duration(to: deadline)
            if remaining <= .zero { return [] }
            await Signal.wait(forAny: signals, timeout: remaining)
        }
    }

    /// Commits this member's positions (the offsets after the records polled so far) durably. A
    /// member whose partitions moved in a rebalance it has not polled since commits nothing.
    public func commit() throws(SamsaError) {
        // The directory's close released the group: another process may own it now.
        try samsa.checkOpen()
        let (generation, positions) = state.withLock { ($0.generation, $0.positions) }
        guard !positions.isEmpty else { return }
        let partitions = Array(positions.keys)
        try samsa.offsets.commit(positions, group: group) { coordinator.owns(memberID, generation: generation, of: partitions) }
    }

    /// Commits (with auto-commit) and leaves the group; its partitions go to the other members. The
    /// last member of the group to close releases the group's lock (a member never closed holds it
    /// until the directory closes).
    public func close() throws(SamsaError) {
        guard !state.withLock({ state -> Bool in defer { state.closed = true }; return state.closed }) else { return }
        defer {
            coordinator.leave(memberID, partitionsOf: samsa.partitionCount)
            samsa.offsets.close(group)
        }
        if configuration.autoCommit && !samsa.closed { try commit() }
    }

    /// Every record of the assigned partitions, tailing; commits as `poll` does. Ends when the
    /// consumer or Samsa closes; cancellation ends it with `CancellationError`.
    public var records: GroupRecords { GroupRecords(consumer: self) }

    var isFinished: Bool { state.withLock { $0.closed } || samsa.closed }

    /// After a rebalance: positions of newly assigned partitions start at the committed offset (or
    /// the start position); partitions that moved away are dropped. A committed offset outside the
    /// log (past its end after the log lost its tail, or before its start after retention) is reset
    /// by the start position, as Kafka's `auto.offset.reset` does, with a warning.
    private func refreshAssignment() throws(SamsaError) {
        let (generation, partitions) = coordinator.assignment(of: memberID)
        guard generation != state.withLock({ $0.generation }) else { return }
        let committed = try samsa.offsets.offsets(of: group)
        var positions: [TopicPartition: Int64] = [:]
        for partition in partitions {
            let (start, end) = try samsa.retainedOffsets(topic: partition.topic, partition: Int(partition.partition))
            let reset = configuration.startPosition == .earliest ? start : end
            guard let offset = committed[partition] else {
                positions[partition] = reset
                continue
            }
            if offset < start || offset > end {
                samsa.options.logger.warning(
                    "group '\(group)': committed offset \(offset) of \(partition) is outside the log (\(start)..<\(end)); reset to \(reset) (\(configuration.startPosition))",
                    metadata: [
                        "group": "\(group)", "topic": "\(partition.topic)", "partition": "\(partition.partition)", "offset": "\(offset)",
                        "reset": "\(reset)",
                    ])
                positions[partition] = reset
            } else {
                positions[partition] = offset
            }
        }
        state.withLock { state in
            state.generation = generation
            state.assigned = partitions
            state.positions = positions
            state.cursor = 0
        }
    }

    /// The records read, and whether a position moved (it can without records, past what compaction removed).
    private func readAssigned() throws(SamsaError) -> (records: [ConsumerRecord], moved: Bool) {
        var (assigned, positions, cursor) = state.withLock { ($0.assigned, $0.positions, $0.cursor) }
        guard !assigned.isEmpty else { return ([], false) }
        var moved = false
        var records: [ConsumerRecord] = []
        for step in 0..<assigned.count where records.count < configuration.maxPollRecords {
            let partition = assigned[(cursor + step) % assigned.count]
            guard var position = positions[partition] else { continue }
            var (read, next) = try samsa.readForConsumer(
                topic: partition.topic, partition: Int(partition.partition), position: &position, maxBytes: configuration.maxPartitionFetchBytes)
            if read.count > configuration.maxPollRecords - records.count {
                read.removeLast(read.count - (configuration.maxPollRecords - records.count))
                position = read.last.map { $0.offset + 1 } ?? position
            } else {
                // Everything read was taken: past it all, also what compaction removed from its end.
                position = max(position, next)
            }
            if position != positions[partition] { moved = true }
            positions[partition] = position
            records += read
        }
        cursor = (cursor + 1) % assigned.count
        let kept = state.withLock { state -> Bool in
            // A rebalance while reading: the new assignment's positions win.
            guard state.assigned == assigned else { return false }
            state.positions = positions
            state.cursor = cursor
            return true
        }
        return (records, moved && kept)
    }
}

/// A group member's records as an `AsyncSequence` (see `GroupConsumer.records`).
public struct GroupRecords: AsyncSequence, Sendable {
    public typealias Element = ConsumerRecord
    let consumer: GroupConsumer

    public func makeAsyncIterator() -> Iterator { Iterator(consumer: consumer) }

    public struct Iterator: AsyncIteratorProtocol {
        let consumer: GroupConsumer
        var buffered: [ConsumerRecord] = []
        var index = 0

        public mutating func next() async throws -> ConsumerRecord? {
            while true {
                if index < buffered.count {
                    index += 1
                    return buffered[index - 1]
                }
                if consumer.isFinished { return nil }
                do {
                    buffered = try await consumer.poll(timeout: .seconds(3600))
                } catch let error as SamsaError where error.code == .closed {
                    return nil
                }
                index = 0
            }
        }
    }
}
