import NIOCore

/// Closes a connection that completed no request and was sent no response for `timeout` (Kafka's
/// `connections.max.idle.ms`). Bytes alone do not count: a peer that sends part of a request and
/// stalls, or trickles a byte a minute, is closed like a silent one. `isRequest` says which inbound
/// messages are whole requests (every Kafka frame; an HTTP request's end).
///
/// One timer per connection, re-armed lazily: activity only stamps the time.
final class IdleConnectionHandler<Message>: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = Message
    typealias InboundOut = Message
    typealias OutboundIn = NIOAny

    private let timeout: TimeAmount
    private let isRequest: (Message) -> Bool
    private let onClose: () -> Void
    /// The event loop's clock (a test's embedded loop has its own).
    private var lastActivity = NIODeadline.uptimeNanoseconds(0)
    private var timer: Scheduled<Void>?

    /// `onClose` runs when this handler closes the connection (for a metric or a log line).
    init(timeout: TimeAmount, isRequest: @escaping (Message) -> Bool = { _ in true }, onClose: @escaping () -> Void = {}) {
        self.timeout = timeout
        self.isRequest = isRequest
        self.onClose = onClose
    }

    func handlerAdded(context: ChannelHandlerContext) {
        lastActivity = context.eventLoop.now
        arm(context, at: lastActivity + timeout)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if isRequest(unwrapInboundIn(data)) { lastActivity = context.eventLoop.now }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        lastActivity = context.eventLoop.now
        context.write(data, promise: promise)
    }

    private func arm(_ context: ChannelHandlerContext, at deadline: NIODeadline) {
        timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { self.expire(context) }
    }

    private func expire(_ context: ChannelHandlerContext) {
        timer = nil
        let deadline = lastActivity + timeout
        if deadline > context.eventLoop.now {
            arm(context, at: deadline)
        } else {
            onClose()
            context.close(promise: nil)
        }
    }
}
