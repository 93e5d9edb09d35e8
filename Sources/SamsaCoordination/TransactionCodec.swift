import NIOCore
import SamsaRecords

/// The binary form of the embedded coordinator's log records and snapshots, in jute's encoding.
///
/// Log record: key = zxid i64 · time i64 · session i64; value = operation count i32 (-1: the
/// session ended), then per operation its op code i32 and its jute request body (as sent to a
/// ZooKeeper server). The value is encoded before the coordinator takes its lock (a 4 MiB setData
/// costs a copy, not seconds of JSON).
///
/// Snapshot (`snapshot.bin`): "SAMSASN1" · CRC-32C u32 of the rest · zxid i64 · logOffset i64 ·
/// node count i32 · per node: path string, data buffer, stat (11 fields as ZooKeeper's `Stat`).
enum TransactionCodec {
    static func encodeOperations(_ operations: [Operation]?) -> ByteBuffer {
        var writer = JuteWriter(capacity: (operations.map(JuteLimits.requestBytes) ?? 0) + 16)
        guard let operations else {
            writer.int(-1)
            return writer.buffer
        }
        writer.int(Int32(operations.count))
        for operation in operations {
            writer.int(operation.opCode.rawValue)
            writer.operation(operation)
        }
        return writer.buffer
    }

    static func encodeHeader(zxid: Int64, time: Int64, session: Int64) -> ByteBuffer {
        var writer = JuteWriter(capacity: 24)
        writer.long(zxid)
        writer.long(time)
        writer.long(session)
        return writer.buffer
    }

    static func decode(key: ByteBuffer, value: ByteBuffer) throws(CoordinationError) -> (zxid: Int64, time: Int64, session: Int64, operations: [Operation]?) {
        var header = JuteReader(buffer: key)
        let (zxid, time, session) = (try header.long(), try header.long(), try header.long())
        var reader = JuteReader(buffer: value)
        let count = try reader.int()
        guard count >= 0 else { return (zxid, time, session, nil) }
        var operations: [Operation] = []
        for _ in 0..<count { operations.append(try reader.operation()) }
        return (zxid, time, session, operations)
    }

    static let snapshotMagic = Array("SAMSASN1".utf8)

    static func encodeSnapshot(_ tree: DataTree, zxid: Int64, logOffset: Int64) -> [UInt8] {
        var writer = JuteWriter(capacity: 1 << 16)
        writer.long(zxid)
        writer.long(logOffset)
        writer.int(Int32(tree.nodes.count))
        for (path, node) in tree.nodes {
            writer.string(path.string)
            writer.bytes(node.data)
            writer.stat(node.stat)
        }
        let body = Array(writer.buffer.readableBytesView)
        var header = JuteWriter(capacity: 12)
        header.buffer.writeBytes(snapshotMagic)
        header.buffer.writeInteger(CRC32C.checksum(body))
        return Array(header.buffer.readableBytesView) + body
    }

    static func decodeSnapshot(_ bytes: [UInt8]) throws(CoordinationError) -> (tree: DataTree, zxid: Int64, logOffset: Int64) {
        guard bytes.count >= 12, bytes.prefix(8).elementsEqual(snapshotMagic) else { throw CoordinationError(.dataInconsistency, "not a snapshot") }
        let body = bytes[12...]
        let stored = bytes[8..<12].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        guard CRC32C.checksum(Array(body)) == stored else { throw CoordinationError(.dataInconsistency, "the snapshot's checksum does not match") }
        var reader = JuteReader(buffer: ByteBuffer(bytes: body))
        let zxid = try reader.long()
        let logOffset = try reader.long()
        let count = try reader.int()
        guard count >= 0 else { throw CoordinationError(.dataInconsistency, "a snapshot of \(count) nodes") }
        var nodes: [(path: String, data: [UInt8], stat: NodeStat)] = []
        nodes.reserveCapacity(Int(count))
        for _ in 0..<count { nodes.append((try reader.string(), try reader.bytes() ?? [], try reader.stat())) }
        return (DataTree(nodes: nodes), zxid, logOffset)
    }
}

extension JuteWriter {
    mutating func stat(_ stat: NodeStat) {
        long(stat.czxid)
        long(stat.mzxid)
        long(stat.ctime)
        long(stat.mtime)
        int(stat.version)
        int(stat.cversion)
        int(stat.aversion)
        long(stat.ephemeralOwner)
        int(stat.dataLength)
        int(stat.numChildren)
        long(stat.pzxid)
    }
}

extension JuteReader {
    /// One operation as `TransactionCodec` logs it: op code, then the request body.
    mutating func operation() throws(CoordinationError) -> Operation {
        let code = try int()
        switch OpCode(rawValue: code) {
        case .create:
            let path = try string()
            let data = try bytes() ?? []
            let acls = try int()
            for _ in 0..<max(0, acls) {
                _ = try int()
                _ = try string()
                _ = try string()
            }
            guard let mode = CreateMode(rawValue: try int()) else { throw CoordinationError(.dataInconsistency, path: path, "unknown create mode") }
            return .create(path: path, data: data, mode: mode)
        case .delete: return .delete(path: try string(), version: try int())
        case .setData: return .setData(path: try string(), data: try bytes() ?? [], version: try int())
        case .check: return .check(path: try string(), version: try int())
        default: throw CoordinationError(.dataInconsistency, "unknown logged operation \(code)")
        }
    }
}
