import Foundation
import Samsa
import SamsaStorage
import SamsaTestSupport
import Testing

/// Issue 23 in the embedded queue: a cleaned topic has offsets without records (removed keys) and
/// batches the cleaner left empty; a consumer passes them instead of reading the same range forever.
@Suite("Consuming a compacted topic", .offCooperativePool)
struct CompactedConsumerTests {
    /// Writes `rounds` updates of `keys` keys to `c` (small segments), then cleans it as the writer's
    /// cleaner would; returns every key's latest value.
    func cleanedTopic(_ dir: TemporaryDirectory, keys: Int = 5, rounds: Int = 40) async throws -> [String: String] {
        var latest: [String: String] = [:]
        do {
            let samsa = try Samsa.open(directory: dir.path)
            defer { try? samsa.close() }
            try samsa.createTopic(
                "c", TopicConfiguration(maxRecordBytes: 1024, segmentBytes: 8192, cleanupPolicy: .compact, minCleanableDirtyRatio: 0))
            let producer = samsa.makeProducer()
            for round in 0..<rounds {
                for key in 0..<keys {
                    let value = "v\(round)-\(key)-" + String(repeating: "x", count: 40)
                    _ = try await producer.send(ProducerRecord(topic: "c", key: "k\(key)", value: value))
                    latest["k\(key)"] = value
                }
            }
            await producer.close()
        }
        let partition = TopicPartition(topic: "c", partition: 0)
        let (manager, _) = try LogManager.open(
            directory: dir.path, configuration: LogConfiguration(),
            configurations: [partition: LogConfiguration(segmentBytes: 8192, cleanupPolicy: .compact, minCleanableDirtyRatio: 0)],
            cleaner: LogCleanerConfiguration(enabled: false))
        let log = try #require(manager.log(partition))
        try log.roll()
        let before = log.sizeInBytes
        #expect(manager.cleaner.clean(partition))
        #expect(log.sizeInBytes < before / 4, "\(log.sizeInBytes) of \(before)")
        try manager.close()
        return latest
    }

    @Test("a group member reads every key's latest value from the start and then waits at the end, not stuck in a cleaned range")
    func groupConsumerPassesGaps() async throws {
        let dir = try TemporaryDirectory()
        let latest = try await cleanedTopic(dir)
        let samsa = try Samsa.open(directory: dir.path)
        defer { try? samsa.close() }
        let end = try samsa.describeTopic("c").partitions[0].logEndOffset
        let consumer = try samsa.consumer(group: "g", topics: ["c"], configuration: ConsumerConfiguration(startPosition: .earliest))
        var seen: [String: String] = [:]
        var offsets: [Int64] = []
        let deadline = ContinuousClock.now + .seconds(20)
        while seen != latest && ContinuousClock.now < deadline {
            for record in try await consumer.poll(timeout: .milliseconds(200)) {
                seen[record.keyString ?? ""] = record.valueString
                offsets.append(record.offset)
            }
        }
        #expect(seen == latest)
        #expect(offsets == offsets.sorted() && Set(offsets).count == offsets.count)
        try consumer.commit()
        // The committed position is past the whole log, also past what the cleaner removed at its end.
        #expect(try samsa.committedOffset(group: "g", topic: "c", partition: 0).map { $0 > offsets.last! && $0 <= end } == true)
        try consumer.close()
    }

    @Test("records(topic:partition:from:) from offset 0 and from inside a removed range yields each key's latest value once")
    func tailingPassesGaps() async throws {
        let dir = try TemporaryDirectory()
        let latest = try await cleanedTopic(dir)
        let samsa = try Samsa.open(directory: dir.path)
        defer { try? samsa.close() }
        for start in [Int64(0), 17, 101] {
            // Every record at or after `start` that survived: the latest of each key (all written late).
            // In a task that is cancelled after 20 s: a sequence stuck in a cleaned range would wait forever.
            let reading = Task { () throws -> [String: String] in
                var seen: [String: String] = [:]
                var iterator = samsa.records(topic: "c", partition: 0, from: start).makeAsyncIterator()
                while seen.count < latest.count, let record = try await iterator.next() {
                    #expect(record.offset >= start)
                    seen[record.keyString ?? ""] = record.valueString
                }
                return seen
            }
            let watchdog = Task {
                try await Task.sleep(for: .seconds(20))
                reading.cancel()
            }
            let seen = try? await reading.value
            watchdog.cancel()
            #expect(seen == latest, "from \(start)")
        }
    }
}
