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
