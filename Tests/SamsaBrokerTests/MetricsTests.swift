import Foundation
import NIOCore
import NIOPosix
import SamsaProtocol
import SamsaStorage
import Testing
@testable import SamsaBroker
import SamsaTestSupport

/// `--metrics`: Prometheus text on GET /metrics with requests per API and version, bytes, connections,
/// errors and each partition's offsets.
@Suite("Broker metrics")
struct MetricsTests {
    /// One HTTP/1.1 request over a fresh connection; the whole response (status line, headers, body).
    static func httpGet(port: Int, path: String, method: String = "GET") async throws -> String {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).connect(host: "127.0.0.1", port: port) { channel in
            channel.eventLoop.makeCompletedFuture { try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel) }
        }
        return try await channel.executeThenClose { inbound, outbound in
            try await outbound.write(ByteBuffer(string: "\(method) \(path) HTTP/1.1\r\nHost: samsa\r\nConnection: close\r\n\r\n"))
            var text = ""
            for try await chunk in inbound { text += String(buffer: chunk) }
            return text
        }
    }

    @Test("Requests, bytes, connections and partition offsets are served on /metrics")
    func metricsEndpoint() async throws {
        let directory = temporaryPath("samsa-metrics")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var configuration = BrokerConfiguration(dataDirectory: directory, port: 0, eventLoopThreads: 1, ioThreads: 2)
        configuration.metricsPort = 0
        let broker = try await Broker.start(configuration)
        do {
            let port = try #require(broker.metricsPort)
            let connection = try await TestConnection(port: broker.localAddress.port!)
            #expect(try await ProduceFetchTests.createTopic("measured", partitions: 2, on: connection).errorCode == 0)
            #expect(try await ProduceFetchTests.produce([try makeBatch(count: 5)], to: "measured", on: connection).errorCode == 0)
            let text = try await Self.httpGet(port: port, path: "/metrics")
            #expect(text.hasPrefix("HTTP/1.1 200 OK"))
            #expect(text.contains(#"samsa_requests_total{request="Produce",version="9"} 1"#), "\(text)")
            #expect(text.contains(#"samsa_log_end_offset{topic="measured",partition="0"} 5.0"#), "\(text)")
            #expect(text.contains(#"samsa_log_end_offset{topic="measured",partition="1"} 0.0"#))
            // A single broker is a cluster of one: its high watermark follows its appends (issue 21: it stayed 0).
            #expect(text.contains(#"samsa_high_watermark{topic="measured",partition="0"} 5.0"#), "\(text)")
            #expect(text.contains("samsa_connections 1.0"))
            #expect(text.contains("samsa_request_duration_seconds_bucket"))
            #expect(text.contains("samsa_network_bytes_in_total"))
            try await connection.close()

            // An unknown API key is counted as unsupported; a bad frame as malformed.
            let raw = try await TestConnection(port: broker.localAddress.port!)
            var unknown = ByteBuffer()
            unknown.writeInteger(Int32(10))
            unknown.writeInteger(Int16(999))
            unknown.writeInteger(Int16(0))
            unknown.writeInteger(Int32(7))
            unknown.writeInteger(Int16(-1))
            try await raw.send(unknown)
            #expect(try await raw.receive() != nil)
            try await raw.close()
            let after = try await Self.httpGet(port: port, path: "/metrics")
            #expect(after.contains(#"samsa_request_errors_total{reason="unsupported"} 1"#), "\(after)")

            #expect(try await Self.httpGet(port: port, path: "/elsewhere").hasPrefix("HTTP/1.1 404"))
            #expect(try await Self.httpGet(port: port, path: "/metrics", method: "POST").hasPrefix("HTTP/1.1 405"))
        } catch {
            try await broker.stop()
            throw error
        }
        try await broker.stop()
    }

    /// A sample's value in Prometheus text (nil when absent).
    static func sample(_ text: String, _ name: String) -> Double? {
        for line in text.split(separator: "\n") where line.hasPrefix(name + " ") { return Double(line.dropFirst(name.count + 1)) }
        return nil
    }

    @Test("Replication: under-replicated partitions, ISR shrinks and expands, follower lag, as a follower is cut off and healed")
    func replicationMetrics() async throws {
        let cluster = try await TestCluster.start(lagMs: 1500)
        do {
            let admin = try await cluster.connection(1)
            #expect(try await admin.createTopic("watched", replicationFactor: 3).errorCode == 0)
            try await admin.close()
            let state = try await cluster.settled("watched")
            let leader = try requireBroker(cluster.broker(state.leader))
            let follower = try #require(state.isr.first { $0 != state.leader })
            let lag = #"samsa_replica_lag_messages{topic="watched",partition="0",replica="\#(follower)"}"#
            let connection = try await cluster.connection(state.leader)
            #expect(try await connection.produce("watched", count: 5, startingAt: 0).errorCode == 0)
            // (Under load a follower may be dropped for a moment, with a 1.5 s lag limit: wait for a full ISR.)
            try await eventually("the followers have caught up and the ISR is full") {
                let text = leader.metricsText()
                return Self.sample(text, lag) == 0 && Self.sample(text, "samsa_under_replicated_partitions") == 0
            }
            var text = leader.metricsText()
            let shrinks = try #require(Self.sample(text, "samsa_isr_shrinks_total"))
            let expands = try #require(Self.sample(text, "samsa_isr_expands_total"))

            cluster.links.cut(follower, state.leader)
            #expect(try await connection.produce("watched", count: 5, startingAt: 5, acks: 1).errorCode == 0)
            try await eventually("the cut follower is out of the ISR") { try await !cluster.state("watched").isr.contains(follower) }
            text = leader.metricsText()
            #expect(Self.sample(text, "samsa_under_replicated_partitions") == 1, "\(text)")
            // (At least one: under load the other follower may be dropped for a moment too.)
            #expect((Self.sample(text, "samsa_isr_shrinks_total") ?? 0) >= shrinks + 1)
            #expect((Self.sample(text, lag) ?? 0) >= 5, "\(text)")
            // Followers of other brokers' partitions are not this leader's: only led partitions count.
            for other in cluster.running where other != state.leader {
                #expect(Self.sample(try requireBroker(cluster.broker(other)).metricsText(), "samsa_under_replicated_partitions") == 0)
            }

            cluster.links.heal()
            try await eventually("the follower is back in the ISR") { try await cluster.state("watched").isr.count == 3 }
            try await eventually("the metrics show it") {
                let text = leader.metricsText()
                return Self.sample(text, "samsa_under_replicated_partitions") == 0 && (Self.sample(text, "samsa_isr_expands_total") ?? 0) >= expands + 1
                    && Self.sample(text, lag) == 0
            }
            try await connection.close()
        } catch {
            try await cluster.stopAll()
            throw error
        }
        try await cluster.stopAll()
    }
}
