import ArgumentParser
import Foundation

/// `samsa broker --config FILE`: the broker's options as `key = value` lines, keyed by the long option
/// names without `--` (`listen = 127.0.0.1:9092`, `broker-id = 2`, `log-requests = true`); `#` starts a
/// comment line. An option given on the command line wins over the file. An unknown key or a value
/// that does not parse is an error naming the file and line, so a typo is never silently ignored.
struct BrokerConfigFile {
    let path: String
    private var entries: [String: (value: String, line: Int)] = [:]

    /// Every key the file may hold: the options of `samsa broker` (but `--config` itself).
    static let keys: Set<String> = [
        "dir", "listen", "advertised-listener", "broker-id", "default-partitions", "auto-create-topics", "flush", "segment-bytes",
        "log-requests", "metrics", "coordination", "session-timeout-ms", "replica-lag-time-max-ms", "retention-ms", "retention-bytes",
        "retention-check-interval-ms", "zero-copy-fetch", "compression-type",
        // Log compaction.
        "log-cleanup-policy", "log-cleaner-enable", "log-cleaner-threads", "log-cleaner-dedupe-buffer-size", "log-cleaner-io-max-bytes-per-second",
        "log-cleaner-backoff-ms", "log-cleaner-delete-retention-ms", "log-cleaner-min-cleanable-ratio", "log-cleaner-min-compaction-lag-ms",
        "log-cleaner-max-compaction-lag-ms",
        // Groups, committed offsets and producer state (hostile clients).
        "group-min-session-timeout-ms", "group-max-session-timeout-ms", "group-max-pending-members", "group-max-size", "offset-metadata-max-bytes",
        "offsets-topic-num-partitions", "offsets-topic-replication-factor", "offsets-retention-minutes",
        "group-initial-rebalance-delay-ms", "producer-id-expiration-ms",
        // Replica storage failures in a cluster.
        "replica-fetch-backoff-ms", "replica-fetch-backoff-max-ms", "follower-replication-throttled-rate",
        // Fetch limits (issue 20: amplification, descriptors)
        "fetch-max-bytes", "zero-copy-fetch-max-files",
        // Connections (hostile clients)
        "max-connections", "max-connections-per-ip", "connections-max-idle-ms", "queued-max-request-bytes", "metrics-max-connections",
    ]

    init(path: String) throws {
        self.path = path
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ValidationError("cannot read the config file \(path): no such file")
        }
        guard !isDirectory.boolValue else { throw ValidationError("cannot read the config file \(path): it is a directory") }
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ValidationError("cannot read the config file \(path): \((error as NSError).localizedDescription)")
        }
        for (index, raw) in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespacesAndNewlines)  // CRLF files too
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard let equals = line.firstIndex(of: "=") else {
                throw ValidationError("\(path):\(index + 1): expected KEY = VALUE, got '\(line)'")
            }
            let key = line[..<equals].trimmingCharacters(in: .whitespaces)
            let value = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            guard Self.keys.contains(key) else {
                throw ValidationError("\(path):\(index + 1): unknown key '\(key)' (known: \(Self.keys.sorted().joined(separator: ", ")))")
            }
            guard entries[key] == nil else { throw ValidationError("\(path):\(index + 1): '\(key)' is set twice") }
            entries[key] = (value, index + 1)
        }
    }

    /// The key's value parsed as an option's argument would be, or nil when the file does not set it.
    func value<Value: ExpressibleByArgument>(_ key: String, as type: Value.Type = Value.self) throws -> Value? {
        precondition(Self.keys.contains(key), "\(key) is not a config-file key")
        guard let (text, line) = entries[key] else { return nil }
        guard let value = Value(argument: text) else { throw ValidationError("\(path):\(line): '\(text)' is not a valid value for \(key)") }
        return value
    }
}
