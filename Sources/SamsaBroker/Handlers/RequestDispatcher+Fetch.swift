import SamsaWaiting
import Glibc
import NIOCore
import SamsaProtocol
import SamsaRecords
import SamsaStorage

extension RequestDispatcher {
    /// The response frame to a fetch: records in line, or (`zeroCopyFetch`) encoded parts around
    /// file ranges of the segments, which the caller writes in order and then closes.
    func fetchFrame(_ request: FetchRequest, version: Int16, correlationId: Int32) async -> ResponseFrame {
        let (response, slices) = await fetch(request, version: version, zeroCopy: configuration.zeroCopyFetch)
        do throws(SplicedFrameError) {
            let frame = try KafkaFraming.encodeResponse(
                response, version: version, correlationId: correlationId, splicing: slices.map { slice in slice.map { ($0, length: $0.length) } })
            return frame.unspliced.map { .buffer($0) } ?? .spliced(SplicedResponse(frame))
        } catch {
            // Out of the budget's reach (a batch near 2 GiB): answered without records, not trapped.
            for slice in slices { slice?.close() }
            configuration.logger.error("a fetch response is answered without its records", metadata: ["error": "\(error)"])
            return .buffer(KafkaFraming.encodeResponse(response.withoutRecords, version: version, correlationId: correlationId))
        }
    }

    /// Reads whole batches from each partition's fetch offset up to the high watermark (the log end
    /// for a follower), within the request's budget (`FetchBudget`). A partition named
    /// more than once is read once, where it first appears, with its last entry's parameters (as
    /// Kafka's `FetchRequest.fetchData` map does). With `minBytes` not yet available it waits until
    /// appends bring enough (`FetchInterest`, in the fetch purgatory), or `maxWaitMs` passes: no timer loop polls. An error
    /// on any partition answers at once (as Kafka's `fetchMessages`): waiting would not clear it.
    ///
    /// With `zeroCopy` the records of up to `zeroCopyFetchMaxFiles` partitions stay in the files: the
    /// response's records fields are empty and `slices` names, for each partition in encoding order,
    /// the file range to send in their place (nil: encode the field as it is). The caller owns the
    /// slices (closes them once sent).
    func fetch(_ request: FetchRequest, version: Int16, zeroCopy: Bool = false) async -> (response: FetchResponse, slices: [SegmentSlice?]) {
        // Before v4 a fetcher reads only message format v0/v1, which this broker does not convert to.
        if version < 4 { return (FetchResponse.failing(request, .unsupportedForMessageFormat), []) }
        let deadline = ContinuousClock.now + .milliseconds(max(0, Int(request.maxWaitMs)))
        // v13+ names topics by id (KIP-516): resolved to the topics held here.
        let partitions = request.distinctPartitions(version: version) { [topics] id in topics.topic(id: id)?.name }
        // v15+ carries the fetching replica in ReplicaState.
        let replicaId = version >= 15 ? request.replicaState.replicaId : request.replicaId
        if replicaId >= 0 { followerFetched(partitions, replicaId: replicaId) }
        // Followers fetch past the high watermark, bytes that a truncation (this broker demoted, its
        // divergent tail cut) may take from under a range in flight, which would stall its sendfile:
        // they get copies. Consumers read below the high watermark, which is never truncated.
        let zeroCopy = zeroCopy && replicaId < 0
        // Followers read to the log end, consumers to the high watermark.
        let limit: ReadLimit = replicaId < 0 ? .highWatermark : .logEnd
        while true {
            // Where the logs are before the read: what is appended after counts toward the wait.
            let watches = partitions.map { entry in
                // A topic id not held here has no log to watch (and its error answers at once).
                FetchInterest.Watch(
                    entry.id ?? TopicPartition(topic: "", partition: entry.partition.partition), log: entry.id.flatMap { topics.partition($0) },
                    limit: limit)
            }
            let pass = await readFetch(partitions, request: request, limit: limit, zeroCopy: zeroCopy)
            let wanted = pass.budget.bytesToWaitFor(minBytes: request.minBytes)
            if pass.bytes >= wanted || ContinuousClock.now >= deadline || pass.response.hasErrors || Task.isCancelled {
                return (pass.response, pass.slices)
            }
            // Not enough yet: this pass's ranges are not sent.
            for slice in pass.slices { slice?.close() }
            let interest = FetchInterest(watches, needing: wanted - pass.bytes)
            _ = await fetchWaits.wait(on: interest.partitions, until: deadline, expired: false) { interest.satisfied(after: $0) }
        }
    }

    /// One read of the requested partitions.
    private struct FetchPass {
        var response: FetchResponse
        /// The file ranges (zero-copy; one per partition, in order).
        var slices: [SegmentSlice?]
        /// Record bytes in the response, in line or spliced.
        var bytes: Int
        var budget: FetchBudget
    }

    /// One pass over the requested partitions, each given what the budget leaves it.
    private func readFetch(_ partitions: [FetchedPartition], request: FetchRequest, limit: ReadLimit, zeroCopy: Bool) async -> FetchPass {
        var budget = FetchBudget(requestMaxBytes: request.maxBytes, brokerMaxBytes: configuration.fetchMaxBytes)
        var results: [(FetchedPartition, FetchResponse.PartitionData)] = []
        var slices: [SegmentSlice?] = []
        var failures: [String] = []
        var spliced = 0
        for entry in partitions {
            let splice = zeroCopy && spliced < configuration.zeroCopyFetchMaxFiles
            let (result, slice, failure) = await readPartition(entry, budget: &budget, limit: limit, splice: splice)
            results.append((entry, result))
            slices.append(slice)
            if slice != nil { spliced += 1 }
            if let failure { failures.append(failure) }
        }
        if let first = failures.first {
            // One line per response, however many partitions failed.
            configuration.logger.warning("fetch failed in storage", metadata: ["partitions": "\(failures.count)", "first": "\(first)"])
        }
        let bytes = slices.reduce(0) { $0 + ($1?.length ?? 0) } + results.reduce(0) { $0 + ($1.1.records?.readableBytes ?? 0) }
        return FetchPass(response: FetchResponse(grouping: results), slices: slices, bytes: bytes, budget: budget)
    }

    /// One partition's result, its file range (zero-copy) and what went wrong reading it, if anything.
    private func readPartition(
        _ entry: FetchedPartition, budget: inout FetchBudget, limit: ReadLimit, splice: Bool
    ) async -> (FetchResponse.PartitionData, SegmentSlice?, failure: String?) {
        var result = FetchResponse.PartitionData()
        result.partitionIndex = entry.partition.partition
        result.abortedTransactions = nil
        // Empty, never null, on every path (Kafka sends `MemoryRecords.EMPTY`): librdkafka drops a
        // whole response holding a null records field and fetches again at once, forever.
        result.records = ByteBuffer()
        guard let partition = entry.topic.map({ topics.partition($0, entry.partition.partition) }) ?? nil else {
            // By id (v13+), a topic not held here is UNKNOWN_TOPIC_ID, as Kafka answers.
            result.errorCode = (entry.topic == nil ? ErrorCode.unknownTopicId : .unknownTopicOrPartition).rawValue
            result.highWatermark = -1
            return (result, nil, nil)
        }
        let log = partition.log
        // Only the leader serves, at the epoch the fetcher names.
        if let refusal = partition.checkLeader(epoch: entry.partition.currentLeaderEpoch) {
            result.errorCode = refusal.rawValue
            result.highWatermark = -1
            return (result, nil, nil)
        }
        var slice: SegmentSlice?
        var failure: String?
        // Read first, then the positions: the bytes never pass the high watermark reported.
        do {
            switch try await readRecords(log, entry.partition, budget: budget, limit: limit, splice: splice) {
            case .slice(let range):
                slice = range
                budget.spend(range.length)
            case .bytes(let bytes):
                result.records = bytes
                budget.spend(bytes.readableBytes)
            case .none:
                break
            }
        } catch let error as StorageError where error.code == .offsetOutOfRange {
            result.errorCode = ErrorCode.offsetOutOfRange.rawValue
        } catch {
            failure = "\(entry.id.map { "\($0)" } ?? "?"): \(error)"
            result.errorCode = ErrorCode.kafkaStorageError.rawValue
        }
        result.highWatermark = log.highWatermark
        result.lastStableOffset = result.highWatermark
        result.logStartOffset = log.logStartOffset
        return (result, slice, failure)
    }

    /// A partition's records for a fetch.
    private enum Records {
        case slice(SegmentSlice)
        case bytes(ByteBuffer)
        case none
    }

    /// One partition's records within the budget: a file range when `splice` allows and a descriptor
    /// can be duplicated, else a copy. Nothing is read once the budget is spent, but the offset is
    /// still checked (OFFSET_OUT_OF_RANGE comes whatever the budget).
    private func readRecords(
        _ log: PartitionLog, _ partition: FetchRequest.FetchPartition, budget: FetchBudget, limit: ReadLimit, splice: Bool
    ) async throws -> Records {
        let fetchOffset = partition.fetchOffset
        let maxBytes = budget.limit(partitionMaxBytes: partition.partitionMaxBytes)
        let whole = budget.wholeFirstBatch
        if budget.exhausted {
            _ = try log.read(from: fetchOffset, maxBytes: 0, wholeFirstBatch: false, limit: limit)
            return .none
        }
        let offset =
            limit == .highWatermark && log.configuration.cleanupPolicy.compacts
            ? try await onIOThread { try Self.pastEmptyBatches(log, from: fetchOffset, limit: limit) } : fetchOffset
        if splice {
            do {
                // The descriptor is duplicated and the batch headers read here, on the I/O pool.
                let slice = try await onIOThread { try log.readSlice(from: offset, maxBytes: maxBytes, wholeFirstBatch: whole, limit: limit) }
                return slice.map { .slice($0) } ?? .none
            } catch let error as StorageError where error.errno == EMFILE || error.errno == ENFILE {
                // Out of descriptors (the process's load, not this request): copy instead.
                configuration.logger.debug(
                    "fetch copies: no descriptor to send from the file", metadata: ["directory": "\(log.directory)", "error": "\(error)"])
            }
        }
        guard let bytes = try await onIOThread({ try log.read(from: offset, maxBytes: maxBytes, wholeFirstBatch: whole, limit: limit) }) else {
            return .none
        }
        // A records field's length is 32-bit: only a first batch near 2 GiB could pass it (message.max.bytes refuses those).
        guard bytes.readableBytes < Int32.max else {
            throw StorageError(.invalidArgument, path: log.directory, "a batch of \(bytes.readableBytes) bytes at offset \(offset) is too large to send")
        }
        return .bytes(bytes)
    }

    /// Where a consumer's read of a cleaned log starts: past the batches without records (a cleaned
    /// segment keeps its last one, emptied, for its end offset) when records follow them, so a
    /// response carries records rather than only empty batches, which some clients cannot take
    /// (kafka-python 2.0's fetcher fails on a response without records). A response may start past
    /// the fetch offset, as it does after any gap of a compacted log. Checks the fetch offset first
    /// (OFFSET_OUT_OF_RANGE); looks at most 1,000 batches ahead. Blocking: on the I/O pool.
    private static func pastEmptyBatches(_ log: PartitionLog, from offset: Int64, limit: ReadLimit) throws -> Int64 {
        var position = offset
        var lastEmpty: Int64?
        for _ in 0..<1000 {
            guard let bytes = try log.read(from: position, maxBytes: 1, limit: limit), let batch = try? RecordBatch(validating: bytes) else {
                // Only empty batches up to the end: the last is served, so the reader still moves past its offsets.
                return lastEmpty ?? offset
            }
            if batch.recordCount > 0 { return position }
            lastEmpty = position
            position = batch.nextOffset
        }
        return position
    }

    /// A follower's fetch offsets tell the leader how far each follower has got (once per request):
    /// the high watermark may rise and a caught-up follower rejoin the ISR. Its log starts may
    /// satisfy a waiting DeleteRecords.
    fileprivate func followerFetched(_ partitions: [FetchedPartition], replicaId: Int32) {
        let follower = BrokerID(replicaId)
        for entry in partitions {
            guard let id = entry.id, let partition = topics.partition(id), partition.checkLeader(epoch: entry.partition.currentLeaderEpoch) == nil else { continue }
            if partition.followerLogStart(follower, entry.partition.logStartOffset) { recordDeletionWaits.checkAndComplete(id) }
            guard let isr = partition.followerFetched(follower, offset: entry.partition.fetchOffset), let replicas = cluster?.replicas else { continue }
            replicas.proposeIsrSoon(isr, for: partition)
        }
    }
}

/// One partition a fetch reads, as its request named it.
struct FetchedPartition {
    /// Its topic's name: as named (before v13), or the held topic with the named id (nil: none is held).
    var topic: String?
    var topicId: KafkaUUID
    var partition: FetchRequest.FetchPartition
    var id: TopicPartition? { topic.map { TopicPartition(topic: $0, partition: partition.partition) } }

    /// What makes two entries the same partition: the name, or from v13 on the id.
    struct Key: Hashable {
        var topic: String?
        var topicId: KafkaUUID
        var partition: Int32
    }

    var key: Key { Key(topic: topic, topicId: topicId, partition: partition.partition) }
}

extension FetchRequest {
    /// The partitions to read, each once: where it first appears, with its last entry's parameters
    /// (Kafka keys them in a `LinkedHashMap`, whose `put` of a key already there keeps its place and
    /// replaces its value). A request naming one partition 25,000 times reads it once. From v13 on a
    /// topic is named by its id, which `name` resolves (once per topic entry).
    func distinctPartitions(version: Int16, name: (KafkaUUID) -> String?) -> [FetchedPartition] {
        var entries: [FetchedPartition] = []
        var index: [FetchedPartition.Key: Int] = [:]
        for topic in topics {
            let resolved = version >= 13 ? (topic.topicId == .zero ? nil : name(topic.topicId)) : topic.topic
            for partition in topic.partitions {
                let entry = FetchedPartition(topic: resolved, topicId: version >= 13 ? topic.topicId : .zero, partition: partition)
                if let existing = index[entry.key] {
                    entries[existing].partition = partition
                } else {
                    index[entry.key] = entries.count
                    entries.append(entry)
                }
            }
        }
        return entries
    }
}

extension FetchResponse {
    /// The partitions' results in order, consecutive ones of a topic under one topic entry (as
    /// Kafka's `FetchResponse.toMessage` groups them); v13+ answers by id.
    init(grouping results: [(FetchedPartition, PartitionData)]) {
        self.init()
        for (entry, result) in results {
            if let last = responses.last, last.topic == (entry.topic ?? ""), last.topicId == entry.topicId {
                responses[responses.count - 1].partitions.append(result)
            } else {
                var topic = FetchableTopicResponse()
                topic.topic = entry.topic ?? ""
                topic.topicId = entry.topicId
                topic.partitions = [result]
                responses.append(topic)
            }
        }
    }

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
                result.records = ByteBuffer()
                return result
            }
            return entry
        }
        return response
    }

    /// The same response with every partition's records left out (empty).
    var withoutRecords: FetchResponse {
        var copy = self
        for topic in copy.responses.indices {
            for partition in copy.responses[topic].partitions.indices where copy.responses[topic].partitions[partition].records != nil {
                copy.responses[topic].partitions[partition].records = ByteBuffer()
            }
        }
        return copy
    }

    /// A partition has an error.
    var hasErrors: Bool {
        responses.contains { $0.partitions.contains { $0.errorCode != 0 } }
    }
}
