import Foundation
import NIOCore
import SamsaProtocol
import SamsaRecords
import SamsaStorage
import Testing
@testable import SamsaBroker
import SamsaTestSupport

/// Producer-state snapshots at segment rolls: a producer whose last batches are in an older segment
/// is still known after a restart; a damaged or stale snapshot is ignored.
@Suite("Broker producer-state snapshots")
struct ProducerSnapshotTests {
    static func start(_ directory: String) async throws -> Broker {
        try await Broker.start(BrokerConfiguration(
            dataDirectory: directory, port: 0, logConfiguration: LogConfiguration(segmentBytes: 4096, flushPolicy: .never),
            eventLoopThreads: 1, ioThreads: 2))
    }

    static func newProducer(_ connection: TestConnection) async throws -> (id: Int64, epoch: Int16) {
        let response = try await connection.request(InitProducerIdRequest.nullTransaction, version: 4, expecting: InitProducerIdResponse.self)
        return (response.producerId, response.producerEpoch)
    }

    @Test("Encoded and decoded alike; a flipped byte or a truncated file decodes to nothing")
    func format() throws {
        var state = ProducerState()
        state.record(producerId: 7, epoch: 2, firstSequence: 0, lastSequence: 4, baseOffset: 10)
        state.record(producerId: 7, epoch: 2, firstSequence: 5, lastSequence: 5, baseOffset: 20)
        state.record(producerId: 9, epoch: 0, firstSequence: 0, lastSequence: 0, baseOffset: 21)
        let directory = temporaryPath("samsa-snapshot")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try ProducerSnapshot(coveredEnd: 22, lastBatchBaseOffset: 21, lastBatchCRC: 0xDEAD_BEEF, state: state).write(to: directory, files: PosixFileSystem())
        let bytes = try PosixFileSystem().readFile(ProducerSnapshot.path(in: directory))
        let decoded = try #require(ProducerSnapshot.decode(bytes))
        #expect(decoded.coveredEnd == 22 && decoded.lastBatchBaseOffset == 21 && decoded.lastBatchCRC == 0xDEAD_BEEF)
        #expect(decoded.state.check(producerId: 7, epoch: 2, firstSequence: 5, lastSequence: 5) == .duplicate(baseOffset: 20))
        #expect(decoded.state.check(producerId: 9, epoch: 0, firstSequence: 0, lastSequence: 0) == .duplicate(baseOffset: 21))
        for index in [0, 5, bytes.count / 2, bytes.count - 1] {
            var flipped = bytes
            flipped[index] ^= 0x40
            #expect(ProducerSnapshot.decode(flipped) == nil, "byte \(index)")
        }
        #expect(ProducerSnapshot.decode(Array(bytes.dropLast(3))) == nil)
    }

    @Test("A retry of a batch that is in an older segment is still a duplicate after a restart")
    func retryFromOlderSegmentAfterRestart() async throws {
        let directory = temporaryPath("samsa-snapshot")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var broker = try await Self.start(directory)
        var connection = try await TestConnection(port: broker.localAddress.port!)
        _ = try await ProduceFetchTests.createTopic("rolled", partitions: 1, on: connection)
        let quiet = try await Self.newProducer(connection)
        let busy = try await Self.newProducer(connection)
        let quietBatch = try makeBatch(count: 2, producer: (quiet.id, quiet.epoch, 0))
        let written = try await ProduceFetchTests.produce([quietBatch], to: "rolled", on: connection)
        #expect(written.errorCode == 0)
        // The busy producer fills several 4 KiB segments, so the quiet one's batch ends up in an old one.
        var sequence: Int32 = 0
        for _ in 0..<60 {
            let batch = try makeBatch(count: 10, producer: (busy.id, busy.epoch, sequence))
            #expect(try await ProduceFetchTests.produce([batch], to: "rolled", on: connection).errorCode == 0)
            sequence += 10
        }
        try await connection.close()
        try await broker.stop()
        #expect(FileManager.default.fileExists(atPath: "\(directory)/rolled-0/\(ProducerSnapshot.fileName)"))

        broker = try await Self.start(directory)
        connection = try await TestConnection(port: broker.localAddress.port!)
        let retried = try await ProduceFetchTests.produce([quietBatch], to: "rolled", on: connection)
        #expect(retried.errorCode == 0 && retried.baseOffset == written.baseOffset)
        let gap = try await ProduceFetchTests.produce([try makeBatch(count: 1, producer: (quiet.id, quiet.epoch, 7))], to: "rolled", on: connection)
        #expect(gap.errorCode == ErrorCode.outOfOrderSequenceNumber.rawValue)
        let next = try await ProduceFetchTests.produce([try makeBatch(count: 1, producer: (busy.id, busy.epoch, sequence))], to: "rolled", on: connection)
        #expect(next.errorCode == 0 && next.baseOffset == 602)
        try await connection.close()
        try await broker.stop()
    }

    @Test("A snapshot whose last batch the log no longer holds is ignored")
    func staleSnapshotIgnored() async throws {
        let directory = temporaryPath("samsa-snapshot")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var broker = try await Self.start(directory)
        var connection = try await TestConnection(port: broker.localAddress.port!)
        _ = try await ProduceFetchTests.createTopic("stale", partitions: 1, on: connection)
        try await connection.close()
        try await broker.stop()
        // A snapshot claiming a producer batch at offsets the (empty) log does not have.
        var state = ProducerState()
        state.record(producerId: 42, epoch: 0, firstSequence: 0, lastSequence: 0, baseOffset: 0)
        try ProducerSnapshot(coveredEnd: 1, lastBatchBaseOffset: 0, lastBatchCRC: 1, state: state).write(to: "\(directory)/stale-0", files: PosixFileSystem())

        broker = try await Self.start(directory)
        connection = try await TestConnection(port: broker.localAddress.port!)
        // Not answered as a duplicate of a batch that is not there: written.
        let produced = try await ProduceFetchTests.produce([try makeBatch(count: 1, producer: (42, 0, 0))], to: "stale", on: connection)
        #expect(produced.errorCode == 0 && produced.baseOffset == 0)
        let fetched = try await connection.request(ProduceFetchTests.fetchRequest("stale", offset: 0), version: 12, expecting: FetchResponse.self)
        #expect(fetched.responses.first?.partitions.first?.highWatermark == 1)
        try await connection.close()
        try await broker.stop()
    }
}
