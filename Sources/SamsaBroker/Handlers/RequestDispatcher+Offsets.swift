import SamsaProtocol

/// OffsetCommit and OffsetFetch over `CommittedOffsetLog`.
extension RequestDispatcher {
    /// Commits offsets. Each partition entry is answered; a partition listed more than once is
    /// written once, its last entry winning (Kafka's broker kept a commit's partitions in a map), so
    /// repeating one partition cannot multiply what a commit writes. Metadata longer than
    /// `offsetMetadataMaxBytes` gets OFFSET_METADATA_TOO_LARGE for its partition; a commit that would
    /// write more than `CommittedOffsetLog.maxBatchBytes` gets INVALID_COMMIT_OFFSET_SIZE for every partition
    /// (as Kafka answers a commit too large for its offsets topic), and nothing is written.
    func offsetCommit(_ request: OffsetCommitRequest) async -> OffsetCommitResponse {
        let check = await groups.commitCheck(groupId: request.groupId, memberId: request.memberId, generation: request.generationIdOrMemberEpoch)
        let response = await writeCommits(request, check: check)
        // Written and published (or refused): a deletion waiting for it may write its tombstones.
        if check == .none { await groups.commitFinished(groupId: request.groupId) }
        return response
    }

    private func writeCommits(_ request: OffsetCommitRequest, check: ErrorCode) async -> OffsetCommitResponse {
        var latest: [CommittedOffsetLog.Key: CommittedOffsetLog.Committed] = [:]
        var keys: [CommittedOffsetLog.Key] = []
        var response = OffsetCommitResponse()
        for topic in request.topics {
            var entry = OffsetCommitResponse.OffsetCommitResponseTopic()
            entry.name = topic.name
            entry.topicId = topic.topicId
            for partition in topic.partitions {
                var result = OffsetCommitResponse.OffsetCommitResponsePartition()
                result.partitionIndex = partition.partitionIndex
                if request.groupId.isEmpty {
                    result.errorCode = ErrorCode.invalidGroupId.rawValue
                } else if check != .none {
                    result.errorCode = check.rawValue
                } else if partition.committedMetadata?.utf8.count ?? 0 > configuration.offsetMetadataMaxBytes {
                    result.errorCode = ErrorCode.offsetMetadataTooLarge.rawValue
                } else if topics.log(topic.name, partition.partitionIndex) == nil {
                    result.errorCode = ErrorCode.unknownTopicOrPartition.rawValue
                } else {
                    let key = CommittedOffsetLog.Key(group: request.groupId, topic: topic.name, partition: partition.partitionIndex)
                    if latest.updateValue(
                        CommittedOffsetLog.Committed(offset: partition.committedOffset, leaderEpoch: partition.committedLeaderEpoch, metadata: partition.committedMetadata),
                        forKey: key) == nil
                    {
                        keys.append(key)
                    }
                }
                entry.partitions.append(result)
            }
            response.topics.append(entry)
        }
        let commits = keys.map { ($0, latest[$0]!) }
        guard !commits.isEmpty else { return response }
        guard CommittedOffsetLog.estimatedBytes(commits) <= CommittedOffsetLog.maxBatchBytes else {
            configuration.logger.debug(
                "refused an offset commit: too many partitions", metadata: ["group": "\(request.groupId.prefix(256))", "partitions": "\(commits.count)"])
            return response.failingCommitted(with: .invalidCommitOffsetSize)
        }
        do {
            let store = offsets
            let written = try await onIOThread { try store.write(commits.map { ($0.0, $0.1) }) }
            try await store.publish(written)
            // Compacting here (rarely: once the log doubled) keeps the work inside a request the
            // broker waits for at stop; the commits above are durable whatever it does.
            if store.compactionDue {
                do {
                    _ = try await onIOThread { try store.compact() }
                } catch {
                    configuration.logger.warning("compacting the committed offsets failed", metadata: ["directory": "\(CommittedOffsetLog.directoryName)", "error": "\(error)"])
                }
            }
        } catch {
            configuration.logger.error("committing offsets failed", metadata: ["group": "\(request.groupId.prefix(256))", "error": "\(error)"])
            return response.failingCommitted(with: .kafkaStorageError)
        }
        return response
    }

    func offsetFetch(_ request: OffsetFetchRequest, version: Int16) -> OffsetFetchResponse {
        var response = OffsetFetchResponse()
        if version >= 8 {
            response.groups = request.groups.map { group in
                var entry = OffsetFetchResponse.OffsetFetchResponseGroup()
                entry.groupId = group.groupId
                entry.topics = committedTopics(group: group.groupId, requested: group.topics?.map { ($0.name, $0.partitionIndexes) })
                return entry
            }
        } else {
            response.topics = committedTopics(group: request.groupId, requested: request.topics?.map { ($0.name, $0.partitionIndexes) })
        }
        return response
    }

    /// `committed` in either layout of OffsetFetch's response topics (v8 moved them under groups).
    private func committedTopics<Topic: CommittedTopic>(group: String, requested: [(String, [Int32])]?) -> [Topic] {
        committed(group: group, requested: requested).map { name, partitions in
            var topic = Topic()
            topic.name = name
            topic.partitions = partitions.map { index, value in
                var partition = Topic.Partition()
                partition.partitionIndex = index
                partition.committedOffset = value?.offset ?? -1
                partition.committedLeaderEpoch = value?.leaderEpoch ?? -1
                partition.metadata = value?.metadata ?? ""
                return partition
            }
            return topic
        }
    }

    /// The requested partitions' commits (nil where none), or every commit of the group when the
    /// request names no topics.
    private func committed(group: String, requested: [(String, [Int32])]?) -> [(String, [(Int32, CommittedOffsetLog.Committed?)])] {
        if let requested {
            return requested.map { name, partitions in
                (name, partitions.map { ($0, offsets.committed(CommittedOffsetLog.Key(group: group, topic: name, partition: $0))) })
            }
        }
        let all = offsets.committed(group: group)
        let byTopic = Dictionary(grouping: all, by: \.key.topic)
        return byTopic.keys.sorted().map { name in
            (name, byTopic[name]!.sorted { $0.key.partition < $1.key.partition }.map { ($0.key.partition, $0.value) })
        }
    }
}

extension OffsetCommitResponse {
    /// The response with `code` for every partition that was to be committed (those without an error).
    func failingCommitted(with code: ErrorCode) -> OffsetCommitResponse {
        var response = self
        for topic in response.topics.indices {
            for partition in response.topics[topic].partitions.indices where response.topics[topic].partitions[partition].errorCode == 0 {
                response.topics[topic].partitions[partition].errorCode = code.rawValue
            }
        }
        return response
    }
}

/// An OffsetFetch response topic, in either of the two layouts the schema has.
protocol CommittedTopic {
    associatedtype Partition: CommittedPartition
    init()
    var name: String { get set }
    var partitions: [Partition] { get set }
}

/// An OffsetFetch response partition, in either layout.
protocol CommittedPartition {
    init()
    var partitionIndex: Int32 { get set }
    var committedOffset: Int64 { get set }
    var committedLeaderEpoch: Int32 { get set }
    var metadata: String? { get set }
}

extension OffsetFetchResponse.OffsetFetchResponseTopic: CommittedTopic {}
extension OffsetFetchResponse.OffsetFetchResponseTopics: CommittedTopic {}
extension OffsetFetchResponse.OffsetFetchResponsePartition: CommittedPartition {}
extension OffsetFetchResponse.OffsetFetchResponsePartitions: CommittedPartition {}
