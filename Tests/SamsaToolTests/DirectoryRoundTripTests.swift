import Foundation
import Glibc
import Synchronization
import Testing
import SamsaTestSupport

/// Issue 26's round trips with the real `samsa` binary and a real client (confluent-kafka from
/// `SAMSA_PYTHON`, Tests/Interop/roundtrip_client.py): one data directory made by the embedded queue
/// through the CLI, served by `samsa broker`, read and written again by the CLI once the broker stops,
/// served again; the locks that keep a group's offsets from being committed on both sides at once;
/// and a directory in the embedded queue's first layout opened by a broker.
@Suite("One data directory: the CLI, samsa broker and back", .offCooperativePool, .serialized, .timeLimit(.minutes(3)))
struct DirectoryRoundTripTests {
    static let orders = "orders"
    static let shipments = "shipments"
    static let group = "billing"

    /// The settings `orders` is created with through the CLI, and what a broker's DescribeConfigs
    /// must show for them under Kafka's names.
    static let ordersSettings = [
        "--partitions", "3", "--flush", "messages:7", "--retention-ms", "604800000", "--segment-bytes", "1048576",
        "--compression", "lz4", "--max-record-bytes", "65536",
    ]
    static let ordersKafkaConfigs = [
        "retention.ms": "604800000", "segment.bytes": "1048576", "flush.messages": "7", "compression.type": "lz4",
        "max.message.bytes": "65536",
    ]
    /// The configs a client creates `shipments` with through the broker.
    static let shipmentsConfigs = ["retention.ms": "3600000", "segment.bytes": "524288", "cleanup.policy": "delete", "max.message.bytes": "32768"]

    @Test("embedded → broker: a confluent-kafka group resumes exactly at the offsets `samsa consume --group` committed; the topic's CLI settings show under Kafka's names")
    func embeddedToBroker() throws {
        let dir = try TemporaryDirectory()
        let data = dir.path("data")
        let embedded = try EmbeddedOrders.make(data)

        let broker = try BrokerChild.serving(data, log: dir.path("broker.log"))
        // auto.offset.reset=earliest: a commit the broker did not find would show as records read again.
        let resumed = try RoundTripClient.consume(broker.bootstrap, group: Self.group, topics: [Self.orders], count: embedded.afterCommits.count)
        #expect(resumed.errors == [], "\(resumed.errors)")
        #expect(Set(resumed.records) == Set(embedded.afterCommits), "received \(resumed.records.sorted()) expected \(embedded.afterCommits.sorted())")
        #expect(resumed.records.count == embedded.afterCommits.count, "records received twice: \(resumed.records.sorted())")

        let described = try RoundTripClient.describe(broker.bootstrap, topic: Self.orders)
        #expect(described.errors == [], "\(described.errors)")
        for (name, value) in Self.ordersKafkaConfigs { #expect(described.configs[name] == value, "\(name): \(described.configs[name] ?? "absent")") }
        // A client changes one setting (IncrementalAlterConfigs): the others stay as the CLI made them.
        let altered = try RoundTripClient.alter(broker.bootstrap, topic: Self.orders, configs: ["retention.ms": "86400000"])
        #expect(altered.errors == [], "\(altered.errors)")

        // The broker's client committed further: to the end of every partition.
        #expect(resumed.committed == embedded.ends, "\(resumed.committed)")
        let viaBroker = try groupOffsets(["--bootstrap", broker.bootstrap], group: Self.group)
        #expect(viaBroker == embedded.ends, "samsa groups describe --bootstrap: \(viaBroker)")

        broker.stop()
        #expect(broker.exitStatus == 0, "\(broker.logTail)")
        let viaDirectory = try groupOffsets(["--dir", data], group: Self.group)
        #expect(viaDirectory == embedded.ends, "samsa groups describe --dir after the broker stopped: \(viaDirectory)")
        let settings = try runSamsa(["topics", "describe", "--dir", data, "--topic", Self.orders])
        #expect(
            settings.stdout.hasPrefix(
                "topic orders: partitions=3 flush=messages:7 compression=lz4 max-record-bytes=65536 segment-bytes=1048576 retention-ms=86400000 cleanup-policy=delete\n"),
            "topics describe --dir after the broker altered retention.ms: \(settings)")
    }

    @Test("broker → embedded → broker: the CLI reads the broker's topic, configs and commits; resumes and appends; a second broker serves it all, the idempotent producer continuing")
    func brokerToEmbeddedAndBack() throws {
        let dir = try TemporaryDirectory()
        let data = dir.path("data")
        let embedded = try EmbeddedOrders.make(data)

        let first = try BrokerChild.serving(data, log: dir.path("broker-1.log"))
        let created = try RoundTripClient.create(first.bootstrap, topic: Self.shipments, partitions: 2, configs: Self.shipmentsConfigs)
        #expect(created.errors == [], "\(created.errors)")
        let plain = try RoundTripClient.produce(first.bootstrap, topic: Self.shipments, partitions: 2, first: 0, count: 10)
        #expect(plain.errors == [] && plain.delivered.count == 10, "\(plain)")
        let idempotent = try IdempotentProducer(bootstrap: first.bootstrap, topic: Self.shipments)
        let idempotentFirst = try idempotent.produce(partition: 0, first: 0, count: 5)
        #expect(idempotentFirst.errors == [] && idempotentFirst.delivered.count == 5, "\(idempotentFirst)")
        let shipmentsSoFar = plain.delivered.map { $0.placed(Self.shipments) } + idempotentFirst.delivered.map { $0.placed(Self.shipments) }

        // The group reads everything there is, commits, and then more arrives through the broker: its
        // commits end up in the middle of every partition of both topics.
        let caughtUp = try RoundTripClient.consume(
            first.bootstrap, group: Self.group, topics: [Self.orders, Self.shipments], count: embedded.afterCommits.count + shipmentsSoFar.count)
        #expect(caughtUp.errors == [], "\(caughtUp.errors)")
        #expect(Set(caughtUp.records) == Set(embedded.afterCommits + shipmentsSoFar), "\(caughtUp.records.sorted())")
        let brokerCommits = caughtUp.committed
        let moreOrders = try RoundTripClient.produce(first.bootstrap, topic: Self.orders, partitions: 3, first: 0, count: 9)
        let moreShipments = try RoundTripClient.produce(first.bootstrap, topic: Self.shipments, partitions: 2, first: 10, count: 10)
        #expect(moreOrders.errors == [] && moreShipments.errors == [], "\(moreOrders.errors) \(moreShipments.errors)")
        first.stop()
        #expect(first.exitStatus == 0, "\(first.logTail)")

        // The embedded CLI on the stopped broker's directory: the topics, the broker-made topic's configs, the commits.
        let listed = try runSamsa(["topics", "list", "--dir", data])
        #expect(listed.status == 0, "\(listed.stderr)")
        #expect(listed.stdout.split(separator: "\n").map(String.init).sorted() == [Self.orders, Self.shipments], "topics list: \(listed.stdout)")
        let described = try runSamsa(["topics", "describe", "--dir", data, "--topic", Self.shipments])
        #expect(described.status == 0, "\(described.stderr)")
        let header = described.stdout.split(separator: "\n").first.map { $0.split(separator: " ").map(String.init) } ?? []
        for setting in ["partitions=2", "segment-bytes=524288", "retention-ms=3600000", "max-record-bytes=32768"] {
            #expect(header.contains(setting), "topics describe --dir lacks \(setting): \(described.stdout)")
        }
        // The broker rewrote the registry (a topic created): the CLI-made topic keeps every setting.
        let orders = try runSamsa(["topics", "describe", "--dir", data, "--topic", Self.orders])
        #expect(
            orders.stdout.hasPrefix(
                "topic orders: partitions=3 flush=messages:7 compression=lz4 max-record-bytes=65536 segment-bytes=1048576 retention-ms=604800000 cleanup-policy=delete\n"),
            "\(orders)")
        #expect(try groupOffsets(["--dir", data], group: Self.group) == brokerCommits, "groups describe --dir")

        // `samsa consume --group` resumes at the broker's commits: exactly the records the broker took after them.
        let ordersAfterBroker = moreOrders.delivered.map { $0.placed(Self.orders) }
        let consumed = try consumeEmbedded(data, topic: Self.orders, group: Self.group, maxRecords: ordersAfterBroker.count)
        #expect(Set(consumed) == Set(ordersAfterBroker), "samsa consume --group printed \(consumed.sorted())")
        let embeddedCommits = try groupOffsets(["--dir", data], group: Self.group)
        var expectedCommits = brokerCommits
        for record in ordersAfterBroker { expectedCommits[record.slot] = max(expectedCommits[record.slot] ?? 0, record.offset + 1) }
        #expect(embeddedCommits == expectedCommits, "after samsa consume --group (the shipments commits kept)")

        // The embedded writer appends to both topics, beside the idempotent producer's partition.
        let appendedOrders = try produceEmbedded(data, topic: Self.orders, values: (0..<12).map { "emb2-\($0)" }, keyed: true)
        let appendedShipments = try produceEmbedded(data, topic: Self.shipments, values: (0..<3).map { "emb-ship-\($0)" }, partition: 0)

        // A second broker on the same address, so the idempotent producer (the same process) reconnects.
        let second = try BrokerChild.serving(data, log: dir.path("broker-2.log"), port: first.port)
        let idempotentSecond = try idempotent.produce(partition: 0, first: 5, count: 5)
        #expect(idempotentSecond.errors == [] && idempotentSecond.delivered.count == 5, "\(idempotentSecond)")
        idempotent.finish()

        let expected = appendedOrders + moreShipments.delivered.map { $0.placed(Self.shipments) } + appendedShipments
            + idempotentSecond.delivered.map { $0.placed(Self.shipments) }
        let resumed = try RoundTripClient.consume(second.bootstrap, group: Self.group, topics: [Self.orders, Self.shipments], count: expected.count)
        #expect(resumed.errors == [], "\(resumed.errors)")
        #expect(Set(resumed.records) == Set(expected), "received \(resumed.records.sorted()) expected \(expected.sorted())")
        #expect(resumed.records.count == expected.count, "records received twice: \(resumed.records.sorted())")

        let configs = try RoundTripClient.describe(second.bootstrap, topic: Self.shipments)
        for (name, value) in Self.shipmentsConfigs { #expect(configs.configs[name] == value, "\(name): \(configs.configs[name] ?? "absent")") }

        // One producer id through both brokers, its sequences unbroken, each of its records once.
        let batches = try ProducerBatches.read("\(data)/\(Self.shipments)-0")
        let idempotentBatches = batches.filter { $0.producerId >= 0 }
        #expect(Set(idempotentBatches.map(\.producerId)).count == 1, "producer ids: \(idempotentBatches)")
        #expect(idempotentBatches.first?.baseSequence == 0, "\(idempotentBatches)")
        for (earlier, later) in zip(idempotentBatches, idempotentBatches.dropFirst()) {
            #expect(later.baseSequence == earlier.baseSequence + earlier.count && later.producerEpoch == earlier.producerEpoch, "\(idempotentBatches)")
        }
        let everything = try runSamsa(["consume", "--dir", data, "--topic", Self.shipments, "--from-beginning", "--json"])
        let idempotentValues = parseConsumed(everything.stdout, topic: Self.shipments).map(\.value).filter { $0.hasPrefix("idem-") }
        #expect(idempotentValues.sorted() == (0..<10).map { "idem-\($0)" }.sorted(), "\(idempotentValues)")

        second.stop()
        #expect(second.exitStatus == 0, "\(second.logTail)")
    }

    @Test("guards: `consume --group` beside a running broker is refused and commits nothing; a broker is refused while a group is consumed beside the embedded writer; `consume` without a group works beside a broker")
    func guards() throws {
        let dir = try TemporaryDirectory()
        let data = dir.path("data")
        let embedded = try EmbeddedOrders.make(data)
        let broker = try BrokerChild.serving(data, log: dir.path("broker.log"))

        let refused = try runSamsa(["consume", "--dir", data, "--topic", Self.orders, "--group", Self.group, "--json"])
        #expect(refused.status != 0 && refused.stdout.isEmpty, "consume --group beside a broker: \(refused)")
        #expect(refused.stderr.contains("a broker serves this directory's groups"), "\(refused.stderr)")
        #expect(try stagedFiles(data) == [], "staged commits beside a broker")
        #expect(try groupOffsets(["--bootstrap", broker.bootstrap], group: Self.group) == embedded.commits, "the group's offsets changed")
        // Reading a group's offsets needs no lock: `groups describe --dir` works beside the broker.
        #expect(try groupOffsets(["--dir", data], group: Self.group) == embedded.commits, "groups describe --dir beside a broker")

        let plain = try runSamsa(["consume", "--dir", data, "--topic", Self.orders, "--from-beginning", "--json"])
        #expect(plain.status == 0, "\(plain.stderr)")
        #expect(Set(parseConsumed(plain.stdout, topic: Self.orders)) == Set(embedded.records), "consume without a group beside a broker")
        broker.stop()
        #expect(broker.exitStatus == 0, "\(broker.logTail)")

        // An embedded writer, and a group consumed beside it (holding the served lock while it follows).
        let writer = try SamsaChild(["produce", "--dir", data, "--topic", Self.orders, "--partition", "0", "--acks-json"])
        writer.write("beside-0\n")
        #expect(writer.waitForLines(1), "produce: \(writer.stderr)")
        let other = "audit"
        let follower = try SamsaChild(["consume", "--dir", data, "--topic", Self.orders, "--group", other, "--from-beginning", "--follow"])
        #expect(follower.waitForLines(embedded.records.count + 1), "consume --group --follow: \(follower.stderr)")

        let besideWriter = try BrokerChild.launch(data, log: dir.path("refused-1.log"))
        #expect(besideWriter.refusal?.contains("open in another process") == true, "a broker beside the writer: \(besideWriter.refusal ?? "it started")")
        // The writer gone, the group still consumed beside: the served lock alone refuses the broker.
        writer.closeInput()
        #expect(writer.wait() == 0, "produce: \(writer.stderr)")
        let besideGroup = try BrokerChild.launch(data, log: dir.path("refused-2.log"))
        #expect(
            besideGroup.refusal?.contains("consumes this directory's groups beside it") == true,
            "a broker beside samsa consume --group: \(besideGroup.refusal ?? "it started")")

        follower.send(SIGTERM)
        #expect(follower.wait() == 143, "consume --group --follow: \(follower.stderr)")
        // Once it stopped, a broker starts and serves what it committed.
        let after = try BrokerChild.serving(data, log: dir.path("broker-after.log"))
        var ends = embedded.ends
        ends[Slot(topic: Self.orders, partition: 0), default: 0] += 1
        #expect(try groupOffsets(["--bootstrap", after.bootstrap], group: other) == ends, "the beside consumer's commits")
        after.stop()
        #expect(after.exitStatus == 0, "\(after.logTail)")
    }

    @Test("a directory in the embedded queue's first layout (topics.json v1, groups/g.offsets): a broker converts it and a group resumes at those offsets; the old files are kept")
    func convertsFirstLayout() throws {
        let dir = try TemporaryDirectory()
        let data = dir.path("data")
        let topic = "t"
        #expect(try runSamsa(["topics", "create", "--dir", data, "--topic", topic, "--partitions", "2"]).status == 0)
        let records = try produceEmbedded(data, topic: topic, values: (0..<8).map { "p0-\($0)" }, partition: 0)
            + produceEmbedded(data, topic: topic, values: (0..<8).map { "p1-\($0)" }, partition: 1)

        // The first layout: its registry, its staged group file, and none of what came later.
        let fm = FileManager.default
        let firstRegistry = #"{"t":{"partitions":2,"flush":"every-append","compression":"none","maxRecordBytes":1048576,"segmentBytes":1073741824}}"#
        try Data(firstRegistry.utf8).write(to: URL(fileURLWithPath: "\(data)/topics.json"))
        for name in try fm.contentsOfDirectory(atPath: data) where name.hasPrefix("__consumer_offsets-") { try fm.removeItem(atPath: "\(data)/\(name)") }
        if fm.fileExists(atPath: "\(data)/groups") { try fm.removeItem(atPath: "\(data)/groups") }
        try fm.createDirectory(atPath: "\(data)/groups", withIntermediateDirectories: false)
        try Data("0\n2\nt 0 3\nt 1 5\n".utf8).write(to: URL(fileURLWithPath: "\(data)/groups/g.offsets"))

        let broker = try BrokerChild.serving(data, log: dir.path("broker.log"))
        let expected = records.filter { $0.offset >= ($0.partition == 0 ? 3 : 5) }
        let resumed = try RoundTripClient.consume(broker.bootstrap, group: "g", topics: [topic], count: expected.count)
        #expect(resumed.errors == [], "\(resumed.errors)")
        #expect(Set(resumed.records) == Set(expected), "received \(resumed.records.sorted())")
        #expect(resumed.records.count == expected.count, "records received twice: \(resumed.records.sorted())")
        broker.stop()
        #expect(broker.exitStatus == 0, "\(broker.logTail)")

        #expect(try String(contentsOfFile: "\(data)/topics.v1.json", encoding: .utf8) == firstRegistry)
        #expect(try String(contentsOfFile: "\(data)/groups/g.offsets.folded", encoding: .utf8) == "0\n2\nt 0 3\nt 1 5\n")
        #expect(!fm.fileExists(atPath: "\(data)/groups/g.offsets"))
        let registry = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(data)/topics.json"))) as? [String: Any]
        #expect(registry?["format"] as? Int == 2, "\(String(describing: registry))")
        let described = try runSamsa(["topics", "describe", "--dir", data, "--topic", topic])
        #expect(described.stdout.hasPrefix("topic t: partitions=2 flush=every-append compression=none max-record-bytes=1048576 segment-bytes=1073741824"), "\(described)")
        // The CLI reads what the broker's client committed on the converted directory.
        var ends: [Slot: Int64] = [:]
        for record in records { ends[record.slot] = max(ends[record.slot] ?? 0, record.offset + 1) }
        #expect(try groupOffsets(["--dir", data], group: "g") == ends, "groups describe --dir after the broker")
    }
}

// MARK: - The embedded side, through the CLI

/// A partition of a topic.
struct Slot: Hashable, Comparable, CustomStringConvertible {
    var topic: String
    var partition: Int
    static func < (a: Slot, b: Slot) -> Bool { (a.topic, a.partition) < (b.topic, b.partition) }
    var description: String { "\(topic)-\(partition)" }
}

/// A record where it landed.
struct Placed: Hashable, Comparable, Codable, CustomStringConvertible {
    var topic: String
    var partition: Int
    var offset: Int64
    var value: String
    var slot: Slot { Slot(topic: topic, partition: partition) }
    static func < (a: Placed, b: Placed) -> Bool { (a.topic, a.partition, a.offset) < (b.topic, b.partition, b.offset) }
    var description: String { "\(topic)-\(partition)@\(offset)=\(value)" }
}

/// `orders` made with the CLI only: created with non-default settings, 12 keyed records, group
/// `billing` consuming 10 of them (`samsa consume --group`, no writer running: its commits are
/// staged and folded by the next writer), then 18 more records: the group's commits sit in the middle
/// of every partition.
struct EmbeddedOrders {
    var records: [Placed]
    var commits: [Slot: Int64]
    var ends: [Slot: Int64]
    /// The records after the group's commits.
    var afterCommits: [Placed]

    static func make(_ data: String) throws -> EmbeddedOrders {
        let topic = DirectoryRoundTripTests.orders, group = DirectoryRoundTripTests.group
        let created = try runSamsa(["topics", "create", "--dir", data, "--topic", topic] + DirectoryRoundTripTests.ordersSettings)
        try #require(created.status == 0, "\(created.stderr)")
        let firstRound = try produceEmbedded(data, topic: topic, values: (0..<12).map { "emb-\($0)" }, keyed: true)
        let consumed = try consumeEmbedded(data, topic: topic, group: group, maxRecords: 10, fromBeginning: true)
        try #require(consumed.count == 10, "samsa consume --group printed \(consumed)")
        let secondRound = try produceEmbedded(data, topic: topic, values: (12..<30).map { "emb-\($0)" }, keyed: true)
        let records = firstRound + secondRound
        var ends: [Slot: Int64] = [:]
        for record in records { ends[record.slot] = max(ends[record.slot] ?? 0, record.offset + 1) }
        var printed: [Slot: Int64] = [:]
        for record in consumed { printed[record.slot] = max(printed[record.slot] ?? 0, record.offset + 1) }
        let commits = try groupOffsets(["--dir", data], group: group)
        #expect(commits == printed, "samsa groups describe --dir shows \(commits), consume printed up to \(printed)")
        try #require(
            ends.count == 3 && ends.allSatisfy { slot, end in (1..<end).contains(commits[slot] ?? 0) },
            "the group's commits \(commits) are not in the middle of every partition (ends \(ends))")
        return EmbeddedOrders(records: records, commits: commits, ends: ends, afterCommits: records.filter { $0.offset >= commits[$0.slot]! })
    }
}

/// `samsa produce --dir --acks-json`, one line per value (keyed `key-N<TAB>value` when `keyed`); where each landed.
func produceEmbedded(_ data: String, topic: String, values: [String], keyed: Bool = false, partition: Int? = nil) throws -> [Placed] {
    var arguments = ["produce", "--dir", data, "--topic", topic, "--acks-json"]
    if keyed { arguments += ["--key-separator", "\t"] }
    if let partition { arguments += ["--partition", "\(partition)"] }
    let input = values.enumerated().map { keyed ? "key-\($0.offset)\t\($0.element)\n" : "\($0.element)\n" }.joined()
    let produced = try runSamsa(arguments, input: input)
    try #require(produced.status == 0, "samsa produce: \(produced.stderr)")
    struct Ack: Decodable {
        var line: Int
        var partition: Int
        var offset: Int64
    }
    let acks = try produced.stdout.split(separator: "\n").map { try JSONDecoder().decode(Ack.self, from: Data($0.utf8)) }
    try #require(acks.count == values.count, "acks: \(produced.stdout)")
    return acks.map { Placed(topic: topic, partition: $0.partition, offset: $0.offset, value: values[$0.line - 1]) }
}

/// `samsa consume --dir --group --json`: the records it printed.
func consumeEmbedded(_ data: String, topic: String, group: String, maxRecords: Int, fromBeginning: Bool = false) throws -> [Placed] {
    var arguments = ["consume", "--dir", data, "--topic", topic, "--group", group, "--json", "--max-records", "\(maxRecords)"]
    if fromBeginning { arguments.append("--from-beginning") }
    let consumed = try runSamsa(arguments)
    try #require(consumed.status == 0, "samsa consume --group: \(consumed.stderr)")
    return parseConsumed(consumed.stdout, topic: topic)
}

/// The JSON lines of `samsa consume --json`.
func parseConsumed(_ stdout: String, topic: String) -> [Placed] {
    struct Line: Decodable {
        var partition: Int
        var offset: Int64
        var value: String?
    }
    return stdout.split(separator: "\n").compactMap { try? JSONDecoder().decode(Line.self, from: Data($0.utf8)) }.map {
        Placed(topic: topic, partition: $0.partition, offset: $0.offset, value: $0.value ?? "")
    }
}

/// `samsa groups describe (--dir D | --bootstrap B) --group G --json`: the committed offsets.
func groupOffsets(_ source: [String], group: String) throws -> [Slot: Int64] {
    let described = try runSamsa(["groups", "describe"] + source + ["--group", group, "--json"])
    try #require(described.status == 0, "samsa groups describe \(source): \(described.stderr)")
    struct Status: Decodable {
        struct Partition: Decodable {
            var topic: String
            var partition: Int
            var currentOffset: Int64?
        }
        var partitions: [Partition]
    }
    let statuses = try JSONDecoder().decode([Status].self, from: Data(described.stdout.utf8))
    var offsets: [Slot: Int64] = [:]
    for row in statuses.flatMap(\.partitions) { offsets[Slot(topic: row.topic, partition: row.partition)] = row.currentOffset }
    return offsets
}

/// The group files staged in `<data>/groups` (commits made beside a writer, not yet folded).
func stagedFiles(_ data: String) throws -> [String] {
    guard FileManager.default.fileExists(atPath: "\(data)/groups") else { return [] }
    return try FileManager.default.contentsOfDirectory(atPath: "\(data)/groups").filter { $0.hasSuffix(".offsets") }
}

/// The idempotence fields of every batch in a partition directory's segments, read from the batch
/// headers (DESIGN §1: producerId at byte 43, producerEpoch 51, baseSequence 53, recordCount 57).
struct ProducerBatches: CustomStringConvertible {
    var baseOffset: Int64
    var producerId: Int64
    var producerEpoch: Int16
    var baseSequence: Int32
    var count: Int32
    var description: String { "@\(baseOffset) pid \(producerId) epoch \(producerEpoch) seq \(baseSequence)+\(count)" }

    static func read(_ partition: String) throws -> [ProducerBatches] {
        var batches: [ProducerBatches] = []
        for name in try FileManager.default.contentsOfDirectory(atPath: partition).filter({ $0.hasSuffix(".log") }).sorted() {
            let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: "\(partition)/\(name)")))
            func integer<T: FixedWidthInteger>(_ at: Int, _: T.Type) -> T {
                bytes[at..<at + MemoryLayout<T>.size].reduce(T.zero) { $0 << 8 | T(truncatingIfNeeded: $1) }
            }
            var position = 0
            while position + 61 <= bytes.count {
                let length = Int(integer(position + 8, Int32.self))
                guard length > 0 else { break }
                batches.append(
                    ProducerBatches(
                        baseOffset: integer(position, Int64.self), producerId: integer(position + 43, Int64.self),
                        producerEpoch: integer(position + 51, Int16.self), baseSequence: integer(position + 53, Int32.self),
                        count: integer(position + 57, Int32.self)))
                position += 12 + length
            }
        }
        return batches
    }
}

// MARK: - The client


/// Tests/Interop/roundtrip_client.py with the test virtualenv's interpreter (`SAMSA_PYTHON`).
enum RoundTripClient {
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Interop/roundtrip_client.py").path
    static var python: String { ProcessInfo.processInfo.environment["SAMSA_PYTHON"] ?? "python3" }

    struct Consumed: Decodable {
        var records: [Placed]
        /// topic → partition (text) → offset.
        var committedByTopic: [String: [String: Int64]]
        var errors: [String]
        var committed: [Slot: Int64] {
            var offsets: [Slot: Int64] = [:]
            for (topic, partitions) in committedByTopic {
                for (partition, offset) in partitions { offsets[Slot(topic: topic, partition: Int(partition) ?? -1)] = offset }
            }
            return offsets
        }

        enum CodingKeys: String, CodingKey {
            case records, errors
            case committedByTopic = "committed"
        }
    }

    struct Delivery: Decodable, CustomStringConvertible {
        var partition: Int
        var offset: Int64
        var value: String
        func placed(_ topic: String) -> Placed { Placed(topic: topic, partition: partition, offset: offset, value: value) }
        var description: String { "\(partition)@\(offset)=\(value)" }
    }

    struct Produced: Decodable {
        var delivered: [Delivery]
        var errors: [String]
    }

    struct Described: Decodable {
        var configs: [String: String?]
        var errors: [String]
    }

    struct Outcome: Decodable {
        var errors: [String]
    }

    static func consume(_ bootstrap: String, group: String, topics: [String], count: Int, settleMilliseconds: Int = 200) throws -> Consumed {
        try run(["consume", bootstrap, group, topics.joined(separator: ","), "\(count)", "\(settleMilliseconds)"])
    }

    static func create(_ bootstrap: String, topic: String, partitions: Int, configs: [String: String]) throws -> Outcome {
        try run(["create", bootstrap, topic, "\(partitions)", String(decoding: try JSONEncoder().encode(configs), as: UTF8.self)])
    }

    static func describe(_ bootstrap: String, topic: String) throws -> (configs: [String: String], errors: [String]) {
        let described: Described = try run(["describe", bootstrap, topic])
        return (described.configs.compactMapValues { $0 }, described.errors)
    }

    static func alter(_ bootstrap: String, topic: String, configs: [String: String]) throws -> Outcome {
        try run(["alter", bootstrap, topic, String(decoding: try JSONEncoder().encode(configs), as: UTF8.self)])
    }

    static func produce(_ bootstrap: String, topic: String, partitions: Int, first: Int, count: Int) throws -> Produced {
        try run(["produce", bootstrap, topic, "\(partitions)", "\(first)", "\(count)"])
    }

    private static func run<Result: Decodable>(_ arguments: [String]) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [python, script] + arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        // stderr is drained on its own thread so neither pipe fills while the other is read.
        let errors = ErrorDrain(err.fileHandleForReading)
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let stderr = errors.text()
        guard process.terminationStatus == 0, let result = try? JSONDecoder().decode(Result.self, from: stdout) else {
            throw BrokerChildFailure("roundtrip_client.py \(arguments.first ?? "") failed (\(process.terminationStatus)): \(String(decoding: stdout, as: UTF8.self)) \(stderr.suffix(2000))")
        }
        return result
    }
}

/// Reads a pipe to its end on a thread of its own.
final class ErrorDrain: Sendable {
    private let done = DispatchSemaphore(value: 0)
    private let bytes = LockedData()

    init(_ handle: FileHandle) {
        let (bytes, done) = (bytes, done)
        Thread {
            bytes.set(handle.readDataToEndOfFile())
            done.signal()
        }.start()
    }

    func text() -> String {
        done.wait()
        return String(decoding: bytes.get(), as: UTF8.self)
    }
}

final class LockedData: Sendable {
    private let data = Mutex(Data())
    func set(_ value: Data) { data.withLock { $0 = value } }
    func get() -> Data { data.withLock { $0 } }
}

/// roundtrip_client.py's long-lived idempotent producer: one librdkafka producer (one producer id)
/// across broker restarts on one address; each `produce` is one request line and one answer line.
final class IdempotentProducer {
    private let process = Process()
    private let input: FileHandle
    private let output: FileHandle
    private let errors: ErrorDrain
    private var pending = Data()

    init(bootstrap: String, topic: String) throws {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [RoundTripClient.python, RoundTripClient.script, "idempotent", bootstrap, topic]
        let inPipe = Pipe(), out = Pipe(), err = Pipe()
        process.standardInput = inPipe
        process.standardOutput = out
        process.standardError = err
        try process.run()
        input = inPipe.fileHandleForWriting
        output = out.fileHandleForReading
        errors = ErrorDrain(err.fileHandleForReading)
    }

    func produce(partition: Int, first: Int, count: Int) throws -> RoundTripClient.Produced {
        input.write(Data("\(partition) \(first) \(count)\n".utf8))
        while !pending.contains(UInt8(ascii: "\n")) {
            let chunk = output.availableData
            guard !chunk.isEmpty else { throw BrokerChildFailure("the idempotent producer exited: \(errors.text().suffix(2000))") }
            pending.append(chunk)
        }
        let newline = pending.firstIndex(of: UInt8(ascii: "\n"))!
        let line = pending[pending.startIndex..<newline]
        pending = Data(pending[(newline + 1)...])
        return try JSONDecoder().decode(RoundTripClient.Produced.self, from: line)
    }

    /// Ends its input; it flushes and exits.
    func finish() {
        try? input.close()
        process.waitUntilExit()
    }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }
}
