import Foundation
import NIOCore
import NIOPosix
import SamsaProtocol
import Synchronization
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

    /// Counts scrapes; each answers 64 KiB.
    final class Scrapes: Sendable {
        let count = Mutex(0)
        func scrape() -> [UInt8] {
            count.withLock { $0 += 1 }
            return [UInt8](repeating: UInt8(ascii: "m"), count: 64 << 10)
        }
    }

    @Test("2,000 pipelined GET /metrics never read: a few are answered (what the sockets hold), the rest are not even read")
    func pipelinedScrapesAreNotRead() async throws {
        let scrapes = Scrapes()
        let endpoint = try await MetricsEndpoint.bind(
            host: "127.0.0.1", port: 0, configuration: BrokerConfiguration(dataDirectory: "unused"),
            connectionMetrics: ConnectionMetrics(), scrape: scrapes.scrape)
        let deaf = try await Self.deafConnection(port: try #require(endpoint.localAddress?.port))
        var requests = ByteBuffer()
        for _ in 0..<2_000 { requests.writeString("GET /metrics HTTP/1.1\r\nHost: samsa\r\n\r\n") }
        deaf.writeAndFlush(requests, promise: nil)
        // Until the endpoint has answered what it will: the count holds for a second.
        var answered = -1
        var stableSince = ContinuousClock.now
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now - stableSince < .seconds(1) && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(100))
            let now = scrapes.count.withLock { $0 }
            if now != answered { stableSince = ContinuousClock.now }
            answered = now
            if answered == 2_000 { break }
        }
        #expect(answered < 500, "\(answered) scrapes (64 KiB each) answered to a client that reads none")
        try await deaf.close()
        await endpoint.close()
    }

    @Test("The Kafka port answers while a metrics client pipelines scrapes it never reads")
    func kafkaPortUnaffected() async throws {
        let broker = try await Self.start()
        let deaf = try await Self.deafConnection(port: try #require(broker.broker.metricsPort))
        var requests = ByteBuffer()
        for _ in 0..<2_000 { requests.writeString("GET /metrics HTTP/1.1\r\nHost: samsa\r\n\r\n") }
        deaf.writeAndFlush(requests, promise: nil)
        let kafka = try await TestConnection(port: broker.port)
        for id in 1...20 { #expect(try await HostileConnectionTests.apiVersionsAnswered(kafka, correlationId: Int32(id))) }
        try await deaf.close()
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
