import Dispatch
import Foundation

/// Lines of standard input as an async sequence, read on a thread of their own (a blocking read must
/// not hold one of the few threads Swift concurrency runs tasks on). At most `buffer` lines wait
/// unread, so a slow consumer slows the reader instead of filling memory.
struct StandardInputLines: AsyncSequence, Sendable {
    typealias Element = String
    let buffer: Int

    init(buffer: Int = 4096) { self.buffer = buffer }

    func makeAsyncIterator() -> Iterator {
        let room = DispatchSemaphore(value: buffer)
        let (stream, continuation) = AsyncStream<String>.makeStream()
        let reader = Thread {
            while let line = readLine(strippingNewline: true) {
                room.wait()
                continuation.yield(line)
            }
            continuation.finish()
        }
        reader.start()
        return Iterator(inner: stream.makeAsyncIterator(), room: room)
    }

    struct Iterator: AsyncIteratorProtocol {
        var inner: AsyncStream<String>.Iterator
        let room: DispatchSemaphore

        /// The next line; hands its buffer slot back to the reader.
        mutating func next() async -> String? {
            let line = await inner.next()
            if line != nil { room.signal() }
            return line
        }
    }
}
