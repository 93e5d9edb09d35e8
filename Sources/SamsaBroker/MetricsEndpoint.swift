import NIOCore
import NIOHTTP1
import NIOPosix
import SamsaStorage

/// Serves `GET /metrics` in Prometheus' text format over HTTP/1.1 (anything else is 404; methods
/// other than GET and HEAD 405). Scraping reads counters and the logs' offsets: no file I/O, so it
/// runs on the event loop.
struct MetricsEndpoint: Sendable {
    let channel: any Channel
    var localAddress: SocketAddress? { channel.localAddress }

    static func bind(host: String, port: Int, group: any EventLoopGroup, metrics: BrokerMetrics, logs: LogManager) async throws -> MetricsEndpoint {
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { child in
                child.eventLoop.makeCompletedFuture {
                    try child.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try child.pipeline.syncOperations.addHandler(ScrapeHandler(metrics: metrics, logs: logs))
                }
            }
            .bind(host: host, port: port).get()
        return MetricsEndpoint(channel: channel)
    }

    func close() async {
        try? await channel.close()
    }
}

private final class ScrapeHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let metrics: BrokerMetrics
    let logs: LogManager
    private var request: HTTPRequestHead?

    init(metrics: BrokerMetrics, logs: LogManager) {
        self.metrics = metrics
        self.logs = logs
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
            respond(to: head, context: context)
        }
    }

    private func respond(to head: HTTPRequestHead, context: ChannelHandlerContext) {
        let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
        let (status, contentType, body): (HTTPResponseStatus, String, [UInt8]) =
            if head.method != .GET && head.method != .HEAD {
                (.methodNotAllowed, "text/plain", Array("only GET\n".utf8))
            } else if path == "/metrics" {
                (.ok, "text/plain; version=0.0.4; charset=utf-8", metrics.scrape(logs))
            } else {
                (.notFound, "text/plain", Array("metrics are at /metrics\n".utf8))
            }
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: contentType)
        headers.add(name: "Content-Length", value: "\(body.count)")
        if !head.isKeepAlive { headers.add(name: "Connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
        if head.method != .HEAD {
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))), promise: nil)
        }
        let written = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !head.isKeepAlive {
            let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
            written.whenComplete { _ in bound.value.close(promise: nil) }
        }
    }
}
