import Foundation
import Glibc
import NIOCore
import SamsaRecords
import SamsaStorage
import Testing
import SamsaTestSupport

/// A batch the crash writer saw acknowledged.
struct Acknowledged: Hashable {
    var baseOffset: Int64
    var lastOffset: Int64
    var crc: UInt32
}

@Suite("Crash recovery with a real child process killed by SIGKILL", .offCooperativePool, .serialized)
struct CrashRecoveryTests {
    /// Starts `samsa crash-writer`, kills it with SIGKILL after `delay` (counted from its first
    /// acknowledgement when `afterFirstAcknowledgement`, else from its start), returns the batches it
    /// acknowledged (complete lines only: the kill may cut the last one).
    func runAndKill(directory: String, flush: String, writeAhead: Int, delay: Duration, afterFirstAcknowledgement: Bool = false) throws
        -> [Acknowledged]
    {
        let binary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("samsa")
        let process = Process()
        process.executableURL = binary
        process.arguments = [
            "crash-writer", "--dir", directory, "--flush", flush, "--segment-bytes", "65536", "--appenders", "4", "--write-ahead", "\(writeAhead)",
        ]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        let collected = Collected()
        try process.run()
        let reader = Thread {
            var signalled = false
            while case let chunk = output.fileHandleForReading.availableData, !chunk.isEmpty {
                collected.data.append(chunk)
                if !signalled && chunk.contains(UInt8(ascii: "\n")) {
                    signalled = true
                    collected.firstLine.signal()
                }
            }
            if !signalled { collected.firstLine.signal() }  // it ended without one
            collected.finished.signal()
        }
        reader.start()
        // On a loaded machine the child may take longer to start than any fixed delay.
        if afterFirstAcknowledgement { _ = collected.firstLine.wait(timeout: .now() + .seconds(120)) }
        Thread.sleep(forTimeInterval: Double(delay.components.attoseconds) / 1e18 + Double(delay.components.seconds))
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        #expect(process.terminationReason == .uncaughtSignal && process.terminationStatus == SIGKILL)
        collected.finished.wait()
        let text = String(decoding: collected.data, as: UTF8.self)
        let complete = text.hasSuffix("\n") ? text : String(text[..<(text.lastIndex(of: "\n") ?? text.startIndex)])
        return complete.split(separator: "\n").compactMap { line in
            let fields = line.split(separator: " ")
            guard fields.count == 3, let base = Int64(fields[0]), let last = Int64(fields[1]), let crc = UInt32(fields[2]) else { return nil }
            return Acknowledged(baseOffset: base, lastOffset: last, crc: crc)
        }
    }

    final class Collected: @unchecked Sendable {
        // @unchecked: `data` is written only by the reader thread before it signals `finished`, and
        // read only after waiting for that signal.
        var data = Data()
        let firstLine = DispatchSemaphore(value: 0)
        let finished = DispatchSemaphore(value: 0)
    }

    /// Reopens the directory (recovery) and checks the log is a contiguous, CRC-valid run of batches
    /// holding every acknowledged batch unchanged.
    func verify(directory: String, acknowledged: Set<Acknowledged>) throws {
        let (manager, report) = try LogManager.open(directory: directory, checkpointInterval: nil)
        #expect(!report.cleanShutdown)
        let partition = TopicPartition(topic: "crash", partition: 0)
        guard let log = manager.log(partition) else {
            // Killed before it created the partition (a slow start on a busy machine): nothing acknowledged yet.
            #expect(acknowledged.isEmpty, "the partition is gone but \(acknowledged.count) batches were acknowledged")
            return
        }
        var found: [Int64: Acknowledged] = [:]
        var next = log.logStartOffset
        while let bytes = try log.read(from: next, maxBytes: 1 << 20) {
            var remaining = bytes
            while remaining.readableBytes > 0 {
                let batch = try RecordBatch(validating: remaining)
                #expect(batch.baseOffset == next, "batches are contiguous")
                found[batch.baseOffset] = Acknowledged(baseOffset: batch.baseOffset, lastOffset: batch.lastOffset, crc: batch.crc)
                _ = try batch.decodeRecords()
                next = batch.nextOffset
                remaining.moveReaderIndex(forwardBy: batch.sizeInBytes)
            }
        }
        #expect(next == log.logEndOffset)
        let missing = acknowledged.filter { found[$0.baseOffset] != $0 }
        #expect(missing.isEmpty, "\(missing.count) of \(acknowledged.count) acknowledged batches missing or changed")
        let verification = try LogVerifier.verifyPartition(directory: "\(directory)/\(partition.directoryName)")
        #expect(verification.isValid, "\(verification.problems)")
    }

    @Test(
        "every acknowledged batch survives SIGKILL at random moments",
        arguments: [("every-append", 0), ("interval:50", 0), ("never", 0), ("every-append", 16384)])
    func killRepeatedly(flush: String, writeAhead: Int) throws {
        let directory = temporaryPath("samsa-crash")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var acknowledged = Set<Acknowledged>()
        var generator = SystemRandomNumberGenerator()
        for round in 0..<6 {
            let delay = Duration.milliseconds(Int.random(in: 150...600, using: &generator))
            // Early rounds may kill it while it starts; the last one once it acknowledged something.
            acknowledged.formUnion(
                try runAndKill(directory: directory, flush: flush, writeAhead: writeAhead, delay: delay, afterFirstAcknowledgement: round == 5))
            try verify(directory: directory, acknowledged: acknowledged)
        }
        #expect(acknowledged.count > 0, "the writer acknowledged nothing: the test proved nothing")
    }
}
