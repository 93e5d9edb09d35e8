import Foundation

/// A unique path under the system's temporary directory, `<prefix>-<uuid>`; nothing is created.
public func temporaryPath(_ prefix: String) -> String {
    FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)").path
}

/// A temporary directory, created now and removed (with everything in it) when released.
public final class TemporaryDirectory {
    public let path: String

    public init(_ prefix: String = "samsa-test") throws {
        path = temporaryPath(prefix)
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    /// The path of `name` inside it.
    public func file(_ name: String) -> String { path + "/" + name }
}
