import Foundation
import NIOCore
import Samsa
import SamsaRecords
import SamsaStorage
import SamsaTestSupport
import Testing

/// Issue 26: the embedded queue keeps its groups' committed offsets where a broker keeps them, in
/// `__consumer_offsets` (Kafka's OffsetCommit records); commits made beside the writer are staged
/// in `groups/<g>.offsets` and folded in; an older directory's `groups/` files convert the same way.
@Suite("Committed offsets in __consumer_offsets", .offCooperativePool)
struct OffsetsStoreTests {
    let p0 = TopicPartition(topic: "t", partition: 0)
    let p1 = TopicPartition(topic: "t", partition: 1)

    func writer(_ dir: TemporaryDirectory) throws -> Samsa {
        let samsa = try Samsa.open(directory: dir.path)
        if !samsa.topics.contains("t") { try samsa.createTopic("t", TopicConfiguration(partitions: 2)) }
        return samsa
    }

    /// Every offset-commit record in the directory's `__consumer_offsets-0`, in log order (nil value: a tombstone).
    func offsetRecords(_ dir: TemporaryDirectory) throws -> [(ConsumerOffsetsRecord.Key, Int64?)] {
        let log = try PartitionLog.openReadOnly(directory: "\(dir.path)/__consumer_offsets-0", configuration: LogConfiguration())
        defer { try? log.close() }
        var records: [(ConsumerOffsetsRecord.Key, Int64?)] = []
        var next = log.logStartOffset
        while next < log.logEndOffset, var bytes = try log.read(from: next, maxBytes: 1 << 20) {
            while bytes.readableBytes > 0 {
                let batch = try RecordBatch(validating: bytes)
                bytes.moveReaderIndex(forwardBy: batch.sizeInBytes)
                next = batch.nextOffset
                for record in try batch.decodeRecords() {
                    guard case .offset(let key, let value) = try ConsumerOffsetsRecord.decode(key: record.key!, value: record.value) else { continue }
                    records.append((key, value?.offset))
                }
            }
        }
        return records
    }

    @Test("a commit is an OffsetCommit record in __consumer_offsets, read back after a reopen; the topic is internal")
    func commitsAreRecords() throws {
        let dir = try TemporaryDirectory()
        do {
            let samsa = try writer(dir)
            defer { try? samsa.close() }
            try samsa.commit(group: "g", offsets: [p0: 3, p1: 5])
            try samsa.commit(group: "g", offsets: [p0: 4])
            #expect(samsa.topics == ["t"])
            #expect(try samsa.describeTopic("__consumer_offsets").configuration.cleanupPolicy == .compact)
            #expect((#expect(throws: SamsaError.self) { try samsa.createTopic("__consumer_offsets") })?.code == .invalidArgument)
            #expect((#expect(throws: SamsaError.self) { try samsa.deleteTopic("__consumer_offsets") })?.code == .invalidArgument)
        }
        let records = try offsetRecords(dir)
        #expect(records.map { "\($0.0.group)/\($0.0.topic)/\($0.0.partition)=\($0.1 ?? -1)" } == ["g/t/0=3", "g/t/1=5", "g/t/0=4"])
        #expect(!FileManager.default.fileExists(atPath: "\(dir.path)/groups/g.offsets"))
        let samsa = try writer(dir)
        defer { try? samsa.close() }
        #expect(try samsa.committedOffsets(group: "g") == [p0: 4, p1: 5])
        #expect(try samsa.groupIds() == ["g"])
        // A read-only open beside it reads the same.
        let reader = try Samsa.openReadOnly(directory: dir.path)
        defer { try? reader.close() }
        #expect(try reader.committedOffsets(group: "g") == [p0: 4, p1: 5])
    }

    @Test("an embedded directory from before __consumer_offsets keeps every group's offsets (groups/<g>.offsets folded in, kept as .folded)")
    func olderDirectoryConverts() async throws {
        let dir = try TemporaryDirectory()
        try writer(dir).close()
        // What an older Samsa left: a group's offsets in Kafka's checkpoint format.
        try OffsetCheckpoint.write([p0: 7, p1: 2], to: "\(dir.path)/groups/old.offsets", files: PosixFileSystem())
        let samsa = try writer(dir)
        #expect(try samsa.committedOffsets(group: "old") == [p0: 7, p1: 2])
        try samsa.close()
        #expect(!FileManager.default.fileExists(atPath: "\(dir.path)/groups/old.offsets"))
        #expect(FileManager.default.fileExists(atPath: "\(dir.path)/groups/old.offsets.folded"))
        #expect(try offsetRecords(dir).filter { $0.0.group == "old" }.count == 2)
        let again = try writer(dir)
        defer { try? again.close() }
        #expect(try again.committedOffsets(group: "old") == [p0: 7, p1: 2])
    }

    @Test("a commit beside the writer is staged, read by both, and folded into the log when the writer next commits for the group")
    func stagedBesideWriter() throws {
        let dir = try TemporaryDirectory()
        let samsa = try writer(dir)
        defer { try? samsa.close() }
        try samsa.commit(group: "g", offsets: [p1: 1])
        let beside = try Samsa.openForConsuming(directory: dir.path)
        defer { try? beside.close() }
        try beside.commit(group: "g", offsets: [p0: 6])
        #expect(try beside.committedOffsets(group: "g") == [p0: 6, p1: 1])
        #expect(try samsa.committedOffsets(group: "g") == [p0: 6, p1: 1])
        #expect(FileManager.default.fileExists(atPath: "\(dir.path)/groups/g.offsets"))
        try samsa.commit(group: "g", offsets: [p1: 9])
        #expect(!FileManager.default.fileExists(atPath: "\(dir.path)/groups/g.offsets"))
        #expect(try samsa.committedOffsets(group: "g") == [p0: 6, p1: 9])
        #expect(try beside.committedOffsets(group: "g") == [p0: 6, p1: 9])
    }

    @Test("staging is refused while a broker serves the groups (it holds groups/served.lock); nothing is written")
    func refusedWhileServed() throws {
        let dir = try TemporaryDirectory()
        try writer(dir).close()
        let served = try FileLock(path: "\(dir.path)/groups/served.lock", held: "test")
        defer { served.release() }
        let beside = try Samsa.openForConsuming(directory: dir.path)
        defer { try? beside.close() }
        let error = #expect(throws: SamsaError.self) { try beside.commit(group: "g", offsets: [p0: 1]) }
        #expect(error?.code == .locked && error?.message.contains("broker") == true, "\(String(describing: error))")
        #expect((#expect(throws: SamsaError.self) { _ = try beside.consumer(group: "g", topics: ["t"]) })?.code == .locked)
        #expect(!FileManager.default.fileExists(atPath: "\(dir.path)/groups/g.offsets"))
    }

    @Test("a damaged staged file is refused, not taken as no commits", arguments: ["garbage", "0\n1\nt 0\n", ""])
    func damagedStaged(_ text: String) throws {
        let dir = try TemporaryDirectory()
        try writer(dir).close()
        try Data(text.utf8).write(to: URL(fileURLWithPath: "\(dir.path)/groups/g.offsets"))
        let error = #expect(throws: SamsaError.self) { try Samsa.open(directory: dir.path).close() }
        #expect(error?.code == .corrupt, "\(String(describing: error))")
        #expect(try String(contentsOfFile: "\(dir.path)/groups/g.offsets", encoding: .utf8) == text)
    }

    @Test("deleting a topic deletes its committed offsets (tombstones); the group's others stay")
    func deletedTopicForgotten() throws {
        let dir = try TemporaryDirectory()
        let samsa = try writer(dir)
        defer { try? samsa.close() }
        try samsa.createTopic("u")
        try samsa.commit(group: "g", offsets: [p0: 2, TopicPartition(topic: "u", partition: 0): 4])
        try samsa.deleteTopic("u")
        #expect(try samsa.committedOffsets(group: "g") == [p0: 2])
        #expect(try offsetRecords(dir).last.map { $0.0.topic == "u" && $0.1 == nil } == true)
    }

    @Test("the cleaner compacts __consumer_offsets: after many commits a clean keeps the latest per key, and a reopen reads them")
    func compactedByTheCleaner() async throws {
        let dir = try TemporaryDirectory()
        do {
            let samsa = try writer(dir)
            defer { try? samsa.close() }
            for round in 0..<300 { try samsa.commit(group: "g\(round % 3)", offsets: [p0: Int64(round), p1: Int64(round * 2)]) }
        }
        // Clean it the way the writer's cleaner does, with a roll so every commit is in a sealed segment.
        let (manager, _) = try LogManager.open(
            directory: dir.path, configuration: LogConfiguration(),
            configurations: [TopicPartition(topic: "__consumer_offsets", partition: 0): LogConfiguration(cleanupPolicy: .compact, minCleanableDirtyRatio: 0)],
            cleaner: LogCleanerConfiguration(enabled: false))
        let partition = TopicPartition(topic: "__consumer_offsets", partition: 0)
        try manager.log(partition)!.roll()
        let before = manager.log(partition)!.sizeInBytes
        #expect(manager.cleaner.clean(partition))
        #expect(manager.log(partition)!.sizeInBytes < before / 10)
        try manager.close()
        #expect(try offsetRecords(dir).count == 6)
        let samsa = try writer(dir)
        defer { try? samsa.close() }
        #expect(try samsa.committedOffsets(group: "g0") == [p0: 297, p1: 594])
        #expect(try samsa.committedOffsets(group: "g2") == [p0: 299, p1: 598])
    }

    @Test("a compacted topic refuses keyless records, takes keyed ones, and describes its cleaning state")
    func keylessRefused() async throws {
        let dir = try TemporaryDirectory()
        let samsa = try Samsa.open(directory: dir.path)
        defer { try? samsa.close() }
        try samsa.createTopic("c", TopicConfiguration(cleanupPolicy: .compact, deleteRetentionMilliseconds: 1000, segmentMilliseconds: 60_000))
        let producer = samsa.makeProducer()
        await #expect(throws: SamsaError.self) { _ = try await producer.send(.text("c", "no key")) }
        _ = try await producer.send(ProducerRecord(topic: "c", key: "k", value: "v"))
        await producer.close()
        let description = try samsa.describeTopic("c")
        #expect(description.configuration.cleanupPolicy == .compact && description.configuration.segmentMilliseconds == 60_000)
        #expect(description.partitions[0].cleaning?.cleanPoint == 0)
    }
}
