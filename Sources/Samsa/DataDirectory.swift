import SamsaStorage

/// Recognises a Samsa data directory before anything is written to it. Samsa's own mark is its
/// `topics.json`; a directory is also taken when it is empty or holds only the bookkeeping files Samsa
/// and its storage engine write before the first `topics.json` (an open interrupted on a new
/// directory). Anything else is someone else's directory, refused without a change: opening the
/// wrong `--dir` must never touch, let alone delete, what is in it.
enum DataDirectory {
    /// Names a new data directory may hold before its first `topics.json`.
    static let bookkeeping: Set<String> = [
        DirectoryLock.fileName, "meta.properties", "meta.properties.tmp", LogManager.cleanShutdownMarker,
        LogManager.recoveryPointFile, LogManager.logStartFile, "\(LogManager.recoveryPointFile).tmp", "\(LogManager.logStartFile).tmp",
        "\(TopicRegistry.fileName).tmp",
    ]

    /// Whether `directory` (which exists) is new, or refuses it.
    /// - Returns: true when it holds no `topics.json` yet (a new directory).
    static func recognise(_ directory: String, files: any FileSystem) throws(SamsaError) -> Bool {
        let names = try storage { () throws(StorageError) in try files.listDirectory(directory) }
        if names.contains(TopicRegistry.fileName) { return false }
        let foreign = names.filter { !bookkeeping.contains($0) }.sorted()
        guard foreign.isEmpty else {
            let shown = foreign.prefix(3).map { "'\($0)'" }.joined(separator: ", ")
            throw SamsaError(
                .notADataDirectory,
                "\(directory) is not a Samsa data directory: it has no \(TopicRegistry.fileName) and holds \(foreign.count) other entr\(foreign.count == 1 ? "y" : "ies") (\(shown)\(foreign.count > 3 ? ", ..." : "")); nothing was changed. Use an empty or new directory, or the right --dir."
            )
        }
        return true
    }
}
