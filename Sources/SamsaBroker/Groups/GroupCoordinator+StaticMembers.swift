import NIOCore
import SamsaProtocol

/// Static membership (KIP-345): a member with a `group.instance.id` that restarts joins with an empty
/// member id and takes its old place under a new member id, as Kafka's
/// `updateStaticMemberAndRebalance` does. The old member id is fenced (its requests with that instance
/// id get FENCED_INSTANCE_ID). A Stable group does not rebalance: the replacement is recorded and the
/// member is answered with the current generation and the OLD leader id, so that even a replaced
/// leader does not take itself for the leader and reassign (a Stable group would not pass its new
/// assignment on); it then syncs and gets its assignment back. The group rebalances when the protocol
/// it would choose changes with the member's new protocols, or when it is between a rebalance's
/// JoinGroup answers and the assignment (the leader may be assigning to the old member id).
/// As in Kafka, a change of the member's metadata alone (its subscription) does not rebalance.
extension GroupCoordinator {
    func replaceStaticMember(
        _ oldId: String, with newId: String, instanceId: String, _ request: JoinGroupRequest, clientId: String, clientHost: String
    ) async -> JoinGroupResponse {
        guard var group = groups[request.groupId], let old = group.members[oldId] else { return .error(.unknownMemberId) }
        let currentLeader = group.leader
        let waiter = Reply<JoinGroupResponse>(keys: [group.id], expired: .error(.notCoordinator)) { _ in nil }
        rename(oldId, to: newId, in: &group)
        var member = Member(request, id: newId, clientId: clientId, clientHost: clientHost)
        member.assignment = old.assignment
        member.joinWaiter = waiter
        group.members[newId] = member
        startSession(of: member, in: group.id)
        logger.info("static member rejoined; replaced its old member id", metadata: [
            "group": "\(group.id)", "instance": "\(instanceId)", "old": "\(oldId)", "member": "\(newId)", "state": "\(group.state.rawValue)",
        ])
        groups[group.id] = group
        switch group.state {
        case .stable where group.protocolName == group.selectedProtocol:
            let written = enqueueWrite(group.snapshot())
            Task { replacementStored(group, old: old, newId: newId, leader: currentLeader, waiter: waiter, await written.value) }
            return await waiter.outcome()
        case .stable, .completingRebalance:
            prepareRebalance(group.id)
        case .preparingRebalance, .empty:
            break
        }
        completeJoinIfReady(group.id)
        return await waiter.outcome()
    }

    /// The replacement is durable: the member is answered with the current generation and the old
    /// leader id. Or it failed: the old member id stands again (Kafka reverts the replacement) and the
    /// member gets the error. Unless the group moved on meanwhile (a rebalance answered it).
    private func replacementStored(_ replaced: Group, old: Member, newId: String, leader: String?, waiter: Reply<JoinGroupResponse>, _ error: ErrorCode) {
        guard var group = groups[replaced.id], group.members[newId]?.joinWaiter === waiter else { return }
        group.members[newId]?.joinWaiter = nil
        if error != .none && group.state == .stable && group.generation == replaced.generation {
            rename(newId, to: old.id, in: &group)
            group.members[old.id]?.protocols = old.protocols
            startSession(of: group.members[old.id]!, in: group.id)
        }
        groups[group.id] = group
        waiter.complete(error == .none ? group.joinResponse(for: newId, leader: leader) : .error(error))
    }

    /// Moves a member to a new member id, fencing the old one: a request of it still waiting gets
    /// FENCED_INSTANCE_ID.
    private func rename(_ oldId: String, to newId: String, in group: inout Group) {
        guard var member = group.members.removeValue(forKey: oldId) else { return }
        member.joinWaiter?.complete(.error(.fencedInstanceId))
        member.syncWaiter?.complete(.error(.fencedInstanceId))
        member.joinWaiter = nil
        member.syncWaiter = nil
        deadlines.cancel(.session(group: group.id, member: oldId))
        member.id = newId
        group.members[newId] = member
        group.order = group.order.map { $0 == oldId ? newId : $0 }
        if group.leader == oldId { group.leader = newId }
        if let instanceId = member.instanceId { group.staticMembers[instanceId] = newId }
    }
}

extension GroupCoordinator.Group {
    /// The protocol a rebalance would choose now: the leader's most preferred that every member supports.
    var selectedProtocol: String? {
        guard let leader = leader.flatMap({ members[$0] }) else { return nil }
        return leader.protocols.map(\.name).first { name in members.values.allSatisfy { $0.protocols.contains { $0.name == name } } }
    }
}
