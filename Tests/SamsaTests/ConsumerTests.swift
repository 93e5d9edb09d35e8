import Foundation
@testable import Samsa
import SamsaStorage
import Synchronization
import Testing
import SamsaTestSupport

@Suite("Consumers", .offCooperativePool)
struct ConsumerTests {
    @Test("a tailing sequence delivers old records, then new ones as they are committed", arguments: [FlushPolicy.everyAppend, .never])
    func tailing(policy: FlushPolicy) async throws {
        let dir = try TemporaryDirectory()
        try await withSamsa(dir) { samsa in
            try samsa.createTopic("t", TopicConfiguration(flushPolicy: policy))
            let producer = samsa.makeProducer(ProducerConfiguration(lingerMilliseconds: 0))
            for i in 0..<5 { try await producer.send(.text("t", "old \(i)")) }
            let reader = Task {
                var seen: [String] = []
                for try await record in samsa.records(topic: "t", partition: 0, from: 2) {
                    seen.append(record.valueString ?? "")
                    if seen.count == 8 { break }
                }
                return seen
            }
            // The reader is asleep at the end of the log before each send: each send must wake it.
            for i in 0..<5 {
                await samsa.untilAsleep(on: "t")
                try await producer.send(.text("t", "new \(i)"))
            }
            let seen = try await reader.value
            #expect(seen == ["old 2", "old 3", "old 4", "new 0", "new 1", "new 2", "new 3", "new 4"])
            await producer.close()
        }
    }

    @Test("cancelling a task tailing an idle partition ends it with CancellationError", .timeLimit(.minutes(1)))
    func cancelTailing() async throws {
        let dir = try TemporaryDirectory()
        try await withSamsa(dir) { samsa in
            try samsa.createTopic("t")
            let reader = Task {
                for try await _ in samsa.records(topic: "t", partition: 0) {}
            }
            await samsa.untilAsleep(on: "t")
            reader.cancel()
            let outcome = await reader.result
            #expect(throws: CancellationError.self) { try outcome.get() }
        }
    }

    @Test("closing Samsa ends tailing sequences")
    func closeEndsTailing() async throws {
        let dir = try TemporaryDirectory()
        let samsa = try Samsa.open(directory: dir.path)
        try samsa.createTopic("t")
        let reader = Task { () -> Int in
            var count = 0
            for try await _ in samsa.records(topic: "t", partition: 0) { count += 1 }
            return count
        }
        await samsa.untilAsleep(on: "t")
        try samsa.close()
        #expect(try await reader.value == 0)
    }

    @Test("two members of a group split the partitions; a restarted member resumes from the committed offset")
    func groupSplitAndResume() async throws {
        let dir = try TemporaryDirectory()
        let earliest = ConsumerConfiguration(startPosition: .earliest, maxPollRecords: 1000, autoCommit: false)
        try await withSamsa(dir) { samsa in
            try samsa.createTopic("jobs", TopicConfiguration(partitions: 4))
            let producer = samsa.makeProducer()
            for i in 0..<40 { try await producer.send(.text("jobs", "job \(i)", partition: i % 4)) }
            await producer.close()

            let first = try samsa.consumer(group: "workers", topics: ["jobs"], configuration: earliest)
            let second = try samsa.consumer(group: "workers", topics: ["jobs"], configuration: earliest)
            #expect(Set(first.assignment).isDisjoint(with: second.assignment))
            #expect(first.assignment.count == 2 && second.assignment.count == 2)
            let a = try await first.poll(timeout: .seconds(1))
            let b = try await second.poll(timeout: .seconds(1))
            #expect(a.count == 20 && b.count == 20)
            #expect(Set(a.map(\.partition)) == Set(first.assignment.map { Int($0.partition) }))
            #expect(Set((a + b).map(\.valueString)) == Set((0..<40).map { "job \($0)" }))
            try first.commit()
            try second.commit()

            // The second member leaves: the first now owns every partition, from the committed offsets.
            try second.close()
            #expect(first.assignment.count == 4)
            #expect(try await first.poll(timeout: .milliseconds(100)).isEmpty)
            let producer2 = samsa.makeProducer()
            for i in 40..<48 { try await producer2.send(.text("jobs", "job \(i)", partition: i % 4)) }
            await producer2.close()
            let more = try await first.poll(timeout: .seconds(1))
            #expect(Set(more.map(\.valueString)) == Set((40..<48).map { "job \($0)" }))
            // Processed 6 of the 8 new ones, committed that, then the process stops.
            let kept = more.prefix(6)
            var offsets: [TopicPartition: Int64] = [:]
            for record in kept { offsets[TopicPartition(topic: "jobs", partition: Int32(record.partition))] = record.offset + 1 }
            try samsa.commit(group: "workers", offsets: offsets)
            try first.close()
        }
        try await withSamsa(dir) { samsa in
            let restarted = try samsa.consumer(group: "workers", topics: ["jobs"], configuration: earliest)
            let again = try await restarted.poll(timeout: .seconds(1))
            // Exactly the records after the committed offsets come back.
            #expect(again.count == 2)
            for record in again {
                let committed = try samsa.committedOffset(group: "workers", topic: "jobs", partition: record.partition)
                #expect(record.offset >= committed!)
            }
            try restarted.close()
        }
    }

    @Test("a member's poll wakes when records arrive, long before its timeout", .timeLimit(.minutes(1)))
    func pollWakes() async throws {
        let dir = try TemporaryDirectory()
        try await withSamsa(dir) { samsa in
            try samsa.createTopic("t", TopicConfiguration(partitions: 2))
            let member = try samsa.consumer(group: "g", topics: ["t"], configuration: ConsumerConfiguration(startPosition: .earliest))
            // The timeout is longer than the test's time limit: only a wake-up can pass this test.
            let waiting = Task { try await member.poll(timeout: .seconds(3600)) }
            await samsa.untilAsleep(on: "t")
            try await samsa.makeProducer().send(.text("t", "hello", partition: 1))
            let records = try await waiting.value
            #expect(records.map(\.valueString) == ["hello"])
            try member.close()
        }
    }

    @Test("auto-commit commits what the previous poll returned: a crash redelivers only the unprocessed")
    func autoCommit() async throws {
        let dir = try TemporaryDirectory()
        let configuration = ConsumerConfiguration(startPosition: .earliest, maxPollRecords: 10)
        try await withSamsa(dir) { samsa in
            try samsa.createTopic("t")
            try await samsa.makeProducer().send((0..<30).map { ProducerRecord.text("t", "\($0)") })
            let member = try samsa.consumer(group: "g", topics: ["t"], configuration: configuration)
            #expect(try await member.poll().map(\.offset) == Array(0..<10))
            #expect(try await member.poll().map(\.offset) == Array(10..<20))
            // No close: as if the process died while processing 10..<20.
        }
        try await withSamsa(dir) { samsa in
            #expect(try samsa.committedOffset(group: "g", topic: "t", partition: 0) == 10)
            let member = try samsa.consumer(group: "g", topics: ["t"], configuration: configuration)
            #expect(try await member.poll().map(\.offset) == Array(10..<20))
            try member.close()
        }
    }
}

@Suite("Consumer file work", .offCooperativePool)
struct ConsumerFileWorkTests {
    @Test("poll's auto-commit writes and syncs the offsets file off the caller's task")
    func autoCommitOffTheCallersTask() async throws {
        let dir = try TemporaryDirectory()
        let files = TaskWatchingFileSystem()
        let samsa = try Samsa.open(directory: dir.path, options: Samsa.Options(), files: files)
        defer { try? samsa.close() }
        try samsa.createTopic("t")
        try await samsa.makeProducer().send((0..<20).map { ProducerRecord.text("t", "\($0)") })
        let member = try samsa.consumer(group: "g", topics: ["t"], configuration: ConsumerConfiguration(startPosition: .earliest, maxPollRecords: 10))
        let before = files.callsInTasks.count  // opening and creating the topic are synchronous
        #expect(try await member.poll().map(\.offset) == Array(0..<10))
        #expect(try await member.poll().map(\.offset) == Array(10..<20))  // commits 10 first
        #expect(try samsa.committedOffset(group: "g", topic: "t", partition: 0) == 10)
        #expect(Array(files.callsInTasks.dropFirst(before)) == [])
    }
}

extension Samsa {
    /// Returns once a reader of `topic` is asleep waiting for records (the state the wake-up tests
    /// need), instead of sleeping for a while and hoping it is.
    func untilAsleep(on topic: String) async {
        while signal(for: topic).sleepers == 0 { await Task.yield() }
    }
}

@Suite("Committed offsets outside the log", .offCooperativePool)
struct OffsetResetTests {
    @Test("a committed offset past the log end is reset by the start position, with a warning", arguments: [ConsumerConfiguration.StartPosition.earliest, .latest])
    func pastEnd(start: ConsumerConfiguration.StartPosition) async throws {
        let dir = try TemporaryDirectory()
        let warnings = DataDirectoryTests.Warnings()
        let samsa = try Samsa.open(directory: dir.path, options: warnings.options)
        try samsa.createTopic("t")
        try await samsa.makeProducer().send((0..<10).map { ProducerRecord.text("t", "\($0)") })
        // As if the log lost its tail after the group committed (a power cut under a lax flush policy).
        try samsa.commit(group: "g", offsets: [TopicPartition(topic: "t", partition: 0): 1000])
        let member = try samsa.consumer(group: "g", topics: ["t"], configuration: ConsumerConfiguration(startPosition: start, autoCommit: false))
        let records = try await member.poll(timeout: .milliseconds(start == .earliest ? 5000 : 10))
        #expect(records.map(\.offset) == (start == .earliest ? Array(0..<10) : []))
        try await samsa.makeProducer().send(.text("t", "new"))
        let next = try await member.poll(timeout: .seconds(5))
        #expect(next.map(\.valueString) == ["new"])
        #expect(warnings.all.count == 1 && warnings.all[0].contains("committed offset 1000"), "\(warnings.all)")
        #expect(warnings.entries.first?.metadata == ["group": "g", "topic": "t", "partition": "0", "offset": "1000", "reset": "\(start == .earliest ? 0 : 10)"])
        try member.close()
        try samsa.close()
    }
}
