import Foundation
import Glibc
import Samsa
import SamsaStorage
import Synchronization
import Testing
import SamsaTestSupport

/// Issue 9 #1 and #10: Samsa opens only its own directories, never deletes what it did not create,
/// and keeps its files private.
@Suite("Data directories", .offCooperativePool)
struct DataDirectoryTests {
    /// Collects what Samsa logs to `Options.logger` at `.warning`.
    final class Warnings: Sendable {
        let logs = CapturedLogs()
        var entries: [CapturedLogs.Entry] { logs.entries.filter { $0.level == .warning } }
        var all: [String] { entries.map(\.message) }
        var options: Samsa.Options { Samsa.Options(logger: logs.logger) }
    }

    @Test("a directory holding other files is refused and left exactly as it was")
    func foreignDirectoryRefused() throws {
        let dir = try TemporaryDirectory()
        try FileManager.default.createDirectory(atPath: "\(dir.path)/backup-2024", withIntermediateDirectories: true)
        try Data("precious".utf8).write(to: URL(fileURLWithPath: "\(dir.path)/backup-2024/db.sql"))
        let error = #expect(throws: SamsaError.self) { try Samsa.open(directory: dir.path) }
        #expect(error?.code == .notADataDirectory)
        #expect(error?.message.contains("backup-2024") == true)
        #expect(try String(contentsOfFile: "\(dir.path)/backup-2024/db.sql", encoding: .utf8) == "precious")
        // Nothing was written: not even the lock file.
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["backup-2024"])
    }

    @Test("a data directory that lost its topics.json is refused, not emptied")
    func missingRegistryRefused() async throws {
        let dir = try TemporaryDirectory()
        try await withSamsa(dir) { samsa in
            try samsa.createTopic("t")
            try await samsa.makeProducer().send(.text("t", "kept"))
        }
        try FileManager.default.removeItem(atPath: "\(dir.path)/topics.json")
        let error = #expect(throws: SamsaError.self) { try Samsa.open(directory: dir.path) }
        #expect(error?.code == .notADataDirectory)
        #expect(FileManager.default.fileExists(atPath: "\(dir.path)/t-0/00000000000000000000.log"))
        // Put back, everything is there.
        try Data(#"{"t":{"compression":"none","flush":"every-append","maxRecordBytes":1048576,"partitions":1,"segmentBytes":1073741824}}"#.utf8)
            .write(to: URL(fileURLWithPath: "\(dir.path)/topics.json"))
        try await withSamsa(dir) { samsa in
            let values = try samsa.read(topic: "t", partition: 0, from: 0).map(\.valueString)
            #expect(values == ["kept"])
        }
    }

    @Test("a partition directory no topic names is reported and left alone")
    func unregisteredPartitionKept() async throws {
        let dir = try TemporaryDirectory()
        try await withSamsa(dir) { samsa in try samsa.createTopic("t") }
        try FileManager.default.createDirectory(atPath: "\(dir.path)/orphan-0", withIntermediateDirectories: true)
        try Data("mine".utf8).write(to: URL(fileURLWithPath: "\(dir.path)/orphan-0/notes.txt"))
        // A partition log of a topic the registry no longer names (an older version's half-finished delete).
        try FileManager.default.copyItem(atPath: "\(dir.path)/t-0", toPath: "\(dir.path)/gone-3")
        let warnings = Warnings()
        for _ in 0..<2 {
            let samsa = try Samsa.open(directory: dir.path, options: warnings.options)
            #expect(samsa.unregisteredPartitions == [TopicPartition(topic: "gone", partition: 3)])
            #expect(samsa.topics == ["t"])
            try samsa.close()
        }
        #expect(try String(contentsOfFile: "\(dir.path)/orphan-0/notes.txt", encoding: .utf8) == "mine")
        #expect(FileManager.default.fileExists(atPath: "\(dir.path)/gone-3/00000000000000000000.log"))
        #expect(warnings.all.count == 4 && warnings.all.allSatisfy { $0.contains("left alone") }, "\(warnings.all)")
        #expect(warnings.all.filter { $0.contains("orphan-0") }.count == 2 && warnings.all.filter { $0.contains("gone-3") }.count == 2)
        #expect(Set(warnings.entries.compactMap { $0.metadata["directory"] }) == ["\(dir.path)/orphan-0", "\(dir.path)/gone-3"])
    }

    @Test("deleting a topic removes its partitions and only them")
    func deleteTopicOnlyItsOwn() async throws {
        let dir = try TemporaryDirectory()
        try await withSamsa(dir) { samsa in
            try samsa.createTopic("a", TopicConfiguration(partitions: 2))
            try samsa.createTopic("ab")
            try await samsa.makeProducer().send(.text("ab", "x"))
            try samsa.deleteTopic("a")
            #expect(samsa.topics == ["ab"])
        }
        let names = try FileManager.default.contentsOfDirectory(atPath: dir.path)
        #expect(!names.contains { $0.hasPrefix("a-") })
        try await withSamsa(dir) { samsa in
            let values = try samsa.read(topic: "ab", partition: 0, from: 0).map(\.valueString)
            #expect(values == ["x"])
        }
    }

    @Test("topics.json with impossible settings is refused on load with the topic and the setting", arguments: [-1, 0, 100_000])
    func registryValidatedOnLoad(partitions: Int) async throws {
        let dir = try TemporaryDirectory()
        try await withSamsa(dir) { samsa in try samsa.createTopic("t") }
        let text = #"{"t":{"compression":"none","flush":"every-append","maxRecordBytes":1048576,"partitions":\#(partitions),"segmentBytes":1073741824}}"#
        try Data(text.utf8).write(to: URL(fileURLWithPath: "\(dir.path)/topics.json"))
        let error = #expect(throws: SamsaError.self) { try Samsa.open(directory: dir.path) }
        #expect(error?.code == .corrupt)
        #expect(error?.message.contains("topic 't'") == true && error?.message.contains("partitions") == true)
        #expect(Samsa.verifyMetadata(directory: dir.path).count == 1)
    }

    @Test("Samsa's files are private to their owner by default, the lock file always; an old 0644 lock file is narrowed")
    func privateFiles() async throws {
        let dir = try TemporaryDirectory()
        let data = "\(dir.path)/data"
        try Samsa.open(directory: data).close()
        let lock = "\(data)/.lock"
        // As an older version left it.
        #expect(chmod(lock, 0o644) == 0)
        let samsa = try Samsa.open(directory: data)
        try samsa.createTopic("t")
        try await samsa.makeProducer().send(.text("t", "x"))
        try samsa.commit(group: "g", offsets: [TopicPartition(topic: "t", partition: 0): 1])
        try samsa.close()
        #expect(try mode(lock) == 0o600)
        for file in ["topics.json", "meta.properties", "__consumer_offsets-0/00000000000000000000.log", "t-0/00000000000000000000.log"] {
            #expect(try mode("\(data)/\(file)") == 0o600, "\(file)")
        }
        for directory in ["", "/groups", "/t-0", "/__consumer_offsets-0"] { #expect(try mode("\(data)\(directory)") == 0o700, "\(directory)") }
    }

    @Test("Options.permissions widens Samsa's files for a group or everyone, never the lock file")
    func widenedFiles() async throws {
        let dir = try TemporaryDirectory()
        let data = "\(dir.path)/data"
        let samsa = try Samsa.open(directory: data, options: Samsa.Options(permissions: .everyone))
        try samsa.createTopic("t")
        try samsa.commit(group: "g", offsets: [TopicPartition(topic: "t", partition: 0): 0])
        try samsa.close()
        let old = umask(0o022)
        defer { umask(old) }
        #expect(try mode("\(data)/topics.json") == 0o644)
        #expect(try mode("\(data)/__consumer_offsets-0/00000000000000000000.log") == 0o644)
        #expect(try mode("\(data)/groups") == 0o755)
        #expect(try mode("\(data)/.lock") == 0o600)
    }

    func mode(_ path: String) throws -> Int {
        try #require(FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int)
    }
}
