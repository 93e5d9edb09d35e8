import Foundation
import NIOCore
import NIOPosix
import SamsaProtocol
import SamsaStorage
import Testing
@testable import SamsaBroker

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
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("samsa-metrics-\(UUID().uuidString)").path
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
}
