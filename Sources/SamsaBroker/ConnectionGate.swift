import Logging
import NIOCore
import NIOPosix
import Synchronization

/// The first handler of a listening channel (before NIO's accept back-off and accept handlers):
/// admits each accepted connection against `limits`.
///
/// - At `max.connections` (or the descriptor ceiling) the listener stops accepting, as Kafka's
///   acceptor blocks: new connections wait in the listen backlog (then in the peers' SYN retries)
///   until one closes, costing the broker no descriptor. The listener accepts one connection per
///   read, so nothing is accepted past the limit; one that is (a race) is closed.
/// - A connection from an address that has `max.connections.per.ip` open is closed at once, as
///   Kafka does.
///
/// Accept failures (EMFILE, ENFILE, ENOBUFS) are NIO's `AcceptBackoffHandler`'s: it waits a second
/// before accepting again. Event-loop confined, like every channel handler.
final class ConnectionGate: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = Channel
    typealias InboundOut = Channel
    typealias OutboundIn = Channel

    private let limits: ConnectionLimits
    private let listener: String
    private let logger: Logger
    private let refused: (ConnectionLimits.Admission) -> Void
    private let fullWarning = LogThrottle(every: .seconds(60))
    private var context: ChannelHandlerContext?
    private var readHeld = false
    /// While full, the gate looks again each second: room can also come from the broker closing files.
    private var recheck: Scheduled<Void>?

    /// `listener` names it in log lines ("kafka", "metrics"); `refused` counts a closed connection.
    init(limits: ConnectionLimits, listener: String, logger: Logger, refused: @escaping (ConnectionLimits.Admission) -> Void = { _ in }) {
        self.limits = limits
        self.listener = listener
        self.logger = logger
        self.refused = refused
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func handlerRemoved(context: ChannelHandlerContext) {
        recheck?.cancel()
        recheck = nil
        self.context = nil
    }

    func read(context: ChannelHandlerContext) {
        if limits.hasRoomElseWait() {
            context.read()
            return
        }
        readHeld = true
        if fullWarning.allows() {
            logger.warning(
                "\(listener) connections at their limit: new connections wait until one closes",
                metadata: [
                    "open": "\(limits.open)", "max.connections": "\(limits.maxConnections == .max ? "none" : "\(limits.maxConnections)")",
                    "ceiling": "\(limits.ceiling)",
                ])
        }
        guard recheck == nil else { return }
        recheck = context.eventLoop.assumeIsolated().scheduleTask(in: .seconds(1)) {
            self.recheck = nil
            self.retryHeldRead()
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let connection = unwrapInboundIn(data)
        let address = connection.remoteAddress?.ipAddress
        let admission = limits.admit(address: address)
        guard admission == .admitted else {
            refused(admission)
            logger.debug("\(listener) connection refused", metadata: ["peer": "\(address ?? "?")", "reason": "\(admission)"])
            connection.close(promise: nil)
            return
        }
        let limits = limits
        let gate = NIOLoopBound(self, eventLoop: context.eventLoop)
        connection.closeFuture.whenComplete { _ in
            // Only a waiting listener is woken (not one whose loop may be shutting down with it).
            if limits.release(address: address) { gate.eventLoop.execute { gate.value.retryHeldRead() } }
        }
        context.fireChannelRead(data)
    }

    private func retryHeldRead() {
        guard readHeld, let context else { return }
        readHeld = false
        read(context: context)
    }
}

extension ServerBootstrap {
    /// A listener whose connections pass a `ConnectionGate` first, counted in `metrics` as `listener`'s.
    func gated(by limits: ConnectionLimits, listener: String, logger: Logger, metrics: ConnectionMetrics) -> ServerBootstrap {
        // One connection per accept, so that the gate sees each before the next is taken.
        serverChannelOption(.maxMessagesPerRead, value: 1)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        ConnectionGate(limits: limits, listener: listener, logger: logger) { metrics.refused(listener, $0) })
                }
            }
    }
}
