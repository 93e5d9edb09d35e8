import NIOCore
import SamsaProtocol

/// FindCoordinator, JoinGroup, SyncGroup, Heartbeat, LeaveGroup, ListGroups and DescribeGroups: each
/// group is coordinated by the leader of its `__consumer_offsets` partition (`GroupCoordinators`);
/// a request for a group coordinated elsewhere gets NOT_COORDINATOR (the client finds the
/// coordinator again), COORDINATOR_LOAD_IN_PROGRESS while the partition is being replayed.
extension RequestDispatcher {
    /// A group's coordinator: its partition's leader. Transaction keys (until transactions exist)
    /// are answered with this broker's controller, as before.
    func findCoordinator(_ request: FindCoordinatorRequest, version: Int16) async -> FindCoordinatorResponse {
        var response = FindCoordinatorResponse()
        if version >= 4 {
            for key in request.coordinatorKeys {
                var coordinator = FindCoordinatorResponse.Coordinator()
                coordinator.key = key
                switch await self.coordinator(for: key, type: request.keyType) {
                case .success(let found):
                    (coordinator.nodeId, coordinator.host, coordinator.port) = (found.id.rawValue, found.registration.host, found.registration.port)
                case .failure(let code):
                    (coordinator.nodeId, coordinator.host, coordinator.port, coordinator.errorCode) = (-1, "", -1, code.rawValue)
                }
                coordinator.errorMessage = nil
                response.coordinators.append(coordinator)
            }
        } else {
            switch await coordinator(for: request.key, type: request.keyType) {
            case .success(let found):
                (response.nodeId, response.host, response.port) = (found.id.rawValue, found.registration.host, found.registration.port)
            case .failure(let code):
                (response.nodeId, response.host, response.port, response.errorCode) = (-1, "", -1, code.rawValue)
            }
            response.errorMessage = nil
        }
        return response
    }

    private func coordinator(for key: String, type: Int8) async -> Result<(id: BrokerID, registration: BrokerRegistration), ErrorCode> {
        guard type == 0 else {
            guard type == 1 else { return .failure(.invalidRequest) }
            let own = (BrokerID(configuration.brokerId), BrokerRegistration(host: advertised.host, port: advertised.port))
            guard let controller = await catalog.controller(), let registration = try? await catalog.liveBrokers()[controller] else { return .success(own) }
            return .success((controller, registration))
        }
        return await groups.coordinator(of: key)
    }

    func joinGroup(_ request: JoinGroupRequest, version: Int16, clientId: String, clientHost: String) async -> JoinGroupResponse {
        switch await groups.shard(for: request.groupId) {
        case .success(let shard): return await shard.coordinator.join(request, version: version, clientId: clientId, clientHost: clientHost)
        case .failure(let code):
            var response = JoinGroupResponse.error(code)
            response.memberId = request.memberId
            return response
        }
    }

    func syncGroup(_ request: SyncGroupRequest) async -> SyncGroupResponse {
        switch await groups.shard(for: request.groupId) {
        case .success(let shard): return await shard.coordinator.sync(request)
        case .failure(let code): return .error(code)
        }
    }

    func heartbeat(_ request: HeartbeatRequest) async -> HeartbeatResponse {
        var response = HeartbeatResponse()
        switch await groups.shard(for: request.groupId) {
        case .success(let shard):
            response.errorCode = await shard.coordinator.heartbeat(
                groupId: request.groupId, memberId: request.memberId, instanceId: request.groupInstanceId, generation: request.generationId).rawValue
        case .failure(let code):
            response.errorCode = code.rawValue
        }
        return response
    }

    func leaveGroup(_ request: LeaveGroupRequest, version: Int16) async -> LeaveGroupResponse {
        var response = LeaveGroupResponse()
        let coordinator: GroupCoordinator
        switch await groups.shard(for: request.groupId) {
        case .success(let shard): coordinator = shard.coordinator
        case .failure(let code):
            response.errorCode = code.rawValue
            return response
        }
        if version >= 3 {
            let codes = await coordinator.leave(groupId: request.groupId, members: request.members.map { ($0.memberId, $0.groupInstanceId) })
            response.members = zip(request.members, codes).map { identity, code in
                var member = LeaveGroupResponse.MemberResponse()
                member.memberId = identity.memberId
                member.groupInstanceId = identity.groupInstanceId
                member.errorCode = code.rawValue
                return member
            }
        } else {
            response.errorCode = (await coordinator.leave(groupId: request.groupId, members: [(request.memberId, nil)]).first ?? .none).rawValue
        }
        return response
    }

    /// The groups coordinated here (those of the `__consumer_offsets` partitions this broker
    /// leads; tools ask every broker), and, as Empty, those known only by their committed offsets or
    /// stored metadata, as Kafka lists the groups it loaded from its offsets topic.
    /// COORDINATOR_LOAD_IN_PROGRESS while a partition led here is still being replayed.
    func listGroups(_ request: ListGroupsRequest) async -> ListGroupsResponse {
        var response = ListGroupsResponse()
        var listed: [(groupId: String, protocolType: String, state: String)] = []
        let shards: [GroupShard]
        switch await groups.loadedShards() {
        case .success(let loaded): shards = loaded
        case .failure(let code):
            response.errorCode = code.rawValue
            return response
        }
        for shard in shards {
            let live = await shard.coordinator.list()
            let known = Set(live.map(\.groupId))
            listed += live
            listed += shard.state.groupIds.filter { !known.contains($0) }.map { id in
                (id, shard.state.read { $0.groups[id]?.protocolType } ?? "", GroupCoordinator.State.empty.rawValue)
            }
        }
        listed.sort { $0.groupId < $1.groupId }
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
            let shard: GroupShard
            switch await groups.shard(for: groupId) {
            case .success(let found): shard = found
            case .failure(let code):
                described.errorCode = code.rawValue
                response.groups.append(described)
                continue
            }
            if let group = await shard.coordinator.describe(groupId) {
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
            } else if shard.state.knows(groupId) {
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
