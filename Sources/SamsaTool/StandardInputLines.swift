import Dispatch
import Foundation
import Glibc

/// Lines of standard input as an async sequence of bytes, exactly as read: only the `\n` that ends
/// each line is removed (a `\r` before it and invalid UTF-8 are kept, byte for byte). Read on a thread
/// of their own (a blocking read must not hold one of the few threads Swift concurrency runs tasks
/// on). At most `buffer` lines wait unread, so a slow consumer slows the reader instead of filling
/// memory. Stopping early is fine: the reader thread then waits until the process exits.
struct StandardInputLines: AsyncSequence, Sendable {
    typealias Element = [UInt8]
    let buffer: Int
    let descriptor: Int32

    init(buffer: Int = 4096, descriptor: Int32 = STDIN_FILENO) {
        self.buffer = buffer
        self.descriptor = descriptor
    }

    /// A read of standard input failed (not end of file).
    struct ReadError: Error, CustomStringConvertible {
        let errno: Int32
        var description: String { "cannot read standard input: \(String(cString: strerror(errno)))" }
    }

    func makeAsyncIterator() -> Iterator {
        // Starts at 0 and is raised to `buffer`: libdispatch traps when a semaphore is released with
        // a value below the one it was created with, which an abandoned iterator would leave.
        let room = DispatchSemaphore(value: 0)
        for _ in 0..<buffer { room.signal() }
        let (stream, continuation) = AsyncThrowingStream<[UInt8], any Error>.makeStream()
        let descriptor = self.descriptor
        let reader = Thread {
            var splitter = LineSplitter()
            var chunk = [UInt8](repeating: 0, count: 1 << 16)
            while true {
                let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
                if count < 0 {
                    if errno == EINTR { continue }
                    continuation.finish(throwing: ReadError(errno: errno))
                    return
                }
                if count == 0 { break }
                for line in splitter.lines(in: chunk[..<count]) {
                    room.wait()
                    continuation.yield(line)
                }
            }
            if let last = splitter.rest() {
                room.wait()
                continuation.yield(last)
            }
            continuation.finish()
        }
        reader.start()
        return Iterator(inner: stream.makeAsyncIterator(), room: room)
    }

    struct Iterator: AsyncIteratorProtocol {
        var inner: AsyncThrowingStream<[UInt8], any Error>.Iterator
        let room: DispatchSemaphore

        /// The next line; hands its buffer slot back to the reader.
        mutating func next() async throws -> [UInt8]? {
            let line = try await inner.next()
            if line != nil { room.signal() }
            return line
        }
    }
}

/// Splits bytes at `\n`, carrying a partial line over to the next chunk.
struct LineSplitter {
    private var partial: [UInt8] = []

    mutating func lines(in chunk: ArraySlice<UInt8>) -> [[UInt8]] {
        var lines: [[UInt8]] = []
        var start = chunk.startIndex
        while let newline = chunk[start...].firstIndex(of: UInt8(ascii: "\n")) {
            if partial.isEmpty {
                lines.append(Array(chunk[start..<newline]))
            } else {
                lines.append(partial + chunk[start..<newline])
                partial.removeAll()
            }
            start = newline + 1
        }
        partial += chunk[start...]
        return lines
    }

    /// The last line, when the input does not end with a newline.
    mutating func rest() -> [UInt8]? {
        defer { partial.removeAll() }
        return partial.isEmpty ? nil : partial
    }
}
