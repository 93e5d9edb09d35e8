import Synchronization

extension CoordinationSession {
    /// Creates `path` and any missing parents as empty persistent nodes (Curator's `creatingParentsIfNeeded`).
    public func createPath(_ path: String) async throws {
        try NodePath.validate(path)
        var current = ""
        for component in path.split(separator: "/") {
            current += "/" + component
            do {
                _ = try await create(current, data: [], mode: .persistent)
            } catch let error as CoordinationError where error.code == .nodeExists {
                continue
            }
        }
    }
}

/// Group membership: one ephemeral node per member under a directory, and the live member list
/// followed through child watches.
public final class Membership: Sendable {
    public let session: any CoordinationSession
    public let path: String

    public init(session: any CoordinationSession, path: String) {
        self.session = session
        self.path = path
    }

    /// Registers `member` (an ephemeral node named after it, holding `data`) until the session ends
    /// or `leave(member)`.
    public func join(_ member: String, data: [UInt8] = []) async throws {
        try await session.createPath(path)
        _ = try await session.create(NodePath.join(path, member), data: data, mode: .ephemeral)
    }

    public func leave(_ member: String) async throws {
        try await session.delete(NodePath.join(path, member), version: -1)
    }

    /// The current members, sorted.
    public func members() async throws -> [String] {
        try await session.children(path, watch: false).names.sorted()
    }

    /// The member list now and after every change, until the session ends or the task is cancelled.
    public func changes() -> AsyncThrowingStream<[String], any Error> {
        let session = self.session
        let path = self.path
        return AsyncThrowingStream { continuation in
            let task = Task {
                do {
                    try await session.createPath(path)
                    while !Task.isCancelled {
                        let (names, _, watch) = try await session.children(path, watch: true)
                        continuation.yield(names.sorted())
                        guard let watch else { break }
                        let event = try await watch.event()
                        if event.type == .sessionEnded { break }
                    }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }
}
