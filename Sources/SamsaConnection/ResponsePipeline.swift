import NIOCore
import SamsaProtocol

/// A request frame on its way out, with what waits for its response (nil when the broker sends none,
/// as for Produce with acks=0).
struct OutgoingRequest: Sendable {
    struct Awaited: Sendable {
        var correlationId: Int32
        var timeout: TimeAmount
        var promise: EventLoopPromise<ByteBuffer>
    }

    var frame: ByteBuffer
    var awaited: Awaited?
}

/// Pipelining: requests are written as they come and the broker answers them in order (Kafka's
/// guarantee per connection), so each response frame answers the oldest request still waiting, and
/// must carry its correlation id. Each waiting request has a deadline on the event loop, cancelled
/// when its answer comes. A late answer, a wrong correlation id, an answer nobody asked for or a
/// frame past the size limit fails every waiting request and closes the connection. Only touched on
/// the channel's event loop.
final class ResponsePipeline: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = OutgoingRequest
    typealias OutboundOut = ByteBuffer

    private struct Waiting {
        var correlationId: Int32
        var promise: EventLoopPromise<ByteBuffer>
        var deadline: Scheduled<Void>
    }

    private var waiting = CircularBuffer<Waiting>()
    private var failure: ConnectionError?

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let request = unwrapOutboundIn(data)
        if let failure {
            request.awaited?.promise.fail(failure)
            promise?.fail(failure)
            return
        }
        if let awaited = request.awaited {
            let deadline = context.eventLoop.assumeIsolated().scheduleTask(in: awaited.timeout) {
                self.fail(
                    ConnectionError(.timedOut, "no response to correlation id \(awaited.correlationId) within \(awaited.timeout)"),
                    context: context)
            }
            waiting.append(Waiting(correlationId: awaited.correlationId, promise: awaited.promise, deadline: deadline))
        }
        context.write(wrapOutboundOut(request.frame), promise: promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        guard let next = waiting.popFirst() else {
            fail(ConnectionError(.unexpectedResponse, "a response arrived with no request waiting"), context: context)
            return
        }
        next.deadline.cancel()
        let correlationId = frame.getInteger(at: frame.readerIndex, as: Int32.self)
        guard correlationId == next.correlationId else {
            let error = ConnectionError(
                .wrongCorrelation, "response has correlation id \(correlationId.map(String.init) ?? "none"), expected \(next.correlationId)")
            next.promise.fail(error)
            fail(error, context: context)
            return
        }
        next.promise.succeed(frame)
    }

    func channelInactive(context: ChannelHandlerContext) {
        failAll(ConnectionError(.closed, "the peer closed the connection"))
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        failAll(ConnectionError(.closed, "the connection was closed"))
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let frame = error as? FrameError {
            fail(ConnectionError(.badFrame, "\(frame)"), context: context)
        } else {
            fail(error as? ConnectionError ?? ConnectionError(.closed, "\(error)"), context: context)
        }
    }

    private func fail(_ error: ConnectionError, context: ChannelHandlerContext) {
        failAll(error)
        context.close(promise: nil)
    }

    private func failAll(_ error: ConnectionError) {
        if failure == nil { failure = error }
        while let next = waiting.popFirst() {
            next.deadline.cancel()
            next.promise.fail(error)
        }
    }
}
