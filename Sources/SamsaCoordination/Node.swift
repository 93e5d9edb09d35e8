/// How a node is created (ZooKeeper's `CreateMode`).
public enum CreateMode: Int32, Sendable, Hashable, CaseIterable {
    case persistent = 0
    case ephemeral = 1
    case persistentSequential = 2
    case ephemeralSequential = 3

    public var isEphemeral: Bool { self == .ephemeral || self == .ephemeralSequential }
    public var isSequential: Bool { self == .persistentSequential || self == .ephemeralSequential }
}

/// A node's metadata (ZooKeeper's `Stat`).
public struct NodeStat: Sendable, Hashable, Codable {
    /// Transaction that created the node.
    public var czxid: Int64
    /// Transaction that last changed its data.
    public var mzxid: Int64
    /// Milliseconds since the epoch.
    public var ctime: Int64
    public var mtime: Int64
    /// Changes to its data.
    public var version: Int32
    /// Changes to its children.
    public var cversion: Int32
    public var aversion: Int32
    /// The owning session of an ephemeral node; 0 otherwise.
    public var ephemeralOwner: Int64
    public var dataLength: Int32
    public var numChildren: Int32
    /// Transaction that last changed its children.
    public var pzxid: Int64

    public init(
        czxid: Int64, mzxid: Int64, ctime: Int64, mtime: Int64, version: Int32, cversion: Int32, aversion: Int32, ephemeralOwner: Int64,
        dataLength: Int32, numChildren: Int32, pzxid: Int64
    ) {
        self.czxid = czxid
        self.mzxid = mzxid
        self.ctime = ctime
        self.mtime = mtime
        self.version = version
        self.cversion = cversion
        self.aversion = aversion
        self.ephemeralOwner = ephemeralOwner
        self.dataLength = dataLength
        self.numChildren = numChildren
        self.pzxid = pzxid
    }
}

/// One step of an all-or-nothing `multi` transaction.
public enum Operation: Sendable, Hashable {
    case create(path: String, data: [UInt8], mode: CreateMode)
    case delete(path: String, version: Int32)
    case setData(path: String, data: [UInt8], version: Int32)
    /// Fails the transaction unless the node's version is `version`.
    case check(path: String, version: Int32)

    var path: String {
        switch self {
        case .create(let path, _, _), .delete(let path, _), .setData(let path, _, _), .check(let path, _): path
        }
    }
}

/// What one step of a successful `multi` produced.
public enum OperationResult: Sendable, Hashable {
    /// The created node's real path (with its sequence number).
    case created(path: String)
    case deleted
    case set(NodeStat)
    case checked
}

/// What a one-shot watch saw (ZooKeeper's `WatchedEvent` types).
public enum WatchEventType: Sendable, Hashable {
    case nodeCreated, nodeDeleted, nodeDataChanged, nodeChildrenChanged
    /// The session expired (or was closed): the watch will never fire otherwise.
    case sessionEnded
}

public struct WatchEvent: Sendable, Hashable {
    public var type: WatchEventType
    public var path: String

    public init(type: WatchEventType, path: String) {
        self.type = type
        self.path = path
    }
}

/// A session's state, as its `states` stream reports it.
public enum SessionState: Sendable, Hashable {
    case connected
    /// The connection is lost; the session may still be alive and is being re-established.
    case suspended
    /// The session is gone: its ephemeral nodes are deleted. Final.
    case expired
    /// Closed by its owner. Final.
    case closed
}

extension Duration {
    /// Whole milliseconds (timers, and the wire's Int32 session timeout).
    var milliseconds: Int64 { components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000 }
}
