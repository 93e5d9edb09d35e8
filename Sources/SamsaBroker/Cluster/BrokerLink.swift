import NIOCore
import NIOPosix
import SamsaProtocol
import Synchronization

/// A Kafka connection from this broker to another (a follower's fetcher to its leader): one request
/// at a time, answered in order. Runs on the broker's event loops.
final class BrokerLink: Sendable {
    struct Closed: Error {}
    struct WrongCorrelation: Error {}

    private let channel: any Channel
    private let frames: FrameQueue
    private let nextCorrelation = Atomic<Int32>(0)
    let clientId: String

    private init(channel: any Channel, frames: FrameQueue, clientId: String) {
        self.channel = channel
        self.frames = frames
        self.clientId = clientId
    }

    static func connect(host: String, port: Int, group: any EventLoopGroup, clientId: String) async throws -> BrokerLink {
        let frames = FrameQueue()
        let channel = try await ClientBootstrap(group: group)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connectTimeout(.seconds(5))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(KafkaFrameDecoder(maxFrameBytes: 1 << 30, kind: "response")))
                    try channel.pipeline.syncOperations.addHandler(FrameCollector(frames: frames))
                }
            }
            .connect(host: host, port: port).get()
        return BrokerLink(channel: channel, frames: frames, clientId: clientId)
    }

    func close() {
        channel.close(promise: nil)
    }

    /// Sends a request and decodes its response; throws `Closed` if the connection ends first or no
    /// answer comes within `timeout` (the connection is then closed: a peer that stopped answering
    /// must not hold the caller forever).
    func request<Request: KafkaMessage, Response: KafkaMessage>(
        _ request: Request, version: Int16, expecting: Response.Type, timeout: Duration = .seconds(15)
    ) async throws -> Response {
        let id = nextCorrelation.add(1, ordering: .relaxed).newValue
        let channel = channel
        let timer = Task {
            try await Task.sleep(for: timeout)
            channel.close(promise: nil)
        }
        defer { timer.cancel() }
        try await channel.writeAndFlush(KafkaFraming.encodeRequest(request, version: version, correlationId: id, clientId: clientId))
        guard let frame = await frames.next() else { throw Closed() }
        let (correlation, body) = try KafkaFraming.decodeResponse(frame, as: Response.self, version: version)
        guard correlation == id else { throw WrongCorrelation() }
        return body
    }

    /// Response frames handed from the event loop to the one task reading them; nil once closed.
    private final class FrameQueue: Sendable {
        private struct State {
            var frames: [ByteBuffer] = []
            var closed = false
            var waiter: CheckedContinuation<ByteBuffer?, Never>?
        }
        private let state = Mutex(State())

        func push(_ frame: ByteBuffer) {
            let waiter = state.withLock { state -> CheckedContinuation<ByteBuffer?, Never>? in
                if let waiter = state.waiter {
                    state.waiter = nil
                    return waiter
                }
                state.frames.append(frame)
                return nil
            }
            waiter?.resume(returning: frame)
        }

        func finish() {
            let waiter = state.withLock { state -> CheckedContinuation<ByteBuffer?, Never>? in
                state.closed = true
                defer { state.waiter = nil }
                return state.waiter
            }
            waiter?.resume(returning: nil)
        }

        func next() async -> ByteBuffer? {
            await withCheckedContinuation { continuation in
                let ready = state.withLock { state -> ByteBuffer?? in
                    if !state.frames.isEmpty { return .some(state.frames.removeFirst()) }
                    if state.closed { return .some(nil) }
                    state.waiter = continuation
                    return nil
                }
                if let ready { continuation.resume(returning: ready) }
            }
        }
    }

    private final class FrameCollector: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let frames: FrameQueue
        init(frames: FrameQueue) { self.frames = frames }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) { frames.push(unwrapInboundIn(data)) }
        func channelInactive(context: ChannelHandlerContext) { frames.finish() }
        func errorCaught(context: ChannelHandlerContext, error: any Error) { context.close(promise: nil) }
    }
}
