import SamsaProtocol

/// OffsetDelete (v0, KIP-496), as Kafka's `GroupCoordinator.handleDeleteOffsets`.
extension RequestDispatcher {
    /// Deletes a group's committed offsets of the partitions named, durably. A group error (then no
    /// topics): GROUP_ID_NOT_FOUND for a group with neither members nor commits, NON_EMPTY_GROUP for
    /// one with members that is not a consumer-protocol group. Per partition: UNKNOWN_TOPIC_OR_PARTITION
    /// for a partition that does not exist, GROUP_SUBSCRIBED_TO_TOPIC while a member subscribes to its
    /// topic, KAFKA_STORAGE_ERROR if the tombstones could not be written. A partition named twice is
    /// answered once (Kafka keeps them in a map); work is linear in the partitions named.
    func offsetDelete(_ request: OffsetDeleteRequest) async -> OffsetDeleteResponse {
        var response = OffsetDeleteResponse()
        let deletion = await groups.offsetDeletion(request.groupId)
        if case .refused(let code) = deletion {
            response.errorCode = code.rawValue
            return response
        }
        // Commits checked before now land first: what is deleted is what they left.
        await groups.commitsPublished([request.groupId])
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
        var tombstones: [(CommittedOffsetLog.Key, CommittedOffsetLog.Committed?)] = []
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
                let key = CommittedOffsetLog.Key(group: request.groupId, topic: name, partition: index)
                if offsets.committed(key) != nil { tombstones.append((key, nil)) }
                return .none
            }
        }
        if !tombstones.isEmpty {
            do {
                let store = offsets
                let written = try await onIOThread { [tombstones] in try store.write(tombstones) }
                try await store.publish(written)
            } catch {
                configuration.logger.error("deleting offsets failed", metadata: ["group": "\(request.groupId.prefix(256))", "error": "\(error)"])
                for name in order { codes[name] = codes[name]!.map { $0 == .none ? .kafkaStorageError : $0 } }
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
