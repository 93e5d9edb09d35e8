import Foundation
import SamsaStorage
import Testing
@testable import SamsaBroker
import SamsaTestSupport

/// A data directory has one writer: a second broker on it is refused before it recovers or writes
/// anything, and a stopped broker lets the next one in.
@Suite("Broker data directory lock")
struct DataDirectoryLockTests {
    @Test("A second broker on a directory a broker serves is refused; after stop it opens")
    func secondBrokerRefused() async throws {
        let first = try await TestBroker.start()
        await #expect {
            _ = try await TestBroker.start(directory: first.directory)
        } throws: { error in
            (error as? StorageError)?.code == .locked
        }
        try await first.stop(keepingData: true)
        let again = try await TestBroker.start(directory: first.directory)
        try await again.stop()
    }

    @Test("A foreign directory is refused and gets no lock file")
    func foreignDirectoryUntouched() async throws {
        let directory = temporaryPath("samsa-foreign")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try Data("mine".utf8).write(to: URL(fileURLWithPath: "\(directory)/notes.txt"))
        await #expect {
            _ = try await TestBroker.start(directory: directory)
        } throws: { error in
            (error as? StorageError)?.code == .notADataDirectory
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory) == ["notes.txt"])
    }
}
