import Foundation
import NIOCore
import NIOPosix
import SamsaProtocol
import SamsaStorage
import Testing
@testable import SamsaBroker
import SamsaTestSupport

/// Connection limits, idle connections, request memory, the metrics port and too-new ApiVersions,
/// against a broker in this process.
@Suite("Hostile connections", .timeLimit(.minutes(1)))
struct HostileConnectionTests {
    static func start(_ configure: (inout BrokerConfiguration) -> Void) async throws -> TestBroker {
        let directory = temporaryPath("samsa-hostile")
        var configuration = BrokerConfiguration(dataDirectory: directory, port: 0, eventLoopThreads: 1, ioThreads: 2)
        configure(&configuration)
        return TestBroker(broker: try await Broker.start(configuration), directory: directory)
    }

    static func apiVersionsAnswered(_ connection: TestConnection, correlationId: Int32 = 1) async throws -> Bool {
        try await connection.request(ApiVersionsRequest(), version: 0, expecting: ApiVersionsResponse.self, correlationId: correlationId).errorCode == 0
    }

    @Test("A connection past max.connections.per.ip is closed; another address is served")
    func perIpLimit() async throws {
        let broker = try await Self.start { $0.maxConnectionsPerIp = 2 }
        let first = try await TestConnection(port: broker.port)
        let second = try await TestConnection(port: broker.port)
        #expect(try await Self.apiVersionsAnswered(first))
        #expect(try await Self.apiVersionsAnswered(second))
        let third = try await TestConnection(port: broker.port)
        #expect(try await third.receive() == nil, "closed by the broker")
        let elsewhere = try await TestConnection(port: broker.port, from: "127.0.0.2")
        #expect(try await Self.apiVersionsAnswered(elsewhere))
        let openBefore = broker.broker.connectionLimits.open
        try await first.close()
        // Its slot is free again once the broker has seen the close (not at once: connecting right away
        // raced it, and the new connection was refused as a third one).
        let deadline = ContinuousClock.now + .seconds(10)
        while broker.broker.connectionLimits.open >= openBefore {
            try #require(ContinuousClock.now < deadline, "the broker never saw the first connection close")
            try await Task.sleep(for: .milliseconds(10))
        }
        let again = try await TestConnection(port: broker.port)
        #expect(try await Self.apiVersionsAnswered(again))
        for connection in [second, third, elsewhere, again] { try await connection.close() }
        try await broker.stop()
    }

    @Test("At max.connections a new connection waits to be accepted until one closes")
    func maxConnectionsWaits() async throws {
        let broker = try await Self.start { $0.maxConnections = 2 }
        let first = try await TestConnection(port: broker.port)
        let second = try await TestConnection(port: broker.port)
        #expect(try await Self.apiVersionsAnswered(first))
        #expect(try await Self.apiVersionsAnswered(second))
        let waiting = try await TestConnection(port: broker.port)  // connected in the listen backlog
        try await waiting.send(KafkaFraming.encodeRequest(ApiVersionsRequest(), version: 0, correlationId: 3, clientId: nil))
        let answered = Task { (try await waiting.receive(), ContinuousClock.now) }
        try await Task.sleep(for: .milliseconds(500))  // a window in which nothing may happen
        let closed = ContinuousClock.now
        try await first.close()
        let (frame, at) = try await answered.value
        #expect(frame != nil)
        #expect(at > closed, "answered only after a connection closed")
        for connection in [second, waiting] { try await connection.close() }
        try await broker.stop()
    }

    @Test("A silent connection, and one that sent part of a request and stalled, are closed after connections.max.idle.ms")
    func idleConnectionsAreClosed() async throws {
        let broker = try await Self.start { $0.connectionsMaxIdle = .milliseconds(300) }
        let silent = try await TestConnection(port: broker.port)
        let stalled = try await TestConnection(port: broker.port)
        var partial = KafkaFraming.encodeRequest(ApiVersionsRequest(), version: 0, correlationId: 1, clientId: "slow")
        partial.moveWriterIndex(to: partial.writerIndex - 2)
        try await stalled.send(partial)
        #expect(try await silent.receive() == nil)
        #expect(try await stalled.receive() == nil)
        #expect(broker.broker.metricsText().contains(#"samsa_connections_idle_closed_total{listener="kafka"} 2"#))
        try await broker.stop()
    }

    /// An ApiVersions v3 request padded to `size` bytes (trailing bytes are ignored, as Kafka does).
    static func paddedRequest(size: Int, correlationId: Int32) -> ByteBuffer {
        var frame = KafkaFraming.encodeRequest(ApiVersionsRequest(), version: 3, correlationId: correlationId, clientId: "big")
        frame.writeRepeatingByte(0, count: size - frame.readableBytes)
        frame.setInteger(Int32(size - 4), at: frame.readerIndex)
        return frame
    }

    @Test("Big requests arriving at once beyond queued.max.request.bytes are all read and answered, while a small one goes on; the pool empties")
    func requestMemoryBudget() async throws {
        let request = 512 << 10
        let broker = try await Self.start {
            $0.queuedMaxRequestBytes = 1 << 20
            $0.maxRequestBytes = request
        }
        var connections: [TestConnection] = []
        for _ in 0..<6 { connections.append(try await TestConnection(port: broker.port)) }
        // Each sends the first half of its request: 1.5 MiB together, past the budget.
        for (index, connection) in connections.enumerated() {
            var frame = Self.paddedRequest(size: request, correlationId: Int32(index))
            try await connection.send(frame.readSlice(length: request / 2)!)
        }
        let small = try await TestConnection(port: broker.port)
        #expect(try await Self.apiVersionsAnswered(small), "a small request is served whatever the pool holds")
        #expect(broker.broker.requestMemory.used <= (1 << 20) + request + 6 * (256 << 10))
        for (index, connection) in connections.enumerated() {
            var frame = Self.paddedRequest(size: request, correlationId: Int32(index))
            frame.moveReaderIndex(forwardBy: request / 2)
            try await connection.send(frame)
        }
        for (index, connection) in connections.enumerated() {
            let (id, response) = try KafkaFraming.decodeResponse(try #require(try await connection.receive()), as: ApiVersionsResponse.self, version: 3)
            #expect(id == Int32(index) && response.errorCode == 0)
        }
        // A frame's bytes go back once its response is written, which the client may see first.
        try await eventually("the request pool empties", timeout: .seconds(10)) { broker.broker.requestMemory.used == 0 }
        for connection in connections + [small] { try await connection.close() }
        try await broker.stop()
    }

    static func apiVersionsFrame(version: Int16, flexibleHeader: Bool, correlationId: Int32) -> ByteBuffer {
        var frame = ByteBuffer()
        frame.writeInteger(Int32(0))
        frame.writeInteger(ApiKey.apiVersions.rawValue)
        frame.writeInteger(version)
        frame.writeInteger(correlationId)
        frame.writeInteger(Int16(-1))  // null client id
        if flexibleHeader { frame.writeInteger(UInt8(0)) }  // no tagged fields
        frame.setInteger(Int32(frame.readableBytes - 4), at: 0)
        return frame
    }

    @Test(
        "A too-new (or negative) ApiVersions gets error 35 in the v0 layout whatever its header, and the connection stays usable",
        arguments: [(Int16.max, false), (Int16.max, true), (Int16(4), false), (Int16(-1), false)])
    func tooNewApiVersions(version: Int16, flexibleHeader: Bool) async throws {
        try await TestBroker.with { broker in
            let connection = try await TestConnection(port: broker.port)
            try await connection.send(Self.apiVersionsFrame(version: version, flexibleHeader: flexibleHeader, correlationId: 9))
            let frame = try #require(try await connection.receive(), "answered, not closed")
            let (id, body) = try KafkaFraming.decodeResponse(frame, as: ApiVersionsResponse.self, version: 0)
            #expect(id == 9 && body.errorCode == ErrorCode.unsupportedVersion.rawValue)
            #expect(body.apiKeys.contains { $0.apiKey == ApiKey.apiVersions.rawValue })
            #expect(try await Self.apiVersionsAnswered(connection, correlationId: 10))
            try await connection.close()
        }
    }

    @Test("A request header that does not parse closes its connection, as in Kafka")
    func unparsableHeader() async throws {
        try await TestBroker.with { broker in
            let connection = try await TestConnection(port: broker.port)
            var frame = ByteBuffer()
            frame.writeInteger(Int32(10))
            frame.writeInteger(ApiKey.metadata.rawValue)
            frame.writeInteger(Int16(4))
            frame.writeInteger(Int32(1))
            frame.writeInteger(Int16(50))  // a client id longer than the frame
            try await connection.send(frame)
            #expect(try await connection.receive() == nil)
            try await connection.close()
        }
    }
}
