import NIOCore
import SamsaProtocol
import SamsaRecords
import Testing
@testable import SamsaBroker

/// Idempotent producers: ids never reused, duplicates answered with the original offsets, gaps and
/// old epochs refused.
@Suite("Broker idempotent producers")
struct IdempotenceTests {
    @Test("Sequence rules of one partition's producer state")
    func producerStateRules() {
        var state = ProducerState()
        #expect(state.check(producerId: 1, epoch: 0, firstSequence: 0, lastSequence: 4) == .append)
        state.record(producerId: 1, epoch: 0, firstSequence: 0, lastSequence: 4, baseOffset: 100)
        #expect(state.check(producerId: 1, epoch: 0, firstSequence: 0, lastSequence: 4) == .duplicate(baseOffset: 100))
        #expect(state.check(producerId: 1, epoch: 0, firstSequence: 6, lastSequence: 6) == .reject(.outOfOrderSequenceNumber))
        #expect(state.check(producerId: 1, epoch: 0, firstSequence: 5, lastSequence: 9) == .append)
        // Only the last 5 batches are remembered.
        for batch in 1...5 {
            state.record(producerId: 1, epoch: 0, firstSequence: Int32(batch * 5), lastSequence: Int32(batch * 5 + 4), baseOffset: Int64(100 + batch * 5))
        }
        #expect(state.check(producerId: 1, epoch: 0, firstSequence: 0, lastSequence: 4) == .reject(.outOfOrderSequenceNumber))
        #expect(state.check(producerId: 1, epoch: 0, firstSequence: 10, lastSequence: 14) == .duplicate(baseOffset: 110))
        // A new epoch starts at 0; an old one is fenced.
        #expect(state.check(producerId: 1, epoch: 1, firstSequence: 3, lastSequence: 3) == .reject(.outOfOrderSequenceNumber))
        #expect(state.check(producerId: 1, epoch: 1, firstSequence: 0, lastSequence: 0) == .append)
        state.record(producerId: 1, epoch: 1, firstSequence: 0, lastSequence: 0, baseOffset: 200)
        #expect(state.check(producerId: 1, epoch: 0, firstSequence: 30, lastSequence: 30) == .reject(.invalidProducerEpoch))
    }

    @Test("A retried batch is written once and answered with its original offset")
    func duplicatesAreNotWrittenTwice() async throws {
        try await TestBroker.with { broker in
            let connection = try await TestConnection(port: broker.port)
            _ = try await ProduceFetchTests.createTopic("once", partitions: 1, on: connection)
            let initialised = try await connection.request(InitProducerIdRequest.nullTransaction, version: 4, expecting: InitProducerIdResponse.self)
            #expect(initialised.errorCode == 0)
            let producer = (id: initialised.producerId, epoch: initialised.producerEpoch)
            let first = try makeBatch(count: 3, producer: (producer.id, producer.epoch, 0))
            #expect(try await ProduceFetchTests.produce([first], to: "once", on: connection).baseOffset == 0)
            let retried = try await ProduceFetchTests.produce([first], to: "once", on: connection)
            #expect(retried.errorCode == 0 && retried.baseOffset == 0)
            let gap = try await ProduceFetchTests.produce([try makeBatch(count: 1, producer: (producer.id, producer.epoch, 5))], to: "once", on: connection)
            #expect(gap.errorCode == ErrorCode.outOfOrderSequenceNumber.rawValue)
            let next = try await ProduceFetchTests.produce([try makeBatch(count: 2, startingAt: 3, producer: (producer.id, producer.epoch, 3))], to: "once", on: connection)
            #expect(next.errorCode == 0 && next.baseOffset == 3)
            let fetched = try await connection.request(ProduceFetchTests.fetchRequest("once", offset: 0), version: 12, expecting: FetchResponse.self)
            let partition = try #require(fetched.responses.first?.partitions.first)
            #expect(partition.highWatermark == 5)
            #expect(try ProduceFetchTests.values(in: partition.records, from: 0) == (0..<5).map { "value-\($0)" })
            try await connection.close()
        }
    }

    @Test("A retry that spans a broker restart is still recognised (state rebuilt from the log)")
    func duplicatesAcrossRestart() async throws {
        let broker = try await TestBroker.start()
        var connection = try await TestConnection(port: broker.port)
        _ = try await ProduceFetchTests.createTopic("restarts", partitions: 1, on: connection)
        let initialised = try await connection.request(InitProducerIdRequest.nullTransaction, version: 4, expecting: InitProducerIdResponse.self)
        let first = try makeBatch(count: 3, producer: (initialised.producerId, 0, 0))
        #expect(try await ProduceFetchTests.produce([first], to: "restarts", on: connection).baseOffset == 0)
        try await connection.close()
        try await broker.stop(keepingData: true)

        let restarted = try await TestBroker.start(directory: broker.directory)
        connection = try await TestConnection(port: restarted.port)
        let retried = try await ProduceFetchTests.produce([first], to: "restarts", on: connection)
        #expect(retried.errorCode == 0 && retried.baseOffset == 0)
        let gap = try await ProduceFetchTests.produce([try makeBatch(count: 1, producer: (initialised.producerId, 0, 9))], to: "restarts", on: connection)
        #expect(gap.errorCode == ErrorCode.outOfOrderSequenceNumber.rawValue)
        let next = try await ProduceFetchTests.produce(
            [try makeBatch(count: 1, startingAt: 3, producer: (initialised.producerId, 0, 3))], to: "restarts", on: connection)
        #expect(next.errorCode == 0 && next.baseOffset == 3)
        try await connection.close()
        try await restarted.stop()
    }

    @Test("Producer ids are never reused across restarts")
    func producerIdsSurviveRestart() async throws {
        var broker = try await TestBroker.start()
        var seen: Set<Int64> = []
        for _ in 0..<3 {
            let connection = try await TestConnection(port: broker.port)
            for _ in 0..<3 {
                let response = try await connection.request(InitProducerIdRequest.nullTransaction, version: 1, expecting: InitProducerIdResponse.self)
                #expect(response.errorCode == 0)
                #expect(seen.insert(response.producerId).inserted, "producer id \(response.producerId) handed out twice")
            }
            try await connection.close()
            try await broker.stop(keepingData: true)
            broker = try await TestBroker.start(directory: broker.directory)
        }
        try await broker.stop()
    }
}

extension InitProducerIdRequest {
    /// An idempotent, non-transactional producer's request.
    static var nullTransaction: InitProducerIdRequest {
        var request = InitProducerIdRequest()
        request.transactionalId = nil
        request.transactionTimeoutMs = 60_000
        return request
    }
}
