import Foundation
import Glibc
import Samsa
import SamsaStorage
import SamsaTestSupport
import Testing

/// Issue 22 item 6: a group's offsets belong to one process at a time (`groups/<group>.lock`), so a
/// process that opened the directory to consume (`openForConsuming`) runs beside its writer. `flock`
/// locks belong to an open file description, so two opens in this process stand for two processes.
@Suite("Group locks", .offCooperativePool)
struct GroupLockTests {
    /// A writer with topic `t` (2 partitions) holding `count` records.
    func writer(_ dir: TemporaryDirectory, records count: Int = 10) async throws -> Samsa {
        let samsa = try Samsa.open(directory: dir.path)
        try samsa.createTopic("t", TopicConfiguration(partitions: 2))
        let producer = samsa.makeProducer()
        for index in 0..<count { _ = try await producer.send(.text("t", "v\(index)", partition: index % 2)) }
        await producer.close()
        return samsa
    }

    /// A writer (`writer`) and a consuming open of its directory, both closed afterwards.
    func withWriterAndConsumer(records: Int = 10, _ body: (TemporaryDirectory, Samsa, Samsa) async throws -> Void) async throws {
        let dir = try TemporaryDirectory()
        let samsa = try await writer(dir, records: records)
        defer { try? samsa.close() }
        let reader = try Samsa.openForConsuming(directory: dir.path)
        defer { try? reader.close() }
        try await body(dir, samsa, reader)
    }

    /// This process's descriptors open on files below `directory` (other tests run beside this one).
    func openDescriptors(below directory: String) throws -> Int {
        try FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count { fd in
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(fd)"))?.hasPrefix(directory + "/") == true
        }
    }

    /// A group id to refuse, shown by a short name.
    struct HostileGroup: Sendable, CustomTestStringConvertible {
        let id: String
        let testDescription: String
        static let all = [
            HostileGroup(id: "a/b", testDescription: "a/b"), HostileGroup(id: "..", testDescription: ".."),
            HostileGroup(id: "../t", testDescription: "../t"), HostileGroup(id: ".", testDescription: "."), HostileGroup(id: "", testDescription: "empty"),
            HostileGroup(id: String(repeating: "g", count: 32_768), testDescription: "32 KB"), HostileGroup(id: "g\u{0}", testDescription: "NUL"),
        ]
    }

    @Test("a consuming open takes no directory lock: the writer produces while it consumes and commits a group")
    func consumeBesideWriter() async throws {
        try await withWriterAndConsumer { dir, samsa, reader in
            let consumer = try reader.consumer(group: "g", topics: ["t"], configuration: ConsumerConfiguration(startPosition: .earliest, autoCommit: false))
            var seen = try await consumer.poll()
            #expect(seen.count == 10)
            try consumer.commit()
            // The writer goes on producing; the consumer sees the new records (the read-only refresh).
            let producer = samsa.makeProducer()
            for index in 10..<14 { _ = try await producer.send(.text("t", "v\(index)", partition: 0)) }
            await producer.close()
            while seen.count < 14 { seen += try await consumer.poll(timeout: .seconds(30)) }
            try consumer.commit()
            // Written durably by the consuming process, read fresh by the writer and by a plain reader.
            #expect(try samsa.committedOffset(group: "g", topic: "t", partition: 0) == 9)
            let other = try Samsa.openReadOnly(directory: dir.path)
            defer { try? other.close() }
            #expect(try other.committedOffset(group: "g", topic: "t", partition: 1) == 5)
            try consumer.close()
        }
    }

    @Test("one owner per group: a second open's member is refused with .locked; other groups work; closing hands it over")
    func oneOwnerPerGroup() async throws {
        try await withWriterAndConsumer { dir, samsa, reader in
            let first = try reader.consumer(group: "g", topics: ["t"])
            // A second member in the same open joins the group (the process owns it).
            let second = try reader.consumer(group: "g", topics: ["t"])
            for owner in [samsa, try Samsa.openForConsuming(directory: dir.path)] {
                let refused = #expect(throws: SamsaError.self) { try owner.consumer(group: "g", topics: ["t"]) }
                #expect(refused?.code == .locked)
                #expect(refused?.message.contains("group 'g'") == true && refused?.message.contains("another process") == true, "\(String(describing: refused))")
                let commit = #expect(throws: SamsaError.self) {
                    try owner.commit(group: "g", offsets: [TopicPartition(topic: "t", partition: 0): 3])
                }
                #expect(commit?.code == .locked)
                // Another group is free.
                let h = try owner.consumer(group: "h-\(owner === samsa)", topics: ["t"])
                try h.close()
                if owner !== samsa { try owner.close() }
            }
            // The group stays owned until its last member leaves.
            try first.close()
            #expect(throws: SamsaError.self) { try samsa.consumer(group: "g", topics: ["t"]) }
            try second.close()
            try samsa.consumer(group: "g", topics: ["t"]).close()
            // Closing the directory releases what its members still held; they commit nothing more.
            let left = try reader.consumer(group: "k", topics: ["t"], configuration: ConsumerConfiguration(startPosition: .earliest))
            _ = try await left.poll()
            try reader.close()
            let taken = try samsa.consumer(group: "k", topics: ["t"])
            #expect((#expect(throws: SamsaError.self) { try left.commit() })?.code == .closed)
            try taken.close()
            #expect(try samsa.committedOffset(group: "k", topic: "t", partition: 0) == nil)
        }
    }

    @Test("a direct commit takes the group's lock for the commit only, and reads what the last owner wrote first")
    func directCommit() async throws {
        try await withWriterAndConsumer { dir, samsa, reader in
            let p0 = TopicPartition(topic: "t", partition: 0), p1 = TopicPartition(topic: "t", partition: 1)
            try reader.commit(group: "g", offsets: [p0: 2])
            // The writer commits another partition of the same group: merged with the file, not with a stale copy.
            try samsa.commit(group: "g", offsets: [p1: 4])
            try reader.commit(group: "g", offsets: [p0: 3])
            #expect(try samsa.committedOffset(group: "g", topic: "t", partition: 0) == 3)
            #expect(try samsa.committedOffset(group: "g", topic: "t", partition: 1) == 4)
            // A member resumes from what was committed in the other process.
            let consumer = try samsa.consumer(group: "g", topics: ["t"], configuration: ConsumerConfiguration(autoCommit: false))
            defer { try? consumer.close() }
            let records = try await consumer.poll()
            #expect(Set(records.map { "\($0.partition):\($0.offset)" }) == ["0:3", "0:4", "1:4"])
        }
    }

    @Test("a lock is held only while its group is open: descriptors stay bounded over many groups")
    func descriptorsBounded() async throws {
        try await withWriterAndConsumer(records: 0) { dir, samsa, reader in
            let groups = dir.file("groups")
            for index in 0..<300 { try reader.commit(group: "g\(index)", offsets: [TopicPartition(topic: "t", partition: 0): 0]) }
            #expect(try openDescriptors(below: groups) == 0)
            let consumers = try (0..<40).map { try reader.consumer(group: "m\($0)", topics: ["t"]) }
            // A lock per group, and the process's one shared hold of `served.lock` (no broker may start meanwhile).
            #expect(try openDescriptors(below: groups) == 41)
            for consumer in consumers { try consumer.close() }
            #expect(try openDescriptors(below: groups) == 0)
        }
    }

    @Test("hostile group ids are refused before any file is touched", arguments: HostileGroup.all)
    func hostileGroupIds(_ hostile: HostileGroup) async throws {
        let group = hostile.id
        try await withWriterAndConsumer(records: 0) { dir, samsa, reader in
            let entries = try FileManager.default.subpathsOfDirectory(atPath: dir.path).sorted()
            for owner in [samsa, reader] {
                #expect(throws: SamsaError.self) { try owner.consumer(group: group, topics: ["t"]) }
                #expect(throws: SamsaError.self) { try owner.commit(group: group, offsets: [TopicPartition(topic: "t", partition: 0): 0]) }
                let read = #expect(throws: SamsaError.self) { try owner.committedOffset(group: group, topic: "t", partition: 0) }
                #expect(read?.code == .invalidArgument)
            }
            #expect(try FileManager.default.subpathsOfDirectory(atPath: dir.path).sorted() == entries)
        }
    }

    @Test("a lock file planted as a symlink is refused, not followed")
    func symlinkedLock() async throws {
        let dir = try TemporaryDirectory()
        let samsa = try await writer(dir, records: 0)
        defer { try? samsa.close() }
        let target = dir.file("elsewhere")
        #expect(symlink(target, dir.file("groups/g.lock")) == 0)
        #expect(throws: SamsaError.self) { try samsa.consumer(group: "g", topics: ["t"]) }
        #expect(!FileManager.default.fileExists(atPath: target))
    }

    @Test("a consuming open is read-only for everything but its groups' offsets")
    func consumingOpenRefusesChanges() async throws {
        let dir = try TemporaryDirectory()
        try await writer(dir, records: 0).close()
        let reader = try Samsa.openForConsuming(directory: dir.path)
        defer { try? reader.close() }
        #expect(reader.isReadOnly)
        #expect((#expect(throws: SamsaError.self) { try reader.createTopic("u") })?.code == .readOnly)
        #expect((#expect(throws: SamsaError.self) { try reader.deleteTopic("t") })?.code == .readOnly)
        // It holds no directory lock: a writer may open beside it.
        try Samsa.open(directory: dir.path).close()
        // A plain read-only open still commits nothing.
        let plain = try Samsa.openReadOnly(directory: dir.path)
        defer { try? plain.close() }
        #expect((#expect(throws: SamsaError.self) { try plain.consumer(group: "g", topics: ["t"]) })?.code == .readOnly)
    }

    @Test("deleting a topic skips a group another process owns (with a warning) and forgets the others'")
    func deleteTopicBesideOwner() async throws {
        try await withWriterAndConsumer(records: 4) { dir, samsa, reader in
            let p0 = TopicPartition(topic: "t", partition: 0)
            try samsa.commit(group: "free", offsets: [p0: 1])
            let owned = try reader.consumer(group: "owned", topics: ["t"], configuration: ConsumerConfiguration(autoCommit: false))
            try reader.commit(group: "owned", offsets: [p0: 2])
            try samsa.deleteTopic("t")
            #expect(try samsa.committedOffset(group: "free", topic: "t", partition: 0) == nil)
            #expect(try samsa.committedOffset(group: "owned", topic: "t", partition: 0) == 2)
            try owned.close()
        }
    }
}
