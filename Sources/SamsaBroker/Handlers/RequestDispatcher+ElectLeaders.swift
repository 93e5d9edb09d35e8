import SamsaProtocol
import SamsaStorage

extension RequestDispatcher {
    /// Elects leaders through the controller (KIP-183, KIP-460): preferred (type 0, and every v0
    /// request) moves leadership to each partition's first replica if it is live and in the ISR
    /// (ELECTION_NOT_NEEDED if it leads, PREFERRED_LEADER_NOT_AVAILABLE if it cannot); unclean (type 1)
    /// elects a leader only for partitions without one and never outside the ISR, because
    /// `unclean.leader.election.enable` is false (ELIGIBLE_LEADERS_NOT_AVAILABLE when no ISR member is
    /// live). Null partitions: all, answering only those that needed an election. A partition listed
    /// twice is answered once. On a broker that is not the controller: NOT_CONTROLLER.
    func electLeaders(_ request: ElectLeadersRequest, version: Int16) async -> ElectLeadersResponse {
        var response = ElectLeadersResponse()
        let type = version == 0 ? 0 : request.electionType
        var requested: [TopicPartition]?
        if let topics = request.topicPartitions {
            var seen: Set<TopicPartition> = []
            requested = topics.flatMap { topic in topic.partitions.map { TopicPartition(topic: topic.topic, partition: $0) } }.filter { seen.insert($0).inserted }
        }
        let results: [ClusterController.Election]
        do throws(CatalogError) {
            guard type == 0 || type == 1 else { throw CatalogError(code: .invalidRequest, message: "unknown election type \(type)") }
            results = try await catalog.electLeaders(requested, unclean: type == 1)
        } catch {
            if version >= 1 { response.errorCode = error.code.rawValue }
            results = (requested ?? []).map { ClusterController.Election(partition: $0, error: error.code, message: error.message) }
        }
        response.replicaElectionResults = groupedByTopic(results, topic: \.partition.topic) { name in
            var topic = ElectLeadersResponse.ReplicaElectionResult()
            topic.topic = name
            return topic
        } add: { topic, result in
            var partition = ElectLeadersResponse.PartitionResult()
            partition.partitionId = result.partition.partition
            partition.errorCode = result.error?.rawValue ?? 0
            partition.errorMessage = result.message
            topic.partitionResult.append(partition)
        }
        return response
    }
}
