import Logging
import NIOCore
import NIOHTTP1
import NIOPosix

/// Serves `GET /metrics` in Prometheus' text format over HTTP/1.1 (anything else is 404; methods
/// other than GET and HEAD 405). Scraping reads counters and the logs' offsets: no file I/O, so it
/// runs on the event loop.
///
/// A slow or hostile metrics client cannot hold memory or delay Kafka clients: the endpoint has an
/// event loop of its own; it accepts at most `metricsMaxConnections` at once (more wait in the
/// backlog); each connection has one request answered at a time and is not read until that answer
/// is written to its socket (pipelined requests wait in the peer, not here); and a connection idle
/// for `connectionsMaxIdle` is closed.
struct MetricsEndpoint: Sendable {
    let channel: any Channel
    /// The endpoint's own event loop, shut down (closing its connections) by `close`.
    private let group: MultiThreadedEventLoopGroup
    var localAddress: SocketAddress? { channel.localAddress }

    static func bind(
        host: String, port: Int, configuration: BrokerConfiguration, connectionMetrics: ConnectionMetrics, scrape: @escaping @Sendable () -> [UInt8]
    ) async throws -> MetricsEndpoint {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let limits = ConnectionLimits(maxConnections: configuration.metricsMaxConnections)
        let idle = TimeAmount(configuration.connectionsMaxIdle)
        let logger = configuration.logger
        do {
            let channel = try await ServerBootstrap(group: group)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .gated(by: limits, listener: "metrics", logger: logger, metrics: connectionMetrics)
                .childChannelInitializer { child in
                    child.eventLoop.makeCompletedFuture {
                        try child.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                        try child.pipeline.syncOperations.addHandler(
                            IdleConnectionHandler<HTTPServerRequestPart>(
                                timeout: idle, isRequest: Self.isRequestEnd, onClose: { connectionMetrics.closedIdle("metrics") }))
                        try child.pipeline.syncOperations.addHandler(ScrapeHandler(scrape: scrape))
                    }
                }
                .bind(host: host, port: port).get()
            return MetricsEndpoint(channel: channel, group: group)
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
    }

    private static func isRequestEnd(_ part: HTTPServerRequestPart) -> Bool {
        if case .end = part { true } else { false }
    }

    func close() async {
        try? await channel.close()
        try? await group.shutdownGracefully()
    }
}

/// Answers one request at a time: a request that arrives while the previous answer is still being
/// written waits until it is. (NIO's pipelining handler delivers the next request as soon as an
/// answer's end is written into the channel, not to the socket, and stops reading only while an
/// answer is missing: keeping that request unanswered keeps the connection unread.)
private final class ScrapeHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let scrape: @Sendable () -> [UInt8]
    private var request: HTTPRequestHead?
    /// A whole request waiting for the previous answer to be written.
    private var next: HTTPRequestHead?
    private var writing = false

    init(scrape: @escaping @Sendable () -> [UInt8]) {
        self.scrape = scrape
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            request = head
        case .body:
            break
        case .end:
            guard let head = request else { return }
            request = nil
            if writing {
                next = head
            } else {
                respond(to: head, context: context)
            }
        }
    }

    private func respond(to head: HTTPRequestHead, context: ChannelHandlerContext) {
        let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
        let (status, contentType, body): (HTTPResponseStatus, String, [UInt8]) =
            if head.method != .GET && head.method != .HEAD {
                (.methodNotAllowed, "text/plain", Array("only GET\n".utf8))
            } else if path == "/metrics" {
                (.ok, "text/plain; version=0.0.4; charset=utf-8", scrape())
            } else {
                (.notFound, "text/plain", Array("metrics are at /metrics\n".utf8))
            }
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: contentType)
        headers.add(name: "Content-Length", value: "\(body.count)")
        if !head.isKeepAlive { headers.add(name: "Connection", value: "close") }
        writing = true
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
        if head.method != .HEAD {
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))), promise: nil)
        }
        context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { result in
            self.writing = false
            guard case .success = result, head.isKeepAlive else {
                context.close(promise: nil)
                return
            }
            guard let waiting = self.next else { return }
            self.next = nil
            // A later turn of the loop: a write that completes at once must not recurse per request.
            context.eventLoop.assumeIsolated().execute { self.respond(to: waiting, context: context) }
        }
    }
}
