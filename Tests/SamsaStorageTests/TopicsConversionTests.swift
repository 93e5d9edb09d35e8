import Foundation
import SamsaRecords
@testable import SamsaStorage
import SamsaTestSupport
import Testing

/// `TopicsConversion`: the embedded queue's first `topics.json` and a broker's `topic-configs.json` +
/// `topic-ids.json` become `topics.json` (format 2) in place, once, keeping every topic, setting, id
/// and partition count; hostile files are refused with `.corrupt` and change nothing; and a crash at
/// any file operation of a conversion (a kill, a power cut, a power cut that tears) leaves either the
/// old form intact or the new one complete, with nothing lost.
@Suite("Topic registry conversion", .offCooperativePool)
struct TopicsConversionTests {
    // MARK: Unit tests of each conversion

    @Test("the embedded queue's first layout: every topic kept, every setting under its Kafka name and back, the old bytes kept as topics.v1.json")
    func embeddedFirstLayout() throws {
        let dir = try TemporaryDirectory("samsa-conversion")
        try EmbeddedFixture.make(in: dir.path)
        let before = try DirectoryTree(dir.path)
        #expect(TopicsConversion.isNeeded(dir.path, files: PosixFileSystem()))

        let outcome = try TopicsConversion.convert(dir.path, files: PosixFileSystem())
        #expect(outcome?.topics == EmbeddedFixture.topics.count)
        let converted = try #require(try TopicsFile.read(dir.path, files: PosixFileSystem()))
        #expect(withoutIds(converted) == EmbeddedFixture.expected)
        // Each topic gets its own id in Kafka's text form.
        #expect(converted.values.allSatisfy { $0.id.map(TopicId.isValid) == true })
        #expect(Set(converted.values.compactMap(\.id)).count == converted.count)

        // And back: the Kafka-named settings give the embedded settings they came from.
        for topic in EmbeddedFixture.topics {
            let configs = try #require(converted[topic.name]).configs
            #expect(TopicConfigNames.flushPolicy(configs, fallback: .interval(milliseconds: 987_654)) == topic.flush, "\(topic.name)")
            let codec = configs[TopicConfigNames.compressionType] == "producer" ? CompressionCodec.none : configs[TopicConfigNames.compressionType].flatMap(CompressionCodec.init(name:))
            #expect(codec == topic.compression, "\(topic.name)")
            #expect(TopicConfigNames.limit(configs, TopicConfigNames.retentionBytes) == .some(topic.retentionBytes), "\(topic.name)")
            #expect(TopicConfigNames.limit(configs, TopicConfigNames.retentionMs) == .some(topic.retentionMilliseconds), "\(topic.name)")
            #expect(configs[TopicConfigNames.maxMessageBytes].flatMap { Int($0) } == topic.maxRecordBytes)
            #expect(configs[TopicConfigNames.segmentBytes].flatMap { Int($0) } == topic.segmentBytes)
            #expect((configs[TopicConfigNames.writeAheadBytes].flatMap { Int($0) } ?? 0) == topic.writeAheadBytes)
        }

        // The old bytes stay, under the backup's name; nothing else changed.
        let after = try DirectoryTree(dir.path)
        #expect(after.files[TopicsConversion.embeddedBackup] == before.files[TopicsFile.name])
        #expect(after.names == before.names.union([TopicsConversion.embeddedBackup]))
        #expect(!TopicsConversion.isNeeded(dir.path, files: PosixFileSystem()))

        // A second conversion finds nothing to do and writes nothing (the ids stay).
        #expect(try TopicsConversion.convert(dir.path, files: PosixFileSystem()) == nil)
        #expect(try DirectoryTree(dir.path) == after)
    }

    @Test("a read-only view of the first layout is what its conversion makes, and writes nothing")
    func embeddedReadOnlyView() throws {
        let dir = try TemporaryDirectory("samsa-conversion")
        try EmbeddedFixture.make(in: dir.path)
        let before = try DirectoryTree(dir.path)
        let viewed = try #require(try TopicsConversion.topics(dir.path, files: ReadOnlyFileSystem(base: PosixFileSystem())))
        #expect(withoutIds(viewed) == EmbeddedFixture.expected)
        #expect(try DirectoryTree(dir.path) == before)
        // The registry's own reader refuses the old layout instead of misreading it.
        #expect { try TopicsFile.read(dir.path, files: PosixFileSystem()) } throws: { ($0 as? StorageError)?.code == .corrupt }
    }

    @Test("a broker's files: ids and overrides kept, partition counts from the partition directories, topics without directories left out, the old files kept as .migrated")
    func brokerFiles() throws {
        let dir = try TemporaryDirectory("samsa-conversion")
        try BrokerFixture.make(in: dir.path)
        let before = try DirectoryTree(dir.path)
        #expect(TopicsConversion.isNeeded(dir.path, files: PosixFileSystem()))
        #expect(try TopicsConversion.topics(dir.path, files: ReadOnlyFileSystem(base: PosixFileSystem())) == BrokerFixture.expected)
        #expect(try DirectoryTree(dir.path) == before)

        let outcome = try TopicsConversion.convert(dir.path, files: PosixFileSystem(), adoptingPartitions: true)
        #expect(outcome?.topics == BrokerFixture.expected.count)
        #expect(try TopicsFile.read(dir.path, files: PosixFileSystem()) == BrokerFixture.expected)
        let after = try DirectoryTree(dir.path)
        for name in [TopicsConversion.brokerConfigs, TopicsConversion.brokerIds] {
            #expect(after.files[name] == nil)
            #expect(after.files[name + TopicsConversion.migratedSuffix] == before.files[name])
        }
        // Every partition directory and segment is as it was.
        #expect(before.names.filter { !$0.hasPrefix("topic-") }.allSatisfy { after.files[$0] == before.files[$0] && after.names.contains($0) })
        #expect(!TopicsConversion.isNeeded(dir.path, files: PosixFileSystem()))
        #expect(try TopicsConversion.convert(dir.path, files: PosixFileSystem(), adoptingPartitions: true) == nil)
        #expect(try DirectoryTree(dir.path) == after)
    }

    @Test("only one of a broker's files: the other's part is empty")
    func brokerWithOneFile() throws {
        for kept in [TopicsConversion.brokerConfigs, TopicsConversion.brokerIds] {
            let dir = try TemporaryDirectory("samsa-conversion")
            try BrokerFixture.make(in: dir.path)
            let other = kept == TopicsConversion.brokerConfigs ? TopicsConversion.brokerIds : TopicsConversion.brokerConfigs
            try FileManager.default.removeItem(atPath: "\(dir.path)/\(other)")
            _ = try TopicsConversion.convert(dir.path, files: PosixFileSystem())
            let converted = try #require(try TopicsFile.read(dir.path, files: PosixFileSystem()))
            #expect(Set(converted.keys) == Set(BrokerFixture.expected.keys))
            if kept == TopicsConversion.brokerIds {
                // Without the configs file, partition counts are the directories' alone.
                #expect(converted.mapValues(\.partitions) == ["clicks": 3, "plain": 1, "wide": 2, "noconfig": 1, "orphan": 1])
                #expect(converted.values.allSatisfy { $0.configs.isEmpty })
                #expect(converted.mapValues(\.id) == BrokerFixture.expected.mapValues(\.id))
            } else {
                #expect(converted.values.allSatisfy { $0.id == nil })
                #expect(converted.mapValues(\.partitions) == BrokerFixture.expected.mapValues(\.partitions))
                #expect(converted.mapValues(\.configs) == BrokerFixture.expected.mapValues(\.configs))
            }
        }
    }

    @Test("a directory of partition directories and no registry: adopted by a broker's open, left alone by the embedded queue's")
    func partitionDirectoriesOnly() throws {
        let dir = try TemporaryDirectory("samsa-conversion")
        try PartitionsOnlyFixture.make(in: dir.path)
        let before = try DirectoryTree(dir.path)
        #expect(try TopicsConversion.convert(dir.path, files: PosixFileSystem()) == nil)
        #expect(try DirectoryTree(dir.path) == before)
        #expect(try TopicsConversion.convert(dir.path, files: PosixFileSystem(), adoptingPartitions: true)?.topics == 2)
        #expect(try TopicsFile.read(dir.path, files: PosixFileSystem()) == PartitionsOnlyFixture.expected)
    }

    @Test("a directory converted already is left alone, byte for byte")
    func convertedAlready() throws {
        let dir = try TemporaryDirectory("samsa-conversion")
        try BrokerFixture.makePartitionDirectories(in: dir.path)
        try TopicsFile.write(BrokerFixture.expected, dir.path, files: PosixFileSystem())
        let before = try DirectoryTree(dir.path)
        for adopting in [false, true] {
            #expect(!TopicsConversion.isNeeded(dir.path, files: PosixFileSystem()))
            #expect(try TopicsConversion.convert(dir.path, files: PosixFileSystem(), adoptingPartitions: adopting) == nil)
            #expect(try DirectoryTree(dir.path) == before)
        }
    }

    @Test("the leftovers of a crash: a broker's files beside a complete topics.json are renamed .migrated, the registry kept as it is")
    func brokerLeftovers() throws {
        let dir = try TemporaryDirectory("samsa-conversion")
        try BrokerFixture.make(in: dir.path)
        // The registry as the conversion wrote it (with a changed id: it must win over the old files).
        var registry = BrokerFixture.expected
        registry["orphan"]?.id = TopicId.random()
        try TopicsFile.write(registry, dir.path, files: PosixFileSystem())
        let before = try DirectoryTree(dir.path)
        #expect(TopicsConversion.isNeeded(dir.path, files: PosixFileSystem()))
        #expect(try TopicsConversion.convert(dir.path, files: PosixFileSystem(), adoptingPartitions: true) == nil)
        let after = try DirectoryTree(dir.path)
        #expect(after.files[TopicsFile.name] == before.files[TopicsFile.name])
        for name in [TopicsConversion.brokerConfigs, TopicsConversion.brokerIds] {
            #expect(after.files[name] == nil)
            #expect(after.files[name + TopicsConversion.migratedSuffix] == before.files[name])
        }
        #expect(!TopicsConversion.isNeeded(dir.path, files: PosixFileSystem()))
    }

    @Test("the leftovers of a crash: topics.v1.json beside the first layout is kept as it is and the conversion finishes")
    func embeddedLeftovers() throws {
        let dir = try TemporaryDirectory("samsa-conversion")
        try EmbeddedFixture.make(in: dir.path)
        try FileManager.default.copyItem(atPath: "\(dir.path)/\(TopicsFile.name)", toPath: "\(dir.path)/\(TopicsConversion.embeddedBackup)")
        let before = try DirectoryTree(dir.path)
        #expect(try TopicsConversion.convert(dir.path, files: PosixFileSystem()) != nil)
        #expect(withoutIds(try #require(try TopicsFile.read(dir.path, files: PosixFileSystem()))) == EmbeddedFixture.expected)
        #expect(try DirectoryTree(dir.path).files[TopicsConversion.embeddedBackup] == before.files[TopicsConversion.embeddedBackup])
    }

    // MARK: Hostile inputs

    @Test("hostile registries are refused with .corrupt, never a trap, and nothing on disk changes", arguments: HostileCase.all)
    func hostile(_ hostile: HostileCase) throws {
        let dir = try TemporaryDirectory("samsa-conversion")
        try hostile.make(in: dir.path)
        let before = try DirectoryTree(dir.path)
        for adopting in [false, true] {
            #expect {
                try TopicsConversion.convert(dir.path, files: PosixFileSystem(), adoptingPartitions: adopting)
            } throws: {
                ($0 as? StorageError)?.code == .corrupt
            }
            #expect(try DirectoryTree(dir.path) == before)
        }
        #expect { try TopicsConversion.topics(dir.path, files: ReadOnlyFileSystem(base: PosixFileSystem())) } throws: {
            ($0 as? StorageError)?.code == .corrupt
        }
        #expect(try DirectoryTree(dir.path) == before)
    }

    @Test("a partition directory numbered 2^31-1 (or any past a registry's million) is left alone, not an overflow trap")
    func partitionDirectoryAtInt32Max() async {
        // In a child process: an overflow trap would take the whole test run with it.
        await #expect(processExitsWith: .success) {
            let dir = try TemporaryDirectory("samsa-conversion")
            try BrokerFixture.make(in: dir.path)
            for name in ["clicks-2147483647", "clicks-1000000"] {
                try FileManager.default.createDirectory(atPath: "\(dir.path)/\(name)", withIntermediateDirectories: false)
            }
            let listed = try LogManager.partitionDirectories(in: dir.path, files: PosixFileSystem())
            guard listed.ignored.contains("clicks-2147483647"), listed.ignored.contains("clicks-1000000"),
                !listed.partitions.contains(where: { $0.topic == "clicks" && $0.partition >= 1_000_000 })
            else { exit(2) }
            let viewed = try TopicsConversion.topics(dir.path, files: ReadOnlyFileSystem(base: PosixFileSystem()))
            let converted = try TopicsConversion.convert(dir.path, files: PosixFileSystem(), adoptingPartitions: true)
            guard converted != nil, (viewed?["clicks"]?.partitions ?? 0) < 1_000_000, FileManager.default.fileExists(atPath: "\(dir.path)/clicks-2147483647")
            else { exit(3) }
        }
    }

    // MARK: The crash test: a kill or a power cut at every file operation

    @Test("a crash at every file operation of a conversion leaves the old form intact or the new one complete; nothing is lost", arguments: CrashFixture.allCases)
    func crashAtEveryOperation(_ fixture: CrashFixture) throws {
        // How many mutating file operations a whole conversion makes: each is a cut point.
        let points = try fixture.cutPoints()
        #expect(points >= fixture.minimumCutPoints, "\(fixture): \(points) cut points")
        print("\(fixture): \(points) cut points")
        var cases = 0
        for cut in 0..<points {
            for mode in CutMode.allCases {
                try crashThenRecover(fixture, firstCut: cut, mode: mode, secondCut: nil)
                cases += 1
            }
            // A second crash during the conversion that finishes the first.
            for secondCut in 0..<points {
                try crashThenRecover(fixture, firstCut: cut, mode: .powerCut, secondCut: secondCut)
                cases += 1
            }
        }
        print("\(fixture): \(cases) crashes checked")
    }

    /// Converts `fixture`'s old form with the power off after `firstCut` operations, lets `mode` decide
    /// what survived, checks it, optionally crashes the next conversion too, then converts to the end.
    func crashThenRecover(_ fixture: CrashFixture, firstCut: Int, mode: CutMode, secondCut: Int?) throws {
        let dir = try TemporaryDirectory("samsa-conversion-crash")
        try fixture.make(in: dir.path)
        let original = try DirectoryTree(dir.path)
        let context = "\(fixture), cut at operation \(firstCut) (\(mode))\(secondCut.map { ", then at \($0) of the next conversion" } ?? "")"

        var idsSeen: [String: String]? = nil
        for (index, cut) in [firstCut, secondCut].enumerated() {
            guard let cut else { continue }
            let files = FaultInjectingFileSystem()
            files.cutPower(afterOperations: cut)
            let failure = Result { () throws(StorageError) in try TopicsConversion.convert(dir.path, files: files, adoptingPartitions: fixture.adopting) }.failure
            guard files.powerIsOff else {
                // Only the conversion finishing a crashed one may be shorter than the cut.
                #expect(index == 1 && failure == nil, "\(context): the conversion ended before the cut (\(failure.map { "\($0)" } ?? "no error"))")
                break
            }
            mode.apply(to: files, seed: UInt64(firstCut * 1000 + index))
            idsSeen = try checkSurvivor(fixture, dir.path, original: original, idsSeen: idsSeen, context: "\(context), after crash \(index + 1)")
        }

        // The next open converts to the end, and keeps the ids of a registry already written.
        _ = try TopicsConversion.convert(dir.path, files: FaultInjectingFileSystem(), adoptingPartitions: fixture.adopting)
        let finished = try DirectoryTree(dir.path)
        let topics = try #require(try TopicsFile.read(dir.path, files: PosixFileSystem()), "\(context): no registry after the conversion")
        #expect(fixture.comparable(topics) == fixture.expected, "\(context)")
        if let idsSeen { #expect(topics.compactMapValues(\.id) == idsSeen, "\(context): ids changed after the registry was written") }
        #expect(!TopicsConversion.isNeeded(dir.path, files: PosixFileSystem()), "\(context)")
        for (name, bytes) in original.files where fixture.oldFiles.contains(name) {
            #expect(finished.files[fixture.keptName(of: name)] == bytes, "\(context): \(name) not kept as \(fixture.keptName(of: name))")
        }
        #expect(finished.names.filter { $0.hasSuffix(".tmp") }.isEmpty, "\(context): temporary files left: \(finished.names.filter { $0.hasSuffix(".tmp") })")
        try expectNothingLost(fixture, original: original, now: finished, context: context)
    }

    /// What a crash left: readable as the expected topics, either the old form intact or the new one
    /// complete, and nothing lost. Returns the ids of a registry written already (nil if none).
    func checkSurvivor(
        _ fixture: CrashFixture, _ directory: String, original: DirectoryTree, idsSeen: [String: String]?, context: String
    ) throws -> [String: String]? {
        let now = try DirectoryTree(directory)
        try expectNothingLost(fixture, original: original, now: now, context: context)
        // Whatever survived reads (read-only) as the topics the conversion makes (a directory of
        // partition directories alone has no registry to read until a broker adopts them).
        let viewed = try TopicsConversion.topics(directory, files: ReadOnlyFileSystem(base: PosixFileSystem()))
        if fixture != .partitionsOnly || viewed != nil {
            #expect(viewed.map(fixture.comparable) == fixture.expected, "\(context): read as \(String(describing: viewed))")
        }

        let newForm = try TopicsFile.contents(directory, files: PosixFileSystem())
        switch (fixture, newForm) {
        case (_, .topics(let topics)?):
            // The new form is complete; the old files are kept (a broker's perhaps not yet renamed).
            #expect(fixture.comparable(topics) == fixture.expected, "\(context)")
            for name in fixture.oldFiles {
                let kept = [name, fixture.keptName(of: name)].filter { now.files[$0] == original.files[name] }
                #expect(!kept.isEmpty, "\(context): \(name) is neither itself nor \(fixture.keptName(of: name))")
            }
            if let idsSeen { #expect(topics.compactMapValues(\.id) == idsSeen, "\(context): ids changed") }
            return topics.compactMapValues(\.id)
        case (.embedded, .legacy(let bytes)?):
            // The old form is intact (a backup, if written, holds the same bytes).
            #expect(bytes == original.files[TopicsFile.name], "\(context)")
            if let backup = now.files[TopicsConversion.embeddedBackup] { #expect(backup == original.files[TopicsFile.name], "\(context)") }
            return idsSeen
        case (.broker, nil), (.partitionsOnly, nil):
            for name in fixture.oldFiles { #expect(now.files[name] == original.files[name], "\(context): \(name) changed before the registry was written") }
            return idsSeen
        default:
            Issue.record("\(context): unexpected state \(String(describing: newForm))")
            return idsSeen
        }
    }

    /// Every name that was there is still there with its bytes, or (an old registry file) under the
    /// name the conversion keeps it as; the only new names are the conversion's.
    func expectNothingLost(_ fixture: CrashFixture, original: DirectoryTree, now: DirectoryTree, context: String) throws {
        for name in original.names {
            if now.names.contains(name) && now.files[name] == original.files[name] { continue }
            if fixture.oldFiles.contains(name) && now.files[fixture.keptName(of: name)] == original.files[name] { continue }
            Issue.record("\(context): \(name) is lost or changed")
        }
        let conversions = Set(fixture.oldFiles.map(fixture.keptName(of:)) + [TopicsFile.name, TopicsFile.name + ".tmp", TopicsConversion.embeddedBackup + ".tmp"])
        let strangers = now.names.subtracting(original.names).subtracting(conversions)
        #expect(strangers.isEmpty, "\(context): names no conversion writes: \(strangers.sorted())")
    }
}

// MARK: - Fixtures

/// One topic of the embedded queue's first layout.
struct EmbeddedV1Topic {
    var name: String
    var partitions: Int
    var flush: FlushPolicy
    var compression: CompressionCodec
    var maxRecordBytes: Int
    var segmentBytes: Int
    var retentionBytes: Int64?
    var retentionMilliseconds: Int64?
    var writeAheadBytes: Int

    /// As the first `TopicRegistry` wrote it (JSONEncoder, sorted keys, absent retentions left out).
    var json: String {
        var fields = [
            "\"compression\" : \"\(compression)\"", "\"flush\" : \"\(flush)\"", "\"maxRecordBytes\" : \(maxRecordBytes)", "\"partitions\" : \(partitions)",
        ]
        if let retentionBytes { fields.append("\"retentionBytes\" : \(retentionBytes)") }
        if let retentionMilliseconds { fields.append("\"retentionMilliseconds\" : \(retentionMilliseconds)") }
        fields += ["\"segmentBytes\" : \(segmentBytes)", "\"writeAheadBytes\" : \(writeAheadBytes)"]
        return "\"\(name)\" : {\n    " + fields.joined(separator: ",\n    ") + "\n  }"
    }
}

private let never = "9223372036854775807"

enum EmbeddedFixture {
    /// Every flush policy, every codec, retention absent, set and zero, write-ahead on and off.
    static let topics = [
        EmbeddedV1Topic(
            name: "orders", partitions: 3, flush: .everyAppend, compression: .none, maxRecordBytes: 1 << 20, segmentBytes: 1 << 30, retentionBytes: nil,
            retentionMilliseconds: nil, writeAheadBytes: 0),
        EmbeddedV1Topic(
            name: "metrics", partitions: 1, flush: .messages(count: 100), compression: .lz4, maxRecordBytes: 65536, segmentBytes: 1 << 20,
            retentionBytes: 10 << 20, retentionMilliseconds: 3_600_000, writeAheadBytes: 0),
        EmbeddedV1Topic(
            name: "audit.log", partitions: 2, flush: .interval(milliseconds: 250), compression: .zstd, maxRecordBytes: 4096, segmentBytes: 16384,
            retentionBytes: nil, retentionMilliseconds: 604_800_000, writeAheadBytes: 1 << 20),
        EmbeddedV1Topic(
            name: "scratch_1-x", partitions: 1, flush: .never, compression: .none, maxRecordBytes: 1000, segmentBytes: 8192, retentionBytes: 0,
            retentionMilliseconds: nil, writeAheadBytes: 0),
    ]

    /// The registry's topics without their (random) ids, written out by hand.
    static let expected: [String: StoredTopic] = [
        "orders": StoredTopic(
            id: nil, partitions: 3,
            configs: [
                "flush.messages": "1", "flush.ms": never, "compression.type": "producer", "max.message.bytes": "1048576",
                "segment.bytes": "1073741824", "retention.bytes": "-1", "retention.ms": "-1",
            ]),
        "metrics": StoredTopic(
            id: nil, partitions: 1,
            configs: [
                "flush.messages": "100", "flush.ms": never, "compression.type": "lz4", "max.message.bytes": "65536", "segment.bytes": "1048576",
                "retention.bytes": "10485760", "retention.ms": "3600000",
            ]),
        "audit.log": StoredTopic(
            id: nil, partitions: 2,
            configs: [
                "flush.messages": never, "flush.ms": "250", "compression.type": "zstd", "max.message.bytes": "4096", "segment.bytes": "16384",
                "retention.bytes": "-1", "retention.ms": "604800000", "samsa.write.ahead.bytes": "1048576",
            ]),
        "scratch_1-x": StoredTopic(
            id: nil, partitions: 1,
            configs: [
                "flush.messages": never, "flush.ms": never, "compression.type": "producer", "max.message.bytes": "1000", "segment.bytes": "8192",
                "retention.bytes": "0", "retention.ms": "-1",
            ]),
    ]

    static var json: String { "{\n  " + topics.sorted { $0.name < $1.name }.map(\.json).joined(separator: ",\n  ") + "\n}" }

    /// The first layout's registry and its topics' partition directories, a segment in one.
    static func make(in directory: String) throws {
        try write(json, "\(directory)/\(TopicsFile.name)")
        for topic in topics {
            for partition in 0..<topic.partitions { try makeDirectory("\(directory)/\(topic.name)-\(partition)") }
        }
        try write("not a real segment, but bytes that must stay", "\(directory)/orders-0/00000000000000000000.log")
    }
}

enum BrokerFixture {
    static let ids = ["clicks": "AAAAAAAAQACAAAAAAAAAAQ", "plain": "q83vEjRWeJCrze8SNFZ4kA", "pending": "EjRWeJCrze8SNFZ4kKvN7w", "noconfig": "_____________________w"]

    static let configs = """
        {"clicks":{"config":{"overrides":{"retention.ms":"86400000","segment.bytes":"1048576"}},"partitions":2},\
        "pending":{"config":{"overrides":{"flush.messages":"1"}},"partitions":4},\
        "plain":{"config":{"overrides":{}},"partitions":1},\
        "wide":{"config":{"overrides":{"cleanup.policy":"delete","max.message.bytes":"2000000"}},"partitions":5}}
        """

    static var idsJSON: String { "{" + ids.sorted { $0.key < $1.key }.map { "\"\($0.key)\":\"\($0.value)\"" }.joined(separator: ",") + "}" }

    /// clicks has a partition directory more than its entry says; wide fewer; pending none (left
    /// out); noconfig only an id; orphan neither (adopted without an id).
    static let partitionDirectories = ["clicks-0", "clicks-1", "clicks-2", "plain-0", "wide-0", "wide-1", "noconfig-0", "orphan-0"]

    static let expected: [String: StoredTopic] = [
        "clicks": StoredTopic(id: ids["clicks"], partitions: 3, configs: ["retention.ms": "86400000", "segment.bytes": "1048576"]),
        "plain": StoredTopic(id: ids["plain"], partitions: 1, configs: [:]),
        "wide": StoredTopic(id: nil, partitions: 5, configs: ["cleanup.policy": "delete", "max.message.bytes": "2000000"]),
        "noconfig": StoredTopic(id: ids["noconfig"], partitions: 1, configs: [:]),
        "orphan": StoredTopic(id: nil, partitions: 1, configs: [:]),
    ]

    static func makePartitionDirectories(in directory: String) throws {
        for name in partitionDirectories { try makeDirectory("\(directory)/\(name)") }
        try write("segment bytes", "\(directory)/clicks-1/00000000000000000000.log")
        try write("index bytes", "\(directory)/clicks-1/00000000000000000000.index")
    }

    static func make(in directory: String) throws {
        try makePartitionDirectories(in: directory)
        try write(configs, "\(directory)/\(TopicsConversion.brokerConfigs)")
        try write(idsJSON, "\(directory)/\(TopicsConversion.brokerIds)")
    }
}

enum PartitionsOnlyFixture {
    static let expected: [String: StoredTopic] = ["a": StoredTopic(id: nil, partitions: 2), "b.c": StoredTopic(id: nil, partitions: 1)]

    static func make(in directory: String) throws {
        for name in ["a-0", "a-1", "b.c-0"] { try makeDirectory("\(directory)/\(name)") }
        try write("segment", "\(directory)/a-1/00000000000000000000.log")
    }
}

/// A conversion to crash, with what it must keep.
enum CrashFixture: String, CaseIterable, CustomTestStringConvertible {
    case embedded, broker, partitionsOnly

    var testDescription: String { rawValue }

    var adopting: Bool { self != .embedded }

    /// Two atomic writes (temp file, write, fsync, rename, directory fsync) for the embedded layout;
    /// one and two renames with a directory fsync for a broker's.
    var minimumCutPoints: Int {
        switch self {
        case .embedded: 10
        case .broker: 8
        case .partitionsOnly: 5
        }
    }

    func make(in directory: String) throws {
        switch self {
        case .embedded: try EmbeddedFixture.make(in: directory)
        case .broker: try BrokerFixture.make(in: directory)
        case .partitionsOnly: try PartitionsOnlyFixture.make(in: directory)
        }
    }

    var expected: [String: StoredTopic] {
        switch self {
        case .embedded: EmbeddedFixture.expected
        case .broker: BrokerFixture.expected
        case .partitionsOnly: PartitionsOnlyFixture.expected
        }
    }

    /// The embedded conversion makes random ids: compared without them (they are checked for form).
    func comparable(_ topics: [String: StoredTopic]) -> [String: StoredTopic] {
        guard self == .embedded else { return topics }
        let valid = topics.values.allSatisfy { $0.id.map(TopicId.isValid) ?? true }
        return valid ? withoutIds(topics) : topics
    }

    /// The registry files the conversion replaces (kept under another name).
    var oldFiles: Set<String> {
        switch self {
        case .embedded: [TopicsFile.name]
        case .broker: [TopicsConversion.brokerConfigs, TopicsConversion.brokerIds]
        case .partitionsOnly: []
        }
    }

    func keptName(of name: String) -> String {
        name == TopicsFile.name ? TopicsConversion.embeddedBackup : name + TopicsConversion.migratedSuffix
    }

    /// The mutating file operations of one whole conversion (the power-cut model's count).
    func cutPoints() throws -> Int {
        for operations in 0..<200 {
            let dir = try TemporaryDirectory("samsa-conversion-count")
            try make(in: dir.path)
            let files = FaultInjectingFileSystem()
            files.cutPower(afterOperations: operations)
            _ = try? TopicsConversion.convert(dir.path, files: files, adoptingPartitions: adopting)
            if !files.powerIsOff { return operations }
        }
        throw StorageError(.invalidArgument, path: "", "the conversion never finished within 200 operations")
    }
}

/// What a crash leaves of the writes no sync covered.
enum CutMode: CaseIterable, CustomStringConvertible {
    /// kill -9: the page cache keeps every write made.
    case kill
    /// The machine stops: every unsynced write and truncation is undone.
    case powerCut
    /// Each file keeps a random prefix of its unsynced writes, the last one torn (seeded).
    case tornPowerCut

    var description: String {
        switch self {
        case .kill: "kill"
        case .powerCut: "power cut"
        case .tornPowerCut: "torn power cut"
        }
    }

    func apply(to files: FaultInjectingFileSystem, seed: UInt64) {
        switch self {
        case .kill: _ = files.crashProcess()
        case .powerCut: files.simulatePowerCut()
        case .tornPowerCut:
            var generator = SplitMix64(seed: seed)
            files.simulatePowerCut(tearing: &generator)
        }
    }
}

/// A small seeded generator, so a torn power cut replays.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// A hostile directory: files and partition directories no Samsa writes.
struct HostileCase: Sendable, CustomTestStringConvertible {
    var testDescription: String
    var files: [String: String]
    var directories: [String] = []

    func make(in directory: String) throws {
        for name in directories { try makeDirectory("\(directory)/\(name)") }
        for (name, text) in files { try write(text, "\(directory)/\(name)") }
    }

    static func v1(_ description: String, _ json: String, directories: [String] = []) -> HostileCase {
        HostileCase(testDescription: "first layout: \(description)", files: [TopicsFile.name: json], directories: directories)
    }

    static func v1Topic(_ name: String = "t", partitions: String = "1", flush: String = "every-append") -> String {
        "{\"\(name)\":{\"partitions\":\(partitions),\"flush\":\"\(flush)\",\"compression\":\"none\",\"maxRecordBytes\":1000,\"segmentBytes\":8192}}"
    }

    static func v2(_ description: String, _ json: String) -> HostileCase {
        HostileCase(testDescription: "format 2: \(description)", files: [TopicsFile.name: json])
    }

    static func v2Topic(_ name: String = "t", id: String? = "AAAAAAAAQACAAAAAAAAAAQ", partitions: String = "1", configs: String = "{}") -> String {
        "{\"format\":2,\"topics\":{\"\(name)\":{\(id.map { "\"id\":\"\($0)\"," } ?? "")\"partitions\":\(partitions),\"configs\":\(configs)}}}"
    }

    static func broker(_ description: String, configs: String? = nil, ids: String? = nil, directories: [String] = ["t-0"]) -> HostileCase {
        var files: [String: String] = [:]
        files[TopicsConversion.brokerConfigs] = configs
        files[TopicsConversion.brokerIds] = ids
        return HostileCase(testDescription: "broker: \(description)", files: files, directories: directories)
    }

    static func brokerEntry(_ name: String = "t", partitions: String = "1", overrides: String = "{}") -> String {
        "{\"\(name)\":{\"partitions\":\(partitions),\"config\":{\"overrides\":\(overrides)}}}"
    }

    static let big = String(repeating: "x", count: 32 * 1024)
    static let validEntry = "{\"partitions\":1,\"flush\":\"every-append\",\"compression\":\"none\",\"maxRecordBytes\":1000,\"segmentBytes\":8192}"

    static let all: [HostileCase] = [
        v1("empty file", ""),
        v1("cut short", String(v1Topic().dropLast(9))),
        v1("not an object", "[1,2,3]"),
        v1("control bytes", "{\"t\":\u{1}\u{2}}"),
        v1("an unknown flush policy", v1Topic(flush: "sometimes")),
        v1("a 32 KB flush policy", v1Topic(flush: "messages:" + String(repeating: "9", count: 32 * 1024))),
        v1("2^31-1 partitions", v1Topic(partitions: "2147483647")),
        v1("partitions past Int64", v1Topic(partitions: "99999999999999999999")),
        v1("-1 partitions", v1Topic(partitions: "-1")),
        v1("0 partitions", v1Topic(partitions: "0")),
        v1("a topic name with a slash", v1Topic("../etc")),
        v1("an empty topic name", v1Topic("")),
        v1("a 250-character topic name", v1Topic(String(repeating: "n", count: 250))),
        v1("a non-ASCII topic name", v1Topic("t\u{f8}pic")),
        v1("a duplicated topic", "{\"t\":\(validEntry),\"t\":\(validEntry)}"),
        v2("empty file", ""),
        v2("cut short", String(v2Topic().dropLast(3))),
        v2("format 3", "{\"format\":3,\"topics\":{}}"),
        v2("topics not an object", "{\"format\":2,\"topics\":[]}"),
        v2("2^31-1 partitions", v2Topic(partitions: "2147483647")),
        v2("partitions past Int32", v2Topic(partitions: "2147483648")),
        v2("0 partitions", v2Topic(partitions: "0")),
        v2("a 32 KB config value", v2Topic(configs: "{\"retention.ms\":\"\(big)\"}")),
        v2("a 256-byte config name", v2Topic(configs: "{\"\(String(repeating: "c", count: 256))\":\"1\"}")),
        v2("an invalid topic name", v2Topic("a b")),
        v2("an id that is not 22 characters", v2Topic(id: "abc")),
        v2("a 22-character id that is not base64", v2Topic(id: "!!!!!!!!!!!!!!!!!!!!!!")),
        v2("a duplicated topic", "{\"format\":2,\"topics\":{\"t\":{\"partitions\":1,\"configs\":{}},\"t\":{\"partitions\":2,\"configs\":{}}}}"),
        v2("a duplicated format", "{\"format\":2,\"format\":2,\"topics\":{}}"),
        broker("configs empty", configs: ""),
        broker("configs cut short", configs: String(brokerEntry().dropLast(4))),
        broker("configs not an object", configs: "\"t\""),
        broker("ids empty", ids: ""),
        broker("ids cut short", ids: "{\"t\":\"AAAAAAAAQACAA"),
        broker("ids not strings", ids: "{\"t\":5}"),
        broker("a 32 KB config value", configs: brokerEntry(overrides: "{\"retention.ms\":\"\(big)\"}")),
        broker("2^31-1 partitions", configs: brokerEntry(partitions: "2147483647")),
        broker("partitions past Int32", configs: brokerEntry(partitions: "2147483648")),
        broker("an id that is not 22 characters", ids: "{\"t\":\"abc\"}"),
        broker("a 22-character id that is not base64", ids: "{\"t\":\"!!!!!!!!!!!!!!!!!!!!!!\"}"),
        broker("a duplicated topic in configs", configs: "{\"t\":{\"partitions\":1,\"config\":{\"overrides\":{}}},\"t\":{\"partitions\":2,\"config\":{\"overrides\":{}}}}"),
        broker("a duplicated topic in ids", ids: "{\"t\":\"AAAAAAAAQACAAAAAAAAAAQ\",\"t\":\"q83vEjRWeJCrze8SNFZ4kA\"}"),
        broker("an invalid topic name in configs", configs: brokerEntry("a b")),
    ]
}

// MARK: - Helpers

/// Every name below a directory (directories end in "/") and each file's bytes.
struct DirectoryTree: Equatable {
    var names: Set<String> = []
    var files: [String: [UInt8]] = [:]

    init(_ path: String) throws {
        for name in try FileManager.default.subpathsOfDirectory(atPath: path) {
            var isDirectory: ObjCBool = false
            _ = FileManager.default.fileExists(atPath: "\(path)/\(name)", isDirectory: &isDirectory)
            if isDirectory.boolValue {
                names.insert(name + "/")
            } else {
                names.insert(name)
                files[name] = Array(try Data(contentsOf: URL(fileURLWithPath: "\(path)/\(name)")))
            }
        }
    }
}

func withoutIds(_ topics: [String: StoredTopic]) -> [String: StoredTopic] {
    topics.mapValues { StoredTopic(id: nil, partitions: $0.partitions, configs: $0.configs) }
}

private func write(_ text: String, _ path: String) throws {
    try Data(text.utf8).write(to: URL(fileURLWithPath: path))
}

private func makeDirectory(_ path: String) throws {
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
}

extension Result {
    var failure: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }
}
