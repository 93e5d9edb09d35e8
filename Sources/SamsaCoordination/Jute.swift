import NIOCore

/// ZooKeeper's wire encoding (jute's binary archive): big-endian integers, a boolean as one byte,
/// byte buffers and strings as an Int32 length (-1 for null) then the bytes, vectors as an Int32
/// count then the items.
struct JuteWriter {
    var buffer: ByteBuffer

    init(capacity: Int = 128) {
        buffer = ByteBufferAllocator().buffer(capacity: capacity)
    }

    mutating func int(_ value: Int32) { buffer.writeInteger(value) }
    mutating func long(_ value: Int64) { buffer.writeInteger(value) }
    mutating func bool(_ value: Bool) { buffer.writeInteger(UInt8(value ? 1 : 0)) }

    mutating func bytes(_ value: [UInt8]?) {
        guard let value else { return int(-1) }
        int(Int32(value.count))
        buffer.writeBytes(value)
    }

    mutating func string(_ value: String) {
        int(Int32(value.utf8.count))
        buffer.writeString(value)
    }

    mutating func strings(_ values: [String]) {
        int(Int32(values.count))
        for value in values { string(value) }
    }
}

struct JuteReader {
    var buffer: ByteBuffer

    private func truncated(_ what: String) -> CoordinationError {
        CoordinationError(.marshallingError, "a ZooKeeper reply ended inside \(what)")
    }

    mutating func int() throws(CoordinationError) -> Int32 {
        guard let value = buffer.readInteger(as: Int32.self) else { throw truncated("an int") }
        return value
    }

    mutating func long() throws(CoordinationError) -> Int64 {
        guard let value = buffer.readInteger(as: Int64.self) else { throw truncated("a long") }
        return value
    }

    mutating func bool() throws(CoordinationError) -> Bool {
        guard let value = buffer.readInteger(as: UInt8.self) else { throw truncated("a boolean") }
        return value != 0
    }

    mutating func bytes() throws(CoordinationError) -> [UInt8]? {
        let length = try int()
        guard length >= 0 else { return nil }
        guard let value = buffer.readBytes(length: Int(length)) else { throw truncated("a buffer of \(length) bytes") }
        return value
    }

    mutating func string() throws(CoordinationError) -> String {
        let length = try int()
        guard length >= 0 else { return "" }
        guard let value = buffer.readString(length: Int(length)) else { throw truncated("a string of \(length) bytes") }
        return value
    }

    mutating func strings() throws(CoordinationError) -> [String] {
        let count = try int()
        guard count >= 0 else { return [] }
        guard Int(count) <= buffer.readableBytes / 4 else { throw truncated("a vector of \(count) strings") }
        var values: [String] = []
        values.reserveCapacity(Int(count))
        for _ in 0..<count { values.append(try string()) }
        return values
    }

    mutating func stat() throws(CoordinationError) -> NodeStat {
        NodeStat(
            czxid: try long(), mzxid: try long(), ctime: try long(), mtime: try long(), version: try int(), cversion: try int(),
            aversion: try int(), ephemeralOwner: try long(), dataLength: try int(), numChildren: try int(), pzxid: try long())
    }
}

/// Operation codes and special request ids of ZooKeeper's client protocol (`ZooDefs.OpCode`).
enum OpCode: Int32 {
    case notification = 0, create = 1, delete = 2, exists = 3, getData = 4, setData = 5, getChildren2 = 12, check = 13, multi = 14
    case ping = 11, setWatches = 101, closeSession = -11, error = -1
}

enum SpecialXid {
    static let watchEvent: Int32 = -1
    static let ping: Int32 = -2
    static let setWatches: Int32 = -8
}

extension JuteWriter {
    /// ZooKeeper's OPEN_ACL_UNSAFE: every permission for world:anyone.
    mutating func openACL() {
        int(1)
        int(31)
        string("world")
        string("anyone")
    }

    /// The request body of one operation (alone, or inside a multi).
    mutating func operation(_ operation: Operation) {
        switch operation {
        case .create(let path, let data, let mode):
            string(path)
            bytes(data)
            openACL()
            int(mode.rawValue)
        case .delete(let path, let version):
            string(path)
            int(version)
        case .setData(let path, let data, let version):
            string(path)
            bytes(data)
            int(version)
        case .check(let path, let version):
            string(path)
            int(version)
        }
    }
}

extension Operation {
    var opCode: OpCode {
        switch self {
        case .create: .create
        case .delete: .delete
        case .setData: .setData
        case .check: .check
        }
    }
}

/// The types of ZooKeeper's watch notifications (`Watcher.Event.EventType`) that fire node watches.
enum ZooKeeperEventType: Int32 {
    case nodeCreated = 1, nodeDeleted = 2, nodeDataChanged = 3, nodeChildrenChanged = 4
}

/// ZooKeeper's size limits, the same for both backends.
package enum JuteLimits {
    /// A server's default `jute.maxbuffer`: a larger frame makes it drop the connection.
    package static let maximumFrameBytes = 1_048_575

    /// The encoded size of a request carrying `operations` (one alone, or a multi), as `JuteWriter`
    /// encodes it with its 8-byte header (xid, op code) and without the frame's length prefix.
    static func requestBytes(_ operations: [Operation]) -> Int {
        func string(_ value: String) -> Int { 4 + value.utf8.count }
        func body(_ operation: Operation) -> Int {
            switch operation {
            case .create(let path, let data, _): string(path) + 4 + data.count + openACLBytes + 4
            case .delete(let path, _), .check(let path, _): string(path) + 4
            case .setData(let path, let data, _): string(path) + 4 + data.count + 4
            }
        }
        let header = 8
        guard operations.count != 1 else { return header + body(operations[0]) }
        // A multi: each operation after its 9-byte header (type, done, error), then the end header.
        return header + operations.reduce(0) { $0 + 9 + body($1) } + 9
    }

    /// `JuteWriter.openACL()`: one ACL (perms, scheme, id).
    static let openACLBytes = 4 + 4 + (4 + 5) + (4 + 6)
}

/// SetWatches requests re-arming a session's watches on a new server, in chunks of at most 128 KB of
/// paths each (as the Java client sends them), so none exceeds a server's frame limit.
enum SetWatchesFrames {
    static let maximumPathBytes = 128 * 1024

    static func encode(relativeZxid: Int64, data: [String], exist: [String], child: [String]) -> [ByteBuffer] {
        var frames: [ByteBuffer] = []
        var lists: [[String]] = [[], [], []]
        var bytes = 0
        func flush() {
            guard !(lists[0].isEmpty && lists[1].isEmpty && lists[2].isEmpty) else { return }
            var writer = JuteWriter(capacity: bytes + 64)
            writer.int(SpecialXid.setWatches)
            writer.int(OpCode.setWatches.rawValue)
            writer.long(relativeZxid)
            for list in lists { writer.strings(list) }
            frames.append(writer.buffer)
            lists = [[], [], []]
            bytes = 0
        }
        for (kind, paths) in [data, exist, child].enumerated() {
            for path in paths {
                let size = 4 + path.utf8.count
                if bytes + size > maximumPathBytes { flush() }
                lists[kind].append(path)
                bytes += size
            }
        }
        flush()
        return frames
    }
}
