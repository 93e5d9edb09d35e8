import SamsaStorage

/// Where InitProducerId gets new producer ids: this broker's allocator on a single broker,
/// coordination in a cluster (`ClusterProducerIds`, unique across the brokers).
protocol ProducerIdSource: Sendable {
    func allocate() async throws -> Int64
}

/// Hands out producer ids that are never reused, even across restarts and crashes: ids come in blocks,
/// and the end of a block is written durably (`<data>/producer-id-block`, written atomically) before any
/// id of it is handed out. A crash wastes at most the rest of one block. A single broker's
/// `ProducerIdSource`: ids are handed out on one serial queue, so a block's write holds no lock and
/// no cooperative thread.
final class ProducerIdAllocator: ProducerIdSource, @unchecked Sendable {
    // @unchecked: `state` is only touched on `queue` (and in `init`).
    static let fileName = "producer-id-block"
    static let blockSize: Int64 = 1000

    private struct State {
        var next: Int64
        var reservedEnd: Int64
    }

    private let path: String
    private let files: any FileSystem
    private var state: State
    private let queue = BlockingQueue(label: "samsa.broker.producer-ids")

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
        state = State(next: end, reservedEnd: end)
    }

    /// The next unused id; once per `blockSize` ids the next block's end is written first.
    func allocate() async throws -> Int64 {
        try await queue.run { () throws -> Int64 in
            if self.state.next >= self.state.reservedEnd {
                let end = self.state.next + Self.blockSize
                try self.files.writeFileAtomically(self.path, Array("\(end)\n".utf8))
                self.state.reservedEnd = end
            }
            defer { self.state.next += 1 }
            return self.state.next
        }
    }
}
