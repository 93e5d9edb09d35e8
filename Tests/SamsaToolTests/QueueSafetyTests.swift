import Foundation
import Glibc
import Samsa
import SamsaStorage
import Testing
import SamsaTestSupport

/// Issue 9, tried from outside as a careless user would: the wrong directory, a full disk, a bad line
/// mid-stream, ^C, two processes at once.
@Suite("samsa produce and consume under mistakes and signals", .offCooperativePool, .serialized)
struct QueueSafetyTests {
    /// A data directory with topic `t` (1 partition unless told).
    func dataDirectory(_ dir: TemporaryDirectory, partitions: Int = 1, extra: [String] = []) throws -> String {
        let data = dir.path("data")
        let created = try runSamsa(["topics", "create", "--dir", data, "--topic", "t", "--partitions", "\(partitions)"] + extra)
        #expect(created.status == 0, "\(created.stderr)")
        return data
    }

    func values(_ data: String, partition: Int = 0) throws -> [[UInt8]] {
        let samsa = try Samsa.open(directory: data)
        defer { try? samsa.close() }
        return try samsa.read(topic: "t", partition: partition, from: 0).map { $0.value.map { Array($0.readableBytesView) } ?? [] }
    }

    @Test("#1: `topics list` on a directory that is not Samsa's refuses it and deletes nothing")
    func wrongDirectory() throws {
        let dir = try TemporaryDirectory()
        let x = dir.path("X")
        try FileManager.default.createDirectory(atPath: "\(x)/backup-2024", withIntermediateDirectories: true)
        try Data("precious\n".utf8).write(to: URL(fileURLWithPath: "\(x)/backup-2024/db.sql"))
        for command in [["topics", "list"], ["topics", "describe"], ["consume", "--topic", "t"], ["topics", "create", "--topic", "t"]] {
            let result = try runSamsa(command + ["--dir", x])
            #expect(result.status == 1 && result.stderr.contains("not a Samsa data directory"), "\(command): \(result.stderr)")
        }
        #expect(try String(contentsOfFile: "\(x)/backup-2024/db.sql", encoding: .utf8) == "precious\n")
        #expect(try FileManager.default.contentsOfDirectory(atPath: x) == ["backup-2024"])
    }

    @Test("#5: consume --group into a full disk exits 1 and commits nothing it could not write")
    func consumeToFullDisk() throws {
        let dir = try TemporaryDirectory()
        let data = try dataDirectory(dir)
        let lines = (0..<20_000).map { "record \($0) " + String(repeating: "x", count: 40) }.joined(separator: "\n") + "\n"
        #expect(try runSamsa(["produce", "--dir", data, "--topic", "t"], input: lines).status == 0)
        let child = try SamsaChild(["consume", "--dir", data, "--topic", "t", "--group", "g", "--from-beginning"], stdout: "/dev/full")
        child.closeInput()
        #expect(child.wait() == 1)
        #expect(child.stderr.contains("No space left on device"), "\(child.stderr)")
        let samsa = try Samsa.open(directory: data)
        defer { try? samsa.close() }
        #expect(try samsa.committedOffset(group: "g", topic: "t", partition: 0) == nil)
    }

    @Test("#5: consume --group into a pipe closed early commits exactly what was read")
    func consumeIntoClosedPipe() throws {
        let dir = try TemporaryDirectory()
        let data = try dataDirectory(dir)
        let lines = (0..<20_000).map { "record \($0) " + String(repeating: "x", count: 40) }.joined(separator: "\n") + "\n"
        #expect(try runSamsa(["produce", "--dir", data, "--topic", "t"], input: lines).status == 0)
        // `| head -c 100000`: the reader takes a prefix and goes away.
        let fifo = dir.path("fifo")
        #expect(mkfifo(fifo, 0o600) == 0)
        let taken = Thread.detachNewReader(fifo, bytes: 100_000)
        let child = try SamsaChild(["consume", "--dir", data, "--topic", "t", "--group", "g", "--from-beginning"], stdout: fifo)
        child.closeInput()
        let status = child.wait()
        let received = taken.wait()
        #expect(status == 1, "\(child.stderr)")
        let samsa = try Samsa.open(directory: data)
        defer { try? samsa.close() }
        let committed = try #require(try samsa.committedOffset(group: "g", topic: "t", partition: 0))
        // Everything the reader got was committed (up to the line it cut); what was committed beyond
        // that is at most what sat unread in the pipe's 64 KiB buffer when the reader left.
        let committedBytes = (0..<Int(committed)).reduce(0) { $0 + "record \($1) ".utf8.count + 41 }
        #expect(committed > 0 && committed < 20_000)
        #expect(committedBytes >= received - 100 && committedBytes <= received + 65_536, "committed \(committed), \(committedBytes) bytes, reader got \(received)")
    }

    @Test("#6: a line over the record limit after good ones: clear error, exit 1, acks printed, closed clean", arguments: [false, true])
    func produceStopsOnBadLine(keyed: Bool) throws {
        let dir = try TemporaryDirectory()
        let data = try dataDirectory(dir, extra: ["--max-record-bytes", "100"])
        let bad = keyed ? "no separator here" : "k:" + String(repeating: "y", count: 200)
        let input = "k:one\nk:two\n\(bad)\nk:never\n"
        let result = try runSamsa(["produce", "--dir", data, "--topic", "t", "--key-separator", ":", "--acks-json"], input: input)
        #expect(result.status == 1)
        #expect(result.stderr.contains(keyed ? "line 3 has no key separator" : "line 3: recordTooLarge"), "\(result.stderr)")
        #expect(result.stderr.contains("2 of 3 lines acknowledged"), "\(result.stderr)")
        #expect(!result.stderr.contains("Fatal") && !result.stderr.contains("Semaphore"))
        let acks = result.stdout.split(separator: "\n")
        #expect(acks == [#"{"line":1,"partition":0,"offset":0}"#, #"{"line":2,"partition":0,"offset":1}"#])
        #expect(FileManager.default.fileExists(atPath: "\(data)/.clean-shutdown"))
        #expect(try values(data) == [Array("one".utf8), Array("two".utf8)])
    }

    @Test("#11: produced lines keep their bytes: CR of CRLF, invalid UTF-8, a last line without newline")
    func bytesKept() throws {
        let dir = try TemporaryDirectory()
        let data = try dataDirectory(dir)
        let lines: [[UInt8]] = [Array("crlf\r".utf8), [0xFF, 0xFE, 0x41], Array("caf\u{E9}".utf8), [], Array("last".utf8)]
        let child = try SamsaChild(["produce", "--dir", data, "--topic", "t"])
        child.write(lines.dropLast().flatMap { $0 + [UInt8(ascii: "\n")] } + lines.last!)
        child.closeInput()
        #expect(child.wait() == 0, "\(child.stderr)")
        #expect(try values(data) == lines)
    }

    @Test("#11: the key separator matches bytes, not graphemes")
    func separatorMatchesBytes() throws {
        let dir = try TemporaryDirectory()
        let data = try dataDirectory(dir)
        // "e" + U+0301 is one grapheme (é) but the bytes hold an "e".
        let result = try runSamsa(["produce", "--dir", data, "--topic", "t", "--key-separator", "e"], input: "ke\u{301}y\n")
        #expect(result.status == 0, "\(result.stderr)")
        let samsa = try Samsa.open(directory: data)
        defer { try? samsa.close() }
        let record = try #require(try samsa.read(topic: "t", partition: 0, from: 0).first)
        #expect(record.key.map { Array($0.readableBytesView) } == Array("k".utf8))
        #expect(record.value.map { Array($0.readableBytesView) } == Array("\u{301}y".utf8))
    }

    @Test("#11: SIGTERM or ^C during produce: what was sent is acknowledged, the directory closes clean", arguments: [SIGTERM, SIGINT])
    func produceStopped(signal: Int32) throws {
        let dir = try TemporaryDirectory()
        let data = try dataDirectory(dir)
        let child = try SamsaChild(["produce", "--dir", data, "--topic", "t", "--acks-json"])
        child.write((1...50).map { "line \($0)\n" }.joined())
        #expect(child.waitForLines(50))
        child.send(signal)
        #expect(child.wait() == 128 + signal, "\(child.stderr)")
        #expect(FileManager.default.fileExists(atPath: "\(data)/.clean-shutdown"))
        #expect(try values(data).count == 50)
    }

    @Test("#11: SIGTERM during consume --follow --group commits what was printed and closes clean")
    func consumeFollowStopped() throws {
        let dir = try TemporaryDirectory()
        let data = try dataDirectory(dir)
        #expect(try runSamsa(["produce", "--dir", data, "--topic", "t"], input: (1...30).map { "v\($0)\n" }.joined()).status == 0)
        let child = try SamsaChild(["consume", "--dir", data, "--topic", "t", "--group", "g", "--from-beginning", "--follow"])
        #expect(child.waitForLines(30))
        child.send(SIGTERM)
        #expect(child.wait() == 143, "\(child.stderr)")
        #expect(FileManager.default.fileExists(atPath: "\(data)/.clean-shutdown"))
        let samsa = try Samsa.open(directory: data)
        defer { try? samsa.close() }
        #expect(try samsa.committedOffset(group: "g", topic: "t", partition: 0) == 30)
    }

    @Test("#9: crash-writer takes the directory lock: it refuses a directory another process writes")
    func crashWriterLocks() throws {
        let dir = try TemporaryDirectory()
        let data = dir.path("data")
        let samsa = try Samsa.open(directory: data)
        defer { try? samsa.close() }
        let result = try runSamsa(["crash-writer", "--dir", data, "--batches", "1"])
        #expect(result.status == 1 && result.stderr.contains("open in another process"), "\(result.stderr)")
    }

    @Test("#11: --max-record-bytes above the producer's buffer is a usage error (exit 64)")
    func maxRecordBytesBounded() throws {
        let dir = try TemporaryDirectory()
        let result = try runSamsa(["topics", "create", "--dir", dir.path("data"), "--topic", "t", "--max-record-bytes", "60000000"])
        #expect(result.status == 64 && result.stderr.contains("producer's buffer"), "\(result.stderr)")
    }

    @Test("#11: usage errors exit 64, failures exit 1")
    func exitCodes() throws {
        let dir = try TemporaryDirectory()
        #expect(try runSamsa(["produce", "--topic", "t"]).status == 64)
        #expect(try runSamsa(["topics", "create", "--dir", dir.path("d"), "--topic", "t", "--partitions", "many"]).status == 64)
        let data = try dataDirectory(dir)
        #expect(try runSamsa(["consume", "--dir", data, "--topic", "nope"]).status == 1)
    }

    @Test("#11: verify reports a damaged checkpoint file, which every opening command refuses")
    func verifyDamagedCheckpoint() throws {
        let dir = try TemporaryDirectory()
        let data = try dataDirectory(dir)
        #expect(try runSamsa(["produce", "--dir", data, "--topic", "t"], input: "a\nb\n").status == 0)
        #expect(try runSamsa(["verify", data]).status == 0)
        try Data("0\n7\ngarbage\n".utf8).write(to: URL(fileURLWithPath: "\(data)/recovery-point-offset-checkpoint"))
        let verified = try runSamsa(["verify", data])
        #expect(verified.status == 1 && verified.stdout.contains("recovery-point-offset-checkpoint"), "\(verified.stdout)")
        let listed = try runSamsa(["topics", "list", "--dir", data])
        #expect(listed.status == 1 && listed.stderr.contains("recovery-point-offset-checkpoint"))
    }
}

extension Thread {
    /// Opens `path` for reading, reads up to `bytes` bytes, then closes it (a reader that leaves
    /// early); `wait()` returns how many bytes it read.
    static func detachNewReader(_ path: String, bytes limit: Int) -> ByteCountReader {
        let reader = ByteCountReader()
        Thread {
            let fd = open(path, O_RDONLY)
            var total = 0
            var chunk = [UInt8](repeating: 0, count: 4096)
            while fd >= 0 && total < limit {
                let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, min($0.count, limit - total)) }
                if n <= 0 { break }
                total += n
            }
            if fd >= 0 { close(fd) }
            reader.finish(total)
        }.start()
        return reader
    }
}

final class ByteCountReader: @unchecked Sendable {
    // @unchecked: `count` is written once before `done` is signalled and read only after waiting.
    private var count = 0
    private let done = DispatchSemaphore(value: 0)
    func finish(_ total: Int) {
        count = total
        done.signal()
    }
    func wait() -> Int {
        done.wait()
        return count
    }
}

@Suite("samsa under a small descriptor limit", .offCooperativePool)
struct DescriptorLimitTests {
    @Test("#11: more partitions than open files allow are refused up front, at create and at open")
    func partitionsBeyondTheLimit() throws {
        let dir = try TemporaryDirectory()
        let data = dir.path("data")
        let samsa = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("samsa").path
        func limited(_ arguments: String) throws -> (status: Int32, stderr: String) {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/bin/sh")
            process.arguments = ["-c", "ulimit -n 256 && exec \(samsa) \(arguments)"]
            let err = Pipe()
            process.standardError = err
            process.standardOutput = FileHandle.nullDevice
            try process.run()
            let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            return (process.terminationStatus, stderr)
        }
        let created = try limited("topics create --dir \(data) --topic big --partitions 1000")
        #expect(created.status == 1 && created.stderr.contains("ulimit -n"), "\(created.stderr)")
        #expect(try runSamsa(["topics", "list", "--dir", data]).stdout == "")
        // A registry that asks for more (written with a higher limit) is refused the same way.
        #expect(try runSamsa(["topics", "create", "--dir", data, "--topic", "big", "--partitions", "300"]).status == 0)
        let listed = try limited("topics list --dir \(data)")
        // 300 and __consumer_offsets' one.
        #expect(listed.status == 1 && listed.stderr.contains("301 partitions"), "\(listed.stderr)")
    }
}
