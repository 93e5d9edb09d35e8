import NIOCore
import NIOEmbedded
import NIOPosix
@testable import SamsaConnection
import SamsaProtocol
import Synchronization
import Testing

/// The shared connection's bounds, against a fake broker that misbehaves in one way per test.
@Suite("Kafka connection limits")
struct KafkaConnectionTests {
    static let limit = 1024

    /// Connects to a fake broker answering with `reply`, runs `body`, and stops both.
    func withPeer(
        reply: @escaping @Sendable (Int32) -> FakeBroker.Reply, _ body: (KafkaConnection) async throws -> Void
    ) async throws {
        let broker = try await FakeBroker.start(reply: reply)
        let connection = try await KafkaConnection.connect(
            host: "127.0.0.1", port: broker.port, group: MultiThreadedEventLoopGroup.singleton, clientId: "test",
            connectTimeout: .seconds(5), maxResponseBytes: Self.limit)
        do {
            try await body(connection)
        } catch {
            connection.close()
            await broker.stop()
            throw error
        }
        connection.close()
        await broker.stop()
    }

    /// The code of the error a request on `connection` fails with (nil if it succeeds).
    func failure(of connection: KafkaConnection, timeout: TimeAmount = .seconds(10)) async -> ConnectionError.Code? {
        do {
            _ = try await connection.request(ApiVersionsRequest(), version: 0, expecting: ApiVersionsResponse.self, timeout: timeout)
            return nil
        } catch {
            return (error as? ConnectionError)?.code
        }
    }

    @Test("A well-formed answer is decoded, and pipelined requests each get their own", .timeLimit(.minutes(1)))
    func answered() async throws {
        try await withPeer(reply: { .bytes(FakeBroker.answer(correlationId: $0)) }) { connection in
            let futures = (0..<10).map { _ in
                connection.send(ApiVersionsRequest(), version: 0, expecting: ApiVersionsResponse.self, timeout: .seconds(10))
            }
            for future in futures { _ = try await future.get() }
            #expect(connection.isActive)
        }
    }

    @Test("A response frame over the limit closes the connection", .timeLimit(.minutes(1)))
    func oversizedFrame() async throws {
        try await withPeer(reply: { _ in
            var header = ByteBuffer()
            header.writeInteger(Int32(Self.limit + 1))
            return .bytes(header)
        }) { connection in
            #expect(await failure(of: connection) == .badFrame)
            try await connection.channel.closeFuture.get()
            #expect(await failure(of: connection) == .closed)
        }
    }

    @Test("A peer that never answers is cut after the timeout", .timeLimit(.minutes(1)))
    func silentPeer() async throws {
        try await withPeer(reply: { _ in .silence }) { connection in
            #expect(await failure(of: connection, timeout: .milliseconds(100)) == .timedOut)
            try await connection.channel.closeFuture.get()
        }
    }

    @Test("A response with another request's correlation id fails the connection", .timeLimit(.minutes(1)))
    func wrongCorrelation() async throws {
        try await withPeer(reply: { .bytes(FakeBroker.answer(correlationId: $0 + 1)) }) { connection in
            #expect(await failure(of: connection) == .wrongCorrelation)
            try await connection.channel.closeFuture.get()
            #expect(await failure(of: connection) == .closed)
        }
    }

    @Test("A peer closing in the middle of a response fails the request", .timeLimit(.minutes(1)))
    func closedMidResponse() async throws {
        try await withPeer(reply: { correlationId in
            let whole = FakeBroker.answer(correlationId: correlationId)
            return .bytesThenClose(whole.getSlice(at: whole.readerIndex, length: whole.readableBytes - 2)!)
        }) { connection in
            #expect(await failure(of: connection) == .closed)
        }
    }

    /// One request sent on an in-memory connection whose loop's clock the test moves, and its outcome.
    final class EmbeddedRequest: Sendable {
        let channel = EmbeddedChannel()
        let outcome = Mutex<Result<ApiVersionsResponse, any Error>?>(nil)

        init(timeout: TimeAmount) throws {
            try KafkaConnection.addHandlers(to: channel, maxResponseBytes: KafkaConnectionTests.limit)
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 9092)).wait()
            let connection = KafkaConnection(host: "embedded", port: 0, channel: channel, clientId: "test")
            connection.send(ApiVersionsRequest(), version: 0, expecting: ApiVersionsResponse.self, timeout: timeout)
                .whenComplete { result in self.outcome.withLock { $0 = result } }
        }
    }

    @Test("A request's deadline is cancelled when its answer comes: nothing fires after it")
    func deadlineCancelledByAnswer() throws {
        let request = try EmbeddedRequest(timeout: .seconds(10))
        let channel = request.channel
        let frame = try #require(try channel.readOutbound(as: ByteBuffer.self))
        // Size i32, api key i16, api version i16, then the correlation id.
        let correlationId = try #require(frame.getInteger(at: frame.readerIndex + 8, as: Int32.self))
        try channel.writeInbound(FakeBroker.answer(correlationId: correlationId))
        #expect(try request.outcome.withLock { try $0?.get() } != nil)
        // Past the deadline: had it not been cancelled, it would close the connection now.
        channel.embeddedEventLoop.advanceTime(by: .seconds(11))
        #expect(channel.isActive)
        _ = try channel.finish()
    }

    @Test("An unanswered request fails at its deadline and closes the connection")
    func deadlineFires() throws {
        let request = try EmbeddedRequest(timeout: .seconds(10))
        let channel = request.channel
        channel.embeddedEventLoop.advanceTime(by: .seconds(9))
        #expect(request.outcome.withLock { $0 } == nil)
        #expect(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        #expect(throws: ConnectionError.self) { try request.outcome.withLock { try $0?.get() } }
        #expect(!channel.isActive)
    }
}
