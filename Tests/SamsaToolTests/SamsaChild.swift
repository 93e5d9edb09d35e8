import Foundation
import Glibc
import Synchronization
import Testing

/// A running `samsa` child process for tests that talk to it while it runs: feed its standard input,
/// wait for its output, signal it, collect its exit status. Standard output goes to a pipe (read as
/// it comes) unless `stdout` names a file (such as /dev/full).
final class SamsaChild: Sendable {
    /// Bytes a reader thread collects; `arrived` is signalled after each chunk.
    final class Collected: Sendable {
        let bytes = Mutex<[UInt8]>([])
        let arrived = DispatchSemaphore(value: 0)
        let done = DispatchSemaphore(value: 0)
    }

    private let process: Process
    private let input: FileHandle
    private let output = Collected()
    private let errors = Collected()

    init(_ arguments: [String], stdout path: String? = nil) throws {
        signal(SIGPIPE, SIG_IGN)
        let binary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("samsa")
        let process = Process()
        process.executableURL = binary
        process.arguments = arguments
        let inPipe = Pipe(), outPipe = Pipe(), errPipe = Pipe()
        process.standardInput = inPipe
        process.standardError = errPipe
        if let path {
            process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        } else {
            process.standardOutput = outPipe
        }
        try process.run()
        self.process = process
        input = inPipe.fileHandleForWriting
        Self.drain(path == nil ? outPipe.fileHandleForReading.fileDescriptor : -1, into: output)
        Self.drain(errPipe.fileHandleForReading.fileDescriptor, into: errors)
    }

    private static func drain(_ fd: Int32, into collected: Collected) {
        guard fd >= 0 else {
            collected.done.signal()
            return
        }
        Thread {
            var chunk = [UInt8](repeating: 0, count: 1 << 16)
            while true {
                let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }
                collected.bytes.withLock { $0 += chunk[..<n] }
                collected.arrived.signal()
            }
            collected.done.signal()
            collected.arrived.signal()
        }.start()
    }

    var pid: Int32 { process.processIdentifier }
    var stdout: String { String(decoding: output.bytes.withLock { $0 }, as: UTF8.self) }
    var stderr: String { String(decoding: errors.bytes.withLock { $0 }, as: UTF8.self) }

    /// Writes to the child's standard input; false once it cannot (the child is gone).
    @discardableResult
    func write(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { raw -> Bool in
            var offset = 0
            while offset < raw.count {
                let n = Glibc.write(input.fileDescriptor, raw.baseAddress! + offset, raw.count - offset)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { return false }
                offset += n
            }
            return true
        }
    }

    @discardableResult
    func write(_ text: String) -> Bool { write(Array(text.utf8)) }

    func closeInput() { try? input.close() }

    /// Waits (at most `timeout`) until standard output holds at least `count` lines.
    func waitForLines(_ count: Int, timeout: Duration = .seconds(30)) -> Bool {
        let deadline = ContinuousClock.now + timeout
        while true {
            if output.bytes.withLock({ $0.lazy.filter { $0 == UInt8(ascii: "\n") }.count }) >= count { return true }
            let left = ContinuousClock.now.duration(to: deadline)
            guard left > .zero else { return false }
            _ = output.arrived.wait(timeout: .now() + .milliseconds(Int(left.components.seconds * 1000) + 1))
        }
    }

    func send(_ signal: Int32) { kill(process.processIdentifier, signal) }

    /// Waits for the child to exit and its output to be read; its exit status (or 128 + the signal).
    func wait() -> Int32 {
        process.waitUntilExit()
        output.done.wait()
        errors.done.wait()
        return process.terminationReason == .uncaughtSignal ? 128 + process.terminationStatus : process.terminationStatus
    }
}
