import Foundation
import SamsaRecords
@testable import SamsaStorage
import Testing
import SamsaTestSupport

@Suite("Data directory", .offCooperativePool, .timeLimit(.minutes(1)))
struct DataDirectoryTests {
    let partition = TopicPartition(topic: "t", partition: 0)

    func write(_ text: String, to path: String) throws {
        try FileManager.default.createDirectory(atPath: directoryName(of: path), withIntermediateDirectories: true)
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
    }

    func listing(_ path: String) throws -> [String] {
        try FileManager.default.subpathsOfDirectory(atPath: path).sorted()
    }

    @Test("a directory that holds other files and no meta.properties is refused, and nothing in it changes")
    func foreignDirectoryRefused() throws {
        let dir = try TemporaryDirectory()
        try write("precious", to: "\(dir.path)/backup-2024/db.sql")
        try write("notes", to: "\(dir.path)/notes.txt")
        let before = try listing(dir.path)
        let error = #expect(throws: StorageError.self) { try LogManager.open(directory: dir.path) }
        #expect(error?.code == .notADataDirectory)
        let readOnly = #expect(throws: StorageError.self) { try LogManager.openReadOnly(directory: dir.path) }
        #expect(readOnly?.code == .notADataDirectory)
        #expect(try listing(dir.path) == before)
        #expect(try String(contentsOfFile: "\(dir.path)/backup-2024/db.sql", encoding: .utf8) == "precious")
    }

    @Test("a new or empty directory becomes a data directory; a partition-like directory of other files inside one is left alone")
    func newDirectoryAndForeignPartitionDirectory() async throws {
        let dir = try TemporaryDirectory()
        let path = "\(dir.path)/data"
        do {
            let (manager, _) = try LogManager.open(directory: path, checkpointInterval: nil)
            try await manager.createLog(partition).append(try testBatch(offset: 0))
            try manager.close()
        }
        #expect(FileManager.default.fileExists(atPath: "\(path)/\(DataDirectory.metaFile)"))
        try write("precious", to: "\(path)/backup-2024/db.sql")
        let (manager, report) = try LogManager.open(directory: path, checkpointInterval: nil)
        #expect(report.ignoredDirectories == ["backup-2024"])
        #expect(manager.partitions == [partition])
        try manager.close()
        #expect(try listing("\(path)/backup-2024") == ["db.sql"])
    }

    @Test("a directory Samsa wrote before meta.properties existed is adopted")
    func legacyDirectoryAdopted() async throws {
        let dir = try TemporaryDirectory()
        do {
            let (manager, _) = try LogManager.open(directory: dir.path, checkpointInterval: nil)
            try await manager.createLog(partition).append(try testBatch(offset: 0))
            try manager.close()
        }
        try FileManager.default.removeItem(atPath: "\(dir.path)/\(DataDirectory.metaFile)")
        let (manager, _) = try LogManager.open(directory: dir.path, checkpointInterval: nil)
        #expect(manager.log(partition)?.logEndOffset == 5)
        try manager.close()
    }

    @Test("deleting a partition renames it to -delete first; an interrupted delete is finished at open; other files stay")
    func deleteGoesThroughRename() async throws {
        let dir = try TemporaryDirectory()
        do {
            let (manager, _) = try LogManager.open(directory: dir.path, checkpointInterval: nil)
            try await manager.createLog(partition).append(try testBatch(offset: 0))
            try manager.deleteLog(partition)
            #expect(!FileManager.default.fileExists(atPath: "\(dir.path)/t-0"))
            #expect(try listing(dir.path).allSatisfy { !$0.hasPrefix("t-0") })
            try await manager.createLog(partition).append(try testBatch(offset: 0))
            try manager.close()
        }
        // As if a crash came right after the rename: the next open finishes it. A file Samsa did not
        // write stays, and so does its directory.
        try FileManager.default.moveItem(atPath: "\(dir.path)/t-0", toPath: "\(dir.path)/t-0.abc123-delete")
        try write("mine", to: "\(dir.path)/t-0.abc123-delete/user-notes.txt")
        let (manager, _) = try LogManager.open(directory: dir.path, checkpointInterval: nil)
        #expect(manager.partitions.isEmpty)
        #expect(try listing("\(dir.path)/t-0.abc123-delete") == ["user-notes.txt"])
        try manager.close()
    }

    @Test("a first open killed while writing meta.properties (only its temp file left) opens as a new directory")
    func interruptedFirstOpen() throws {
        let dir = try TemporaryDirectory()
        try write("version=", to: "\(dir.path)/\(DataDirectory.metaFile).tmp")
        let (manager, _) = try LogManager.open(directory: dir.path, checkpointInterval: nil)
        try manager.close()
        #expect(FileManager.default.fileExists(atPath: "\(dir.path)/\(DataDirectory.metaFile)"))
        #expect(!FileManager.default.fileExists(atPath: "\(dir.path)/\(DataDirectory.metaFile).tmp"))
    }

    @Test("a partition deleted and created again in one process holds only its new records, before and after a reopen")
    func recreatedPartitionKeepsItsRecords() async throws {
        let dir = try TemporaryDirectory()
        do {
            let (manager, _) = try LogManager.open(directory: dir.path, checkpointInterval: nil)
            let old = try manager.createLog(partition)
            _ = try await old.append(try testBatch(offset: 0, count: 3))
            // A read leaves the segment's descriptor cached (idle) after the log closes.
            #expect(try old.read(from: 0, maxBytes: 1 << 20) != nil)
            try manager.deleteLog(partition)
            let new = try manager.createLog(partition)
            _ = try await new.append(try testBatch(offset: 0, count: 2))
            let read = try #require(try new.read(from: 0, maxBytes: 1 << 20))
            #expect(try RecordBatch(validating: read).recordCount == 2)
            try manager.close()
        }
        let (manager, _) = try LogManager.open(directory: dir.path, checkpointInterval: nil)
        let log = try #require(manager.log(partition))
        #expect(log.logEndOffset == 2)
        let read = try #require(try log.read(from: 0, maxBytes: 1 << 20))
        #expect(try RecordBatch(validating: read).recordCount == 2)
        try manager.close()
    }

    @Test("files and directories are private to the owner by default (0600 / 0700), wider when configured")
    func permissions() async throws {
        let dir = try TemporaryDirectory()
        func mode(_ path: String) throws -> Int {
            (try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int) ?? -1
        }
        let path = "\(dir.path)/private"
        let (manager, _) = try LogManager.open(directory: path, checkpointInterval: nil)
        try await manager.createLog(partition).append(try testBatch(offset: 0))
        try manager.close()
        #expect(try mode(path) == 0o700)
        #expect(try mode("\(path)/t-0") == 0o700)
        for name in try listing(path) where !name.hasSuffix("t-0") {
            #expect(try mode("\(path)/\(name)") == 0o600, "\(name)")
        }
        let shared = "\(dir.path)/shared"
        let (wide, _) = try LogManager.open(directory: shared, checkpointInterval: nil, files: PosixFileSystem(permissions: .everyone))
        try await wide.createLog(partition).append(try testBatch(offset: 0))
        try wide.close()
        #expect(try mode("\(shared)/t-0/\(SegmentFiles.name(0)).log") & 0o044 == 0o044)
    }
}
