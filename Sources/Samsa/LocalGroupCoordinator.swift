import SamsaStorage
import Synchronization

/// One consumer group's membership in this process: members, their subscriptions, the generation
/// and the assignment of partitions to members (round-robin over the sorted partitions of the topics
/// each member subscribes to). A join or leave starts a new generation and wakes every member.
final class LocalGroupCoordinator: Sendable {
    struct Member {
        var topics: [String]
        /// Join order keeps assignments stable and readable: member 0 takes the first partition.
        var order: Int
    }

    private struct State {
        var members: [String: Member] = [:]
        var generation = 0
        var assignment: [String: [TopicPartition]] = [:]
        var nextMember = 0
    }

    let group: String
    /// Bumped on every rebalance.
    let signal = Signal()
    private let state = Mutex(State())

    init(group: String) {
        self.group = group
    }

    /// Adds a member; returns its id.
    func join(topics: [String], partitionsOf: (String) -> Int) -> String {
        let id = state.withLock { state -> String in
            let id = "\(group)-member-\(state.nextMember)"
            state.members[id] = Member(topics: topics, order: state.nextMember)
            state.nextMember += 1
            rebalance(&state, partitionsOf: partitionsOf)
            return id
        }
        signal.notify()
        return id
    }

    func leave(_ member: String, partitionsOf: (String) -> Int) {
        let left = state.withLock { state -> Bool in
            guard state.members.removeValue(forKey: member) != nil else { return false }
            rebalance(&state, partitionsOf: partitionsOf)
            return true
        }
        if left { signal.notify() }
    }

    /// The member's partitions in the current generation.
    func assignment(of member: String) -> (generation: Int, partitions: [TopicPartition]) {
        state.withLock { ($0.generation, $0.assignment[member] ?? []) }
    }

    /// Whether `member` owns every partition in `partitions` in `generation` (a commit from a member
    /// that lost a partition must not overwrite the new owner's). Asked inside the group's commit
    /// order (`OffsetStore.commit`'s `admit`), so an admitted commit is written before any commit of a
    /// new owner; a new owner that read the offsets before it landed redelivers (at least once).
    func owns(_ member: String, generation: Int, of partitions: [TopicPartition]) -> Bool {
        state.withLock { state in
            guard state.generation == generation, let owned = state.assignment[member] else { return false }
            return partitions.allSatisfy(owned.contains)
        }
    }

    private func rebalance(_ state: inout State, partitionsOf: (String) -> Int) {
        state.generation += 1
        let members = state.members.sorted { $0.value.order < $1.value.order }
        var assignment: [String: [TopicPartition]] = [:]
        for (id, _) in members { assignment[id] = [] }
        let topics = Set(members.flatMap(\.value.topics)).sorted()
        for topic in topics {
            let subscribers = members.filter { $0.value.topics.contains(topic) }.map(\.key)
            guard !subscribers.isEmpty else { continue }
            for partition in 0..<partitionsOf(topic) {
                assignment[subscribers[partition % subscribers.count]]!.append(TopicPartition(topic: topic, partition: Int32(partition)))
            }
        }
        state.assignment = assignment
    }
}
