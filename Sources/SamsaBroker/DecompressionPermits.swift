import NIOCore
import SamsaRecords
import Synchronization

/// Bounds the produce validations that decompress at once, broker-wide. Checking a compressed batch
/// decompresses its records section whole, up to `RecordBatchLimits.maxDecompressedSize` (256 MiB), and
/// every partition of a request is validated on its own writer queue: 16 partitions of one request each
/// holding a 65 KB zstd bomb of zeros held 3.1 GB at once. With `count` permits, decompression holds at
/// most `count` x 256 MiB, whatever clients send; requests without compressed batches never wait.
///
/// Waiting is asynchronous (no thread blocks) and first come, first served. A permit is held only for one
/// partition's validation and append, which end in bounded time, so waits are bounded too.
final class DecompressionPermits: Sendable {
    private struct State {
        var available: Int
        /// Waiters in arrival order: `waiters[head...]` are still waiting.
        var waiters: [CheckedContinuation<Void, Never>] = []
        var head = 0
        /// The most permits held at once so far (for tests and metrics).
        var mostHeld = 0
    }

    private let state: Mutex<State>
    let count: Int

    /// The most permits ever held at once: never more than `count`.
    var mostHeld: Int { state.withLock { $0.mostHeld } }

    /// One permit per core by default: decompression is CPU-bound, more at once would only share the cores.
    init(count: Int = System.coreCount) {
        self.count = max(1, count)
        state = Mutex(State(available: max(1, count)))
    }

    /// Runs `body` holding a permit.
    func withPermit<Value>(_ body: () async throws -> Value) async throws -> Value {
        await acquire()
        defer { release() }
        return try await body()
    }

    private func acquire() async {
        let granted = state.withLock { state in
            guard state.available > 0 else { return false }
            state.available -= 1
            state.mostHeld = max(state.mostHeld, count - state.available)
            return true
        }
        if granted { return }
        await withCheckedContinuation { continuation in
            let grantedNow = state.withLock { state in
                // A permit freed between the two locks goes to this waiter at once.
                if state.available > 0 {
                    state.available -= 1
                    state.mostHeld = max(state.mostHeld, count - state.available)
                    return true
                }
                state.waiters.append(continuation)
                return false
            }
            if grantedNow { continuation.resume() }
        }
    }

    private func release() {
        let next = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard state.head < state.waiters.count else {
                state.available += 1
                return nil
            }
            let waiter = state.waiters[state.head]
            state.head += 1
            // Drop the served prefix now and then, so the array does not grow without end.
            if state.head >= 1024 && state.head * 2 >= state.waiters.count {
                state.waiters.removeFirst(state.head)
                state.head = 0
            }
            return waiter
        }
        // The permit passes straight to the next waiter.
        next?.resume()
    }

    /// Whether any batch in a partition's records is compressed (read from the headers only; bytes that
    /// are not batches end the walk, and validation refuses them later).
    static func holdsCompressedBatch(_ records: ByteBuffer) -> Bool {
        var position = records.readerIndex
        let end = records.writerIndex
        while position + RecordBatchLayout.attributesOffset + RecordBatchLayout.attributesLength <= end {
            guard let attributes = records.getInteger(at: position + RecordBatchLayout.attributesOffset, as: UInt16.self),
                let length = records.getInteger(at: position + RecordBatchLayout.batchLengthOffset, as: Int32.self), length > 0
            else { return false }
            if attributes & 0x07 != 0 { return true }
            position += RecordBatchLayout.lengthPrefixLength + Int(length)
        }
        return false
    }
}
