import SamsaProtocol

/// DeleteGroups (v0-2), as Kafka's `GroupCoordinator.handleDeleteGroups`.
extension RequestDispatcher {
    /// Deletes groups that have no members: their state and, durably, their committed offsets (one
    /// tombstone per committed partition, in as few batches as fit). Each group id is answered once
    /// (Kafka answers the distinct ids): GROUP_ID_NOT_FOUND for a group with neither members nor
    /// commits, NON_EMPTY_GROUP for one with members, KAFKA_STORAGE_ERROR if the tombstones could not
    /// be written. The empty group id is a group id here, as in Kafka (simple consumers commit to it).
    ///
    /// Bounded by the frame: one coordinator call and one write for the whole request, work linear in
    /// the ids and in the commits deleted.
    func deleteGroups(_ request: DeleteGroupsRequest) async -> DeleteGroupsResponse {
        var seen = Set<String>()
        let ids = request.groupsNames.filter { seen.insert($0).inserted }
        var codes = await groups.beginDeleting(ids)
        let deletable = ids.indices.filter { codes[$0] == .none }
        if !deletable.isEmpty {
            // Commits checked before the deletion began land first: the tombstones come after them.
            await groups.commitsPublished(deletable.map { ids[$0] })
            let store = offsets
            let tombstones = deletable.flatMap { store.committed(group: ids[$0]).keys.map { ($0, CommittedOffsetLog.Committed?.none) } }
            do {
                let written = try await onIOThread { try store.write(tombstones) }
                try await store.publish(written)
            } catch {
                configuration.logger.error("deleting groups' offsets failed", metadata: ["groups": "\(deletable.count)", "error": "\(error)"])
                for index in deletable { codes[index] = .kafkaStorageError }
            }
            await groups.finishDeleting(deletable.map { ids[$0] })
        }
        var response = DeleteGroupsResponse()
        response.results = zip(ids, codes).map { id, code in
            var result = DeleteGroupsResponse.DeletableGroupResult()
            result.groupId = id
            result.errorCode = code.rawValue
            return result
        }
        return response
    }
}
