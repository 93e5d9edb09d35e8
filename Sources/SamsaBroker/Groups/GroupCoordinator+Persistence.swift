import NIOCore
import SamsaProtocol
import SamsaWaiting

/// A coordinator's groups as records of their coordinator partition: written through `store` where
/// Kafka's `storeGroup` writes them, installed by `load` when this coordinator takes the partition
/// over (Kafka's `onGroupLoaded`).
extension GroupCoordinator {
    /// Installs groups replayed from the coordinator partition: one with members is Stable at its
    /// generation, with its leader, protocol and each member's assignment, and each member's session
    /// starts now (a member that does not heartbeat to this coordinator in time is removed, as after
    /// any missed session); one without members is Empty, kept only while it has committed offsets
    /// (load them first). Its members then heartbeat, commit and sync here with no rebalance.
    func load(_ snapshots: [GroupSnapshot]) {
        for snapshot in snapshots {
            if let replaced = groups[snapshot.groupId] {
                for member in replaced.members.values {
                    member.joinWaiter?.complete(.error(.notCoordinator))
                    member.syncWaiter?.complete(.error(.notCoordinator))
                    deadlines.cancel(.session(group: replaced.id, member: member.id))
                }
                deadlines.cancel(.rebalance(group: replaced.id))
            }
            guard !snapshot.members.isEmpty || hasOffsets(snapshot.groupId) else {
                groups[snapshot.groupId] = nil
                continue
            }
            let group = Group(snapshot)
            groups[group.id] = group
            for id in group.order { startSession(of: group.members[id]!, in: group.id) }
        }
    }

    /// The group's metadata as its record keeps it (nil when this coordinator does not know it).
    func snapshot(of groupId: String) -> GroupSnapshot? { groups[groupId]?.snapshot() }

    /// Writes a group's metadata after its previous write, and returns the store's answer.
    func write(_ snapshot: GroupSnapshot) async -> ErrorCode {
        await enqueueWrite(snapshot).value
    }

    /// Queues a write behind the group's previous one, so its records land in the order the
    /// coordinator made them (an Empty record must not overtake the next generation's).
    func enqueueWrite(_ snapshot: GroupSnapshot) -> Task<ErrorCode, Never> {
        let previous = lastWrite[snapshot.groupId]
        let store = store
        let task = Task<ErrorCode, Never> {
            _ = await previous?.value
            return GroupSnapshot.coordinatorError(await store.store(snapshot))
        }
        lastWrite[snapshot.groupId] = task
        Task {
            _ = await task.value
            if lastWrite[snapshot.groupId] == task { lastWrite[snapshot.groupId] = nil }
        }
        return task
    }
}

extension GroupCoordinator.Group {
    init(_ snapshot: GroupSnapshot) {
        self.init(id: snapshot.groupId)
        generation = snapshot.generation
        protocolType = snapshot.protocolType
        protocolName = snapshot.protocolName
        for entry in snapshot.members {
            var member = GroupCoordinator.Member(
                id: entry.memberId, instanceId: entry.instanceId, clientId: entry.clientId, clientHost: entry.clientHost,
                sessionTimeout: .milliseconds(Int(entry.sessionTimeoutMs)), rebalanceTimeout: .milliseconds(Int(entry.rebalanceTimeoutMs)),
                protocols: protocolName.map { [($0, entry.subscription)] } ?? [])
            member.assignment = entry.assignment
            members[entry.memberId] = member
            order.append(entry.memberId)
            if let instanceId = entry.instanceId { staticMembers[instanceId] = entry.memberId }
        }
        leader = snapshot.leader.flatMap { members[$0] == nil ? nil : $0 } ?? order.first
        state = members.isEmpty ? .empty : .stable
        stateTimestampMs = snapshot.stateTimestampMs
    }

    /// The group as its record keeps it: each member with its metadata for the chosen protocol.
    func snapshot() -> GroupSnapshot {
        GroupSnapshot(
            groupId: id, generation: generation, protocolType: protocolType, protocolName: protocolName, leader: leader,
            stateTimestampMs: stateTimestampMs,
            members: order.compactMap { id in
                members[id].map { member in
                    GroupSnapshot.Member(
                        memberId: id, instanceId: member.instanceId, clientId: member.clientId, clientHost: member.clientHost,
                        rebalanceTimeoutMs: Int32(clamping: member.rebalanceTimeout.nanoseconds / 1_000_000),
                        sessionTimeoutMs: Int32(clamping: member.sessionTimeout.nanoseconds / 1_000_000),
                        subscription: member.protocols.first { $0.name == protocolName }?.metadata ?? ByteBuffer(), assignment: member.assignment)
                }
            })
    }
}

extension GroupSnapshot {
    /// What a failed write tells the members that waited on it, as Kafka's `storeGroup` maps its
    /// append's errors (a store answers with these already; a raw partition error is mapped here).
    static func coordinatorError(_ code: ErrorCode) -> ErrorCode {
        switch code {
        case .unknownTopicOrPartition, .notEnoughReplicas, .notEnoughReplicasAfterAppend, .requestTimedOut: .coordinatorNotAvailable
        case .notLeaderOrFollower, .kafkaStorageError: .notCoordinator
        case .messageSizeTooLarge, .recordListTooLarge, .invalidFetchSize: .unknown
        default: code
        }
    }
}
