import SamsaProtocol
import SamsaRecords

/// OffsetCommit and OffsetFetch, at the group's coordinator (`GroupShard`).
extension RequestDispatcher {
    /// Commits offsets. Each partition entry is answered; a partition listed more than once is
    /// written once, its last entry winning (Kafka's broker kept a commit's partitions in a map), so
    /// repeating one partition cannot multiply what a commit writes. Metadata longer than
    /// `offsetMetadataMaxBytes` gets OFFSET_METADATA_TOO_LARGE for its partition; a commit that would
    /// write more than `CoordinatorWriter.maxBatchBytes` gets INVALID_COMMIT_OFFSET_SIZE for every partition
    /// (as Kafka answers a commit too large for its offsets topic), and nothing is written. Every
    /// partition gets NOT_COORDINATOR (or COORDINATOR_LOAD_IN_PROGRESS) for a group coordinated elsewhere.
    func offsetCommit(_ request: OffsetCommitRequest) async -> OffsetCommitResponse {
        let shard: GroupShard
        switch await groups.shard(for: request.groupId) {
        case .success(let found): shard = found
        case .failure(let code): return await writeCommits(request, check: code, to: nil)
        }
        let check = await shard.coordinator.commitCheck(
            groupId: request.groupId, memberId: request.memberId, instanceId: request.groupInstanceId, generation: request.generationIdOrMemberEpoch)
        let response = await writeCommits(request, check: check, to: shard)
        // Written and visible (or refused): a deletion waiting for it may write its tombstones.
        if check == .none { await shard.coordinator.commitFinished(groupId: request.groupId) }
        return response
    }

    private func writeCommits(_ request: OffsetCommitRequest, check: ErrorCode, to shard: GroupShard?) async -> OffsetCommitResponse {
        var latest: [OffsetKey: CommittedOffset] = [:]
        var keys: [OffsetKey] = []
        let now = WallClock.nowMilliseconds
        var response = OffsetCommitResponse()
        // The partitions of each topic named, from the cluster's metadata (this broker need not hold them).
        var existing: [String: Set<Int32>] = [:]
        if check == .none {
            for topic in request.topics where existing[topic.name] == nil {
                existing[topic.name] = Set((try? await catalog.partitions(of: topic.name))??.map(\.index) ?? [])
            }
        }
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
                } else if existing[topic.name]?.contains(partition.partitionIndex) != true {
                    result.errorCode = ErrorCode.unknownTopicOrPartition.rawValue
                } else {
                    let key = OffsetKey(group: request.groupId, topic: topic.name, partition: partition.partitionIndex)
                    if latest.updateValue(
                        CommittedOffset(
                            offset: partition.committedOffset, leaderEpoch: partition.committedLeaderEpoch, metadata: partition.committedMetadata,
                            commitTimestampMs: now),
                        forKey: key) == nil
                    {
                        keys.append(key)
                    }
                }
                entry.partitions.append(result)
            }
            response.topics.append(entry)
        }
        let commits = keys.map { GroupRecord.offset($0, latest[$0]!) }
        guard let shard, !commits.isEmpty else { return response }
        guard RecordBatchLayout.headerLength + commits.reduce(0, { $0 + CoordinatorWriter.recordBytes($1.record) }) <= CoordinatorWriter.maxBatchBytes,
            commits.count <= CoordinatorWriter.maxBatchRecords
        else {
            configuration.logger.debug(
                "refused an offset commit: too many partitions", metadata: ["group": "\(request.groupId.prefix(256))", "partitions": "\(commits.count)"])
            return response.failingCommitted(with: .invalidCommitOffsetSize)
        }
        let written = await shard.writeInBatches(commits)
        guard written == .none else {
            configuration.logger.info("committing offsets failed", metadata: ["group": "\(request.groupId.prefix(256))", "error": "\(written)"])
            return response.failingCommitted(with: written == .messageSizeTooLarge ? .invalidCommitOffsetSize : written)
        }
        return response
    }

    /// A group's committed offsets, from its coordinator: NOT_COORDINATOR (or
    /// COORDINATOR_LOAD_IN_PROGRESS) for a group coordinated elsewhere, as the group's error (v8+),
    /// the response's (v2-v7) or each partition's (v0-v1).
    func offsetFetch(_ request: OffsetFetchRequest, version: Int16) async -> OffsetFetchResponse {
        var response = OffsetFetchResponse()
        if version >= 8 {
            for group in request.groups {
                var entry = OffsetFetchResponse.OffsetFetchResponseGroup()
                entry.groupId = group.groupId
                switch await groups.shard(for: group.groupId) {
                case .success(let shard):
                    entry.topics = committedTopics(group: group.groupId, requested: group.topics?.map { ($0.name, $0.partitionIndexes) }, in: shard.state)
                case .failure(let code):
                    entry.errorCode = code.rawValue
                }
                response.groups.append(entry)
            }
        } else {
            let requested = request.topics?.map { ($0.name, $0.partitionIndexes) }
            switch await groups.shard(for: request.groupId) {
            case .success(let shard):
                response.topics = committedTopics(group: request.groupId, requested: requested, in: shard.state)
            case .failure(let code):
                response.errorCode = code.rawValue
                if version < 2 {
                    response.topics = committedTopics(group: request.groupId, requested: requested, in: GroupShardState())
                    for topic in response.topics.indices {
                        for partition in response.topics[topic].partitions.indices { response.topics[topic].partitions[partition].errorCode = code.rawValue }
                    }
                }
            }
        }
        return response
    }

    /// `committed` in either layout of OffsetFetch's response topics (v8 moved them under groups).
    private func committedTopics<Topic: CommittedTopic>(group: String, requested: [(String, [Int32])]?, in state: GroupShardState) -> [Topic] {
        committed(group: group, requested: requested, in: state).map { name, partitions in
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
    private func committed(group: String, requested: [(String, [Int32])]?, in state: GroupShardState) -> [(String, [(Int32, CommittedOffset?)])] {
        if let requested {
            return requested.map { name, partitions in
                (name, partitions.map { ($0, state.committed(OffsetKey(group: group, topic: name, partition: $0))) })
            }
        }
        let all = state.committed(group: group)
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
    var errorCode: Int16 { get set }
    var partitionIndex: Int32 { get set }
    var committedOffset: Int64 { get set }
    var committedLeaderEpoch: Int32 { get set }
    var metadata: String? { get set }
}

extension OffsetFetchResponse.OffsetFetchResponseTopic: CommittedTopic {}
extension OffsetFetchResponse.OffsetFetchResponseTopics: CommittedTopic {}
extension OffsetFetchResponse.OffsetFetchResponsePartition: CommittedPartition {}
extension OffsetFetchResponse.OffsetFetchResponsePartitions: CommittedPartition {}
