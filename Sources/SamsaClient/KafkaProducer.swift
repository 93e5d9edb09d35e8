public import NIOCore
public import SamsaRecords
import SamsaProtocol
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Sends records to partition leaders in batches (Kafka's producer): records accumulate per partition
/// until `batchBytes` or `lingerMilliseconds`, and each broker connection carries up to
/// `maxInFlightPerConnection` Produce requests at once; while they are out, batches keep filling and the
/// next request takes every ready batch of that broker (up to `maxRequestBytes`). Retriable errors
/// (stale leader, lost connection) refresh metadata and resend the built batch. Without idempotence a
/// retry may reorder or duplicate batches, as in Kafka.
public final class KafkaProducer: Sendable {
    public let configuration: KafkaProducerConfiguration
    let client: KafkaClient
    private let state = Mutex(State())

    private struct State {
        var open: [TopicPartitionKey: ProducerBatch] = [:]
        var ready: [TopicPartitionKey: [ProducerBatch]] = [:]
        var inFlight: [Int32: Int] = [:]
        var bufferedBytes = 0
        /// Batches created and not yet completed.
        var unfinished = 0
        var spaceWaiters: [CheckedContinuation<Void, Never>] = []
        var idleWaiters: [CheckedContinuation<Void, Never>] = []
        /// Flushes in progress: open batches are sent without lingering.
        var flushing = 0
        var draining = false
        var drainAgain = false
        var lingerTimerArmed = false
        var topics: [String: TopicRoute] = [:]
        /// The previous record's topic and batch: the next record to the same partition skips hashing.
        var lastRoute: TopicRoute?
        var lastBatch: ProducerBatch?
        var closed = false
    }

    /// A topic's partition count (learnt once) and its sticky partition for keyless records. A class so
    /// the hot path can keep the last one and update its sticky partition in place.
    private final class TopicRoute: @unchecked Sendable {
        // @unchecked: only touched under the producer's lock.
        let name: String
        let partitions: Int32
        var sticky: Int32

        init(name: String, partitions: Int32, sticky: Int32) {
            self.name = name
            self.partitions = partitions
            self.sticky = sticky
        }
    }

    /// Called once per completed batch, after its records' callbacks.
    let deliveryReport: DeliveryReportHandler?

    init(client: KafkaClient, configuration: KafkaProducerConfiguration, deliveryReport: DeliveryReportHandler? = nil) {
        self.client = client
        self.configuration = configuration
        self.deliveryReport = deliveryReport
    }

    // MARK: - Sending

    /// Hands a record to the producer; `callback` learns its offset once `acks` is met (or the error),
    /// and the producer's delivery report gets `opaque` with its batch. Waits only while the buffer is
    /// full. Without `partition`, a keyed record goes where Kafka's murmur2 partitioner puts it and
    /// keyless ones stick to one partition per batch.
    public func send(
        topic: String, partition: Int32? = nil, key: ByteBuffer? = nil, value: ByteBuffer?, headers: [RecordHeader] = [],
        timestamp: Int64? = nil, opaque: UInt64 = 0, callback: DeliveryCallback? = nil
    ) async throws {
        let timestamp = timestamp ?? WallClock.nowMilliseconds
        let size = Self.recordSize(key: key, value: value, headers: headers)
        let configuration = configuration
        while true {
            switch try append(
                topic: topic, partition: partition, key: key, value: value, headers: headers, timestamp: timestamp, size: size, opaque: opaque,
                callback: callback)
            {
            case .appended:
                return
            case .needMetadata:
                let partitions = Int32(try await client.topicMetadata(topic).partitions.count)
                state.withLock { state in
                    if state.topics[topic] == nil {
                        state.topics[topic] = TopicRoute(name: topic, partitions: partitions, sticky: Int32.random(in: 0..<partitions))
                    }
                }
            case .full:
                scheduleDrain()
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    let now = state.withLock { state in
                        if state.closed || state.bufferedBytes == 0 || state.bufferedBytes + size <= configuration.bufferBytes { return true }
                        state.spaceWaiters.append(continuation)
                        return false
                    }
                    if now { continuation.resume() }
                }
            }
        }
    }

    /// `send` without waiting and without a suspension point (no async frame per record): false, and
    /// the record not taken, when `send` would wait (the buffer is full or the topic's metadata is not
    /// known yet); then call `send`.
    public func trySend(
        topic: String, partition: Int32? = nil, key: ByteBuffer? = nil, value: ByteBuffer?, headers: [RecordHeader] = [],
        timestamp: Int64? = nil, opaque: UInt64 = 0, callback: DeliveryCallback? = nil
    ) throws -> Bool {
        let outcome = try append(
            topic: topic, partition: partition, key: key, value: value, headers: headers, timestamp: timestamp ?? WallClock.nowMilliseconds,
            size: Self.recordSize(key: key, value: value, headers: headers), opaque: opaque, callback: callback)
        return outcome == .appended
    }

    private static func recordSize(key: ByteBuffer?, value: ByteBuffer?, headers: [RecordHeader]) -> Int {
        var size = 21 + (key?.readableBytes ?? 0) + (value?.readableBytes ?? 0)
        for header in headers { size += header.key.utf8.count + (header.value?.readableBytes ?? 0) + 2 }
        return size
    }

    private enum AppendOutcome { case appended, full, needMetadata }

    /// The hot path: one lock per record; the topic and the open batch of the previous record are
    /// reused without hashing when this record goes to the same partition.
    private func append(
        topic: String, partition: Int32?, key: ByteBuffer?, value: ByteBuffer?, headers: [RecordHeader], timestamp: Int64, size: Int,
        opaque: UInt64, callback: DeliveryCallback?
    ) throws -> AppendOutcome {
        enum Appended { case sealed, opened, joined, notAppended(AppendOutcome) }
        let configuration = configuration
        let reportsDelivery = deliveryReport != nil
        let appended: Appended = try state.withLock { state in
            guard !state.closed else { throw KafkaClientError.producerClosed }
            let route: TopicRoute
            if let last = state.lastRoute, last.name == topic {
                route = last
            } else {
                guard let known = state.topics[topic] else { return .notAppended(.needMetadata) }
                state.lastRoute = known
                route = known
            }
            guard state.bufferedBytes == 0 || state.bufferedBytes + size <= configuration.bufferBytes else { return .notAppended(.full) }
            let sticky = partition == nil && key == nil
            let chosen = partition ?? key.map { key in key.withUnsafeReadableBytes { Murmur2.partition(key: $0, partitions: route.partitions) } } ?? route.sticky
            guard chosen >= 0 && chosen < route.partitions else { throw KafkaClientError.unknownPartition(topic: topic, partition: chosen) }
            var batch: ProducerBatch?
            if let last = state.lastBatch, last.isOpen, last.destination.partition == chosen, last.destination.topic == topic {
                batch = last
            } else {
                batch = state.open[TopicPartitionKey(topic: topic, partition: chosen)]
            }
            var result = Appended.joined
            if let current = batch, current.recordCount > 0, current.size + size > configuration.batchBytes {
                state.ready[current.destination, default: []].append(current)
                state.open[current.destination] = nil
                current.isOpen = false
                batch = nil
                result = .sealed
                // Keyless records move on to the next partition with each batch (Kafka's sticky partitioner).
                if sticky { route.sticky = (chosen + 1) % route.partitions }
            }
            if batch == nil {
                let capacity = max(configuration.batchBytes, size) + 64
                let destination = TopicPartitionKey(topic: topic, partition: chosen)
                let opened = ProducerBatch(
                    destination: destination, compression: configuration.compression, capacity: capacity, now: Self.monotonicNanoseconds(),
                    reportsDelivery: reportsDelivery)
                state.open[destination] = opened
                state.unfinished += 1
                batch = opened
                if case .joined = result { result = .opened }
            }
            batch!.append(timestamp: timestamp, key: key, value: value, headers: headers, reserving: size, opaque: opaque, callback: callback)
            state.lastBatch = batch
            state.bufferedBytes += size
            return result
        }
        switch appended {
        case .sealed: scheduleDrain()
        case .opened: armLingerTimer(after: configuration.lingerMilliseconds)
        case .joined: break
        case .notAppended(let outcome): return outcome
        }
        return .appended
    }

    /// Sends one record and waits for its delivery.
    @discardableResult
    public func sendAndWait(
        topic: String, partition: Int32? = nil, key: ByteBuffer? = nil, value: ByteBuffer?, headers: [RecordHeader] = [], timestamp: Int64? = nil
    ) async throws -> KafkaRecordMetadata {
        let waiter = DeliveryWaiter()
        try await send(topic: topic, partition: partition, key: key, value: value, headers: headers, timestamp: timestamp, callback: waiter.deliver)
        flushSoon()
        return try await waiter.value()
    }

    /// Sends every batch now and returns once every record handed over so far (and any handed over
    /// meanwhile) is delivered or has failed.
    public func flush() async {
        state.withLock { $0.flushing += 1 }
        scheduleDrain()
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let idle = state.withLock { state in
                if state.unfinished == 0 { return true }
                state.idleWaiters.append(continuation)
                return false
            }
            if idle { continuation.resume() }
        }
        state.withLock { $0.flushing -= 1 }
    }

    /// Flushes, then refuses further records.
    public func close() async {
        await flush()
        let waiters = state.withLock { state in
            state.closed = true
            defer { state.spaceWaiters = [] }
            return state.spaceWaiters
        }
        for waiter in waiters { waiter.resume() }
    }

    private func flushSoon() {
        state.withLock { $0.flushing += 1 }
        scheduleDrain()
        state.withLock { $0.flushing -= 1 }
    }

    // MARK: - Draining

    /// One Produce request being assembled or in flight.
    private struct Plan: Sendable {
        var node: Int32
        var batches: [ProducerBatch]
    }

    private func scheduleDrain() {
        let start = state.withLock { state in
            if state.draining {
                state.drainAgain = true
                return false
            }
            state.draining = true
            return true
        }
        if start { Task { await drainLoop() } }
    }

    private func armLingerTimer(after milliseconds: Int64) {
        let arm = state.withLock { state in
            defer { state.lingerTimerArmed = true }
            return !state.lingerTimerArmed
        }
        guard arm else { return }
        client.group.next().scheduleTask(in: .milliseconds(max(0, milliseconds))) { [self] in
            state.withLock { $0.lingerTimerArmed = false }
            scheduleDrain()
        }
    }

    private func drainLoop() async {
        while true {
            let (plans, missingTopics, nextDue) = collect()
            for plan in plans { await dispatch(plan) }
            if let nextDue { armLingerTimer(after: Int64((nextDue &- Self.monotonicNanoseconds()) / 1_000_000) + 1) }
            if !missingTopics.isEmpty {
                _ = try? await client.refreshMetadata(topics: Array(missingTopics))
                try? await client.backoff()
                failBatchesWithoutLeader(missingTopics)
                continue
            }
            let again = state.withLock { state in
                if state.drainAgain {
                    state.drainAgain = false
                    return true
                }
                state.draining = false
                return false
            }
            if !again { return }
        }
    }

    /// Takes what can be sent now: per leader with a free in-flight slot, the ready batches and the open
    /// ones that lingered long enough (or all, when flushing), up to `maxRequestBytes` per request.
    private func collect() -> (plans: [Plan], missingTopics: Set<String>, nextDue: UInt64?) {
        let metadata = client.cachedMetadata
        let configuration = configuration
        let now = Self.monotonicNanoseconds()
        let linger = UInt64(max(0, configuration.lingerMilliseconds)) * 1_000_000
        return state.withLock { state in
            var byNode: [Int32: [TopicPartitionKey]] = [:]
            var missing = Set<String>()
            var nextDue: UInt64?
            for destination in Set(state.ready.keys).union(state.open.keys) {
                guard let leader = metadata.leader(topic: destination.topic, partition: destination.partition) else {
                    missing.insert(destination.topic)
                    continue
                }
                byNode[leader.leader, default: []].append(destination)
            }
            var plans: [Plan] = []
            for (node, destinations) in byNode {
                // A broker answers a connection's requests one at a time (each acks=-1 one after its
                // sync): a small request queued behind another only waits there, and costs the broker a
                // sync of its own. Another request goes out while one is in flight only once
                // `pipelineBytes` are ready (or when flushing); smaller amounts ride on the next answer.
                var pending = state.flushing > 0 ? Int.max : Self.sendableBytes(
                    destinations, state: state, now: now, linger: linger,
                    upTo: configuration.pipelineBytes + configuration.maxRequestBytes * configuration.maxInFlightPerConnection)
                while state.inFlight[node, default: 0] < configuration.maxInFlightPerConnection {
                    if state.inFlight[node, default: 0] > 0 && pending < configuration.pipelineBytes { break }
                    var plan = Plan(node: node, batches: [])
                    var bytes = 0
                    for destination in destinations {
                        // The queue is taken out of the table and its sent prefix removed at once: removing
                        // batches one by one from a copy copied the whole queue per batch (quadratic in
                        // the batches buffered, 17 % of the client's CPU with a full buffer).
                        if var queue = state.ready.removeValue(forKey: destination) {
                            var taken = 0
                            for batch in queue {
                                guard plan.batches.isEmpty || bytes + batch.size <= configuration.maxRequestBytes else { break }
                                bytes += batch.size
                                plan.batches.append(batch)
                                taken += 1
                            }
                            queue.removeFirst(taken)
                            if !queue.isEmpty { state.ready[destination] = queue }
                        }
                        if state.ready[destination] == nil, let open = state.open[destination],
                            state.flushing > 0 || now &- open.createdAt >= linger,
                            plan.batches.isEmpty || bytes + open.size <= configuration.maxRequestBytes
                        {
                            state.open[destination] = nil
                            open.isOpen = false
                            bytes += open.size
                            plan.batches.append(open)
                        }
                    }
                    if plan.batches.isEmpty { break }
                    state.inFlight[node, default: 0] += 1
                    pending = pending == Int.max ? pending : pending - bytes
                    plans.append(plan)
                }
            }
            // Open batches past their linger that stayed are waiting for an answer (a free slot), which
            // drains again: no timer for them.
            for open in state.open.values {
                let due = open.createdAt &+ linger
                if due > now { nextDue = min(nextDue ?? due, due) }
            }
            return (plans, missing, nextDue)
        }
    }

    /// Bytes of `destinations` that could be sent now (ready batches and lingered open ones), counted
    /// up to `limit`.
    private static func sendableBytes(_ destinations: [TopicPartitionKey], state: borrowing State, now: UInt64, linger: UInt64, upTo limit: Int) -> Int {
        var bytes = 0
        for destination in destinations {
            for batch in state.ready[destination] ?? [] {
                bytes += batch.size
                if bytes >= limit { return bytes }
            }
            if let open = state.open[destination], now &- open.createdAt >= linger { bytes += open.size }
            if bytes >= limit { return bytes }
        }
        return bytes
    }

    /// Builds the plan's batches, sends the request and arranges for its answer to be handled.
    private func dispatch(_ plan: Plan) async {
        var plan = plan
        var failedToBuild: [(ProducerBatch, KafkaClientError)] = []
        var partitions: [TopicPartitionKey: ByteBuffer] = [:]
        var order: [TopicPartitionKey] = []
        var kept: [ProducerBatch] = []
        for batch in plan.batches {
            do {
                let built = try batch.build()
                if partitions[batch.destination] == nil {
                    // The first batch of a partition is sent as built (no copy); later ones are appended to it.
                    order.append(batch.destination)
                    partitions[batch.destination] = built.buffer
                } else {
                    partitions[batch.destination]!.writeImmutableBuffer(built.buffer)
                }
                kept.append(batch)
            } catch {
                failedToBuild.append((batch, .badResponse("building a batch failed: \(error)")))
            }
        }
        plan.batches = kept
        if !failedToBuild.isEmpty { finish(plan: Plan(node: plan.node, batches: []), completed: failedToBuild.map { ($0.0, .failure($0.1)) }, retry: [], releaseSlot: false) }
        guard !plan.batches.isEmpty else {
            finish(plan: plan, completed: [], retry: [], releaseSlot: true)
            return
        }
        var request = ProduceRequest()
        request.acks = configuration.acks.rawValue
        request.timeoutMs = configuration.requestTimeoutMilliseconds
        var topics: [String: ProduceRequest.TopicProduceData] = [:]
        var topicOrder: [String] = []
        for destination in order {
            var data = ProduceRequest.PartitionProduceData()
            data.index = destination.partition
            data.records = partitions[destination]
            if topics[destination.topic] == nil {
                topicOrder.append(destination.topic)
                var entry = ProduceRequest.TopicProduceData()
                entry.name = destination.topic
                topics[destination.topic] = entry
            }
            topics[destination.topic]!.partitionData.append(data)
        }
        request.topicData = topicOrder.map { topics[$0]! }
        let connection: BrokerConnection
        do {
            connection = try await client.connection(node: plan.node)
        } catch {
            handle(plan: plan, result: .failure(error as? KafkaClientError ?? .connectionFailed("\(error)")))
            return
        }
        let finalPlan = plan
        if configuration.acks == .none {
            connection.sendWithoutResponse(request, api: .produce).whenComplete { [self] result in
                switch result {
                case .success: handle(plan: finalPlan, result: .success(nil))
                case .failure(let error): handle(plan: finalPlan, result: .failure(error as? KafkaClientError ?? .connectionFailed("\(error)")))
                }
            }
        } else {
            connection.send(request, api: .produce, expecting: ProduceResponse.self, timeout: client.requestTimeout(plus: Int64(configuration.requestTimeoutMilliseconds))).whenComplete { [self] result in
                switch result {
                case .success(let (response, _)): handle(plan: finalPlan, result: .success(response))
                case .failure(let error): handle(plan: finalPlan, result: .failure(error as? KafkaClientError ?? .connectionFailed("\(error)")))
                }
            }
        }
    }

    /// Sorts a request's batches into delivered, failed and to be retried.
    private func handle(plan: Plan, result: Result<ProduceResponse?, KafkaClientError>) {
        var completed: [(ProducerBatch, Result<Int64, KafkaClientError>)] = []
        var retry: [ProducerBatch] = []
        func failOrRetry(_ batch: ProducerBatch, _ error: KafkaClientError) {
            if error.isRetriable && batch.attempts < configuration.retries {
                batch.attempts += 1
                retry.append(batch)
            } else {
                completed.append((batch, .failure(error)))
            }
        }
        switch result {
        case .failure(let error):
            for batch in plan.batches { failOrRetry(batch, error) }
        case .success(nil):
            for batch in plan.batches { completed.append((batch, .success(-1))) }
        case .success(let response?):
            // Batches of one partition were sent together: they got consecutive offsets from the base.
            var nextOffset: [TopicPartitionKey: Int64] = [:]
            var errors: [TopicPartitionKey: KafkaClientError] = [:]
            for topic in response.responses {
                for partition in topic.partitionResponses {
                    let destination = TopicPartitionKey(topic: topic.name, partition: partition.index)
                    let code = ErrorCode(rawValue: partition.errorCode) ?? .unknown
                    if let failure = code.failure(partition.errorMessage) { errors[destination] = failure } else { nextOffset[destination] = partition.baseOffset }
                }
            }
            for batch in plan.batches {
                if let error = errors[batch.destination] {
                    failOrRetry(batch, error)
                } else if let base = nextOffset[batch.destination] {
                    completed.append((batch, .success(base)))
                    nextOffset[batch.destination] = base + Int64(batch.recordCount)
                } else {
                    failOrRetry(batch, .badResponse("produce response without \(batch.destination.topic)-\(batch.destination.partition)"))
                }
            }
        }
        if retry.contains(where: { _ in true }) {
            for topic in Set(retry.map(\.destination.topic)) { client.invalidate(topic: topic) }
        }
        finish(plan: plan, completed: completed, retry: retry, releaseSlot: true)
    }

    /// Releases the request's slot and the completed batches' bytes, puts retries back at the front of
    /// their partitions' queues, and wakes whoever waits.
    private func finish(
        plan: Plan, completed: [(ProducerBatch, Result<Int64, KafkaClientError>)], retry: [ProducerBatch], releaseSlot: Bool
    ) {
        let (space, idle) = state.withLock { state in
            if releaseSlot { state.inFlight[plan.node, default: 1] -= 1 }
            for (batch, _) in completed {
                state.bufferedBytes -= batch.reservedBytes
                state.unfinished -= 1
            }
            for destination in Set(retry.map(\.destination)) {
                state.ready[destination] = retry.filter { $0.destination == destination } + (state.ready[destination] ?? [])
            }
            var space: [CheckedContinuation<Void, Never>] = []
            if state.bufferedBytes < configuration.bufferBytes { swap(&space, &state.spaceWaiters) }
            var idle: [CheckedContinuation<Void, Never>] = []
            if state.unfinished == 0 { swap(&idle, &state.idleWaiters) }
            return (space, idle)
        }
        for (batch, outcome) in completed { batch.complete(outcome, report: deliveryReport) }
        for waiter in space { waiter.resume() }
        for waiter in idle { waiter.resume() }
        if !retry.isEmpty {
            client.group.next().scheduleTask(in: .milliseconds(client.configuration.retryBackoffMilliseconds)) { [self] in scheduleDrain() }
        } else if releaseSlot {
            scheduleDrain()
        }
    }

    /// Batches whose topic still has no leader after a refresh count an attempt; past `retries` they fail.
    private func failBatchesWithoutLeader(_ topics: Set<String>) {
        let metadata = client.cachedMetadata
        var failed: [(ProducerBatch, Result<Int64, KafkaClientError>)] = []
        state.withLock { state in
            for (destination, queue) in state.ready where topics.contains(destination.topic) {
                guard metadata.leader(topic: destination.topic, partition: destination.partition) == nil else { continue }
                var kept: [ProducerBatch] = []
                for batch in queue {
                    batch.attempts += 1
                    if batch.attempts > configuration.retries {
                        failed.append((batch, .failure(.unknownPartition(topic: destination.topic, partition: destination.partition))))
                    } else {
                        kept.append(batch)
                    }
                }
                state.ready[destination] = kept.isEmpty ? nil : kept
            }
            for (destination, batch) in state.open where topics.contains(destination.topic) {
                guard metadata.leader(topic: destination.topic, partition: destination.partition) == nil else { continue }
                state.open[destination] = nil
                batch.isOpen = false
                state.ready[destination, default: []].append(batch)
            }
        }
        if !failed.isEmpty { finish(plan: Plan(node: -1, batches: []), completed: failed, retry: [], releaseSlot: false) }
    }

    // MARK: - Clocks

    static func monotonicNanoseconds() -> UInt64 {
        NIODeadline.now().uptimeNanoseconds
    }
}

/// Turns one record's delivery callback into an awaitable value.
private final class DeliveryWaiter: Sendable {
    private let state = Mutex<(result: Result<KafkaRecordMetadata, KafkaClientError>?, waiter: CheckedContinuation<KafkaRecordMetadata, any Error>?)>((nil, nil))

    var deliver: DeliveryCallback {
        { [self] result in
            let waiter = state.withLock { state in
                state.result = result
                defer { state.waiter = nil }
                return state.waiter
            }
            waiter?.resume(with: result.mapError { $0 as any Error })
        }
    }

    func value() async throws -> KafkaRecordMetadata {
        try await withCheckedThrowingContinuation { continuation in
            let result = state.withLock { state in
                if state.result == nil { state.waiter = continuation }
                return state.result
            }
            if let result { continuation.resume(with: result.mapError { $0 as any Error }) }
        }
    }
}

extension KafkaClient {
    /// A producer sending through this client's connections; `deliveryReport` (optional) learns each
    /// batch's outcome once, with the `opaque` its records were sent with.
    public func makeProducer(
        _ configuration: KafkaProducerConfiguration = KafkaProducerConfiguration(), deliveryReport: DeliveryReportHandler? = nil
    ) -> KafkaProducer {
        KafkaProducer(client: self, configuration: configuration, deliveryReport: deliveryReport)
    }
}
