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
    /// The reads not yet split into frames, in order; empty between requests. Kept apart and merged
    /// once a whole frame has arrived (one copy of each byte at most, none for a frame that came in
    /// one read), as NIO's `ByteToMessageHandler` does: appending each read to one buffer that frames
    /// already sent on were sliced from copied it again and again into fresh pages (profiled: memmove
    /// and page faults took a quarter of the broker's samples, uncompressed produce 0.72x).
    private var pending: [ByteBuffer] = []
    private var pendingBytes = 0
    /// Reads kept apart at most; past it they are merged (a peer trickling bytes cannot make the list,
    /// and the buffers' spare capacity, grow without bound).
    private static let maxPendingReads = 64
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
        memory.release(pendingBytes)
        pending = []
        pendingBytes = 0
        self.context = nil
        wake = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !failed else { return }
        let bytes = unwrapInboundIn(data)
        guard bytes.readableBytes > 0 else { return }
        memory.hold(bytes.readableBytes)
        pending.append(bytes)
        pendingBytes += bytes.readableBytes
        var frames: [ByteBuffer] = []
        do {
            // Merge only when a whole frame is there (or the list is long); then take every frame.
            let complete = try frameIsComplete()
            if complete || pending.count > Self.maxPendingReads {
                var merged = mergePending()
                while let frame = try KafkaFrameDecoder.nextFrame(in: &merged, maxFrameBytes: maxFrameBytes) { frames.append(frame) }
                pending = merged.readableBytes > 0 ? [merged] : []
                pendingBytes = merged.readableBytes
            }
        } catch {
            failed = true
            memory.release(pendingBytes)
            pending = []
            pendingBytes = 0
            context.fireErrorCaught(error)
            return
        }
        if pendingBytes == 0 { memory.betweenRequests() }
        for frame in frames { context.fireChannelRead(wrapInboundOut(frame)) }
    }

    /// Whether the first pending frame has all its bytes; throws for a size out of bounds.
    private func frameIsComplete() throws(FrameError) -> Bool {
        guard pendingBytes >= KafkaFraming.sizeLength else { return false }
        var size: UInt32 = 0
        var taken = 0
        reading: for buffer in pending {
            for byte in buffer.readableBytesView {
                size = size << 8 | UInt32(byte)
                taken += 1
                if taken == KafkaFraming.sizeLength { break reading }
            }
        }
        let declared = Int(Int32(bitPattern: size))
        guard declared >= 0, declared <= maxFrameBytes else { throw FrameError(kind: "request", size: declared, limit: maxFrameBytes) }
        return pendingBytes >= KafkaFraming.sizeLength + declared
    }

    /// The pending reads as one buffer: the first one grown once to hold them all (in place when
    /// nothing else shares it, as when earlier reads were merged into it), the others copied after it.
    private func mergePending() -> ByteBuffer {
        var merged = pending[0]
        guard pending.count > 1 else { return merged }
        merged.reserveCapacity(minimumWritableBytes: pendingBytes - merged.readableBytes)
        for var buffer in pending.dropFirst() { merged.writeBuffer(&buffer) }
        return merged
    }

    func read(context: ChannelHandlerContext) {
        guard let wake else { return }
        if memory.mayRead(midRequest: pendingBytes > 0, wake: wake) {
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
