import Foundation
import SamsaCoordination
import Testing
import SamsaTestSupport

/// One suite, run against every backend: the ZooKeeper semantics the recipes and the broker rely on.
@Suite("Coordination conformance", .offCooperativePool, .timeLimit(.minutes(2)))
struct ConformanceTests {
    func withBackend(_ kind: BackendKind, _ body: (any CoordinationBackend, String) async throws -> Void) async throws {
        let backend = try await kind.make()
        do {
            let root = testRoot()
            try await body(backend, root)
            try await backend.shutdown()
        } catch {
            try? await backend.shutdown()
            throw error
        }
    }

    func expectError(_ code: CoordinationError.Code, _ body: () async throws -> Void) async {
        do {
            try await body()
            Issue.record("expected \(code)")
        } catch let error as CoordinationError {
            #expect(error.code == code, "\(error)")
        } catch {
            Issue.record("expected \(code), got \(error)")
        }
    }

    @Test("create, read, set with versions, delete; ZooKeeper's errors", arguments: BackendKind.allCases)
    func crud(kind: BackendKind) async throws {
        try await withBackend(kind) { backend, root in
            let session = try await backend.connect(timeout: .seconds(15))
            #expect(try await session.create(root, data: Array("top".utf8), mode: .persistent) == root)
            let child = root + "/config"
            _ = try await session.create(child, data: Array("v0".utf8), mode: .persistent)
            let (data, stat) = try await session.data(child)
            #expect(data == Array("v0".utf8) && stat.version == 0 && stat.ephemeralOwner == 0 && stat.dataLength == 2)
            #expect(stat.czxid == stat.mzxid && stat.ctime > 0)
            let updated = try await session.setData(child, data: Array("v1".utf8), version: 0)
            #expect(updated.version == 1 && updated.mzxid > stat.mzxid)
            await expectError(.badVersion) { _ = try await session.setData(child, data: [], version: 0) }
            await expectError(.nodeExists) { _ = try await session.create(child) }
            await expectError(.noNode) { _ = try await session.create(root + "/missing/child") }
            await expectError(.noNode) { _ = try await session.data(root + "/missing") }
            await expectError(.notEmpty) { try await session.delete(root) }
            await expectError(.badVersion) { try await session.delete(child, version: 7) }
            #expect(try await session.children(root) == ["config"])
            #expect(try await session.exists(root)?.numChildren == 1)
            try await session.delete(child, version: 1)
            #expect(try await session.exists(child) == nil)
            try await session.delete(root)
            for bad in ["", "no-slash", "/trailing/", "/a//b", "/a/./b", "/a/../b"] {
                await expectError(.badArguments) { _ = try await session.create(bad) }
            }
            await session.close()
        }
    }

    @Test("sequential nodes are numbered by their parent; ephemeral ones belong to their session and go with it", arguments: BackendKind.allCases)
    func sequentialAndEphemeral(kind: BackendKind) async throws {
        try await withBackend(kind) { backend, root in
            let owner = try await backend.connect(timeout: .seconds(15))
            let observer = try await backend.connect(timeout: .seconds(15))
            _ = try await owner.create(root)
            let first = try await owner.create(root + "/job-", data: [], mode: .persistentSequential)
            let second = try await owner.create(root + "/job-", data: [], mode: .ephemeralSequential)
            #expect(first == root + "/job-0000000000")
            #expect(second == root + "/job-0000000001")
            #expect(try await observer.exists(second)?.ephemeralOwner == owner.sessionID)
            await expectError(.noChildrenForEphemerals) { _ = try await owner.create(second + "/child") }
            _ = try await owner.create(root + "/lock", data: [], mode: .ephemeral)
            let watch = try await observer.exists(root + "/lock", watch: true).watch
            await owner.close()
            #expect(owner.state == .closed)
            #expect(try await watch?.event() == WatchEvent(type: .nodeDeleted, path: root + "/lock"))
            #expect(Set(try await observer.children(root)) == ["job-0000000000"])
            await expectError(.sessionExpired) { _ = try await owner.create(root + "/late") }
            await observer.close()
        }
    }

    @Test("watches fire once, for data, existence and children", arguments: BackendKind.allCases)
    func watches(kind: BackendKind) async throws {
        try await withBackend(kind) { backend, root in
            let watcher = try await backend.connect(timeout: .seconds(15))
            let writer = try await backend.connect(timeout: .seconds(15))
            _ = try await writer.create(root)
            let node = root + "/n"
            let creation = try await watcher.exists(node, watch: true)
            #expect(creation.stat == nil)
            let children = try await watcher.children(root, watch: true).watch
            _ = try await writer.create(node, data: [1])
            #expect(try await creation.watch?.event() == WatchEvent(type: .nodeCreated, path: node))
            #expect(try await children?.event() == WatchEvent(type: .nodeChildrenChanged, path: root))
            let change = try await watcher.data(node, watch: true).watch
            try await writer.setData(node, data: [2])
            #expect(try await change?.event() == WatchEvent(type: .nodeDataChanged, path: node))
            // One-shot: a second change fires nothing more; a new watch sees deletion.
            try await writer.setData(node, data: [3])
            let deletion = try await watcher.data(node, watch: true).watch
            try await writer.delete(node)
            #expect(try await deletion?.event() == WatchEvent(type: .nodeDeleted, path: node))
            await expectError(.noNode) { _ = try await watcher.data(node, watch: true) }
            await watcher.close()
            await writer.close()
        }
    }

    @Test("multi applies every operation or none", arguments: BackendKind.allCases)
    func multi(kind: BackendKind) async throws {
        try await withBackend(kind) { backend, root in
            let session = try await backend.connect(timeout: .seconds(15))
            _ = try await session.create(root)
            let results = try await session.multi([
                .create(path: root + "/a", data: [1], mode: .persistent),
                .create(path: root + "/seq-", data: [], mode: .persistentSequential),
                .setData(path: root + "/a", data: [2], version: 0),
                .check(path: root + "/a", version: 1),
            ])
            #expect(results.count == 4)
            #expect(results[0] == .created(path: root + "/a"))
            #expect(results[1] == .created(path: root + "/seq-0000000001"))
            guard case .set(let stat) = results[2] else { Issue.record("expected a stat"); return }
            #expect(stat.version == 1)
            await expectError(.badVersion) {
                _ = try await session.multi([
                    .create(path: root + "/b", data: [], mode: .persistent),
                    .check(path: root + "/a", version: 0),
                ])
            }
            #expect(try await session.exists(root + "/b") == nil)
            await expectError(.noNode) {
                _ = try await session.multi([.delete(path: root + "/a", version: -1), .delete(path: root + "/nope", version: -1)])
            }
            #expect(try await session.exists(root + "/a") != nil)
            await session.close()
        }
    }

    @Test("an expired session loses its ephemeral nodes, its watches end, and its state says so", arguments: BackendKind.allCases)
    func expiry(kind: BackendKind) async throws {
        try await withBackend(kind) { backend, root in
            let doomed = try await backend.connect(timeout: .seconds(15))
            let observer = try await backend.connect(timeout: .seconds(15))
            _ = try await observer.create(root)
            _ = try await doomed.create(root + "/member", data: [], mode: .ephemeral)
            let gone = try await observer.exists(root + "/member", watch: true).watch
            var states = doomed.states().makeAsyncIterator()
            #expect(await states.next() == .connected)
            try await backend.expire(doomed)
            #expect(try await gone?.event() == WatchEvent(type: .nodeDeleted, path: root + "/member"))
            var sawExpired = false
            while let state = await states.next() { if state == .expired { sawExpired = true } }
            #expect(sawExpired)
            await expectError(.sessionExpired) { _ = try await doomed.children(root) }
            await observer.close()
        }
    }

    @Test("requests over jute.maxbuffer (1,048,575 bytes) are refused with badArguments; the session and its other requests carry on", arguments: BackendKind.allCases)
    func sizeLimit(kind: BackendKind) async throws {
        try await withBackend(kind) { backend, root in
            let session = try await backend.connect(timeout: .seconds(15))
            _ = try await session.create(root)
            _ = try await session.create(root + "/n")
            let big = [UInt8](repeating: 7, count: 1 << 20)
            // Unrelated requests in flight meanwhile must not be hurt.
            let others = Task {
                for _ in 0..<50 { _ = try await session.exists(root) }
            }
            await expectError(.badArguments) { try await session.setData(root + "/n", data: big) }
            await expectError(.badArguments) { _ = try await session.create(root + "/big", data: big) }
            let half = [UInt8](repeating: 1, count: 600_000)
            await expectError(.badArguments) {
                _ = try await session.multi([.setData(path: root + "/n", data: half, version: -1), .setData(path: root + "/n", data: half, version: -1)])
            }
            try await others.value
            #expect(session.state == .connected)
            // Just under the limit is fine.
            let large = [UInt8](repeating: 3, count: 1_000_000)
            try await session.setData(root + "/n", data: large)
            #expect(try await session.data(root + "/n").data == large)
            #expect(try await session.exists(root + "/big") == nil)
            await session.close()
        }
    }

    @Test("no session reads a change before the watch it set on the old data has fired", arguments: BackendKind.allCases)
    func watchFiresBeforeChangeIsVisible(kind: BackendKind) async throws {
        try await withBackend(kind) { backend, root in
            let watcher = try await backend.connect(timeout: .seconds(15))
            let writer = try await backend.connect(timeout: .seconds(15))
            _ = try await writer.create(root, data: [0])
            var early = 0
            for round in 1...60 {
                let value = [UInt8(round % 256)]
                let watch = try #require(try await watcher.data(root, watch: true).watch)
                let write = Task { _ = try await writer.setData(root, data: value) }
                while try await watcher.data(root).data != value { try await Task.sleep(for: .milliseconds(1)) }
                if watch.firedEvent == nil { early += 1 }
                try await write.value
                _ = try await watch.event()
            }
            #expect(early == 0, "\(early) of 60 reads saw the new data before the watch fired")
            await watcher.close()
            await writer.close()
        }
    }

    @Test("paths are compared byte by byte (NFC and NFD are two nodes); emoji and other code units Java refuses are refused", arguments: BackendKind.allCases)
    func pathBytes(kind: BackendKind) async throws {
        try await withBackend(kind) { backend, root in
            let session = try await backend.connect(timeout: .seconds(15))
            _ = try await session.create(root)
            let composed = root + "/caf\u{E9}"
            let decomposed = root + "/cafe\u{301}"
            #expect(composed == decomposed, "Swift calls them equal")
            _ = try await session.create(composed, data: [1])
            _ = try await session.create(decomposed, data: [2])
            #expect(try await session.children(root).count == 2)
            #expect(try await session.data(composed).data == [1])
            #expect(try await session.data(decomposed).data == [2])
            // A watch on one is not fired by the other.
            let watch = try #require(try await session.data(composed, watch: true).watch)
            try await session.setData(decomposed, data: [3])
            try await session.setData(composed, data: [4])
            #expect(try await watch.event() == WatchEvent(type: .nodeDataChanged, path: composed))
            for refused in [root + "/\u{1F600}", root + "/private\u{E000}", root + "/nonchar\u{FFFE}"] {
                await expectError(.badArguments) { _ = try await session.create(refused) }
            }
            // Accepted: a combining mark right after the separator is still a new name.
            _ = try await session.create(root + "/\u{301}x")
            #expect(try await session.children(root).count == 3)
            await session.close()
        }
    }

    @Test("ZooKeeper's own /zookeeper node exists", arguments: BackendKind.allCases)
    func zookeeperNode(kind: BackendKind) async throws {
        try await withBackend(kind) { backend, _ in
            let session = try await backend.connect(timeout: .seconds(15))
            #expect(try await session.children("/").contains("zookeeper"))
            #expect(try await session.exists("/zookeeper/quota") != nil)
            await session.close()
        }
    }
}
