import SamsaProtocol
import SamsaStorage

extension RequestDispatcher {
    /// Moves partitions' replicas (KIP-455) through the controller: each partition's target replica
    /// list starts (or redirects) a reassignment, a null list cancels one (back to the replicas it
    /// started from). Per partition: INVALID_REPLICA_ASSIGNMENT for an empty list, duplicates, or a
    /// broker that is not registered; INVALID_REPLICATION_FACTOR when v1's
    /// `allowReplicationFactorChange` is false and the count changes (KIP-860);
    /// UNKNOWN_TOPIC_OR_PARTITION; NO_REASSIGNMENT_IN_PROGRESS for cancelling none. A refused
    /// partition changes nothing. On a broker that is not the controller: NOT_CONTROLLER, top level.
    func alterPartitionReassignments(_ request: AlterPartitionReassignmentsRequest, version: Int16) async -> AlterPartitionReassignmentsResponse {
        var response = AlterPartitionReassignmentsResponse()
        response.errorMessage = nil
        response.allowReplicationFactorChange = version >= 1 ? request.allowReplicationFactorChange : true
        let requests = request.topics.flatMap { topic in
            topic.partitions.map { (TopicPartition(topic: topic.name, partition: $0.partitionIndex), $0.replicas.map { $0.map { BrokerID($0) } }) }
        }
        let outcomes: [ClusterController.ReassignmentOutcome]
        do throws(CatalogError) {
            outcomes = try await catalog.reassignPartitions(requests, allowReplicationFactorChange: response.allowReplicationFactorChange)
        } catch {
            response.errorCode = error.code.rawValue
            response.errorMessage = error.message
            return response
        }
        response.responses = groupedByTopic(outcomes, topic: \.partition.topic) { name in
            var topic = AlterPartitionReassignmentsResponse.ReassignableTopicResponse()
            topic.name = name
            return topic
        } add: { topic, outcome in
            var partition = AlterPartitionReassignmentsResponse.ReassignablePartitionResponse()
            partition.partitionIndex = outcome.partition.partition
            partition.errorCode = outcome.error?.rawValue ?? 0
            partition.errorMessage = outcome.message
            topic.partitions.append(partition)
        }
        return response
    }
}
