import Foundation
import Glibc

/// A `samsa broker` child process on a data directory (a single broker, groups rebalancing at once),
/// stopped by its pid.
final class BrokerChild {
    let process: Process
    let port: Int
    let log: String
    var bootstrap: String { "127.0.0.1:\(port)" }

    /// A broker that listens, or the refusal it printed when it exited instead.
    struct Launch {
        var broker: BrokerChild?
        var refusal: String?
    }

    private init(process: Process, port: Int, log: String) {
        self.process = process
        self.port = port
        self.log = log
    }

    static func launch(_ data: String, log: String, port: Int = 0, arguments extra: [String] = []) throws -> Launch {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("samsa")
        process.arguments = ["broker", "--dir", data, "--listen", "127.0.0.1:\(port)", "--group-initial-rebalance-delay-ms", "0"] + extra
        let output = Pipe()
        process.standardOutput = output
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        try process.run()
        // The broker prints "listening on HOST:PORT" once it accepts connections.
        var line = Data()
        while !line.contains(UInt8(ascii: "\n")) {
            let chunk = output.fileHandleForReading.availableData
            if chunk.isEmpty {
                process.waitUntilExit()
                let stderr = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
                return Launch(broker: nil, refusal: "exit \(process.terminationStatus): \(stderr)")
            }
            line.append(chunk)
        }
        let text = String(decoding: line, as: UTF8.self)
        guard text.hasPrefix("listening on "), let bound = text.split(separator: ":").last.flatMap({ Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) })
        else {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            throw BrokerChildFailure("samsa broker printed \(text)")
        }
        return Launch(broker: BrokerChild(process: process, port: bound, log: log), refusal: nil)
    }

    /// A broker that must start.
    static func serving(_ data: String, log: String, port: Int = 0, arguments extra: [String] = []) throws -> BrokerChild {
        let launched = try launch(data, log: log, port: port, arguments: extra)
        guard let broker = launched.broker else { throw BrokerChildFailure("samsa broker did not start: \(launched.refusal ?? "")") }
        return broker
    }

    /// SIGTERM, then waits for the exit.
    func stop() {
        kill(process.processIdentifier, SIGTERM)
        process.waitUntilExit()
    }

    var exitStatus: Int32 { process.terminationReason == .exit ? process.terminationStatus : 128 + process.terminationStatus }
    var logTail: String { String(((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").suffix(3000)) }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }
}

struct BrokerChildFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
