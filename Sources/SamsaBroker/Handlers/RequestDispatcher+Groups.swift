import NIOCore
import SamsaProtocol

/// FindCoordinator, JoinGroup, SyncGroup, Heartbeat, LeaveGroup, ListGroups and DescribeGroups: this
/// broker coordinates every group (`GroupCoordinator`).
extension RequestDispatcher {
    /// This broker coordinates every group; in a cluster, the controller does (group state and
    /// committed offsets are not replicated: one broker keeps them, so every member must meet there).
    func findCoordinator(_ request: FindCoordinatorRequest, version: Int16) async -> FindCoordinatorResponse {
        var advertised = (host: advertised.host, port: advertised.port)
        var brokerId = configuration.brokerId
        if let controller = await catalog.controller(), let registration = try? await catalog.liveBrokers()[controller] {
            brokerId = controller.rawValue
            advertised = (registration.host, registration.port)
        }
        var response = FindCoordinatorResponse()
        if version >= 4 {
            response.coordinators = request.coordinatorKeys.map { key in
                var coordinator = FindCoordinatorResponse.Coordinator()
                coordinator.key = key
                coordinator.nodeId = brokerId
                coordinator.host = advertised.host
                coordinator.port = advertised.port
                coordinator.errorMessage = nil
                return coordinator
            }
        } else {
            response.nodeId = brokerId
            response.host = advertised.host
            response.port = advertised.port
            response.errorMessage = nil
        }
        return response
    }

    func joinGroup(_ request: JoinGroupRequest, version: Int16, clientId: String, clientHost: String) async -> JoinGroupResponse {
        await groups.join(request, version: version, clientId: clientId, clientHost: clientHost)
    }

    func syncGroup(_ request: SyncGroupRequest) async -> SyncGroupResponse {
        await groups.sync(request)
    }

    func heartbeat(_ request: HeartbeatRequest) async -> HeartbeatResponse {
        var response = HeartbeatResponse()
        response.errorCode = await groups.heartbeat(
            groupId: request.groupId, memberId: request.memberId, instanceId: request.groupInstanceId, generation: request.generationId).rawValue
        return response
    }

    func leaveGroup(_ request: LeaveGroupRequest, version: Int16) async -> LeaveGroupResponse {
        var response = LeaveGroupResponse()
        if version >= 3 {
            let codes = await groups.leave(groupId: request.groupId, members: request.members.map { ($0.memberId, $0.groupInstanceId) })
            response.members = zip(request.members, codes).map { identity, code in
                var member = LeaveGroupResponse.MemberResponse()
                member.memberId = identity.memberId
                member.groupInstanceId = identity.groupInstanceId
                member.errorCode = code.rawValue
                return member
            }
        } else {
            response.errorCode = (await groups.leave(groupId: request.groupId, members: [(request.memberId, nil)]).first ?? .none).rawValue
        }
        return response
    }

    /// The coordinator's groups and, as Empty, those known only by their committed offsets (after a
    /// restart, or simple consumers'), as Kafka lists the groups it loaded from its offsets topic.
    func listGroups(_ request: ListGroupsRequest) async -> ListGroupsResponse {
        var response = ListGroupsResponse()
        var listed = await groups.list()
        let known = Set(listed.map(\.groupId))
        listed += offsets.groupIds().filter { !known.contains($0) }.sorted().map { ($0, "", GroupCoordinator.State.empty.rawValue) }
        response.groups = listed.filter { request.statesFilter.isEmpty || request.statesFilter.contains($0.state) }.map { group in
            var listed = ListGroupsResponse.ListedGroup()
            listed.groupId = group.groupId
            listed.protocolType = group.protocolType
            listed.groupState = group.state
            listed.groupType = "classic"
            return listed
        }
        return response
    }

    func describeGroups(_ request: DescribeGroupsRequest) async -> DescribeGroupsResponse {
        var response = DescribeGroupsResponse()
        for groupId in request.groups {
            var described = DescribeGroupsResponse.DescribedGroup()
            described.groupId = groupId
            if let group = await groups.describe(groupId) {
                described.groupState = group.state
                described.protocolType = group.protocolType
                described.protocolData = group.protocolName
                described.members = group.members.map { member in
                    var entry = DescribeGroupsResponse.DescribedGroupMember()
                    entry.memberId = member.id
                    entry.groupInstanceId = member.instanceId
                    entry.clientId = member.clientId
                    entry.clientHost = member.clientHost
                    entry.memberMetadata = member.metadata
                    entry.memberAssignment = member.assignment
                    return entry
                }
            } else if offsets.hasCommits(group: groupId) {
                described.groupState = GroupCoordinator.State.empty.rawValue
                described.protocolType = ""
                described.protocolData = ""
            } else {
                // Kafka describes an unknown group as a dead one, without an error.
                described.groupState = "Dead"
            }
            response.groups.append(described)
        }
        return response
    }
}
