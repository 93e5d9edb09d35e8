import NIOCore
import SamsaProtocol
import SamsaStorage

extension RequestDispatcher {
    /// Reads whole batches from each partition's fetch offset up to the log end (the high watermark of
    /// a one-replica log). With `minBytes` not yet available it waits until an append to one of the
    /// partitions brings enough, or `maxWaitMs` passes: appends wake it, no timer loop polls.
    ///
    /// With `zeroCopy` the records stay in the files: the response's records fields are empty and
    /// `slices` names, for each partition in encoding order, the file range to send in their place
    /// (nil: encode the field as it is). The caller owns the slices (closes them once sent).
    func fetch(_ request: FetchRequest, version: Int16, zeroCopy: Bool = false) async -> (response: FetchResponse, slices: [SegmentSlice?]) {
        // Before v4 a fetcher reads only message format v0/v1, which this broker does not convert to.
        if version < 4 { return (FetchResponse.failing(request, .unsupportedForMessageFormat), []) }
        let deadline = ContinuousClock.now + .milliseconds(max(0, Int(request.maxWaitMs)))
        let partitions = request.topics.flatMap { topic in topic.partitions.map { TopicPartition(topic: topic.topic, partition: $0.partition) } }
        if let cluster, request.replicaId >= 0 { followerFetched(request, cluster: cluster) }
        // Followers fetch past the high watermark, bytes that a truncation (this broker demoted, its
        // divergent tail cut) may take from under a range in flight, which would stall its sendfile:
        // they get copies. Consumers read below the high watermark, which is never truncated.
        let zeroCopy = zeroCopy && request.replicaId < 0
        while true {
            let waiter = notifier.register(partitions)
            defer { notifier.unregister(waiter, from: partitions) }
            let (response, slices, bytes) = await readFetch(request, zeroCopy: zeroCopy)
            if bytes >= Int(request.minBytes) || bytes > 0 && request.minBytes <= 0 || ContinuousClock.now >= deadline
                || response.failedEverywhere || Task.isCancelled
            {
                return (response, zeroCopy ? slices : [])
            }
            // Not enough yet: this pass's ranges are not sent.
            for slice in slices { slice?.close() }
            await AppendNotifier.wait(waiter, until: deadline)
        }
    }

    /// One pass over the requested partitions; returns the response, the file ranges (zero-copy; one
    /// per partition, in order) and the record bytes in it.
    private func readFetch(_ request: FetchRequest, zeroCopy: Bool) async -> (FetchResponse, [SegmentSlice?], Int) {
        var response = FetchResponse()
        var slices: [SegmentSlice?] = []
        var budget = request.maxBytes > 0 ? Int(request.maxBytes) : Int(Int32.max)
        var total = 0
        for topic in request.topics {
            var entry = FetchResponse.FetchableTopicResponse()
            entry.topic = topic.topic
            entry.topicId = topic.topicId
            for partition in topic.partitions {
                var result = FetchResponse.PartitionData()
                result.partitionIndex = partition.partition
                result.abortedTransactions = nil
                guard let log = topics.log(topic.topic, partition.partition) else {
                    result.errorCode = ErrorCode.unknownTopicOrPartition.rawValue
                    result.highWatermark = -1
                    entry.partitions.append(result)
                    slices.append(nil)
                    continue
                }
                // In a cluster only the leader serves, at the epoch the fetcher names; followers read
                // to the log end, consumers to the high watermark.
                var limit = ReadLimit.logEnd
                if let cluster {
                    let replica = cluster.replicas.replica(TopicPartition(topic: topic.topic, partition: partition.partition))
                    if let refusal = Cluster.notLeader(replica, epoch: partition.currentLeaderEpoch) {
                        result.errorCode = refusal.rawValue
                        result.highWatermark = -1
                        entry.partitions.append(result)
                        slices.append(nil)
                        continue
                    }
                    if request.replicaId < 0 { limit = .highWatermark }
                }
                // Read first, then the positions: the bytes never pass the high watermark reported.
                let maxBytes = max(1, min(Int(partition.partitionMaxBytes), budget))
                let offset = partition.fetchOffset
                let visible = limit
                var slice: SegmentSlice?
                do {
                    if zeroCopy {
                        // The descriptor is duplicated and the batch headers read here, on the I/O pool.
                        slice = try await onIOThread { try log.readSlice(from: offset, maxBytes: maxBytes, limit: visible) }
                    } else {
                        result.records = try await onIOThread { try log.read(from: offset, maxBytes: maxBytes, limit: visible) }
                    }
                    let length = slice?.length ?? result.records?.readableBytes ?? 0
                    if slice == nil && result.records == nil { result.records = ByteBuffer() }
                    total += length
                    budget = max(0, budget - length)
                } catch let error as StorageError where error.code == .offsetOutOfRange {
                    result.errorCode = ErrorCode.offsetOutOfRange.rawValue
                } catch {
                    configuration.log("fetch from \(topic.topic)-\(partition.partition) failed: \(error)")
                    result.errorCode = ErrorCode.kafkaStorageError.rawValue
                }
                result.highWatermark = cluster == nil ? log.logEndOffset : log.highWatermark
                result.lastStableOffset = result.highWatermark
                result.logStartOffset = log.logStartOffset
                entry.partitions.append(result)
                slices.append(slice)
            }
            response.responses.append(entry)
        }
        return (response, slices, total)
    }
}

extension RequestDispatcher {
    /// A follower's fetch offsets tell the leader how far each follower has got (once per request):
    /// the high watermark may rise and a caught-up follower rejoin the ISR.
    fileprivate func followerFetched(_ request: FetchRequest, cluster: Cluster) {
        for topic in request.topics {
            for partition in topic.partitions {
                guard let replica = cluster.replicas.replica(TopicPartition(topic: topic.topic, partition: partition.partition)),
                    replica.checkLeader(epoch: partition.currentLeaderEpoch) == nil
                else { continue }
                if let isr = replica.followerFetched(request.replicaId, offset: partition.fetchOffset) {
                    let replicas = cluster.replicas
                    Task { await replicas.proposeIsr(isr, for: replica) }
                }
            }
        }
    }
}

extension FetchResponse {
    /// Every partition of the request failing with one error.
    static func failing(_ request: FetchRequest, _ code: ErrorCode) -> FetchResponse {
        var response = FetchResponse()
        response.responses = request.topics.map { topic in
            var entry = FetchableTopicResponse()
            entry.topic = topic.topic
            entry.partitions = topic.partitions.map { partition in
                var result = PartitionData()
                result.partitionIndex = partition.partition
                result.errorCode = code.rawValue
                result.highWatermark = -1
                result.abortedTransactions = nil
                return result
            }
            return entry
        }
        return response
    }

    /// Every partition has an error: waiting cannot help.
    var failedEverywhere: Bool {
        let partitions = responses.flatMap(\.partitions)
        return !partitions.isEmpty && partitions.allSatisfy { $0.errorCode != 0 }
    }
}
