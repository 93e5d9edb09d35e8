import Logging
import SamsaCoordination
import SamsaProtocol
import SamsaStorage

/// Holding the replicas the topics' assignments give this broker (as a Kafka broker applies
/// metadata): one task per topic follows its assignment node and makes, grows and deletes the
/// topic's logs here to match it; topics held here that coordination no longer has are deleted.
extension ReplicaManager {
    /// Follows `/brokers/topics`: a task for each topic listed (`followTopic`), and the deletion of
    /// logs here of topics it no longer lists (deleted while this broker was down).
    func holdAssignedReplicas() async {
        while !Task.isCancelled {
            do {
                let (names, _, watch) = try await session.children(paths.topics, watch: true)
                await deleteStrayTopics(listed: Set(names))
                for name in names where heldTopics.withLock({ $0.insert(name).inserted }) {
                    tasks.start { await self.followTopic(name) }
                }
                _ = try await watch?.event()
            } catch {
                if sessionEnded { return }
                logger.debug("reading the topics from coordination failed (retrying)", metadata: ["error": "\(error)"])
                await pause(.milliseconds(200))
            }
        }
    }

    /// Deletes the logs here of topics coordination does not list and no task follows: a topic
    /// deleted while this broker was down. A topic without an id (from before ids) is kept: nothing
    /// says it was ever the cluster's.
    private func deleteStrayTopics(listed: Set<String>) async {
        let held = heldTopics.withLock { $0 }
        for topic in topics.all where !listed.contains(topic.name) && !held.contains(topic.name) {
            guard topic.id != .zero else { continue }
            await dropTopic(topic.name, reason: "the topic was deleted while this broker was away")
        }
    }

    /// Makes the logs here of the topic's partitions assigned to this broker and follows each one's
    /// state, again whenever the assignment changes: more partitions, or a reassignment adding this
    /// broker (a new, empty log that catches up from the leader) or removing it (the log is deleted,
    /// as Kafka's StopReplica with deletion). Each held partition takes its replica set from the
    /// assignment. Deletes the logs when the topic is deleted, and when coordination's topic has
    /// another id (re-created under the same name) before making the new one's. If the logs cannot be
    /// made (a full disk, the partition limit), logs it once, leaves the ISR of those partitions and
    /// tries again after the back-off.
    func followTopic(_ name: String) async {
        var followed: Set<Int32> = []
        while !Task.isCancelled {
            do {
                let (data, stat, watch) = try await session.data(paths.topic(name), watch: true)
                var assignment = try ClusterJSON.decode(TopicAssignment.self, data)
                guard let id = assignment.id else {
                    // From before ids: one is given (the first broker to write it wins), then read again.
                    assignment.topicId = KafkaUUID.random().text
                    _ = try? await session.setData(paths.topic(name), data: ClusterJSON.encode(assignment), version: stat.version)
                    continue
                }
                var config = TopicConfig()
                if let node = try? ClusterJSON.decode(TopicConfigNode.self, try await session.data(paths.topicConfig(name)).data) {
                    config.overrides = node.config
                }
                let assigned = (0..<assignment.partitionCount).filter { assignment.replicas($0).contains(brokerId) }
                do {
                    if try await holdLogs(name, id: id, partitions: assignment.partitionCount, assigned: assigned, config: config) { followed = [] }
                    followed.subtract(await releaseUnassigned(name, assigned: Set(assigned)))
                } catch {
                    await logsFailed(name, error, assignment: assignment, assigned: assigned)
                    continue
                }
                if let ended = missingTopics.succeeded(name) {
                    logger.info(
                        "broker \(brokerId) made the logs of topic \(name) after \(ended.failures) failed tries: following its leaders",
                        metadata: metadata(topic: name, partitions: assigned, failure: nil))
                }
                throttled.set(topic: name, (assignment.reassigning.filter { assignment.adding($0).contains(brokerId) }))
                for index in assigned {
                    guard let partition = topics.partition(name, index) else { continue }
                    partition.assign(replicas: assignment.replicas(index))
                    if followed.insert(index).inserted { tasks.start { await self.followState(of: partition) } }
                }
                _ = try await watch?.event()
            } catch let error as CoordinationError where error.code == .noNode {
                await dropTopic(name, reason: "the topic was deleted")
                followed = []
                // Re-created meanwhile with nobody else following it: go on with the new one.
                heldTopics.withLock { _ = $0.remove(name) }
                guard (try? await session.exists(paths.topic(name))) != nil, heldTopics.withLock({ $0.insert(name).inserted }) else { return }
            } catch {
                if sessionEnded || Task.isCancelled { return }
                logger.warning("following the topic's assignment failed (retrying)", metadata: ["topic": "\(name)", "error": "\(error)"])
                await pause(.milliseconds(100))
            }
        }
    }

    /// Makes the topic's logs here to match coordination's topic `id` with `partitions` partitions;
    /// true if they were made afresh (new `Partition`s). Throws unless every assigned partition has one.
    private func holdLogs(_ name: String, id: KafkaUUID, partitions: Int32, assigned: [Int32], config: TopicConfig) async throws -> Bool {
        if let local = topics.topic(name), local.id != .zero, local.id != id {
            await dropTopic(name, reason: "the topic was re-created under its name (id \(local.id.text) is now \(id.text))")
            guard topics.topic(name) == nil else { throw StorageError(.io, path: "\(dataDirectory)/\(name)-0", "an older topic's logs could not be deleted") }
        }
        if topics.topic(name)?.id == .zero { try await topics.adoptId(name, id) }
        var fresh = false
        if let local = topics.topic(name) {
            if local.partitionCount < partitions {
                _ = try await topics.addPartitions(name, to: partitions, holding: Set(assigned))
                logger.info("added partitions", metadata: ["topic": "\(name)", "from": "\(local.partitionCount)", "to": "\(partitions)"])
            }
        } else {
            do {
                _ = try await topics.create(name, partitions: partitions, config: config, id: id, holding: Set(assigned))
                fresh = true
            } catch {
                guard case .alreadyExists = error else { throw error }
            }
        }
        // Assigned here since the logs were made (a reassignment): an empty log, which catches up.
        for index in assigned where topics.log(name, index) == nil {
            try await topics.hold(name, index)
            logger.info("holds a new replica of the partition", metadata: Self.metadata(TopicPartition(topic: name, partition: index)))
        }
        return fresh
    }

    /// Deletes the logs here of the topic's partitions not assigned to this broker (a reassignment
    /// moved them away): they stop fetching and leave their roles first. The partitions released.
    private func releaseUnassigned(_ name: String, assigned: Set<Int32>) async -> Set<Int32> {
        guard let topic = topics.topic(name) else { return [] }
        var released: Set<Int32> = []
        for index in 0..<topic.partitionCount where !assigned.contains(index) && topics.partition(name, index) != nil {
            let id = TopicPartition(topic: name, partition: index)
            stopFetching(id, except: nil)
            _ = offlinePartitions.succeeded(id)
            do {
                guard try await topics.release(id) else { continue }
                try? epochs.remove(id)
                released.insert(index)
                logger.info("deleted the partition's replica here: it was reassigned to other brokers", metadata: Self.metadata(id))
            } catch {
                logger.error("deleting a reassigned partition's replica here failed", metadata: Self.metadata(id, ["error": "\(error)"]))
            }
        }
        return released
    }

    /// The topic's logs could not be made or grown here: logged once per kind of failure, this
    /// broker leaves those partitions' ISR, and the next try waits out the back-off.
    private func logsFailed(_ name: String, _ error: any Error, assignment: TopicAssignment, assigned: [Int32]) async {
        let failure = ReplicaFailure(error)
        if missingTopics.failed(name, failure), let entry = missingTopics.failure(name) {
            logger.error(
                "broker \(brokerId) cannot make the logs of topic \(name): \(failure); its replicas here leave their ISR until they can be made (next try in \(Self.milliseconds(until: entry.retryAt)) ms)",
                metadata: metadata(topic: name, partitions: assigned, failure: failure))
        }
        for index in assigned {
            await withdraw(from: TopicPartition(topic: name, partition: index), replicas: assignment.replicas(index))
        }
        try? await Task.sleep(until: missingTopics.failure(name)?.retryAt ?? .now)
    }

    /// Deletes the topic's logs here (the version this broker holds now): its partitions stop
    /// fetching and leave their roles first.
    func dropTopic(_ name: String, reason: String) async {
        guard let topic = topics.topic(name) else { return }
        for index in 0..<topic.partitionCount {
            let partition = TopicPartition(topic: name, partition: index)
            stopFetching(partition, except: nil)
            _ = offlinePartitions.succeeded(partition)
        }
        _ = missingTopics.succeeded(name)
        do {
            if try await topics.delete(name, id: topic.id) {
                logger.info("deleted the topic's replicas here: \(reason)", metadata: ["topic": "\(name)", "topic_id": "\(topic.id.text)"])
            }
        } catch {
            logger.error("deleting the topic's replicas here failed", metadata: ["topic": "\(name)", "error": "\(error)"])
        }
    }
}
