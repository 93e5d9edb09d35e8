import SamsaProtocol

/// Raw group requests for the coordinator tests, through the Kafka protocol only (no broker types):
/// which broker coordinates a group (FindCoordinator, one key at v0-v3, batched at v4+), and
/// OffsetCommit / OffsetFetch / LeaveGroup sent to a chosen broker (JoinGroup, SyncGroup and Heartbeat: GroupTests').
enum GroupWire {
    /// The coordinator each group's FindCoordinator names: (node id, error code) by group.
    static func findCoordinator(_ groups: [String], version: Int16, on connection: TestConnection) async throws -> [String: (node: Int32, error: Int16)] {
        var request = FindCoordinatorRequest()
        if version >= 4 {
            request.coordinatorKeys = groups
        } else {
            request.key = groups[0]
        }
        let response = try await connection.request(request, version: version, expecting: FindCoordinatorResponse.self)
        guard version >= 4 else { return [groups[0]: (response.nodeId, response.errorCode)] }
        var result: [String: (node: Int32, error: Int16)] = [:]
        for coordinator in response.coordinators { result[coordinator.key] = (coordinator.nodeId, coordinator.errorCode) }
        return result
    }

    /// OffsetCommit v8 of `offsets` (partition -> offset) for `group`; the error code by partition.
    static func commit(_ group: String, topic: String, offsets: [Int32: Int64], generation: Int32 = -1, member: String = "", on connection: TestConnection)
        async throws -> [Int32: Int16]
    {
        var request = OffsetCommitRequest()
        request.groupId = group
        request.generationIdOrMemberEpoch = generation
        request.memberId = member
        var wanted = OffsetCommitRequest.OffsetCommitRequestTopic()
        wanted.name = topic
        wanted.partitions = offsets.sorted { $0.key < $1.key }.map { index, offset in
            var partition = OffsetCommitRequest.OffsetCommitRequestPartition()
            partition.partitionIndex = index
            partition.committedOffset = offset
            return partition
        }
        request.topics = [wanted]
        let response = try await connection.request(request, version: 8, expecting: OffsetCommitResponse.self)
        var codes: [Int32: Int16] = [:]
        for partition in response.topics.flatMap(\.partitions) { codes[partition.partitionIndex] = partition.errorCode }
        return codes
    }

    /// OffsetFetch of `group`'s offsets for `partitions` (v1-v7 one group, v8 batched): the first error
    /// (the group's, else a partition's; 0 when none) and the committed offsets by partition.
    static func fetch(_ group: String, topic: String, partitions: [Int32], version: Int16, on connection: TestConnection) async throws
        -> (error: Int16, offsets: [Int32: Int64])
    {
        var request = OffsetFetchRequest()
        if version >= 8 {
            var wanted = OffsetFetchRequest.OffsetFetchRequestTopics()
            wanted.name = topic
            wanted.partitionIndexes = partitions
            var entry = OffsetFetchRequest.OffsetFetchRequestGroup()
            entry.groupId = group
            entry.topics = [wanted]
            request.groups = [entry]
        } else {
            var wanted = OffsetFetchRequest.OffsetFetchRequestTopic()
            wanted.name = topic
            wanted.partitionIndexes = partitions
            request.groupId = group
            request.topics = [wanted]
        }
        let response = try await connection.request(request, version: version, expecting: OffsetFetchResponse.self)
        var offsets: [Int32: Int64] = [:]
        var error: Int16 = 0
        if version >= 8 {
            let answer = response.groups.first
            error = answer?.errorCode ?? ErrorCode.unknown.rawValue
            for partition in answer?.topics.flatMap(\.partitions) ?? [] {
                offsets[partition.partitionIndex] = partition.committedOffset
                if error == 0 { error = partition.errorCode }
            }
        } else {
            error = response.errorCode
            for partition in response.topics.flatMap(\.partitions) {
                offsets[partition.partitionIndex] = partition.committedOffset
                if error == 0 { error = partition.errorCode }
            }
        }
        return (error, offsets)
    }

    /// LeaveGroup v3 of one member: the member's error code (else the request's).
    static func leave(_ group: String, member: String, on connection: TestConnection) async throws -> Int16 {
        var request = LeaveGroupRequest()
        request.groupId = group
        var identity = LeaveGroupRequest.MemberIdentity()
        identity.memberId = member
        request.members = [identity]
        let response = try await connection.request(request, version: 3, expecting: LeaveGroupResponse.self)
        return response.errorCode != 0 ? response.errorCode : (response.members.first?.errorCode ?? 0)
    }

    /// Error codes after which a client finds the coordinator again and retries.
    static let refind = Set([ErrorCode.notCoordinator, .coordinatorNotAvailable, .coordinatorLoadInProgress].map(\.rawValue))
}
