/// The tree of nodes with ZooKeeper's rules for each change (parents must exist, ephemerals have no
/// children, versions must match, sequential names come from the parent's child counter, sizes
/// within `jute.maxbuffer`). Pure state: the embedded coordinator applies transactions to it under
/// its lock, and replays its log into it at start-up, with the same results. Paths are compared
/// byte by byte (`PathKey`).
struct DataTree: Sendable {
    struct Node: Sendable {
        var data: [UInt8]
        var stat: NodeStat
        var children: Set<PathKey> = []
    }

    /// What a change did, for the watches it fires.
    enum Change: Sendable {
        case created(String), deleted(String), dataChanged(String), childrenChanged(String)

        var path: String {
            switch self {
            case .created(let path), .deleted(let path), .dataChanged(let path), .childrenChanged(let path): path
            }
        }
    }

    private(set) var nodes: [PathKey: Node]

    static let emptyStat = NodeStat(czxid: 0, mzxid: 0, ctime: 0, mtime: 0, version: 0, cversion: 0, aversion: 0, ephemeralOwner: 0, dataLength: 0, numChildren: 0, pzxid: 0)

    /// The root and ZooKeeper's own nodes (`/zookeeper`, `/zookeeper/quota`, `/zookeeper/config`).
    init() {
        nodes = [PathKey("/"): Node(data: [], stat: Self.emptyStat)]
        addSystemNodes()
    }

    /// A tree of `nodes` (paths and their data and stat); children come from the paths.
    init(nodes list: [(path: String, data: [UInt8], stat: NodeStat)]) {
        nodes = Dictionary(minimumCapacity: list.count + 4)
        for node in list { nodes[PathKey(node.path)] = Node(data: node.data, stat: node.stat) }
        if nodes[PathKey("/")] == nil { nodes[PathKey("/")] = Node(data: [], stat: Self.emptyStat) }
        for node in list where node.path != "/" {
            nodes[PathKey(NodePath.parent(of: node.path))]?.children.insert(PathKey(NodePath.name(of: node.path)))
        }
        addSystemNodes()
    }

    /// ZooKeeper's nodes, added to trees written before they existed here.
    private mutating func addSystemNodes() {
        for path in ["/zookeeper", "/zookeeper/quota", "/zookeeper/config"] where nodes[PathKey(path)] == nil {
            nodes[PathKey(path)] = Node(data: [], stat: Self.emptyStat)
            let parent = PathKey(NodePath.parent(of: path))
            guard var parentNode = nodes[parent] else { continue }
            parentNode.children.insert(PathKey(NodePath.name(of: path)))
            parentNode.stat.numChildren = Int32(parentNode.children.count)
            nodes[parent] = parentNode
        }
    }

    func node(_ path: String) -> Node? { nodes[PathKey(path)] }

    /// Applies one operation as transaction `zxid` of `session` at `time` (milliseconds).
    mutating func apply(_ operation: Operation, session: Int64, zxid: Int64, time: Int64, changes: inout [Change]) throws(CoordinationError)
        -> OperationResult
    {
        switch operation {
        case .create(let requested, let data, let mode):
            try NodePath.validate(requested, sequential: mode.isSequential)
            guard requested != "/" || mode.isSequential else { throw CoordinationError(.nodeExists, path: requested) }
            let parentPath = NodePath.parent(of: requested.hasSuffix("/") ? requested + "x" : requested)
            guard let parent = nodes[PathKey(parentPath)] else { throw CoordinationError(.noNode, path: parentPath, "the parent does not exist") }
            guard parent.stat.ephemeralOwner == 0 else { throw CoordinationError(.noChildrenForEphemerals, path: parentPath) }
            let path = mode.isSequential ? requested + NodePath.sequenceSuffix(parent.stat.cversion) : requested
            guard nodes[PathKey(path)] == nil else { throw CoordinationError(.nodeExists, path: path) }
            let stat = NodeStat(
                czxid: zxid, mzxid: zxid, ctime: time, mtime: time, version: 0, cversion: 0, aversion: 0,
                ephemeralOwner: mode.isEphemeral ? session : 0, dataLength: Int32(data.count), numChildren: 0, pzxid: zxid)
            nodes[PathKey(path)] = Node(data: data, stat: stat)
            nodes[PathKey(parentPath)]?.children.insert(PathKey(NodePath.name(of: path)))
            childrenChanged(parentPath, zxid: zxid)
            changes.append(.created(path))
            changes.append(.childrenChanged(parentPath))
            return .created(path: path)

        case .delete(let path, let version):
            try NodePath.validate(path)
            guard path != "/" else { throw CoordinationError(.badArguments, path: path, "the root cannot be deleted") }
            guard let node = nodes[PathKey(path)] else { throw CoordinationError(.noNode, path: path) }
            guard version == -1 || version == node.stat.version else { throw CoordinationError(.badVersion, path: path) }
            guard node.children.isEmpty else { throw CoordinationError(.notEmpty, path: path) }
            remove(path, zxid: zxid, changes: &changes)
            return .deleted

        case .setData(let path, let data, let version):
            try NodePath.validate(path)
            guard var node = nodes[PathKey(path)] else { throw CoordinationError(.noNode, path: path) }
            guard version == -1 || version == node.stat.version else { throw CoordinationError(.badVersion, path: path) }
            node.data = data
            node.stat.version += 1
            node.stat.mzxid = zxid
            node.stat.mtime = time
            node.stat.dataLength = Int32(data.count)
            nodes[PathKey(path)] = node
            changes.append(.dataChanged(path))
            return .set(node.stat)

        case .check(let path, let version):
            try NodePath.validate(path)
            guard let node = nodes[PathKey(path)] else { throw CoordinationError(.noNode, path: path) }
            guard version == -1 || version == node.stat.version else { throw CoordinationError(.badVersion, path: path) }
            return .checked
        }
    }

    /// Deletes every ephemeral node of `session` (its end), as one transaction.
    mutating func removeEphemerals(of session: Int64, zxid: Int64, changes: inout [Change]) {
        for path in ephemerals(of: session) { remove(path, zxid: zxid, changes: &changes) }
    }

    func ephemerals(of session: Int64) -> [String] {
        nodes.filter { $0.value.stat.ephemeralOwner == session }.map(\.key).sorted().map(\.string)
    }

    /// Sessions owning ephemeral nodes.
    var ephemeralOwners: Set<Int64> { Set(nodes.values.map(\.stat.ephemeralOwner).filter { $0 != 0 }) }

    /// A child of `path` came or went in transaction `zxid`: ZooKeeper's parent bookkeeping.
    private mutating func childrenChanged(_ path: String, zxid: Int64) {
        guard var parent = nodes[PathKey(path)] else { return }
        parent.stat.cversion += 1
        parent.stat.pzxid = zxid
        parent.stat.numChildren = Int32(parent.children.count)
        nodes[PathKey(path)] = parent
    }

    private mutating func remove(_ path: String, zxid: Int64, changes: inout [Change]) {
        nodes[PathKey(path)] = nil
        let parentPath = NodePath.parent(of: path)
        nodes[PathKey(parentPath)]?.children.remove(PathKey(NodePath.name(of: path)))
        childrenChanged(parentPath, zxid: zxid)
        changes.append(.deleted(path))
        changes.append(.childrenChanged(parentPath))
    }
}
