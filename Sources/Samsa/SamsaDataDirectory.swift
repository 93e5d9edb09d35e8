import SamsaStorage

/// Recognises a directory as Samsa's before anything is written to it. The storage engine's mark is
/// `meta.properties` (`DataDirectory`); Samsa's own is its `topics.json`: a storage data directory
/// whose registry is gone (deleted, or never Samsa's: a bare `LogManager` directory) is refused
/// rather than opened as one with no topics. A directory is new when it is missing, empty or holds
/// only the bookkeeping files Samsa and its storage engine write before the first `topics.json` (an
/// open interrupted on a new directory). Opening the wrong `--dir` never touches what is in it.
enum SamsaDataDirectory {
    /// Names a new data directory may hold before its first `topics.json`.
    static let bookkeeping: Set<String> = [
        DirectoryLock.fileName, DataDirectory.metaFile, "\(DataDirectory.metaFile).tmp", LogManager.cleanShutdownMarker,
        LogManager.recoveryPointFile, LogManager.logStartFile, "\(LogManager.recoveryPointFile).tmp", "\(LogManager.logStartFile).tmp",
        "\(TopicRegistry.fileName).tmp",
    ]

    /// Whether `directory` (which exists) is new, or refuses it.
    /// - Returns: true when it holds no topic registry yet (a new directory). A broker's directory from
    ///   before the one registry (`topic-configs.json`, `topic-ids.json`) is not new: it is converted.
    static func recognise(_ directory: String, files: any FileSystem) throws(SamsaError) -> Bool {
        guard files.fileExists(directory) else { return true }
        let names = try storage { () throws(StorageError) in try files.listDirectory(directory) }
        if names.contains(TopicRegistry.fileName) || TopicsConversion.isNeeded(directory, files: files) { return false }
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
