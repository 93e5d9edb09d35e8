import Foundation
import NIOCore
import NIOPosix
import SamsaProtocol
import Testing
@testable import SamsaBroker

/// The metrics port against clients that pipeline without reading, or hold connections: what they
/// can make the broker hold is bounded, and Kafka clients do not notice them.
@Suite("Metrics port limits", .timeLimit(.minutes(1)))
struct MetricsPortTests {
    static func start(_ configure: (inout BrokerConfiguration) -> Void = { _ in }) async throws -> TestBroker {
        try await HostileConnectionTests.start {
            $0.metricsPort = 0
            configure(&$0)
        }
    }

    /// A raw connection that never reads what it is sent (`reading`: it reads and drops it).
    static func deafConnection(port: Int, reading: Bool = false) async throws -> any Channel {
        try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.autoRead, value: reading)
            .connect(host: "127.0.0.1", port: port).get()
    }

    @Test("Pipelined GET /metrics never read: the endpoint stops reading them, and the Kafka port answers meanwhile")
    func pipelinedScrapesAreNotRead() async throws {
        let broker = try await Self.start()
        let port = try #require(broker.broker.metricsPort)
        let deaf = try await Self.deafConnection(port: port)
        // 10,000 requests of 4 KiB: 40 MiB, more than the sockets' buffers hold on both sides.
        let request = "GET /metrics HTTP/1.1\r\nHost: samsa\r\nX-Padding: \(String(repeating: "p", count: 4000))\r\n\r\n"
        var requests = ByteBuffer()
        for _ in 0..<10_000 { requests.writeString(request) }
        let written = Task { try await deaf.writeAndFlush(requests) }
        let kafka = try await TestConnection(port: broker.port)
        try await Task.sleep(for: .seconds(2))  // a window in which the endpoint could read them all
        #expect(try await HostileConnectionTests.apiVersionsAnswered(kafka))
        try await deaf.close()
        let result = await written.result
        #expect(throws: (any Error).self, "the broker stopped reading: the requests never all left this side") { try result.get() }
        try await kafka.close()
        try await broker.stop()
    }

    @Test("Past metricsMaxConnections a new metrics connection waits until one closes")
    func metricsConnectionLimit() async throws {
        let broker = try await Self.start { $0.metricsMaxConnections = 2 }
        let port = try #require(broker.broker.metricsPort)
        let held = [try await Self.deafConnection(port: port), try await Self.deafConnection(port: port)]
        let answered = Task { (try await MetricsTests.httpGet(port: port, path: "/metrics"), ContinuousClock.now) }
        try await Task.sleep(for: .milliseconds(500))  // a window in which nothing may happen
        let closed = ContinuousClock.now
        try await held[0].close()
        let (text, at) = try await answered.value
        #expect(text.hasPrefix("HTTP/1.1 200 OK"))
        #expect(at > closed, "answered only after a connection closed")
        try await held[1].close()
        try await broker.stop()
    }

    @Test("An idle metrics connection is closed after connections.max.idle.ms")
    func idleMetricsConnection() async throws {
        let broker = try await Self.start { $0.connectionsMaxIdle = .milliseconds(300) }
        let port = try #require(broker.broker.metricsPort)
        let idle = try await Self.deafConnection(port: port, reading: true)
        try await idle.writeAndFlush(ByteBuffer(string: "GET /metr"))  // part of a request, then nothing
        try await idle.closeFuture.get()
        #expect(broker.broker.metricsText().contains(#"samsa_connections_idle_closed_total{listener="metrics"} 1"#))
        try await broker.stop()
    }
}
