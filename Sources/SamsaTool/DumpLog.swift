import ArgumentParser
import Foundation
import Glibc
import NIOCore
import SamsaRecords

/// `samsa dump-log FILE`: one line per batch of a segment file, optionally one per record, as text or
/// JSON lines. A corrupt or truncated batch is reported with its byte position and fails the command.
struct DumpLog: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dump-log",
        abstract: "Print the record batches of a segment file (.log) or of every segment of a partition directory.",
        discussion: "Exits 1 when a batch is corrupt or the file ends inside a batch, or the output cannot be written; 64 on bad arguments (a FIFO or device is refused: it has no end to check against)."
    )

    @Argument(help: "A segment file of record batches, or a partition directory of them.")
    var file: String

    @Flag(help: "Also print one line per record.")
    var records = false

    @Flag(help: "Print JSON lines instead of text.")
    var json = false

    func run() throws {
        var output = LineWriter()
        for segment in try segmentFiles() {
            if segment != file && !json { try output.line("# \(segment)") }
            try dump(segment, into: &output)
        }
        try output.flush()
    }

    /// The file itself, or a directory's `.log` files in offset order.
    private func segmentFiles() throws -> [String] {
        var info = stat()
        guard stat(file, &info) == 0 else { throw BatchFileReader.OpenError(path: file, errno: errno) }
        switch info.st_mode & S_IFMT {
        case S_IFREG: return [file]
        case S_IFDIR: break
        default:
            // A FIFO, a device or a socket has no size to scan to: "0 batches, all valid" would lie.
            throw ValidationError("\(file) is not a regular file or a directory")
        }
        let names = try FileManager.default.contentsOfDirectory(atPath: file).filter { $0.hasSuffix(".log") }.sorted()
        return names.map { "\(file)/\($0)" }
    }

    private func dump(_ path: String, into output: inout LineWriter) throws {
        var reader = try BatchFileReader(path: path)
        var batches = 0
        while let item = try reader.next() {
            switch item {
            case .batch(let batch, let position):
                batches += 1
                try output.line(json ? BatchLine.json(batch, position: position) : BatchLine.text(batch, position: position))
                if records {
                    var lines: [String] = []
                    do {
                        var iterator = try batch.records()
                        while let record = try iterator.next() {
                            lines.append(json ? RecordLine.json(record) : RecordLine.text(record))
                        }
                    } catch {
                        try? output.flush()
                        fail("corrupt records in batch at byte position \(position): \(error)")
                    }
                    for line in lines { try output.line(line) }
                }
            case .truncated(let position, let available, let expected):
                try? output.flush()
                let size = expected.map { "of \($0) bytes" } ?? "header"
                fail("truncated batch at byte position \(position): the file ends \(available) bytes into a batch \(size)")
            case .corrupt(let position, let error):
                try? output.flush()
                fail("corrupt batch at byte position \(position): \(error)")
            }
        }
        if !json {
            standardError("\(path): \(batches) batches, \(reader.fileSize) bytes, all valid")
        }
    }

    private func fail(_ message: String) -> Never {
        standardError("samsa dump-log: \(message)")
        DumpLog.exit(withError: ExitCode(1))
    }
}

enum BatchLine {
    static func text(_ batch: RecordBatch, position: Int) -> String {
        "baseOffset: \(batch.baseOffset) lastOffset: \(batch.lastOffset) count: \(batch.recordCount)"
            + " position: \(position) size: \(batch.sizeInBytes) codec: \(batch.compression)"
            + " epoch: \(batch.partitionLeaderEpoch) maxTimestamp: \(batch.maxTimestamp)"
            + " crc: \(hexString(batch.crc)) crcValid: \(batch.isChecksumValid)"
    }

    static func json(_ batch: RecordBatch, position: Int) -> String {
        JSONLine([
            ("type", .string("batch")), ("baseOffset", .int(batch.baseOffset)), ("lastOffset", .int(batch.lastOffset)),
            ("count", .int(Int64(batch.recordCount))), ("position", .int(Int64(position))),
            ("size", .int(Int64(batch.sizeInBytes))), ("codec", .string(batch.compression.description)),
            ("partitionLeaderEpoch", .int(Int64(batch.partitionLeaderEpoch))),
            ("maxTimestamp", .int(batch.maxTimestamp)), ("crc", .int(Int64(batch.crc))),
            ("crcValid", .bool(batch.isChecksumValid)),
        ]).rendered
    }
}

enum RecordLine {
    static func text(_ record: Record) -> String {
        var line = "| offset: \(record.offset) timestamp: \(record.timestamp)"
        line += " keySize: \(record.key?.readableBytes ?? -1) valueSize: \(record.value?.readableBytes ?? -1)"
        if !record.headers.isEmpty {
            line += " headers: " + record.headers.map { "\($0.key)=\(printable($0.value))" }.joined(separator: ",")
        }
        line += " key: \(printable(record.key)) value: \(printable(record.value))"
        return line
    }

    static func json(_ record: Record) -> String {
        JSONLine([
            ("type", .string("record")), ("offset", .int(record.offset)), ("timestamp", .int(record.timestamp)),
            ("key", bytesValue(record.key)), ("value", bytesValue(record.value)),
            ("headers", .array(record.headers.map { header in
                .object([("key", .string(header.key)), ("value", bytesValue(header.value))])
            })),
        ]).rendered
    }

    /// UTF-8 text where the bytes are valid UTF-8, else `hex:` and the bytes in hex; `null` for none.
    static func printable(_ bytes: ByteBuffer?) -> String {
        guard let bytes else { return "null" }
        if let text = bytes.getString(at: bytes.readerIndex, length: bytes.readableBytes),
            text.utf8.elementsEqual(bytes.readableBytesView)
        {
            return text
        }
        return "hex:" + bytes.readableBytesView.map { byte in
            let digits = String(byte, radix: 16)
            return digits.count == 1 ? "0" + digits : digits
        }.joined()
    }

    static func bytesValue(_ bytes: ByteBuffer?) -> JSONLine.Value {
        bytes.map { .string(printable($0)) } ?? .null
    }
}

func hexString(_ value: UInt32) -> String {
    let digits = String(value, radix: 16)
    return "0x" + String(repeating: "0", count: 8 - digits.count) + digits
}
