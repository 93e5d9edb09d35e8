import NIOPosix
import SamsaStorage
import Synchronization

/// Where InitProducerId gets new producer ids: this broker's allocator on a single broker,
/// coordination in a cluster (`ClusterProducerIds`, unique across the brokers).
protocol ProducerIdSource: Sendable {
    func allocate() async throws -> Int64
}

/// A single broker's ids, from its allocator on the I/O pool (a new block is a durable write).
struct LocalProducerIds: ProducerIdSource {
    let allocator: ProducerIdAllocator
    let io: NIOThreadPool

    func allocate() async throws -> Int64 {
        try await io.runIfActive { [allocator] in try allocator.next() }
    }
}

/// Hands out producer ids that are never reused, even across restarts and crashes: ids come in blocks,
/// and the end of a block is written durably (`<data>/producer-id-block`, written atomically) before any
/// id of it is handed out. A crash wastes at most the rest of one block.
final class ProducerIdAllocator: Sendable {
    static let fileName = "producer-id-block"
    static let blockSize: Int64 = 1000

    private struct State {
        var next: Int64
        var reservedEnd: Int64
    }

    private let path: String
    private let files: any FileSystem
    private let state: Mutex<State>

    /// Reads the reserved end (blocking).
    init(dataDirectory: String, files: any FileSystem = PosixFileSystem()) throws(StorageError) {
        path = "\(dataDirectory)/\(Self.fileName)"
        self.files = files
        var end: Int64 = 0
        if files.fileExists(path) {
            let text = String(decoding: try files.readFile(path), as: UTF8.self).filter { !$0.isWhitespace }
            guard let value = Int64(text), value >= 0 else {
                throw StorageError(.corrupt, path: path, "producer id block file holds '\(text)', not a number")
            }
            end = value
        }
        // Everything below the recorded end may have been handed out before the restart.
        state = Mutex(State(next: end, reservedEnd: end))
    }

    /// The next unused id (blocking when a new block must be reserved: call it on an I/O thread).
    /// The reservation is written under the lock so two callers cannot hand out one block twice;
    /// it happens once per `blockSize` ids.
    func next() throws(StorageError) -> Int64 {
        try state.withLock { state throws(StorageError) -> Int64 in
            if state.next >= state.reservedEnd {
                let end = state.next + Self.blockSize
                try files.writeFileAtomically(path, Array("\(end)\n".utf8))
                state.reservedEnd = end
            }
            defer { state.next += 1 }
            return state.next
        }
    }
}
