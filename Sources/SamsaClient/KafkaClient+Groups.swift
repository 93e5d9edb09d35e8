import NIOCore
public import SamsaProtocol

/// A topic's partition, as group offsets are keyed.
public struct TopicPartitionID: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var topic: String
    public var partition: Int32

    public init(topic: String, partition: Int32) {
        self.topic = topic
        self.partition = partition
    }

    public static func < (a: Self, b: Self) -> Bool { (a.topic, a.partition) < (b.topic, b.partition) }
    public var description: String { "\(topic)-\(partition)" }
}

/// A group as ListGroups lists it.
public struct GroupListing: Sendable, Hashable {
    public var groupId: String
    public var protocolType: String
    /// Kafka's state name (Empty, PreparingRebalance, CompletingRebalance, Stable, Dead).
    public var state: String
}

/// A group as DescribeGroups describes it.
public struct GroupDescription: Sendable, Hashable {
    public struct Member: Sendable, Hashable {
        public var memberId: String
        public var groupInstanceId: String?
        public var clientId: String
        public var clientHost: String
        /// The partitions assigned to it, when the group uses the consumer protocol (nil otherwise,
        /// or when its assignment does not read as one).
        public var assignment: [TopicPartitionID]?
    }

    public var groupId: String
    /// Kafka's state name; "Dead" for a group the coordinator does not know.
    public var state: String
    public var protocolType: String
    /// The protocol the group chose (for consumers, the assignor: range, roundrobin, ...).
    public var protocolName: String
    public var members: [Member]
}

extension KafkaClient {
    // MARK: - Coordinator

    /// The node coordinating `group` (FindCoordinator, key type group).
    public func findCoordinator(group: String) async throws -> Int32 {
        var request = FindCoordinatorRequest()
        request.key = group
        request.keyType = 0
        request.coordinatorKeys = [group]
        let response = try await withAnyConnection { connection in
            try await connection.request(request, api: .findCoordinator, expecting: FindCoordinatorResponse.self, timeout: requestTimeout())
        }
        // v4+ answers per key; older versions at the top level.
        if let coordinator = response.coordinators.first {
            if let failure = (ErrorCode(rawValue: coordinator.errorCode) ?? .unknown).failure(coordinator.errorMessage) { throw failure }
            return coordinator.nodeId
        }
        if let failure = (ErrorCode(rawValue: response.errorCode) ?? .unknown).failure(response.errorMessage) { throw failure }
        return response.nodeId
    }

    /// Runs `body` on the connection to `group`'s coordinator. While the coordinator moves (NOT_COORDINATOR),
    /// loads (COORDINATOR_LOAD_IN_PROGRESS) or has none (COORDINATOR_NOT_AVAILABLE), from FindCoordinator or
    /// thrown by `body`, it finds the coordinator again and retries, backing off from 50 ms to 1 s, for up to
    /// the request timeout, as Kafka's clients do.
    func withCoordinator<T: Sendable>(group: String, _ body: (BrokerConnection) async throws -> T) async throws -> T {
        let deadline = ContinuousClock.now + .nanoseconds(requestTimeout().nanoseconds)
        var backoff = Duration.milliseconds(50)
        while true {
            do {
                return try await body(try await connection(node: try await findCoordinator(group: group)))
            } catch KafkaClientError.broker(let code, let message) where Self.coordinatorMoving.contains(code) {
                guard ContinuousClock.now + backoff < deadline else { throw KafkaClientError.broker(code, message) }
                try await Task.sleep(for: backoff)
                backoff = min(backoff * 2, .seconds(1))
            }
        }
    }

    /// The errors after which a group request is retried at the coordinator found again.
    static let coordinatorMoving: Set<ErrorCode> = [.notCoordinator, .coordinatorLoadInProgress, .coordinatorNotAvailable]

    // MARK: - Listing and describing

    /// Every group of every broker (ListGroups to each, as Kafka's AdminClient does), sorted by id.
    public func listGroups() async throws -> [GroupListing] {
        let metadata = try await refreshMetadata(topics: [])
        var listed: [String: GroupListing] = [:]
        for id in metadata.brokers.keys.sorted() {
            let response = try await connection(node: id).request(
                ListGroupsRequest(), api: .listGroups, expecting: ListGroupsResponse.self, timeout: requestTimeout())
            if let failure = (ErrorCode(rawValue: response.errorCode) ?? .unknown).failure("list groups on node \(id)") { throw failure }
            for group in response.groups {
                listed[group.groupId] = GroupListing(groupId: group.groupId, protocolType: group.protocolType, state: group.groupState)
            }
        }
        return listed.values.sorted { $0.groupId < $1.groupId }
    }

    /// The groups' states and members (DescribeGroups at each group's coordinator); throws a group's error.
    public func describeGroups(_ groupIds: [String]) async throws -> [GroupDescription] {
        var described: [GroupDescription] = []
        for groupId in groupIds {
            var request = DescribeGroupsRequest()
            request.groups = [groupId]
            let response = try await withCoordinator(group: groupId) { connection in
                let response = try await connection.request(request, api: .describeGroups, expecting: DescribeGroupsResponse.self, timeout: requestTimeout())
                let code = response.groups.first { $0.groupId == groupId }?.errorCode ?? 0
                if let failure = (ErrorCode(rawValue: code) ?? .unknown).failure("group \(groupId)"), Self.coordinatorMoving.contains(ErrorCode(rawValue: code) ?? .unknown) {
                    throw failure
                }
                return response
            }
            guard let group = response.groups.first(where: { $0.groupId == groupId }) else {
                throw KafkaClientError.badResponse("describe groups response without \(groupId)")
            }
            if let failure = (ErrorCode(rawValue: group.errorCode) ?? .unknown).failure(group.errorMessage ?? "group \(groupId)") { throw failure }
            described.append(
                GroupDescription(
                    groupId: groupId, state: group.groupState, protocolType: group.protocolType, protocolName: group.protocolData,
                    members: group.members.map { member in
                        GroupDescription.Member(
                            memberId: member.memberId, groupInstanceId: member.groupInstanceId, clientId: member.clientId, clientHost: member.clientHost,
                            assignment: group.protocolType == "consumer" ? Self.consumerAssignment(member.memberAssignment) : nil)
                    }))
        }
        return described
    }

    /// The partitions in a consumer-protocol assignment (an int16 version, then the assignment).
    static func consumerAssignment(_ bytes: ByteBuffer) -> [TopicPartitionID]? {
        var bytes = bytes
        guard bytes.readableBytes > 0 else { return [] }
        guard let version = bytes.readInteger(as: Int16.self), version >= 0,
            let assignment = try? ConsumerProtocolAssignment(from: &bytes, version: min(version, ConsumerProtocolAssignment.validVersions.upperBound))
        else { return nil }
        return assignment.assignedPartitions.flatMap { topic in topic.partitions.map { TopicPartitionID(topic: topic.topic, partition: $0) } }.sorted()
    }

    // MARK: - Offsets

    /// A group's committed offsets (OffsetFetch): of `partitions`, or of every partition it committed
    /// when nil. Partitions without a commit are left out.
    public func committedOffsets(group: String, partitions: [TopicPartitionID]? = nil) async throws -> [TopicPartitionID: Int64] {
        var request = OffsetFetchRequest()
        request.groupId = group
        let byTopic = partitions.map { Dictionary(grouping: $0, by: \.topic).sorted { $0.key < $1.key } }
        request.topics = byTopic?.map { name, partitions in
            var topic = OffsetFetchRequest.OffsetFetchRequestTopic()
            topic.name = name
            topic.partitionIndexes = partitions.map(\.partition)
            return topic
        }
        var entry = OffsetFetchRequest.OffsetFetchRequestGroup()
        entry.groupId = group
        entry.topics = byTopic?.map { name, partitions in
            var topic = OffsetFetchRequest.OffsetFetchRequestTopics()
            topic.name = name
            topic.partitionIndexes = partitions.map(\.partition)
            return topic
        }
        request.groups = [entry]
        let response = try await withCoordinator(group: group) { connection in
            let response = try await connection.request(request, api: .offsetFetch, expecting: OffsetFetchResponse.self, timeout: requestTimeout())
            if let failure = (ErrorCode(rawValue: response.errorCode) ?? .unknown).failure("offset fetch of group \(group)") { throw failure }
            if let failure = (ErrorCode(rawValue: response.groups.first?.errorCode ?? 0) ?? .unknown).failure("offset fetch of group \(group)") { throw failure }
            return response
        }
        var offsets: [TopicPartitionID: Int64] = [:]
        // v8+ answers per group, older versions at the top level.
        if let answered = response.groups.first {
            if let failure = (ErrorCode(rawValue: answered.errorCode) ?? .unknown).failure("offset fetch of group \(group)") { throw failure }
            for topic in answered.topics {
                for partition in topic.partitions where partition.committedOffset >= 0 {
                    if let failure = (ErrorCode(rawValue: partition.errorCode) ?? .unknown).failure("offset fetch \(topic.name)-\(partition.partitionIndex)") { throw failure }
                    offsets[TopicPartitionID(topic: topic.name, partition: partition.partitionIndex)] = partition.committedOffset
                }
            }
        } else {
            for topic in response.topics {
                for partition in topic.partitions where partition.committedOffset >= 0 {
                    if let failure = (ErrorCode(rawValue: partition.errorCode) ?? .unknown).failure("offset fetch \(topic.name)-\(partition.partitionIndex)") { throw failure }
                    offsets[TopicPartitionID(topic: topic.name, partition: partition.partitionIndex)] = partition.committedOffset
                }
            }
        }
        return offsets
    }

    /// Commits offsets for a group as a simple consumer (no member, generation -1), as Kafka's tools
    /// reset a group's offsets; a group with members refuses it (UNKNOWN_MEMBER_ID). Throws the first
    /// partition's error.
    public func commitOffsets(group: String, _ offsets: [TopicPartitionID: Int64]) async throws {
        var request = OffsetCommitRequest()
        request.groupId = group
        request.generationIdOrMemberEpoch = -1
        request.topics = Dictionary(grouping: offsets.keys, by: \.topic).sorted { $0.key < $1.key }.map { name, partitions in
            var topic = OffsetCommitRequest.OffsetCommitRequestTopic()
            topic.name = name
            topic.partitions = partitions.sorted().map { id in
                var partition = OffsetCommitRequest.OffsetCommitRequestPartition()
                partition.partitionIndex = id.partition
                partition.committedOffset = offsets[id]!
                partition.committedLeaderEpoch = -1
                return partition
            }
            return topic
        }
        try await withCoordinator(group: group) { connection in
            let response = try await connection.request(request, api: .offsetCommit, expecting: OffsetCommitResponse.self, timeout: requestTimeout())
            for topic in response.topics {
                for partition in topic.partitions {
                    if let failure = (ErrorCode(rawValue: partition.errorCode) ?? .unknown).failure("commit \(topic.name)-\(partition.partitionIndex) of group \(group)") {
                        throw failure
                    }
                }
            }
        }
    }

    // MARK: - Deleting

    /// Deletes groups (DeleteGroups at each group's coordinator): each group's error code (none when
    /// deleted; NON_EMPTY_GROUP while it has members; GROUP_ID_NOT_FOUND for an unknown group).
    public func deleteGroups(_ groupIds: [String]) async throws -> [String: ErrorCode] {
        var byCoordinator: [Int32: [String]] = [:]
        for groupId in groupIds { byCoordinator[try await findCoordinator(group: groupId), default: []].append(groupId) }
        var codes: [String: ErrorCode] = [:]
        for (node, ids) in byCoordinator.sorted(by: { $0.key < $1.key }) {
            var request = DeleteGroupsRequest()
            request.groupsNames = ids
            let response = try await connection(node: node).request(request, api: .deleteGroups, expecting: DeleteGroupsResponse.self, timeout: requestTimeout())
            for result in response.results { codes[result.groupId] = ErrorCode(rawValue: result.errorCode) ?? .unknown }
        }
        return codes
    }

    /// Deletes a group's committed offsets of `partitions` (OffsetDelete): each partition's error code
    /// (GROUP_SUBSCRIBED_TO_TOPIC while a member consumes its topic); throws the group's error.
    public func deleteOffsets(group: String, partitions: [TopicPartitionID]) async throws -> [TopicPartitionID: ErrorCode] {
        var request = OffsetDeleteRequest()
        request.groupId = group
        request.topics = Dictionary(grouping: partitions, by: \.topic).sorted { $0.key < $1.key }.map { name, partitions in
            var topic = OffsetDeleteRequest.OffsetDeleteRequestTopic()
            topic.name = name
            topic.partitions = partitions.map { id in
                var partition = OffsetDeleteRequest.OffsetDeleteRequestPartition()
                partition.partitionIndex = id.partition
                return partition
            }
            return topic
        }
        let response = try await withCoordinator(group: group) { connection in
            let response = try await connection.request(request, api: .offsetDelete, expecting: OffsetDeleteResponse.self, timeout: requestTimeout())
            if let failure = (ErrorCode(rawValue: response.errorCode) ?? .unknown).failure("group \(group)") { throw failure }
            return response
        }
        var codes: [TopicPartitionID: ErrorCode] = [:]
        for topic in response.topics {
            for partition in topic.partitions {
                codes[TopicPartitionID(topic: topic.name, partition: partition.partitionIndex)] = ErrorCode(rawValue: partition.errorCode) ?? .unknown
            }
        }
        return codes
    }
}
