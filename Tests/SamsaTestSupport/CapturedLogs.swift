public import Logging
import Synchronization

/// Log lines kept in memory, for tests that check what the code under test logged, at which level
/// and with which metadata.
public final class CapturedLogs: Sendable {
    public struct Entry: Sendable {
        public var level: Logger.Level
        public var message: String
        public var metadata: [String: String]
    }

    private let lines = Mutex<[Entry]>([])

    public init() {}

    /// Everything logged so far, oldest first.
    public var entries: [Entry] { lines.withLock { $0 } }

    /// A logger whose lines (every level) are kept here.
    public var logger: Logger {
        var logger = Logger(label: "test") { _ in Handler(logs: self) }
        logger.logLevel = .trace
        return logger
    }

    private struct Handler: LogHandler {
        let logs: CapturedLogs
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            let merged = metadata.merging(event.metadata ?? [:]) { _, new in new }
            let entry = Entry(level: event.level, message: "\(event.message)", metadata: merged.mapValues { "\($0)" })
            logs.lines.withLock { $0.append(entry) }
        }
    }
}
