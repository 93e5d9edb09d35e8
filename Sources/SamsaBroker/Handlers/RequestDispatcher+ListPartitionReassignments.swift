import SamsaProtocol
import SamsaStorage

extension RequestDispatcher {
    /// The ongoing partition reassignments (KIP-455) as the controller knows them: each partition's
    /// full replica set and its adding and removing replicas. Null topics: every partition being
    /// reassigned; otherwise those named that are (a partition that does not exist or is not being
    /// reassigned is left out, as Kafka does). On a broker that is not the controller: NOT_CONTROLLER.
    func listPartitionReassignments(_ request: ListPartitionReassignmentsRequest) async -> ListPartitionReassignmentsResponse {
        var response = ListPartitionReassignmentsResponse()
        response.errorMessage = nil
        let wanted = request.topics.map { topics in
            topics.flatMap { topic in topic.partitionIndexes.map { TopicPartition(topic: topic.name, partition: $0) } }
        }
        let ongoing: [ClusterController.OngoingReassignment]
        do throws(CatalogError) {
            ongoing = try await catalog.ongoingReassignments(wanted)
        } catch {
            response.errorCode = error.code.rawValue
            response.errorMessage = error.message
            return response
        }
        response.topics = groupedByTopic(ongoing, topic: \.partition.topic) { name in
            var topic = ListPartitionReassignmentsResponse.OngoingTopicReassignment()
            topic.name = name
            return topic
        } add: { topic, reassignment in
            var partition = ListPartitionReassignmentsResponse.OngoingPartitionReassignment()
            partition.partitionIndex = reassignment.partition.partition
            partition.replicas = reassignment.replicas.map(\.rawValue)
            partition.addingReplicas = reassignment.adding.map(\.rawValue)
            partition.removingReplicas = reassignment.removing.map(\.rawValue)
            topic.partitions.append(partition)
        }
        return response
    }
}
