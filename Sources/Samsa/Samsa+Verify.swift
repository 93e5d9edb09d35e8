import SamsaStorage

extension Samsa {
    /// Checks the files of a data directory that are not partition logs, without changing anything:
    /// the topic registry (readable and valid), the storage engine's checkpoints and every consumer
    /// group's committed offsets. Returns one line per problem; every one of them makes `open` fail,
    /// so `samsa verify` reports what opening would refuse.
    public static func verifyMetadata(directory: String) -> [String] {
        let files = PosixFileSystem()
        var problems: [String] = []
        let registry = "\(directory)/\(TopicRegistry.fileName)"
        if files.fileExists(registry) {
            do throws(SamsaError) {
                _ = try TopicRegistry(directory: directory, files: files)
            } catch {
                problems.append(error.message)
            }
        }
        var checkpoints = [LogManager.recoveryPointFile, LogManager.logStartFile].map { "\(directory)/\($0)" }
        let groups = "\(directory)/groups"
        if files.fileExists(groups) {
            do throws(StorageError) {
                checkpoints += try files.listDirectory(groups).filter { $0.hasSuffix(".offsets") }.sorted().map { "\(groups)/\($0)" }
            } catch {
                problems.append("\(groups): \(error)")
            }
        }
        for path in checkpoints {
            do throws(StorageError) {
                _ = try OffsetCheckpoint.read(path, files: files)
            } catch {
                problems.append("\(error)")
            }
        }
        return problems
    }
}
