import SamsaProtocol

extension RequestDispatcher {
    /// The cluster as the broker's catalog shows it (coordination, or on a single broker itself): the
    /// live brokers, the controller, and per partition its leader (-1 with LEADER_NOT_AVAILABLE while
    /// it has none alive), leader epoch, replicas, ISR and offline replicas; the asked-for topics (all
    /// when the list is null, or empty in v0), creating unknown ones if automatic creation is on and
    /// the client allows it.
    func metadata(_ request: MetadataRequest, version: Int16) async -> MetadataResponse {
        var response = MetadataResponse()
        response.clusterId = "samsa"
        let live: [BrokerID: BrokerRegistration]
        let names: [String]
        do {
            live = try await catalog.liveBrokers()
            if let requested = request.topics, !(version == 0 && requested.isEmpty) {
                names = requested.compactMap(\.name)
            } else {
                names = try await catalog.topicNames()
            }
        } catch {
            configuration.logger.warning("metadata: reading the cluster's state failed", metadata: ["error": "\(error)"])
            return response
        }
        response.brokers = live.sorted { $0.key < $1.key }.map { id, registration in
            var broker = MetadataResponse.MetadataResponseBroker()
            broker.nodeId = id.rawValue
            broker.host = registration.host
            broker.port = registration.port
            return broker
        }
        response.controllerId = await catalog.controller()?.rawValue ?? -1
        for name in names {
            var entry = MetadataResponse.MetadataResponseTopic()
            entry.name = name
            entry.isInternal = name == GroupPlacement.topic
            var topic = try? await catalog.topic(name)
            if topic == nil, configuration.autoCreateTopics, request.allowAutoTopicCreation || version < 4, TopicTable.validate(name) == nil,
                name != GroupPlacement.topic
            {
                // A concurrent create of the same name is as good as ours.
                _ = try? await catalog.createTopic(
                    name, partitions: configuration.defaultPartitions, replicationFactor: 1, config: TopicConfig(), validateOnly: false)
                topic = try? await catalog.topic(name)
            }
            guard let topic else {
                entry.errorCode = (TopicTable.validate(name) == nil ? ErrorCode.unknownTopicOrPartition : .invalidTopic).rawValue
                response.topics.append(entry)
                continue
            }
            entry.topicId = topic.id
            entry.partitions = topic.partitions.map { view in
                var partition = MetadataResponse.MetadataResponsePartition()
                partition.partitionIndex = view.index
                partition.replicaNodes = view.replicas.wire
                partition.offlineReplicas = view.replicas.filter { live[$0] == nil }.wire
                if let state = view.state {
                    partition.leaderEpoch = state.leaderEpoch.rawValue
                    partition.isrNodes = state.isr.wire
                    partition.leaderId = live[state.leader] == nil ? -1 : state.leader.rawValue
                } else {
                    partition.leaderId = -1
                }
                if partition.leaderId < 0 { partition.errorCode = ErrorCode.leaderNotAvailable.rawValue }
                return partition
            }
            response.topics.append(entry)
        }
        return response
    }
}
