import Foundation
import NIOCore
import SamsaProtocol
import SamsaStorage
import SamsaTestSupport
import Testing
@testable import SamsaBroker

/// The log cleaner seen from outside the broker: its metrics on /metrics after a clean, and the
/// `samsa broker --log-cleanup-policy` / `--log-cleaner-*` options (DescribeConfigs shows them; bad
/// values are refused before anything starts).
@Suite("Log cleaner metrics and broker options", .offCooperativePool)
struct CompactionOptionsTests {
    @Test("After a clean, /metrics has Kafka's cleaner gauges, the bytes and passes, and the partition's dirty ratio and clean point")
    func cleanerMetrics() async throws {
        let directory = temporaryPath("samsa-cleaner-metrics")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var configuration = BrokerConfiguration(dataDirectory: directory, port: 0, eventLoopThreads: 1, ioThreads: 2)
        configuration.metricsPort = 0
        configuration.cleaner.enabled = false
        let broker = try await Broker.start(configuration)
        do {
            let port = try #require(broker.metricsPort)
            let connection = try await TestConnection(port: broker.localAddress.port!)
            let configs: [(String, String?)] = [("cleanup.policy", "compact"), ("segment.bytes", "1024")]
            #expect(try await TopicConfigTests.create("measured", configs: configs, on: connection).errorCode == 0)
            let latest = try await CompactedTopicTests.fill("measured", updates: 200, keys: 5, on: connection)
            let log = try #require(broker.dispatcher.topics.log("measured", 0))
            try log.roll()
            #expect(await CompactedTopicTests.clean(broker.dispatcher.logs.cleaner, TopicPartition(topic: "measured", partition: 0)))
            let text = try await MetricsTests.httpGet(port: port, path: "/metrics")
            for name in [
                "kafka_log_LogCleaner_max_dirty_percent", "kafka_log_LogCleaner_cleaner_recopy_percent", "kafka_log_LogCleaner_max_clean_time_secs",
                "kafka_log_LogCleanerManager_uncleanable_partitions_count 0", "samsa_log_cleaner_passes_total 1",
            ] {
                #expect(text.contains(name), "\(name) in \(text)")
            }
            let statistics = broker.dispatcher.logs.cleaner.statistics
            #expect(statistics.bytesRead > 0 && text.contains("samsa_log_cleaner_bytes_read_total \(statistics.bytesRead)"))
            #expect(text.contains("samsa_log_cleaner_bytes_written_total \(statistics.bytesWritten)"))
            let point = try #require(statistics.partitions[TopicPartition(topic: "measured", partition: 0)]).cleanPoint
            #expect(point == log.logEndOffset && text.contains(#"samsa_log_cleaner_clean_point{topic="measured",partition="0"} \#(point).0"#), "\(text)")
            #expect(text.contains(#"samsa_log_cleaner_dirty_ratio{topic="measured",partition="0"}"#))
            #expect(latest.count == 5)
            try await connection.close()
        } catch {
            try await broker.stop()
            throw error
        }
        try await broker.stop()
    }

    @Test("samsa broker --log-cleanup-policy and --log-cleaner-* set the broker's configs (DescribeConfigs shows them); invalid values are refused")
    func brokerOptions() async throws {
        let directory = temporaryPath("samsa-cleaner-options")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let broker = try BrokerProcessTests.BrokerProcess(directory: directory, extra: [
            "--log-cleanup-policy", "compact,delete", "--log-cleaner-threads", "2", "--log-cleaner-dedupe-buffer-size", "4194304",
            "--log-cleaner-io-max-bytes-per-second", "1000000", "--log-cleaner-backoff-ms", "500", "--log-cleaner-delete-retention-ms", "1000",
            "--log-cleaner-min-cleanable-ratio", "0.25", "--log-cleaner-min-compaction-lag-ms", "10", "--log-cleaner-max-compaction-lag-ms", "100000",
        ])
        let connection = try await TestConnection(port: broker.port)
        var describe = DescribeConfigsRequest()
        var resource = DescribeConfigsRequest.DescribeConfigsResource()
        resource.resourceType = 4
        resource.resourceName = "0"
        resource.configurationKeys = nil
        describe.resources = [resource]
        let described = try await connection.request(describe, version: 4, expecting: DescribeConfigsResponse.self)
        let values = Dictionary(uniqueKeysWithValues: (described.results.first?.configs ?? []).map { ($0.name, $0.value) })
        let expected: [String: String] = [
            "log.cleanup.policy": "compact,delete", "log.cleaner.enable": "true", "log.cleaner.threads": "2", "log.cleaner.dedupe.buffer.size": "4194304",
            "log.cleaner.io.max.bytes.per.second": "1000000.0", "log.cleaner.backoff.ms": "500", "log.cleaner.delete.retention.ms": "1000",
            "log.cleaner.min.cleanable.ratio": "0.25", "log.cleaner.min.compaction.lag.ms": "10", "log.cleaner.max.compaction.lag.ms": "100000",
        ]
        for (name, value) in expected { #expect(values[name] == .some(value), "\(name): \(String(describing: values[name]))") }
        // A topic made without configs takes the broker's policy: keyless records are refused.
        _ = try await ProduceFetchTests.createTopic("inherits", partitions: 1, on: connection)
        #expect(try await ProduceFetchTests.produce([try makeBatch(count: 1)], to: "inherits", on: connection).errorCode == ErrorCode.invalidRecord.rawValue)
        try await connection.close()
        broker.signal(SIGTERM)

        for bad in [
            ["--log-cleanup-policy", "shrink"], ["--log-cleaner-threads", "0"], ["--log-cleaner-min-cleanable-ratio", "1.5"],
            ["--log-cleaner-min-compaction-lag-ms", "10", "--log-cleaner-max-compaction-lag-ms", "5"], ["--log-cleaner-dedupe-buffer-size", "1000"],
        ] {
            let process = Process()
            process.executableURL = BrokerProcessTests.binary
            process.arguments = ["broker", "--dir", directory, "--listen", "127.0.0.1:0"] + bad
            let errors = Pipe()
            process.standardOutput = FileHandle.nullDevice
            process.standardError = errors
            try process.run()
            let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            #expect(process.terminationStatus != 0 && message.contains("log-clean"), "\(bad) is refused, naming the option: \(message)")
        }
    }
}
