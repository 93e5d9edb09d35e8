import Foundation
import Glibc
import Testing
import SamsaTestSupport

/// Issue 26 #3: the read-only `samsa` tools (`topics list/describe`, `consume` without a group,
/// `dump-log`, `verify`) on a live `samsa broker`'s data directory: each succeeds, shows the broker's
/// topics with their configs and the records a real client (confluent-kafka) produced, and changes
/// nothing in the directory; the broker keeps serving. Then again after SIGTERM.
@Suite("samsa tools beside a live broker", .offCooperativePool, .serialized, .timeLimit(.minutes(3)))
struct ToolsBesideBrokerTests {
    static let topic = "beside"
    /// The configs the topic is created with, and how `topics describe` shows them.
    static let configs = ["retention.ms": "86400000", "segment.bytes": "1048576", "flush.messages": "1", "max.message.bytes": "20000"]
    static let described = ["flush=every-append", "segment-bytes=1048576", "retention-ms=86400000", "max-record-bytes=20000", "partitions=2"]

    @Test("topics list/describe, consume, dump-log and verify read a live broker's directory and change nothing in it; so after SIGTERM")
    func toolsBesideLiveBroker() throws {
        let dir = try TemporaryDirectory()
        let data = dir.path("data")
        let broker = try BrokerChild.serving(data, log: dir.path("broker.log"), arguments: ["--flush", "every-append"])
        let bootstrap = "127.0.0.1:\(broker.port)"

        let first = try ConfluentProducer.run(bootstrap: bootstrap, topic: Self.topic, create: Self.configs, from: 0, count: 40)
        #expect(first.delivered.count == 40, "\(first)")

        // Beside the live broker.
        let before = try BrokerDirectoryListing(data)
        try expectToolsRead(data, records: first.delivered, context: "beside the live broker")
        let after = try BrokerDirectoryListing(data)
        #expect(after.names == before.names, "names created or removed: \(after.names.symmetricDifference(before.names).sorted())")
        #expect(after.sizes == before.sizes, "\(after.sizes.filter { before.sizes[$0.key] != $0.value })")
        #expect(after.registry == before.registry, "topics.json changed")

        // The broker still serves: a second client's records follow the first's.
        let second = try ConfluentProducer.run(bootstrap: bootstrap, topic: Self.topic, create: nil, from: 40, count: 20)
        #expect(second.delivered.count == 20, "\(second)")
        for partition in [0, 1] {
            let firstEnd = first.delivered.filter { $0.partition == partition }.map(\.offset).max() ?? -1
            #expect(second.delivered.filter { $0.partition == partition }.allSatisfy { $0.offset > firstEnd })
        }

        // Stopped: the same, and now not a byte changes (nothing runs beside the tools).
        broker.stop()
        #expect(broker.exitStatus == 0, "\(String(decoding: (try? Data(contentsOf: URL(fileURLWithPath: dir.path("broker.log")))) ?? Data(), as: UTF8.self).suffix(2000))")
        let stopped = try snapshot(data)
        let stoppedRegistry = try Data(contentsOf: URL(fileURLWithPath: "\(data)/topics.json"))
        try expectToolsRead(data, records: first.delivered + second.delivered, context: "after SIGTERM")
        #expect(try snapshot(data) == stopped)
        #expect(try Data(contentsOf: URL(fileURLWithPath: "\(data)/topics.json")) == stoppedRegistry)
    }

    /// Runs every read-only tool on `data` and checks what each shows.
    func expectToolsRead(_ data: String, records: [ConfluentProducer.Delivery], context: String) throws {
        let listed = try runSamsa(["topics", "list", "--dir", data])
        #expect(listed.status == 0, "\(context): topics list: \(listed.stderr)")
        #expect(listed.stdout.split(separator: "\n").map(String.init).contains(Self.topic), "\(context): topics list printed \(listed.stdout)")

        let described = try runSamsa(["topics", "describe", "--dir", data, "--topic", Self.topic])
        #expect(described.status == 0, "\(context): topics describe: \(described.stderr)")
        let header = described.stdout.split(separator: "\n").first.map(String.init) ?? ""
        for setting in Self.described { #expect(header.split(separator: " ").contains(Substring(setting)), "\(context): describe lacks \(setting): \(header)") }
        for partition in [0, 1] {
            let end = (records.filter { $0.partition == partition }.map(\.offset).max() ?? -1) + 1
            #expect(described.stdout.contains("partition \(partition): start 0, end \(end),"), "\(context): \(described.stdout)")
        }

        let consumed = try runSamsa(["consume", "--dir", data, "--topic", Self.topic, "--from-beginning", "--json", "--max-records", "\(records.count)"])
        #expect(consumed.status == 0, "\(context): consume: \(consumed.stderr)")
        let read = consumed.stdout.split(separator: "\n").compactMap { line in
            try? JSONDecoder().decode(ConsumedRecord.self, from: Data(line.utf8))
        }
        #expect(
            Set(read.map { ConfluentProducer.Delivery(partition: $0.partition, offset: $0.offset, value: $0.value ?? "") }) == Set(records),
            "\(context): consume printed \(consumed.stdout.prefix(500))")

        let segment = "\(data)/\(Self.topic)-0/00000000000000000000.log"
        let dumped = try runSamsa(["dump-log", segment, "--records"])
        #expect(dumped.status == 0, "\(context): dump-log: \(dumped.stderr)")
        for record in records where record.partition == 0 { #expect(dumped.stdout.contains(record.value), "\(context): dump-log lacks \(record.value)") }

        let verified = try runSamsa(["verify", data])
        #expect(verified.status == 0, "\(context): verify: \(verified.stdout) \(verified.stderr)")
        #expect(verified.stdout.contains("\(Self.topic)-0:") && verified.stdout.contains("\(Self.topic)-1:"), "\(context): \(verified.stdout)")
    }

    struct ConsumedRecord: Decodable {
        var partition: Int
        var offset: Int64
        var value: String?
    }
}

/// What the broker leaves alone while nothing is produced, to compare around the tools: every name
/// (a tool must create and remove none), the sizes of files other than segments and the checkpoints
/// the broker rewrites on its own timer, and the registry's bytes.
struct BrokerDirectoryListing {
    var names: Set<String> = []
    var sizes: [String: Int] = [:]
    var registry: Data

    init(_ path: String) throws {
        let enumerator = try #require(FileManager.default.enumerator(atPath: path))
        while let name = enumerator.nextObject() as? String {
            names.insert(name)
            let last = name.split(separator: "/").last.map(String.init) ?? name
            let ownTimer = last.hasSuffix("-checkpoint") || last.hasSuffix(".snapshot")
            let segment = [".log", ".index", ".timeindex"].contains { last.hasSuffix($0) }
            guard !ownTimer && !segment else { continue }
            let attributes = try FileManager.default.attributesOfItem(atPath: "\(path)/\(name)")
            sizes[name] = (attributes[.size] as? Int) ?? 0
        }
        registry = try Data(contentsOf: URL(fileURLWithPath: "\(path)/topics.json"))
    }
}

/// confluent-kafka from the test virtualenv (`SAMSA_PYTHON`): creates the topic with configs (2
/// partitions) when asked, then produces `count` records with acks=all, record i to partition i % 2.
enum ConfluentProducer {
    struct Delivery: Codable, Hashable {
        var partition: Int
        var offset: Int64
        var value: String
    }

    struct Outcome: Decodable {
        var delivered: [Delivery]
        var errors: [String]
    }

    static let script = """
        import json, sys
        from confluent_kafka import Producer
        from confluent_kafka.admin import AdminClient, NewTopic
        bootstrap, topic, configs, first, count = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
        if configs is not None:
            admin = AdminClient({"bootstrap.servers": bootstrap})
            for future in admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1, config=configs)]).values():
                future.result(timeout=15)
        delivered, errors = [], []
        def report(error, message):
            if error is not None:
                errors.append(str(error))
            else:
                delivered.append({"partition": message.partition(), "offset": message.offset(), "value": message.value().decode()})
        producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5, "message.timeout.ms": 15000})
        for i in range(first, first + count):
            producer.produce(topic, key=f"key-{i}", value=f"value-{i}", partition=i % 2, on_delivery=report)
        left = producer.flush(20)
        if left:
            errors.append(f"{left} not delivered")
        print(json.dumps({"delivered": delivered, "errors": errors}))
        """

    static func run(bootstrap: String, topic: String, create configs: [String: String]?, from first: Int, count: Int) throws -> Outcome {
        let python = ProcessInfo.processInfo.environment["SAMSA_PYTHON"] ?? "python3"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        let configsJSON = try configs.map { String(decoding: try JSONEncoder().encode($0), as: UTF8.self) } ?? "null"
        process.arguments = [python, "-c", script, bootstrap, topic, configsJSON, "\(first)", "\(count)"]
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0, let outcome = try? JSONDecoder().decode(Outcome.self, from: stdout) else {
            throw BrokerChildFailure("confluent-kafka producer failed (\(process.terminationStatus)): \(stderr.suffix(2000))")
        }
        return outcome
    }
}
