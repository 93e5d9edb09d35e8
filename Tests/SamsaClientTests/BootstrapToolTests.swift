import Foundation
import NIOCore
import SamsaClient
import Testing
import SamsaTestSupport

/// Runs the built `samsa` executable (a dependency of this test target) and returns its exit status,
/// stdout and stderr.
/// Waits on a thread of its own: the broker under test runs on the cooperative pool, which a blocked
/// test task would starve.
func runSamsaTool(_ arguments: [String]) async throws -> (status: Int32, stdout: String, stderr: String) {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try runSamsaToolBlocking(arguments) }) }.start()
    }
}

func runSamsaToolBlocking(_ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
    let binary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("samsa")
    // stderr to a file: reading two pipes one after the other could block on the second one filling up.
    let errors = FileManager.default.temporaryDirectory.appendingPathComponent("samsa-stderr-\(UUID().uuidString)")
    _ = FileManager.default.createFile(atPath: errors.path, contents: nil)
    defer { try? FileManager.default.removeItem(at: errors) }
    let process = Process()
    process.executableURL = binary
    process.arguments = arguments
    let out = Pipe()
    process.standardOutput = out
    process.standardError = try FileHandle(forWritingTo: errors)
    try process.run()
    let stdout = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    let stderr = String(decoding: try Data(contentsOf: errors), as: UTF8.self)
    return (process.terminationStatus, stdout, stderr)
}

/// `samsa topics ... --bootstrap` and `samsa perf ... --bootstrap` against an in-process broker.
@Suite("samsa --bootstrap tools", .offCooperativePool)
struct BootstrapToolTests {
    @Test("topics create, list, describe and delete on a broker")
    func topics() async throws {
        try await ClientTestBroker.with { broker, client in
            let address = broker.bootstrap
            let created = try await runSamsaTool(["topics", "create", "--bootstrap", address, "--topic", "orders", "--partitions", "2", "--replication-factor", "1"])
            #expect(created.status == 0, "\(created.stderr)")
            #expect(created.stdout == "created topic orders with 2 partitions\n")
            #expect(try await client.topicMetadata("orders").partitions.count == 2)

            let listed = try await runSamsaTool(["topics", "list", "--bootstrap", address])
            #expect(listed.status == 0 && listed.stdout == "orders\n", "\(listed.stderr)")

            let described = try await runSamsaTool(["topics", "describe", "--bootstrap", address, "--topic", "orders"])
            #expect(described.status == 0, "\(described.stderr)")
            let lines = described.stdout.split(separator: "\n").map(String.init)
            #expect(lines.first == "topic orders: partitions=2")
            #expect(Array(lines.suffix(2)) == ["  partition 0: leader 0, leader epoch 0, replicas 0, isr 0", "  partition 1: leader 0, leader epoch 0, replicas 0, isr 0"])
            #expect(lines.contains("  config segment.bytes=1073741824 (DEFAULT_CONFIG)"), "\(lines)")

            // alter: set and remove configs; the effective value and its source afterwards.
            let altered = try await runSamsaTool([
                "topics", "alter", "--bootstrap", address, "--topic", "orders", "--config", "retention.ms=60000", "--config", "segment.bytes=1048576",
            ])
            #expect(altered.status == 0, "\(altered.stderr)")
            #expect(altered.stdout == """
                changed the configs of topic orders
                  config retention.ms=60000 (DYNAMIC_TOPIC_CONFIG)
                  config segment.bytes=1048576 (DYNAMIC_TOPIC_CONFIG)

                """)
            let removed = try await runSamsaTool(["topics", "alter", "--bootstrap", address, "--topic", "orders", "--delete-config", "segment.bytes", "--json"])
            #expect(removed.status == 0, "\(removed.stderr)")
            let object = try #require(try JSONSerialization.jsonObject(with: Data(removed.stdout.utf8)) as? [String: Any])
            let configs = try #require(object["configs"] as? [[String: Any]])
            #expect(configs.first { $0["name"] as? String == "segment.bytes" }?["source"] as? String == "DEFAULT_CONFIG")
            #expect(configs.first { $0["name"] as? String == "retention.ms" }?["value"] as? String == "60000")
            let invalid = try await runSamsaTool(["topics", "alter", "--bootstrap", address, "--topic", "orders", "--config", "segment.bytes=1"])
            #expect(invalid.status == 1 && invalid.stderr.contains("INVALID_CONFIG"), "\(invalid.stderr)")
            let unknown = try await runSamsaTool(["topics", "alter", "--bootstrap", address, "--topic", "orders", "--config", "no.such=1", "--validate-only"])
            #expect(unknown.status == 1 && unknown.stderr.contains("INVALID_CONFIG"), "\(unknown.stderr)")
            let json = try await runSamsaTool(["topics", "describe", "--bootstrap", address, "--topic", "orders", "--json"])
            let topic = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
            #expect((topic["partitions"] as? [Any])?.count == 2)
            #expect(((topic["configs"] as? [[String: Any]]) ?? []).contains { $0["name"] as? String == "retention.ms" && $0["source"] as? String == "DYNAMIC_TOPIC_CONFIG" })

            let again = try await runSamsaTool(["topics", "create", "--bootstrap", address, "--topic", "orders"])
            #expect(again.status == 1 && again.stderr.contains("TOPIC_ALREADY_EXISTS"), "\(again.stderr)")
            let missing = try await runSamsaTool(["topics", "describe", "--bootstrap", address, "--topic", "nope"])
            #expect(missing.status == 1 && missing.stderr.contains("UNKNOWN_TOPIC_OR_PARTITION"), "\(missing.stderr)")

            let deleted = try await runSamsaTool(["topics", "delete", "--bootstrap", address, "--topic", "orders"])
            #expect(deleted.status == 0 && deleted.stdout == "deleted topic orders\n", "\(deleted.stderr)")
            #expect(try await runSamsaTool(["topics", "list", "--bootstrap", address]).stdout == "")
        }
    }

    @Test("--dir and --bootstrap: exactly one; --config needs --bootstrap")
    func oneTarget() async throws {
        let both = try await runSamsaTool(["topics", "list", "--dir", "/nonexistent", "--bootstrap", "127.0.0.1:9"])
        #expect(both.status != 0 && both.stderr.contains("either --dir or --bootstrap"))
        let neither = try await runSamsaTool(["perf", "consume"])
        #expect(neither.status != 0 && neither.stderr.contains("either --dir or --bootstrap"))
        let config = try await runSamsaTool(["topics", "create", "--dir", "/nonexistent", "--topic", "t", "--config", "retention.ms=1"])
        #expect(config.status != 0 && config.stderr.contains("need --bootstrap"))
    }

    @Test("perf produce then consume through a broker, with --json", arguments: ["none", "lz4", "zstd"])
    func perf(compression: String) async throws {
        try await ClientTestBroker.with(flushPolicy: .everyAppend) { broker, client in
            let produced = try await runSamsaTool([
                "perf", "produce", "--bootstrap", broker.bootstrap, "--topic", "bench", "--records", "20000", "--record-size", "100",
                "--compression", compression, "--acks", "-1", "--json",
            ])
            #expect(produced.status == 0, "\(produced.stderr)")
            let produceSummary = try Self.object(produced.stdout)
            #expect(produceSummary["records"] as? Int == 20000)
            #expect(produceSummary["failed"] as? Int == 0)
            #expect(produceSummary["acks"] as? Int == -1)
            #expect(produceSummary["compression"] as? String == compression)
            #expect((produceSummary["latency_ms"] as? [String: Any])?["p99"] != nil)
            #expect(try await client.listOffset(topic: "bench", partition: 0, .latest) == 20000)
            let fetched = try await client.fetch(topic: "bench", partition: 0, offset: 0)
            #expect(fetched.batches.first?.compression.description == compression)

            let consumed = try await runSamsaTool(["perf", "consume", "--bootstrap", broker.bootstrap, "--topic", "bench", "--json"])
            #expect(consumed.status == 0, "\(consumed.stderr)")
            let consumeSummary = try Self.object(consumed.stdout)
            #expect(consumeSummary["records"] as? Int == 20000)
            #expect(consumeSummary["bytes"] as? Int == 20000 * 100)
            let limited = try await runSamsaTool(["perf", "consume", "--bootstrap", broker.bootstrap, "--topic", "bench", "--records", "1234"])
            #expect(limited.status == 0 && limited.stdout.hasPrefix("1234 records, "), "\(limited.stdout) \(limited.stderr)")
        }
    }

    static func object(_ line: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
    }
}
