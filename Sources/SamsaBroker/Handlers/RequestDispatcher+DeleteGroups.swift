import SamsaProtocol

/// DeleteGroups (v0-2), as Kafka's `GroupCoordinator.handleDeleteGroups`.
extension RequestDispatcher {
    /// Deletes groups that have no members: their state and, durably, their committed offsets and
    /// metadata (tombstones in their `__consumer_offsets` partition). Each group id is answered once
    /// (Kafka answers the distinct ids): NOT_COORDINATOR (or COORDINATOR_LOAD_IN_PROGRESS) for a group
    /// coordinated elsewhere, GROUP_ID_NOT_FOUND for a group with neither members nor commits,
    /// NON_EMPTY_GROUP for one with members, the write's error if the tombstones could not be written.
    /// The empty group id is a group id here, as in Kafka (simple consumers commit to it).
    ///
    /// Bounded by the frame: one coordinator call and one write per coordinator partition, work
    /// linear in the ids and in the commits deleted.
    func deleteGroups(_ request: DeleteGroupsRequest) async -> DeleteGroupsResponse {
        var seen = Set<String>()
        let ids = request.groupsNames.filter { seen.insert($0).inserted }
        var codes = [String: ErrorCode]()
        var byShard: [ObjectIdentifier: (shard: GroupShard, ids: [String])] = [:]
        for id in ids {
            switch await groups.shard(for: id) {
            case .failure(let code): codes[id] = code
            case .success(let shard): byShard[ObjectIdentifier(shard), default: (shard, [])].ids.append(id)
            }
        }
        for (shard, shardIds) in byShard.values {
            let begun = await shard.coordinator.beginDeleting(shardIds)
            let deletable = zip(shardIds, begun).filter { $0.1 == .none }.map(\.0)
            for (id, code) in zip(shardIds, begun) { codes[id] = code }
            guard !deletable.isEmpty else { continue }
            // Commits checked before the deletion began land first: the tombstones come after them.
            await shard.coordinator.commitsPublished(deletable)
            let written = await shard.delete(groups: deletable)
            if written != .none {
                configuration.logger.error("deleting groups' offsets failed", metadata: ["groups": "\(deletable.count)", "error": "\(written)"])
                for id in deletable { codes[id] = written }
            }
            await shard.coordinator.finishDeleting(deletable)
        }
        var response = DeleteGroupsResponse()
        response.results = ids.map { id in
            var result = DeleteGroupsResponse.DeletableGroupResult()
            result.groupId = id
            result.errorCode = (codes[id] ?? .none).rawValue
            return result
        }
        return response
    }
}
