import Foundation
@testable import SamsaStorage
import Testing
import SamsaTestSupport

func fileSize(_ path: String) throws -> Int {
    (try FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.intValue ?? -1
}

@Suite("Offset index", .offCooperativePool, .timeLimit(.minutes(1)))
struct OffsetIndexTests {
    let files = PosixFileSystem()

    func makeIndex(_ dir: TemporaryDirectory, base: Int64 = 100, maxSize: Int = 4096) throws -> OffsetIndex {
        try OffsetIndex(path: dir.file("x.index"), baseOffset: base, maxSize: maxSize, writable: true, files: files)
    }

    @Test("lookup at every boundary: before, on, between and after entries")
    func lookupBoundaries() throws {
        let dir = try TemporaryDirectory()
        let index = try makeIndex(dir)
        #expect(index.lookup(100) == (100, 0))  // empty index: segment start
        for i in 1...10 { try index.append(offset: 100 + Int64(i) * 10, position: i * 4096) }
        #expect(index.lookup(50) == (100, 0))    // below the base offset
        #expect(index.lookup(100) == (100, 0))   // at the base, before the first entry
        #expect(index.lookup(109) == (100, 0))   // just before the first entry
        #expect(index.lookup(110) == (110, 4096))  // exactly the first entry
        #expect(index.lookup(111) == (110, 4096))
        #expect(index.lookup(159) == (150, 5 * 4096))
        #expect(index.lookup(160) == (160, 6 * 4096))
        #expect(index.lookup(200) == (200, 10 * 4096))  // the last entry
        #expect(index.lookup(10_000) == (200, 10 * 4096))  // past the end
    }

    @Test("entries must increase")
    func entriesIncrease() throws {
        let dir = try TemporaryDirectory()
        let index = try makeIndex(dir)
        try index.append(offset: 110, position: 4096)
        #expect(throws: StorageError.self) { try index.append(offset: 110, position: 8192) }
        #expect(throws: StorageError.self) { try index.append(offset: 120, position: 4096) }
        #expect(throws: StorageError.self) { try index.append(offset: 99, position: 9000) }
        #expect(index.entryCount == 1)
    }

    @Test("a full index refuses entries")
    func full() throws {
        let dir = try TemporaryDirectory()
        let index = try makeIndex(dir, maxSize: 24)
        for i in 1...3 { try index.append(offset: 100 + Int64(i), position: i * 10) }
        #expect(index.isFull)
        let error = #expect(throws: StorageError.self) { try index.append(offset: 104, position: 40) }
        #expect(error?.code == .indexFull)
    }

    @Test("reopening a preallocated index with a zero tail counts only written entries")
    func zeroTail() throws {
        let dir = try TemporaryDirectory()
        do {
            let index = try makeIndex(dir, maxSize: 8 * 1000)
            for i in 1...7 { try index.append(offset: 100 + Int64(i), position: i * 100) }
            try index.sync()
            index.close()  // no trim: as after a crash
        }
        // One page preallocated, not the whole 8,000 bytes: the rest comes as entries need it.
        #expect(try fileSize(dir.file("x.index")) == 4096)
        let reopened = try makeIndex(dir, maxSize: 8 * 1000)
        #expect(reopened.entryCount == 7)
        #expect(reopened.lookup(1_000_000) == (107, 700))
        try reopened.append(offset: 108, position: 800)
        #expect(reopened.entryCount == 8)
    }

    @Test("trim cuts the file to its entries; a trimmed index reopens read-only with the same entries")
    func trim() throws {
        let dir = try TemporaryDirectory()
        let index = try makeIndex(dir, maxSize: 8 * 1000)
        for i in 1...5 { try index.append(offset: 100 + Int64(i) * 3, position: i * 1000) }
        try index.trim()
        #expect(try fileSize(dir.file("x.index")) == 40)
        #expect(index.lookup(110) == (109, 3000))
        let reopened = try OffsetIndex(path: dir.file("x.index"), baseOffset: 100, maxSize: 8000, writable: false, files: files)
        #expect(reopened.entryCount == 5)
        #expect(reopened.lookup(115) == (115, 5000))
    }

    @Test("truncation drops entries at and past an offset, and they stay gone after reopening")
    func truncate() throws {
        let dir = try TemporaryDirectory()
        let index = try makeIndex(dir)
        for i in 1...10 { try index.append(offset: 100 + Int64(i) * 10, position: i * 100) }
        index.truncate(from: 150)
        #expect(index.entryCount == 4)
        #expect(index.lookup(1000) == (140, 400))
        try index.sync()
        index.close()
        #expect(try makeIndex(dir).entryCount == 4)
    }

    @Test("a damaged index fails its sanity check")
    func sanityCheck() throws {
        let dir = try TemporaryDirectory()
        let index = try makeIndex(dir)
        for i in 1...4 { try index.append(offset: 100 + Int64(i), position: i * 100) }
        try index.sanityCheck(segmentSize: 1000)
        #expect(throws: StorageError.self) { try index.sanityCheck(segmentSize: 300) }  // points past the segment
        try index.sync()
        index.close()
        // Swap two entries on disk.
        var bytes = try Data(contentsOf: URL(fileURLWithPath: dir.file("x.index")))
        let first = bytes[0..<8], second = bytes[8..<16]
        bytes.replaceSubrange(0..<8, with: second)
        bytes.replaceSubrange(8..<16, with: first)
        try bytes.write(to: URL(fileURLWithPath: dir.file("x.index")))
        let damaged = try makeIndex(dir)
        let error = #expect(throws: StorageError.self) { try damaged.sanityCheck(segmentSize: 1000) }
        #expect(error?.code == .corrupt)
    }
}

@Suite("Time index", .offCooperativePool, .timeLimit(.minutes(1)))
struct TimeIndexTests {
    @Test("lookup finds the last entry below a timestamp; only growing timestamps are recorded")
    func lookup() throws {
        let dir = try TemporaryDirectory()
        let index = try TimeIndex(path: dir.file("x.timeindex"), baseOffset: 0, maxSize: 1200, writable: true, files: PosixFileSystem())
        #expect(index.lookup(5) == 0)
        try index.appendIfLarger(timestamp: 1000, offset: 10)
        try index.appendIfLarger(timestamp: 900, offset: 20)  // not larger: ignored
        try index.appendIfLarger(timestamp: 2000, offset: 30)
        try index.appendIfLarger(timestamp: 3000, offset: 40)
        #expect(index.entryCount == 3)
        #expect(index.lookup(500) == 0)
        #expect(index.lookup(1000) == 0)
        #expect(index.lookup(1001) == 10)
        #expect(index.lookup(2500) == 30)
        #expect(index.lookup(99_999) == 40)
        try index.sanityCheck(nextOffset: 41)
        #expect(throws: StorageError.self) { try index.sanityCheck(nextOffset: 35) }
        index.truncate(from: 30)
        #expect(index.lastEntry?.timestamp == 1000)
        index.close()
        let reopened = try TimeIndex(path: dir.file("x.timeindex"), baseOffset: 0, maxSize: 1200, writable: true, files: PosixFileSystem())
        #expect(reopened.entryCount == 1)
    }
}

@Suite("Fault-injecting file system", .offCooperativePool, .timeLimit(.minutes(1)))
struct FaultInjectionTests {
    @Test("injected errors fail the chosen call with the chosen errno")
    func injectedErrors() throws {
        let dir = try TemporaryDirectory()
        let files = FaultInjectingFileSystem()
        let fd = try files.open(dir.file("f"), flags: O_RDWR | O_CREAT, mode: 0o644)
        defer { files.close(fd) }
        files.inject(.write, errno: ENOSPC)
        let error = #expect(throws: StorageError.self) {
            try [1, 2, 3].withUnsafeBytes { raw in try files.pwrite(fd, UnsafeRawBufferPointer(raw), at: 0, path: dir.file("f")) }
        }
        #expect(error?.errno == ENOSPC)
        files.inject(.fdatasync, errno: EIO)
        let syncError = #expect(throws: StorageError.self) { try files.fdatasync(fd, path: dir.file("f")) }
        #expect(syncError?.code == .syncFailed)
        try files.fdatasync(fd, path: dir.file("f"))  // one-shot
    }

    @Test("a power cut keeps exactly the synced bytes")
    func powerCut() throws {
        let dir = try TemporaryDirectory()
        let path = dir.file("log")
        let files = FaultInjectingFileSystem()
        let fd = try files.open(path, flags: O_RDWR | O_CREAT, mode: 0o644)
        func write(_ bytes: [UInt8], at offset: Int) throws {
            try bytes.withUnsafeBytes { raw in try files.pwrite(fd, UnsafeRawBufferPointer(raw), at: offset, path: path) }
        }
        try write([1, 2, 3, 4], at: 0)
        try files.fdatasync(fd, path: path)
        try write([5, 6], at: 4)
        try write([9], at: 1)  // overwrites a synced byte without a sync
        files.close(fd)
        files.simulatePowerCut()
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == Data([1, 2, 3, 4]))
        // A file never synced at all is empty after the cut.
        let other = dir.file("new")
        let fd2 = try files.open(other, flags: O_RDWR | O_CREAT, mode: 0o644)
        try [7, 7].withUnsafeBytes { raw in try files.pwrite(fd2, UnsafeRawBufferPointer(raw), at: 0, path: other) }
        files.close(fd2)
        files.simulatePowerCut()
        #expect(try fileSize(other) == 0)
    }
}
