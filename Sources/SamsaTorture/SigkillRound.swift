import Glibc
import NIOCore
import SamsaRecords
public import SamsaStorage

/// A SIGKILL round: `samsa torture-child` appends in a child process and reports each acknowledged
/// batch on a pipe; after a random number of acknowledgements (none: killed while it recovers and
/// starts) it gets SIGKILL. The parent recovers the directory and checks that every batch ever
/// acknowledged is there with its CRC (which covers every record byte), that the batches are
/// contiguous (offsets never reused) and that `LogVerifier` is clean. One to three lives per round in
/// the same directory, so later lives recover what earlier kills left.
public struct SigkillRound: Sendable {
    public var policy: FlushPolicy
    public var seed: UInt64
    public var round: Int
    public var directory: String
    /// The `samsa` executable (its `torture-child` subcommand is the child).
    public var executable: String

    public init(policy: FlushPolicy, seed: UInt64, round: Int, directory: String, executable: String) {
        self.policy = policy
        self.seed = seed
        self.round = round
        self.directory = directory
        self.executable = executable
    }

    struct Acknowledged: Hashable {
        var lastOffset: Int64
        var crc: UInt32
    }

    public func run() throws -> RoundTally {
        var random = TortureRandom(seed: seed, round: round, stream: 4)
        var acknowledged: [Int64: Acknowledged] = [:]
        var tally = RoundTally()
        for life in 0..<random.within(1...3) {
            let killAfter = random.chance(10) ? 0 : random.within(1...400)
            let child = try ChildProcess(
                executable: executable,
                arguments: [
                    "torture-child", "--dir", directory, "--flush", policy.description, "--seed", "\(seed)", "--round", "\(round)", "--life", "\(life)",
                ],
                standardErrorPath: directory + ".stderr")
            var seen = 0
            while seen < killAfter, let line = child.readLine() {
                try record(line, into: &acknowledged)
                seen += 1
            }
            child.kill()
            // Lines written before the kill still count: they were acknowledged.
            while let line = child.readLine() { try record(line, into: &acknowledged) }
            let (signal, status) = child.wait()
            guard signal == SIGKILL else {
                let errors = (try? PosixFileSystem().readFile(directory + ".stderr")).map { String(decoding: $0, as: UTF8.self) } ?? ""
                throw TortureViolation("life \(life): the child ended by itself (signal \(signal ?? 0), status \(status)) before the kill: \(errors)")
            }
            tally.events += 1
            tally.acknowledged = acknowledged.reduce(0) { $0 + Int($1.value.lastOffset - $1.key + 1) }
            tally.checked += try verify(acknowledged, context: "after kill \(life + 1) (\(seen) acknowledgements read first)")
        }
        unlink(directory + ".stderr")
        return tally
    }

    private func record(_ line: String, into acknowledged: inout [Int64: Acknowledged]) throws(TortureViolation) {
        let fields = line.split(separator: " ")
        guard fields.count == 3, let base = Int64(fields[0]), let last = Int64(fields[1]), let crc = UInt32(fields[2]) else {
            throw TortureViolation("the child printed \"\(line)\"")
        }
        // An acknowledged offset is never handed out again.
        if let earlier = acknowledged[base] {
            throw TortureViolation("offset \(base) acknowledged twice (CRCs \(earlier.crc) and \(crc)): offsets reused")
        }
        acknowledged[base] = Acknowledged(lastOffset: last, crc: crc)
    }

    /// Recovers the directory and checks every acknowledged batch; returns the records it compared.
    private func verify(_ acknowledged: [Int64: Acknowledged], context: String) throws -> Int {
        let (manager, _) = try LogManager.open(directory: directory, checkpointInterval: nil)
        guard let log = manager.log(TortureChild.partition) else {
            try require(acknowledged.isEmpty, "\(context): the partition is gone")
            return 0
        }
        var found: [Int64: Acknowledged] = [:]
        var next = log.logStartOffset
        var checked = 0
        while let bytes = try log.read(from: next, maxBytes: 1 << 20) {
            var remaining = bytes
            while remaining.readableBytes > 0 {
                let batch = try RecordBatch(validating: remaining)
                try require(batch.baseOffset == next, "\(context): a batch at \(batch.baseOffset) after one ending at \(next)")
                found[batch.baseOffset] = Acknowledged(lastOffset: batch.lastOffset, crc: batch.crc)
                if acknowledged[batch.baseOffset] != nil { checked += try batch.decodeRecords().count }
                next = batch.nextOffset
                remaining.moveReaderIndex(forwardBy: batch.sizeInBytes)
            }
        }
        try require(next == log.logEndOffset, "\(context): reads end at \(next), the log at \(log.logEndOffset)")
        let missing = acknowledged.filter { found[$0.key] != $0.value }
        if let (base, batch) = missing.min(by: { $0.key < $1.key }) {
            throw TortureViolation(
                "\(context): LOST \(missing.count) of \(acknowledged.count) acknowledged batches; first at \(base)...\(batch.lastOffset) (log end \(log.logEndOffset), found \(found[base].map { "crc \($0.crc)" } ?? "nothing"))",
                lost: missing.reduce(0) { $0 + Int($1.value.lastOffset - $1.key + 1) })
        }
        let report = try LogVerifier.verifyPartition(directory: log.directory)
        try require(report.isValid, "\(context): LogVerifier: \(report.problems.map(\.description).joined(separator: "; "))")
        return checked
    }
}
