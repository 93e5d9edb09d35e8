import Foundation
import NIOCore
import SamsaRecords
import SamsaStorage
import Synchronization

/// A committed transaction of the embedded coordinator, as earlier versions logged it (JSON).
struct Transaction: Decodable, Sendable {
    var zxid: Int64
    var time: Int64
    var session: Int64
    /// The operations (a `multi` has several); nil for the end of a session.
    var operations: [LoggedOperation]?

    struct LoggedOperation: Decodable, Sendable {
        var kind: String
        var path: String
        var data: [UInt8]?
        var mode: Int32?
        var version: Int32?

        init(_ operation: Operation) {
            switch operation {
            case .create(let path, let data, let mode): self.init(kind: "create", path: path, data: data, mode: mode.rawValue)
            case .delete(let path, let version): self.init(kind: "delete", path: path, version: version)
            case .setData(let path, let data, let version): self.init(kind: "set", path: path, data: data, version: version)
            case .check(let path, let version): self.init(kind: "check", path: path, version: version)
            }
        }

        init(kind: String, path: String, data: [UInt8]? = nil, mode: Int32? = nil, version: Int32? = nil) {
            self.kind = kind
            self.path = path
            self.data = data
            self.mode = mode
            self.version = version
        }

        var operation: Operation? {
            switch kind {
            case "create": CreateMode(rawValue: mode ?? -1).map { .create(path: path, data: data ?? [], mode: $0) }
            case "delete": .delete(path: path, version: version ?? -1)
            case "set": .setData(path: path, data: data ?? [], version: version ?? -1)
            case "check": .check(path: path, version: version ?? -1)
            default: nil
            }
        }
    }
}

/// The embedded coordinator's durable state: a snapshot of the tree (`snapshot.bin`, binary, written
/// atomically; see `TransactionCodec`) and a transaction log after it, kept in a Samsa partition log
/// (`txnlog/`) under the every-append policy, so a transaction acknowledged to a client is on disk.
/// At start-up the tree is the snapshot plus the log replayed; the sessions of the previous run are
/// gone, so their ephemeral nodes are removed (and that is logged too), then a new snapshot replaces
/// the log. Snapshots and records of earlier versions (JSON) are still read.
///
/// Threads: `append` only queues; the writes run in call order on the log's own queue (a pwrite
/// blocks: never on the caller's thread, never under the coordinator's lock), the syncs on the
/// partition log's flusher.
final class TransactionLog: Sendable {
    private let directory: String
    private let files: any FileSystem
    private let log: PartitionLog
    private let writes = BlockingQueue(label: "samsa.coordination.txnlog")
    /// The write that failed (touched only on `writes`): every later transaction fails unwritten, so
    /// the log never holds a transaction after one it lost.
    private let writeFailure = Mutex<(any Error)?>(nil)

    /// The JSON snapshot earlier versions wrote (`snapshot.json`).
    private struct LegacySnapshot: Decodable {
        struct Node: Decodable {
            var data: [UInt8]
            var stat: NodeStat
        }
        var zxid: Int64
        var logOffset: Int64
        var nodes: [String: Node]
    }

    private init(directory: String, files: any FileSystem, log: PartitionLog) {
        self.directory = directory
        self.files = files
        self.log = log
    }

    private static func snapshotPath(_ directory: String) -> String { "\(directory)/snapshot.bin" }

    /// Opens (creating) the log in `directory`; returns it with the recovered tree and last zxid.
    static func open(directory: String, files: any FileSystem = PosixFileSystem()) throws -> (log: TransactionLog, tree: DataTree, zxid: Int64) {
        try files.makeDirectory(directory)
        var tree = DataTree()
        var zxid: Int64 = 0
        var offset: Int64 = 0
        let legacyPath = "\(directory)/snapshot.json"
        if files.fileExists(snapshotPath(directory)) {
            (tree, zxid, offset) = try TransactionCodec.decodeSnapshot(try files.readFile(snapshotPath(directory)))
        } else if files.fileExists(legacyPath) {
            let snapshot = try JSONDecoder().decode(LegacySnapshot.self, from: Data(try files.readFile(legacyPath)))
            tree = DataTree(nodes: snapshot.nodes.map { (path: $0.key, data: $0.value.data, stat: $0.value.stat) })
            zxid = snapshot.zxid
            offset = snapshot.logOffset
        }
        let (partitionLog, _) = try PartitionLog.open(
            directory: "\(directory)/txnlog", configuration: LogConfiguration(segmentBytes: 64 << 20, flushPolicy: .everyAppend), recoveryPoint: 0,
            files: files)
        let transactionLog = TransactionLog(directory: directory, files: files, log: partitionLog)
        // Replay what the snapshot does not hold.
        var position = max(offset, partitionLog.logStartOffset)
        while let bytes = try partitionLog.read(from: position, maxBytes: 1 << 20) {
            var remaining = bytes
            while remaining.readableBytes > 0 {
                let batch = try RecordBatch(validating: remaining)
                remaining.moveReaderIndex(forwardBy: batch.sizeInBytes)
                for record in try batch.decodeRecords() where record.offset >= position {
                    let transaction = try decode(record)
                    var changes: [DataTree.Change] = []
                    if let operations = transaction.operations {
                        var attempt = tree
                        for operation in operations {
                            _ = try attempt.apply(operation, session: transaction.session, zxid: transaction.zxid, time: transaction.time, changes: &changes)
                        }
                        tree = attempt
                    } else {
                        tree.removeEphemerals(of: transaction.session, zxid: transaction.zxid, changes: &changes)
                    }
                    zxid = max(zxid, transaction.zxid)
                }
                position = batch.nextOffset
            }
        }
        // The previous run's sessions are over: their ephemeral nodes go, durably.
        for owner in tree.ephemeralOwners.sorted() {
            zxid += 1
            var changes: [DataTree.Change] = []
            tree.removeEphemerals(of: owner, zxid: zxid, changes: &changes)
            _ = try transactionLog.write(zxid: zxid, time: WallClock.nowMilliseconds, session: owner, operations: TransactionCodec.encodeOperations(nil))
        }
        try partitionLog.flush()
        try transactionLog.snapshot(tree, zxid: zxid)
        if files.fileExists(legacyPath) { try files.unlink(legacyPath) }
        return (transactionLog, tree, zxid)
    }

    private static func decode(_ record: Record) throws -> (zxid: Int64, time: Int64, session: Int64, operations: [Operation]?) {
        guard let key = record.key else {
            // Written by an earlier version: JSON.
            let transaction = try JSONDecoder().decode(Transaction.self, from: Data(record.valueBytes ?? []))
            let operations = try transaction.operations?.map { logged throws(CoordinationError) -> Operation in
                guard let operation = logged.operation else { throw CoordinationError(.dataInconsistency, "unknown logged operation \(logged.kind)") }
                return operation
            }
            return (transaction.zxid, transaction.time, transaction.session, operations)
        }
        return try TransactionCodec.decode(key: key, value: record.value ?? ByteBuffer())
    }

    /// Queues a transaction whose operations `TransactionCodec.encodeOperations` encoded: it is
    /// written after every transaction queued before it, then synced; `whenDurable` runs once it is
    /// on disk (nil), or with the error that stopped the log (this write, an earlier one, or a sync).
    func append(
        zxid: Int64, time: Int64, session: Int64, operations: ByteBuffer, whenDurable: @escaping @Sendable ((any Error)?) -> Void
    ) {
        writes.submit { [self] in
            if let failure = writeFailure.withLock({ $0 }) { return whenDurable(failure) }
            do {
                let written = try write(zxid: zxid, time: time, session: session, operations: operations)
                log.whenFlushPolicySatisfied(written) { whenDurable($0) }
            } catch {
                writeFailure.withLock { $0 = error }
                whenDurable(error)
            }
        }
    }

    /// Writes a transaction now, on the caller's thread (not yet synced).
    private func write(zxid: Int64, time: Int64, session: Int64, operations: ByteBuffer) throws -> AppendResult {
        var builder = RecordBatchBuilder(capacity: operations.readableBytes + 128)
        builder.append(timestamp: time, key: TransactionCodec.encodeHeader(zxid: zxid, time: time, session: session), value: operations)
        return try log.appendWithoutWaiting(try builder.build())
    }

    /// Replaces snapshot and log with a snapshot of `tree`, then lets the log's old segments go.
    /// Waits for the queued writes first (the snapshot covers them; replaying them again after it
    /// would apply them twice).
    func snapshot(_ tree: DataTree, zxid: Int64) throws {
        writes.drain()
        let end = log.logEndOffset
        try files.writeFileAtomically(Self.snapshotPath(directory), TransactionCodec.encodeSnapshot(tree, zxid: zxid, logOffset: end))
        try log.roll()
        try log.advanceLogStart(to: end)
    }

    func close() throws {
        writes.drain()
        try log.close()
    }
}

