import SamsaProtocol

/// OffsetDelete (v0, KIP-496), as Kafka's `GroupCoordinator.handleDeleteOffsets`.
extension RequestDispatcher {
    /// Deletes a group's committed offsets of the partitions named, durably. A group error (then no
    /// topics): GROUP_ID_NOT_FOUND for a group with neither members nor commits, NON_EMPTY_GROUP for
    /// one with members that is not a consumer-protocol group. Per partition: UNKNOWN_TOPIC_OR_PARTITION
    /// for a partition that does not exist, GROUP_SUBSCRIBED_TO_TOPIC while a member subscribes to its
    /// topic, the write's error if the tombstones could not be written. NOT_COORDINATOR (or
    /// COORDINATOR_LOAD_IN_PROGRESS) for a group coordinated elsewhere. A partition named twice is
    /// answered once (Kafka keeps them in a map); work is linear in the partitions named.
    func offsetDelete(_ request: OffsetDeleteRequest) async -> OffsetDeleteResponse {
        var response = OffsetDeleteResponse()
        let shard: GroupShard
        switch await groups.shard(for: request.groupId) {
        case .success(let found): shard = found
        case .failure(let code):
            response.errorCode = code.rawValue
            return response
        }
        let deletion = await shard.coordinator.offsetDeletion(request.groupId)
        if case .refused(let code) = deletion {
            response.errorCode = code.rawValue
            return response
        }
        // Commits checked before now land first: what is deleted is what they left.
        await shard.coordinator.commitsPublished([request.groupId])
        // Distinct topics in request order, each with its distinct partitions in request order.
        var order: [String] = []
        var partitions: [String: (seen: Set<Int32>, list: [Int32])] = [:]
        for topic in request.topics {
            if partitions[topic.name] == nil { order.append(topic.name) }
            for partition in topic.partitions where partitions[topic.name, default: ([], [])].seen.insert(partition.partitionIndex).inserted {
                partitions[topic.name]!.list.append(partition.partitionIndex)
            }
        }
        var codes: [String: [ErrorCode]] = [:]
        var tombstones: [(OffsetKey, CommittedOffset?)] = []
        for name in order {
            let list = partitions[name]!.list
            let existing = Set((try? await catalog.partitions(of: name))??.map(\.index) ?? [])
            let subscribed: Bool
            switch deletion {
            case .notSubscribed(let topics?): subscribed = topics.contains(name)
            case .notSubscribed(nil): subscribed = true
            case .any, .refused: subscribed = false
            }
            codes[name] = list.map { index in
                if !existing.contains(index) { return .unknownTopicOrPartition }
                if subscribed { return .groupSubscribedToTopic }
                let key = OffsetKey(group: request.groupId, topic: name, partition: index)
                if shard.state.committed(key) != nil { tombstones.append((key, nil)) }
                return .none
            }
        }
        if !tombstones.isEmpty {
            let written = await shard.writeInBatches(tombstones.map { GroupRecord.offset($0.0, $0.1) })
            if written != .none {
                configuration.logger.error("deleting offsets failed", metadata: ["group": "\(request.groupId.prefix(256))", "error": "\(written)"])
                for name in order { codes[name] = codes[name]!.map { $0 == .none ? written : $0 } }
            }
        }
        response.topics = order.map { name in
            var topic = OffsetDeleteResponse.OffsetDeleteResponseTopic()
            topic.name = name
            topic.partitions = zip(partitions[name]!.list, codes[name]!).map { index, code in
                var partition = OffsetDeleteResponse.OffsetDeleteResponsePartition()
                partition.partitionIndex = index
                partition.errorCode = code.rawValue
                return partition
            }
            return topic
        }
        return response
    }
}
