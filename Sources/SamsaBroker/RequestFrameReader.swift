import NIOCore
import SamsaProtocol

/// The first handler of a Kafka connection: splits its bytes into request frames (the rules of
/// `KafkaFrameDecoder`) and counts them in the broker's `RequestMemoryPool` from the moment they are
/// read until the connection's task has answered them (it releases each frame; see `Broker.serve`).
/// While the pool is full the connection is not read (a `read` is held until the pool has room), so
/// what hostile peers send beyond the budget waits in their sockets, not in the broker.
///
/// Event-loop confined, like every channel handler.
final class RequestFrameReader: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = NIOAny

    private let memory: RequestMemoryPool.Connection
    private let maxFrameBytes: Int
    /// The bytes of the request being received; nil between requests.
    private var partial: ByteBuffer?
    /// Set after a frame size out of bounds: the connection is closing, later bytes are dropped.
    private var failed = false
    /// A read the pool held back, issued once it has room.
    private var readHeld = false
    private var context: ChannelHandlerContext?
    /// How the pool wakes this connection (made once: reads are frequent).
    private var wake: (@Sendable () -> Void)?

    init(memory: RequestMemoryPool.Connection, maxFrameBytes: Int) {
        self.memory = memory
        self.maxFrameBytes = maxFrameBytes
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        let reader = NIOLoopBound(self, eventLoop: context.eventLoop)
        wake = { reader.eventLoop.execute { reader.value.retryHeldRead() } }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        // Bytes that never became a request; the connection's task gives back the rest when it ends.
        if let partial { memory.release(partial.readableBytes) }
        partial = nil
        self.context = nil
        wake = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !failed else { return }
        var bytes = unwrapInboundIn(data)
        memory.hold(bytes.readableBytes)
        if partial == nil {
            partial = bytes
        } else {
            partial!.writeBuffer(&bytes)
        }
        var frames: [ByteBuffer] = []
        do {
            while let frame = try KafkaFrameDecoder.nextFrame(in: &partial!, maxFrameBytes: maxFrameBytes) { frames.append(frame) }
        } catch {
            failed = true
            memory.release(partial!.readableBytes)
            partial = nil
            context.fireErrorCaught(error)
            return
        }
        if partial!.readableBytes == 0 {
            partial = nil
            memory.betweenRequests()
        }
        for frame in frames { context.fireChannelRead(wrapInboundOut(frame)) }
    }

    func read(context: ChannelHandlerContext) {
        guard let wake else { return }
        if memory.mayRead(midRequest: partial != nil, wake: wake) {
            context.read()
        } else {
            readHeld = true
        }
    }

    private func retryHeldRead() {
        guard readHeld, let context else { return }
        readHeld = false
        read(context: context)
    }
}
