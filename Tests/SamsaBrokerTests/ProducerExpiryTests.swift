import Foundation
import NIOCore
import SamsaProtocol
import SamsaRecords
import SamsaStorage
import Testing
@testable import SamsaBroker
import SamsaTestSupport

/// Idempotent-producer state is bounded: a producer idle for `producer.id.expiration.ms` is forgotten
/// (in memory and in snapshots), and InitProducerId without a transactional id always hands out a new
/// id, as Kafka does, so no client can bump the epoch of an id it was never given (issue 20).
@Suite("Producer state expiry and InitProducerId")
struct ProducerExpiryTests {
    @Test("A producer idle for the expiration is forgotten at the next sweep; one that appended since is kept")
    func idleProducersExpire() {
        var state = ProducerState(expirationMs: 1000)
        state.record(producerId: 1, epoch: 0, firstSequence: 0, lastSequence: 4, baseOffset: 0, at: 10_000)
        state.record(producerId: 2, epoch: 0, firstSequence: 0, lastSequence: 0, baseOffset: 5, at: 10_500)
        #expect(state.check(producerId: 1, epoch: 0, firstSequence: 9, lastSequence: 9) == .reject(.outOfOrderSequenceNumber))
        state.record(producerId: 3, epoch: 0, firstSequence: 0, lastSequence: 0, baseOffset: 6, at: 11_000)
        #expect(state.producers.keys.sorted() == [2, 3], "producer 1 appended last 1,000 ms ago")
        // Forgotten: its next batch is accepted at any sequence, as for a producer never seen.
        #expect(state.check(producerId: 1, epoch: 0, firstSequence: 9, lastSequence: 9) == .append)
        #expect(state.check(producerId: 2, epoch: 0, firstSequence: 0, lastSequence: 0) == .duplicate(baseOffset: 5))
    }

    @Test("100,000 producer ids that appended once leave no state behind one expiration later")
    func producerIdStorm() {
        var state = ProducerState(expirationMs: 60_000)
        for id in 0..<100_000 {
            state.record(producerId: Int64(id), epoch: 0, firstSequence: 0, lastSequence: 0, baseOffset: Int64(id), at: 1_000_000 + Int64(id / 1000))
        }
        #expect(state.producers.count == 100_000)
        state.record(producerId: 424_242, epoch: 0, firstSequence: 0, lastSequence: 0, baseOffset: 100_000, at: 1_000_000 + 60_100)
        #expect(state.producers.count == 1)
    }

    @Test("Snapshots keep each producer's last append time; producers that expired while the broker was down are not restored")
    func snapshotsKeepTimes() throws {
        var state = ProducerState(expirationMs: 1000)
        state.record(producerId: 7, epoch: 2, firstSequence: 0, lastSequence: 4, baseOffset: 10, at: 50_000)
        state.record(producerId: 9, epoch: 0, firstSequence: 0, lastSequence: 0, baseOffset: 21, at: 50_800)
        let directory = temporaryPath("samsa-snapshot")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try ProducerSnapshot(coveredEnd: 22, lastBatchBaseOffset: 21, lastBatchCRC: 1, state: state).write(to: directory, files: PosixFileSystem())
        let bytes = try PosixFileSystem().readFile(ProducerSnapshot.path(in: directory))
        let soon = try #require(ProducerSnapshot.decode(bytes, expirationMs: 1000, loadedAtMs: 50_900))
        #expect(soon.state.producers[7]?.lastAppendMs == 50_000 && soon.state.producers[9]?.lastAppendMs == 50_800)
        let later = try #require(ProducerSnapshot.decode(bytes, expirationMs: 1000, loadedAtMs: 51_500))
        #expect(later.state.producers.keys.sorted() == [9])
    }

    @Test("A snapshot of the previous layout (SPS1, without times) still loads, its producers as of the load")
    func previousSnapshotLayout() throws {
        var body = ByteBuffer()
        body.writeBytes(Array("SPS1".utf8))
        body.writeInteger(Int64(22))
        body.writeInteger(Int64(21))
        body.writeInteger(UInt32(1))
        body.writeInteger(Int32(1))
        body.writeInteger(Int64(7))
        body.writeInteger(Int16(2))
        body.writeInteger(Int8(1))
        body.writeInteger(Int32(0))
        body.writeInteger(Int32(4))
        body.writeInteger(Int64(10))
        body.writeInteger(CRC32C.checksum(body))
        let decoded = try #require(ProducerSnapshot.decode(Array(body.readableBytesView), loadedAtMs: 123_456))
        #expect(decoded.state.producers[7]?.lastAppendMs == 123_456)
        #expect(decoded.state.check(producerId: 7, epoch: 2, firstSequence: 0, lastSequence: 4) == .duplicate(baseOffset: 10))
    }

    @Test("InitProducerId v3 and v4 naming a producer id and epoch get a new id at epoch 0, whether or not the id was issued")
    func initProducerIdNeverBumps() async throws {
        try await TestBroker.with { broker in
            let connection = try await TestConnection(port: broker.port)
            let issued = try await connection.request(InitProducerIdRequest.nullTransaction, version: 4, expecting: InitProducerIdResponse.self)
            for version: Int16 in [3, 4] {
                for (id, epoch) in [(Int64(123_456_789), Int16(5)), (issued.producerId, issued.producerEpoch)] {
                    var request = InitProducerIdRequest.nullTransaction
                    request.producerId = id
                    request.producerEpoch = epoch
                    let response = try await connection.request(request, version: version, expecting: InitProducerIdResponse.self)
                    #expect(response.errorCode == 0)
                    #expect(response.producerId != id && response.producerId > issued.producerId, "v\(version) id \(id)")
                    #expect(response.producerEpoch == 0, "v\(version) id \(id)")
                }
            }
            try await connection.close()
        }
    }
}
