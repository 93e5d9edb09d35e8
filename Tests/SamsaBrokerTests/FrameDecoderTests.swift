import NIOCore
import NIOEmbedded
import SamsaProtocol
import Testing
@testable import SamsaBroker

/// The frame decoder in a pipeline of its own (`EmbeddedChannel`): frames split across reads or packed
/// into one come out whole; a size past the limit or negative is an error.
@Suite("Broker frame decoder")
struct FrameDecoderTests {
    static func frame(_ bytes: [UInt8]) -> [UInt8] {
        var size = ByteBuffer()
        size.writeInteger(Int32(bytes.count))
        return Array(size.readableBytesView) + bytes
    }

    @Test("Frames split byte by byte, and packed two to a read, come out whole")
    func splitsAndPacks() throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(KafkaFrameDecoder(maxFrameBytes: 1024)))
        let first = Self.frame([1, 2, 3]), second = Self.frame([4]), third = Self.frame([])
        for byte in first { try channel.writeInbound(ByteBuffer(bytes: [byte])) }
        try channel.writeInbound(ByteBuffer(bytes: second + third))
        #expect(try channel.readInbound(as: ByteBuffer.self) == ByteBuffer(bytes: [1, 2, 3]))
        #expect(try channel.readInbound(as: ByteBuffer.self) == ByteBuffer(bytes: [4]))
        #expect(try channel.readInbound(as: ByteBuffer.self) == ByteBuffer())
        #expect(try channel.readInbound(as: ByteBuffer.self) == nil)
        _ = try channel.finish()
    }

    @Test("A size past the limit, or negative, is an error", arguments: [Int32(1025), -1])
    func badSizes(size: Int32) throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(KafkaFrameDecoder(maxFrameBytes: 1024)))
        var bytes = ByteBuffer()
        bytes.writeInteger(size)
        #expect(throws: FrameError.self) { try channel.writeInbound(bytes) }
        _ = try? channel.finish()
    }

    @Test("A request cut off by the peer closing yields nothing")
    func truncatedAtClose() throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(KafkaFrameDecoder(maxFrameBytes: 1024)))
        try channel.writeInbound(ByteBuffer(bytes: Array(Self.frame([1, 2, 3, 4]).prefix(6))))
        #expect(try channel.readInbound(as: ByteBuffer.self) == nil)
        _ = try? channel.finish()
    }
}
