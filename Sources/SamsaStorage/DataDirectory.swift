import Glibc

/// Recognises a Samsa data directory by the `meta.properties` file Samsa writes into it (as Kafka
/// recognises its log directories), so that a wrong `--dir`, a home directory or a backup folder is
/// refused with a clear error instead of being treated as data: nothing there is read, changed or
/// removed.
///
/// The file is text, one `key=value` a line: `version=1` and a `directory.id` (random, for tools).
public enum DataDirectory {
    public static let metaFile = "meta.properties"
    static let version = "1"

    /// Makes `directory` a data directory if it is new (missing or empty), checks it otherwise.
    /// A directory written by Samsa before `meta.properties` existed (it has Samsa's checkpoint or
    /// clean-shutdown files) is adopted. Anything else is refused with `.notADataDirectory`.
    public static func prepare(_ directory: String, files: any FileSystem) throws(StorageError) {
        if !files.fileExists(directory) {
            try files.makeDirectory(directory)
            try files.syncDirectory(directoryName(of: directory))
        }
        switch try recognise(directory, files: files) {
        case .dataDirectory: return
        case .empty, .legacy: try writeMeta(directory, files: files)
        case .foreign(let names): throw foreignError(directory, names)
        }
    }

    /// Checks that `directory` is a data directory without writing anything (read-only opens).
    public static func check(_ directory: String, files: any FileSystem) throws(StorageError) {
        guard files.fileExists(directory) else {
            throw StorageError(.notADataDirectory, path: directory, errno: ENOENT, "no such data directory")
        }
        switch try recognise(directory, files: files) {
        case .dataDirectory, .legacy: return
        case .empty: throw StorageError(.notADataDirectory, path: directory, "the directory is empty: no Samsa data here")
        case .foreign(let names): throw foreignError(directory, names)
        }
    }

    enum Kind: Equatable {
        case dataDirectory, empty, legacy
        case foreign([String])
    }

    static func recognise(_ directory: String, files: any FileSystem) throws(StorageError) -> Kind {
        let meta = "\(directory)/\(metaFile)"
        if files.fileExists(meta) {
            let text = String(decoding: try files.readFile(meta), as: UTF8.self)
            let version = text.split(separator: "\n").first { $0.hasPrefix("version=") }.map { String($0.dropFirst("version=".count)) }
            guard version == Self.version else {
                throw StorageError(
                    .notADataDirectory, path: meta, "unsupported data directory version \(version ?? "(none)"); this Samsa reads version \(Self.version)")
            }
            return .dataDirectory
        }
        // A first open killed while writing meta.properties leaves only its temp file: still new.
        let names = try files.listDirectory(directory).filter { $0 != "\(metaFile).tmp" }
        if names.isEmpty { return .empty }
        if names.contains(LogManager.recoveryPointFile) || names.contains(LogManager.cleanShutdownMarker) { return .legacy }
        return .foreign(names.sorted())
    }

    private static func foreignError(_ directory: String, _ names: [String]) -> StorageError {
        let shown = names.prefix(3).joined(separator: ", ") + (names.count > 3 ? ", ..." : "")
        return StorageError(
            .notADataDirectory, path: directory,
            "not a Samsa data directory: it holds files (\(shown)) but no \(metaFile); nothing was changed. Point --dir at a Samsa data directory or at a new or empty one")
    }

    private static func writeMeta(_ directory: String, files: any FileSystem) throws(StorageError) {
        var id = [UInt8](repeating: 0, count: 16)
        for index in id.indices { id[index] = UInt8.random(in: 0...255) }
        let hex = id.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
        let text = "# Samsa data directory: written by Samsa; do not remove\nversion=\(version)\ndirectory.id=\(hex)\n"
        try files.writeFileAtomically("\(directory)/\(metaFile)", Array(text.utf8))
    }
}
