import SamsaProtocol

extension RequestDispatcher {
    /// This broker as the only one, leader of every partition; the asked-for topics (all when the list
    /// is null, or empty in v0), creating unknown ones if automatic creation is on and the client allows it.
    func metadata(_ request: MetadataRequest, version: Int16) async -> MetadataResponse {
        if let cluster { return await clusterMetadata(request, version: version, cluster: cluster) }
        var response = MetadataResponse()
        var broker = MetadataResponse.MetadataResponseBroker()
        broker.nodeId = configuration.brokerId
        broker.host = advertised.host
        broker.port = advertised.port
        response.brokers = [broker]
        response.clusterId = "samsa"
        response.controllerId = configuration.brokerId

        let names: [String]
        if let requested = request.topics, !(version == 0 && requested.isEmpty) {
            names = requested.compactMap(\.name)
        } else {
            names = topics.all.map(\.name)
        }
        for name in names {
            var entry = MetadataResponse.MetadataResponseTopic()
            entry.name = name
            var topic = topics.topic(name)
            if topic == nil, configuration.autoCreateTopics, request.allowAutoTopicCreation || version < 4 {
                topic = try? await topics.create(name, partitions: configuration.defaultPartitions)
                // A concurrent create of the same name is as good as ours.
                topic = topic ?? topics.topic(name)
            }
            guard let topic else {
                entry.errorCode = (TopicTable.validate(name) == nil ? ErrorCode.unknownTopicOrPartition : .invalidTopic).rawValue
                response.topics.append(entry)
                continue
            }
            entry.topicId = topic.id
            entry.partitions = (0..<topic.partitionCount).map { index in
                var partition = MetadataResponse.MetadataResponsePartition()
                partition.partitionIndex = index
                partition.leaderId = configuration.brokerId
                partition.leaderEpoch = 0
                partition.replicaNodes = [configuration.brokerId]
                partition.isrNodes = [configuration.brokerId]
                return partition
            }
            response.topics.append(entry)
        }
        return response
    }
}
