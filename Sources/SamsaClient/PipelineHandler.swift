import NIOCore
import SamsaProtocol

/// A request frame on its way out, with the promise its response frame fulfils (nil when the broker
/// sends no response, as for Produce with acks=0).
struct OutgoingRequest: Sendable {
    var frame: ByteBuffer
    var response: EventLoopPromise<ByteBuffer>?
}

/// Pipelining: requests are written as they come and the broker answers them in order (Kafka's
/// guarantee per connection), so each response frame fulfils the oldest promise still waiting. The
/// queue is only touched on the channel's event loop.
final class PipelineHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = OutgoingRequest
    typealias OutboundOut = ByteBuffer

    private var waiting = CircularBuffer<EventLoopPromise<ByteBuffer>>()
    private var failure: (any Error)?

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let request = unwrapOutboundIn(data)
        if let failure {
            request.response?.fail(failure)
            promise?.fail(failure)
            return
        }
        if let response = request.response { waiting.append(response) }
        context.write(wrapOutboundOut(request.frame), promise: promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        guard let promise = waiting.popFirst() else {
            failAll(KafkaClientError.badResponse("a response arrived with no request waiting"))
            context.close(promise: nil)
            return
        }
        promise.succeed(frame)
    }

    func channelInactive(context: ChannelHandlerContext) {
        failAll(KafkaClientError.connectionFailed("the broker closed the connection"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let frame = error as? FrameError {
            failAll(.badResponse("\(frame)"))
        } else {
            failAll(error as? KafkaClientError ?? .connectionFailed("\(error)"))
        }
        context.close(promise: nil)
    }

    private func failAll(_ error: KafkaClientError) {
        if failure == nil { failure = error }
        while let promise = waiting.popFirst() { promise.fail(error) }
    }
}
