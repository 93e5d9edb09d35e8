import NIOCore
import NIOEmbedded
import SamsaProtocol
import Testing
@testable import SamsaBroker

/// The connection handlers alone, in `EmbeddedChannel`s (the clock is the embedded loop's): request
/// frames held in the shared memory pool, reads held while it is full, idle connections closed, and
/// the listener's gate.
@Suite("Connection handlers")
struct ConnectionHandlerTests {
    /// Counts the reads that reach the head of the pipeline (reads the channel would issue).
    final class ReadCounter: ChannelOutboundHandler {
        typealias OutboundIn = NIOAny
        var reads = 0
        func read(context: ChannelHandlerContext) {
            reads += 1
            context.read()
        }
    }

    static func frame(size: Int32, bytes: Int) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInteger(size)
        buffer.writeRepeatingByte(7, count: bytes)
        return buffer
    }

    /// A connection's pipeline: read counter (head side), then the frame reader.
    static func connection(_ pool: RequestMemoryPool, maxFrameBytes: Int = 1 << 20) throws -> (EmbeddedChannel, ReadCounter, RequestMemoryPool.Connection) {
        let counter = ReadCounter()
        let memory = pool.open()
        let channel = EmbeddedChannel(handlers: [counter, RequestFrameReader(memory: memory, maxFrameBytes: maxFrameBytes)])
        return (channel, counter, memory)
    }

    @Test("Frames split and packed come out whole, and stay counted in the pool until answered")
    func framesAreCountedUntilReleased() throws {
        let pool = RequestMemoryPool(budget: 1 << 20)
        let (channel, _, memory) = try Self.connection(pool)
        var two = Self.frame(size: 3, bytes: 3)
        var one = Self.frame(size: 1, bytes: 1)
        two.writeBuffer(&one)
        var split = Self.frame(size: 5, bytes: 5)
        try channel.writeInbound(two)
        try channel.writeInbound(split.readSlice(length: 6)!)
        #expect(pool.used == 12 + 6)
        try channel.writeInbound(split)
        #expect(try channel.readInbound(as: ByteBuffer.self)?.readableBytes == 3)
        #expect(try channel.readInbound(as: ByteBuffer.self)?.readableBytes == 1)
        #expect(try channel.readInbound(as: ByteBuffer.self)?.readableBytes == 5)
        #expect(pool.used == 21)
        memory.release(4 + 3)  // the first request was answered
        #expect(pool.used == 14)
        memory.close()
        #expect(pool.used == 0)
        _ = try channel.finish()
    }

    @Test("A declared size costs nothing: a 100 MiB frame of which 10 bytes came holds 14 bytes")
    func declaredSizeIsNotReserved() throws {
        let pool = RequestMemoryPool(budget: 1 << 20)
        let (channel, _, _) = try Self.connection(pool, maxFrameBytes: 100 << 20)
        try channel.writeInbound(Self.frame(size: 100 << 20, bytes: 10))
        #expect(pool.used == 14)
        _ = try channel.finish()
        #expect(pool.used == 0, "the partial frame is given back when the connection goes")
    }

    @Test("A size out of bounds is an error and its bytes are given back")
    func badSize() throws {
        let pool = RequestMemoryPool(budget: 1 << 20)
        let (channel, _, _) = try Self.connection(pool, maxFrameBytes: 1024)
        #expect(throws: FrameError.self) { try channel.writeInbound(Self.frame(size: 1025, bytes: 10)) }
        #expect(pool.used == 0)
        _ = try? channel.finish()
    }

    static let kib = 1 << 10

    @Test("While the pool is full a connection holding an unanswered request is not read; it is once answered requests free room")
    func fullPoolHoldsReads() throws {
        let pool = RequestMemoryPool(budget: 200 * Self.kib)
        let (busy, _, busyMemory) = try Self.connection(pool)
        let (other, counter, _) = try Self.connection(pool)
        try busy.writeInbound(Self.frame(size: Int32(150 * Self.kib), bytes: 150 * Self.kib))
        try other.writeInbound(Self.frame(size: Int32(70 * Self.kib), bytes: 70 * Self.kib))
        #expect(pool.used >= pool.budget)
        other.read()
        #expect(counter.reads == 0, "held: the pool is full and this connection holds more than the allowance")
        busyMemory.release(150 * Self.kib + 4)
        other.embeddedEventLoop.run()
        #expect(counter.reads == 1, "issued once room came back")
        _ = try busy.finish()
        _ = try other.finish()
    }

    @Test("While the pool is full a connection holding less than the allowance is still read (small requests go on)")
    func allowanceKeepsSmallRequestsMoving() throws {
        let pool = RequestMemoryPool(budget: 100 * Self.kib)
        let (busy, _, _) = try Self.connection(pool)
        let (small, counter, _) = try Self.connection(pool)
        try busy.writeInbound(Self.frame(size: Int32(200 * Self.kib), bytes: 100 * Self.kib))
        try small.writeInbound(Self.frame(size: 100, bytes: 50))
        #expect(pool.used > pool.budget)
        small.read()
        #expect(counter.reads == 1)
        _ = try busy.finish()
        _ = try small.finish()
    }

    @Test("Requests half-received when the pool fills are finished one at a time (the overdraft), never all held")
    func overdraftFinishesOneRequestAtATime() throws {
        let pool = RequestMemoryPool(budget: 200 * Self.kib)
        let (first, firstReads, firstMemory) = try Self.connection(pool)
        let (second, secondReads, _) = try Self.connection(pool)
        try first.writeInbound(Self.frame(size: Int32(150 * Self.kib), bytes: 100 * Self.kib))
        try second.writeInbound(Self.frame(size: Int32(150 * Self.kib), bytes: 100 * Self.kib))
        #expect(pool.used >= pool.budget)
        first.read()
        second.read()
        #expect(firstReads.reads == 1, "the first takes the overdraft to finish its request")
        #expect(secondReads.reads == 0, "the second waits")
        try first.writeInbound(ByteBuffer(repeating: 7, count: 50 * Self.kib))
        #expect(try first.readInbound(as: ByteBuffer.self)?.readableBytes == 150 * Self.kib)
        second.embeddedEventLoop.run()
        #expect(secondReads.reads == 1, "the overdraft passed on once the first request was whole")
        firstMemory.close()
        _ = try first.finish()
        _ = try second.finish()
        #expect(pool.used == 0)
    }

    @Test("A silent connection, and one that sent part of a request and stalled, are closed after the idle time")
    func idleConnectionsClose() throws {
        let pool = RequestMemoryPool(budget: 1 << 20)
        for partial in [false, true] {
            let channel = EmbeddedChannel(handlers: [
                RequestFrameReader(memory: pool.open(), maxFrameBytes: 1024), IdleConnectionHandler<ByteBuffer>(timeout: .seconds(10)),
            ])
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
            if partial { try channel.writeInbound(Self.frame(size: 100, bytes: 50)) }
            channel.embeddedEventLoop.advanceTime(by: .seconds(9))
            try channel.writeInbound(ByteBuffer(bytes: [7, 7, 7]))  // bytes, but no whole request
            #expect(channel.isActive)
            channel.embeddedEventLoop.advanceTime(by: .seconds(1))
            #expect(!channel.isActive)
            _ = try? channel.finish()
        }
    }

    @Test("Requests and responses keep a connection open; the idle time counts from the last of them")
    func activityKeepsOpen() throws {
        let channel = EmbeddedChannel(handler: IdleConnectionHandler<ByteBuffer>(timeout: .seconds(10)))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        channel.embeddedEventLoop.advanceTime(by: .seconds(6))
        try channel.writeInbound(ByteBuffer(bytes: [1]))  // a whole request
        channel.embeddedEventLoop.advanceTime(by: .seconds(6))
        try channel.writeOutbound(ByteBuffer(bytes: [2]))  // a response
        channel.embeddedEventLoop.advanceTime(by: .seconds(9))
        #expect(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        #expect(!channel.isActive)
        _ = try? channel.finish()
    }

    /// A listener's pipeline: read counter (head side), then the gate.
    static func listener(_ limits: ConnectionLimits) -> (EmbeddedChannel, ReadCounter) {
        let counter = ReadCounter()
        let channel = EmbeddedChannel(handlers: [counter, ConnectionGate(limits: limits, listener: "test", logger: .init(label: "test"))])
        return (channel, counter)
    }

    static func peer(_ address: String, on loop: EmbeddedEventLoop) throws -> EmbeddedChannel {
        let channel = EmbeddedChannel(loop: loop)
        channel.remoteAddress = try SocketAddress(ipAddress: address, port: 4000)
        return channel
    }

    @Test("At max.connections the listener stops accepting, and accepts again when a connection closes")
    func maxConnectionsHoldsAccepting() throws {
        let limits = ConnectionLimits(maxConnections: 2)
        let (listener, counter) = Self.listener(limits)
        let peers = try (0..<2).map { _ in try Self.peer("10.0.0.1", on: listener.embeddedEventLoop) }
        for peer in peers { try listener.writeInbound(peer as any Channel) }
        #expect(limits.open == 2)
        listener.read()
        #expect(counter.reads == 0, "full: the next connection waits in the backlog")
        _ = try peers[0].finish()
        listener.embeddedEventLoop.run()
        #expect(limits.open == 1)
        #expect(counter.reads == 1)
        _ = try? peers[1].finish()
        _ = try? listener.finish()
    }

    @Test("A connection past max.connections.per.ip is closed; other addresses are accepted")
    func perAddressLimit() throws {
        let limits = ConnectionLimits(maxConnections: 10, maxPerAddress: 1)
        let (listener, _) = Self.listener(limits)
        let first = try Self.peer("10.0.0.1", on: listener.embeddedEventLoop)
        let second = try Self.peer("10.0.0.1", on: listener.embeddedEventLoop)
        let elsewhere = try Self.peer("10.0.0.2", on: listener.embeddedEventLoop)
        try first.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        try second.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        for peer in [first, second, elsewhere] { try listener.writeInbound(peer as any Channel) }
        #expect(!second.isActive, "closed: its address is at the limit")
        #expect(first.isActive)
        #expect(limits.open == 2)
        _ = try? first.finish()
        _ = try? elsewhere.finish()
        _ = try? listener.finish()
    }

    @Test("The descriptor ceiling caps connections below max.connections")
    func descriptorCeiling() {
        let ceiling = DescriptorCeiling(limit: 256) { 200 }
        let limits = ConnectionLimits(maxConnections: .max, descriptorRoom: { ceiling.room })
        #expect(limits.ceiling == 56)
        for _ in 0..<56 { #expect(limits.admit(address: "10.0.0.1") == .admitted) }
        #expect(limits.admit(address: "10.0.0.2") == .full)
        #expect(DescriptorCeiling.segmentFileCache(limit: 256) == 32)
        #expect(DescriptorCeiling.segmentFileCache(limit: 1 << 20) == 256)
    }
}
