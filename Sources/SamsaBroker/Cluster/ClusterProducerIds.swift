import SamsaCoordination

/// Producer ids for a cluster: blocks of ids reserved in coordination (`/latest_producer_id_block`, as
/// Kafka's ZooKeeper-era brokers do), each taken with a version-checked write, so no two brokers ever hand
/// out the same id (each broker's local `producer-id-block` file alone would let them collide).
actor ClusterProducerIds: ProducerIdSource {
    struct Block: Codable, Sendable {
        var version = 1
        var broker: Int32
        var blockStart: String
        var blockEnd: String

        enum CodingKeys: String, CodingKey {
            case version, broker
            case blockStart = "block_start"
            case blockEnd = "block_end"
        }
    }

    static let blockSize: Int64 = 1000
    private let session: any CoordinationSession
    private let path: String
    private let brokerId: Int32
    private var next: Int64 = 0
    private var end: Int64 = 0

    init(session: any CoordinationSession, paths: ClusterPaths, brokerId: Int32) {
        self.session = session
        self.path = "\(paths.root)/latest_producer_id_block"
        self.brokerId = brokerId
    }

    func allocate() async throws -> Int64 {
        while next >= end {
            let (start, last) = try await reserveBlock()
            // Another call may have reserved a block meanwhile (the actor is re-entered while waiting):
            // its ids are as unique as ours; the rest of the one replaced is left unused.
            if next >= end {
                next = start
                end = last + 1
            }
        }
        defer { next += 1 }
        return next
    }

    /// Takes the block after the latest one: [start, end] inclusive, as Kafka writes it.
    private func reserveBlock() async throws -> (Int64, Int64) {
        while true {
            do {
                let (data, stat) = try await session.data(path)
                let latest = try ClusterJSON.decode(Block.self, data)
                let start = (Int64(latest.blockEnd) ?? -1) + 1
                let block = Block(broker: brokerId, blockStart: "\(start)", blockEnd: "\(start + Self.blockSize - 1)")
                _ = try await session.setData(path, data: ClusterJSON.encode(block), version: stat.version)
                return (start, start + Self.blockSize - 1)
            } catch let error as CoordinationError where error.code == .noNode {
                let block = Block(broker: brokerId, blockStart: "0", blockEnd: "\(Self.blockSize - 1)")
                do {
                    _ = try await session.create(path, data: ClusterJSON.encode(block), mode: .persistent)
                    return (0, Self.blockSize - 1)
                } catch let error as CoordinationError where error.code == .nodeExists {
                    continue
                }
            } catch let error as CoordinationError where error.code == .badVersion {
                continue
            }
        }
    }
}
