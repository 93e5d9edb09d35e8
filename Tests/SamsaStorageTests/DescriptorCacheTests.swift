import Foundation
import Glibc
@testable import SamsaStorage
import Testing
import SamsaTestSupport

@Suite("Descriptor cache", .offCooperativePool, .timeLimit(.minutes(1)))
struct DescriptorCacheTests {
    func makeFiles(_ dir: TemporaryDirectory, count: Int) throws -> [String] {
        try (0..<count).map { index in
            let path = "\(dir.path)/f\(index)"
            try Data("file \(index)".utf8).write(to: URL(fileURLWithPath: path))
            return path
        }
    }

    func isOpen(_ fd: Int32) -> Bool { fcntl(fd, F_GETFD) != -1 }

    @Test("idle descriptors past the capacity are closed; pinned ones never")
    func evictsLeastRecentlyUsed() throws {
        let dir = try TemporaryDirectory()
        let paths = try makeFiles(dir, count: 5)
        let cache = DescriptorCache(capacity: 2)
        let pinned = try cache.pin(paths[0], create: false)
        for path in paths[1...] { _ = try cache.withDescriptor(path) { $0 } }
        #expect(cache.openCount == 2)
        #expect(isOpen(pinned))
        // The most recently used idle one is the one kept: using it again opens nothing new.
        _ = try cache.withDescriptor(paths[4]) { $0 }
        #expect(cache.openCount == 2)
        _ = try cache.withDescriptor(paths[1]) { $0 }
        #expect(cache.openCount == 2)
        cache.unpin(paths[0], pinned)
    }

    @Test("a forgotten file's descriptor stays open while a reader uses it, and closes when it is done")
    func forgetWhileInUse() throws {
        let dir = try TemporaryDirectory()
        let paths = try makeFiles(dir, count: 1)
        let cache = DescriptorCache(capacity: 4)
        try cache.withDescriptor(paths[0]) { fd in
            cache.forget(paths[0])
            #expect(isOpen(fd))
            var byte: UInt8 = 0
            #expect(pread(fd, &byte, 1, 0) == 1)
            // After the reader is done (below) the descriptor closes.
        }
        #expect(cache.openCount == 0)
    }

    @Test("a file renamed .deleted is still found by its old name for readers that knew it")
    func deletedFileStillReadable() throws {
        let dir = try TemporaryDirectory()
        let paths = try makeFiles(dir, count: 1)
        try FileManager.default.moveItem(atPath: paths[0], toPath: paths[0] + SegmentFiles.deletedSuffix)
        let cache = DescriptorCache(capacity: 4)
        let size = try cache.withDescriptor(paths[0]) { fd throws(StorageError) in try PosixFileSystem().fileSize(fd, path: paths[0]) }
        #expect(size == 6)
    }
}
