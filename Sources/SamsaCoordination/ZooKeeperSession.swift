import Dispatch
import NIOCore
import Synchronization

/// A session with an Apache ZooKeeper ensemble, spoken natively over its wire protocol (jute frames
/// on TCP, SwiftNIO): the connect handshake with a negotiated timeout, pings, the operations, watch
/// events and `multi`. When a connection is lost the session is suspended and moves to the next
/// server of the ensemble with its id and password, re-registering its watches (`SetWatches`); it
/// reports expiry when a server says so (or when no server could be reached for a whole timeout).
///
/// Requests made while suspended wait for the session to reconnect; requests in flight when a
/// connection drops fail with `connectionLoss` (their outcome is unknown, as in every ZooKeeper client).
public final class ZooKeeperSession: CoordinationSession {
    private struct Pending {
        var xid: Int32
        var continuation: CheckedContinuation<(Int32, JuteReader), any Error>
        /// A watch to register if the reply allows (in the same step that resumes the caller, so an
        /// event right after the reply cannot be missed).
        var watch: (Watch, WatchKind)?
    }

    enum WatchKind { case data, exists, children }

    private struct State {
        var connection: ZooKeeperConnection?
        var generation = 0
        var handshake: CheckedContinuation<ByteBuffer, any Error>?
        var pending: [Pending] = []
        var nextXid: Int32 = 1
        var lastZxid: Int64 = 0
        var sessionID: Int64 = 0
        var password: [UInt8] = Array(repeating: 0, count: 16)
        var timeout: Duration
        var dataWatches: [String: [Watch]] = [:]
        var existWatches: [String: [Watch]] = [:]
        var childWatches: [String: [Watch]] = [:]
        var lastHeard: ContinuousClock.Instant = .now
        var connectedWaiters: [CheckedContinuation<Void, any Error>] = []
        var serverIndex = 0
        var reconnecting = false
        /// Set by `expireForTesting` while another connection closes this session on the server.
        var holdReconnect = false
    }

    public let servers: [String]
    private let requestedTimeout: Duration
    private let guarded: Mutex<State>
    private let broadcaster = SessionStateBroadcaster(.suspended)
    private let heartbeat = Mutex<Task<Void, Never>?>(nil)

    private init(servers: [String], timeout: Duration) {
        self.servers = servers
        self.requestedTimeout = timeout
        guarded = Mutex(State(timeout: timeout))
    }

    /// Opens a session on the first reachable server of `servers` ("host:port" each).
    public static func connect(servers: [String], sessionTimeout: Duration = .seconds(10)) async throws -> ZooKeeperSession {
        guard !servers.isEmpty else { throw CoordinationError(.badArguments, "no ZooKeeper servers given") }
        let session = ZooKeeperSession(servers: servers, timeout: sessionTimeout)
        var lastError: (any Error)?
        for index in servers.indices {
            do {
                try await session.establish(serverIndex: index)
                session.startHeartbeat()
                return session
            } catch let error as CoordinationError where error.code == .sessionExpired {
                throw error
            } catch {
                lastError = error
            }
        }
        throw CoordinationError(.connectionLoss, "no ZooKeeper server of \(servers) answered: \(lastError.map { "\($0)" } ?? "")")
    }

    public var sessionID: Int64 { guarded.withLock { $0.sessionID } }
    public var sessionTimeout: Duration { guarded.withLock { $0.timeout } }
    public var state: SessionState { broadcaster.current }
    public func states() -> AsyncStream<SessionState> { broadcaster.stream() }
    /// The server this session is connected to now, if any.
    public var currentServer: String? { guarded.withLock { $0.connection?.server } }

    /// Test hook, as Curator's `KillSession`: a second connection takes over this session's id and
    /// password and closes the session on the server, which expires it for this client. Retried: if
    /// this client reconnects first, the server drops the second connection before its close arrives.
    public func expireForTesting() async throws {
        let (id, password, index) = guarded.withLock { state in
            // This client must not take the session back while the impostor closes it.
            state.holdReconnect = true
            return (state.sessionID, state.password, state.serverIndex)
        }
        defer { guarded.withLock { $0.holdReconnect = false } }
        let impostor = ZooKeeperSession(servers: servers, timeout: requestedTimeout)
        impostor.guarded.withLock { state in
            state.sessionID = id
            state.password = password
        }
        do {
            try await impostor.establish(serverIndex: index)
            await impostor.close()
        } catch let error as CoordinationError where error.code == .sessionExpired {
            // Already gone on the server.
        }
        guarded.withLock { $0.holdReconnect = false }
        // The server dropped this client's connection when the impostor took the session; the
        // reconnect now hears that the session expired. A connection it did not drop is closed here.
        if broadcaster.current == .connected { guarded.withLock { $0.connection }?.close() }
        let deadline = ContinuousClock.now + requestedTimeout + .seconds(5)
        while ContinuousClock.now < deadline && broadcaster.current != .expired {
            try await Task.sleep(for: .milliseconds(20))
        }
        if broadcaster.current != .expired { throw CoordinationError(.systemError, "the session did not expire") }
    }

    // MARK: - Operations

    public func create(_ path: String, data: [UInt8], mode: CreateMode) async throws -> String {
        try NodePath.validate(path, sequential: mode.isSequential)
        let (error, reply) = try await request(.create) { $0.operation(.create(path: path, data: data, mode: mode)) }
        try check(error, path)
        var reader = reply
        return try reader.string()
    }

    public func delete(_ path: String, version: Int32) async throws {
        try NodePath.validate(path)
        let (error, _) = try await request(.delete) { $0.operation(.delete(path: path, version: version)) }
        try check(error, path)
    }

    public func exists(_ path: String, watch: Bool) async throws -> (stat: NodeStat?, watch: Watch?) {
        try NodePath.validate(path)
        let registered = watch ? Watch(path: path) : nil
        let (error, reply) = try await request(.exists, watch: registered.map { ($0, .exists) }) { writer in
            writer.string(path)
            writer.bool(watch)
        }
        if error == CoordinationError.Code.noNode.value { return (nil, registered) }
        try check(error, path)
        var reader = reply
        return (try reader.stat(), registered)
    }

    public func data(_ path: String, watch: Bool) async throws -> (data: [UInt8], stat: NodeStat, watch: Watch?) {
        try NodePath.validate(path)
        let registered = watch ? Watch(path: path) : nil
        let (error, reply) = try await request(.getData, watch: registered.map { ($0, .data) }) { writer in
            writer.string(path)
            writer.bool(watch)
        }
        try check(error, path)
        var reader = reply
        return (try reader.bytes() ?? [], try reader.stat(), registered)
    }

    public func setData(_ path: String, data: [UInt8], version: Int32) async throws -> NodeStat {
        try NodePath.validate(path)
        let (error, reply) = try await request(.setData) { $0.operation(.setData(path: path, data: data, version: version)) }
        try check(error, path)
        var reader = reply
        return try reader.stat()
    }

    public func children(_ path: String, watch: Bool) async throws -> (names: [String], stat: NodeStat, watch: Watch?) {
        try NodePath.validate(path)
        let registered = watch ? Watch(path: path) : nil
        let (error, reply) = try await request(.getChildren2, watch: registered.map { ($0, .children) }) { writer in
            writer.string(path)
            writer.bool(watch)
        }
        try check(error, path)
        var reader = reply
        return (try reader.strings(), try reader.stat(), registered)
    }

    public func multi(_ operations: [Operation]) async throws -> [OperationResult] {
        for operation in operations {
            if case .create(let path, _, let mode) = operation { try NodePath.validate(path, sequential: mode.isSequential) } else {
                try NodePath.validate(operation.path)
            }
        }
        let (headerError, reply) = try await request(.multi) { writer in
            for operation in operations {
                writer.int(operation.opCode.rawValue)
                writer.bool(false)
                writer.int(-1)
                writer.operation(operation)
            }
            writer.int(-1)
            writer.bool(true)
            writer.int(-1)
        }
        var reader = reply
        var results: [OperationResult] = []
        var failure: CoordinationError?
        var index = 0
        while true {
            let type = try reader.int()
            let done = try reader.bool()
            _ = try reader.int()
            if done { break }
            let path = index < operations.count ? operations[index].path : nil
            switch type {
            case OpCode.create.rawValue: results.append(.created(path: try reader.string()))
            case OpCode.delete.rawValue: results.append(.deleted)
            case OpCode.setData.rawValue: results.append(.set(try reader.stat()))
            case OpCode.check.rawValue: results.append(.checked)
            case OpCode.error.rawValue:
                let code = try reader.int()
                // The failing operation has its own code; the others say "rolled back" (-2) or ok.
                if code != 0 && code != CoordinationError.Code.runtimeInconsistency.value && failure == nil {
                    failure = CoordinationError(.from(wire: code), path: path)
                }
            default:
                throw CoordinationError(.marshallingError, "unexpected multi result type \(type)")
            }
            index += 1
        }
        if let failure { throw failure }
        if headerError != 0 { throw CoordinationError(.from(wire: headerError)) }
        return results
    }

    public func close() async {
        guard !broadcaster.isFinal else { return }
        heartbeat.withLock { $0?.cancel() }
        // Ask the server to end the session (its ephemeral nodes go now), waiting at most 2 s for the
        // answer; ending the session here then fails whatever is still waiting.
        let answered = Atomic<Bool>(false)
        let closing = Task {
            _ = try? await request(.closeSession, waitForConnection: false) { _ in }
            answered.store(true, ordering: .releasing)
        }
        let deadline = ContinuousClock.now + .seconds(2)
        while !answered.load(ordering: .acquiring) && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(10))
        }
        finish(as: .closed)
        _ = await closing.value
    }

    // MARK: - Requests and replies

    private func check(_ error: Int32, _ path: String) throws(CoordinationError) {
        guard error != 0 else { return }
        throw CoordinationError(.from(wire: error), path: path)
    }

    private func request(
        _ op: OpCode, watch: (Watch, WatchKind)? = nil, waitForConnection: Bool = true, _ body: (inout JuteWriter) -> Void
    ) async throws -> (Int32, JuteReader) {
        if waitForConnection { try await waitUntilConnected() }
        var writer = JuteWriter()
        return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<(Int32, JuteReader), any Error>) in
            let failure = guarded.withLock { state -> (any Error)? in
                if let error = finalError() { return error }
                guard let connection = state.connection else { return CoordinationError(.connectionLoss, "not connected") }
                let xid = state.nextXid
                state.nextXid = state.nextXid == Int32.max ? 1 : state.nextXid + 1
                writer.int(xid)
                writer.int(op.rawValue)
                body(&writer)
                state.pending.append(Pending(xid: xid, continuation: continuation, watch: watch))
                // Sent under the lock: requests reach the server in the order `pending` expects replies.
                connection.send(writer.buffer)
                return nil
            }
            if let failure { continuation.resume(throwing: failure) }
        }
    }

    private func finalError() -> CoordinationError? {
        switch broadcaster.current {
        case .expired: CoordinationError(.sessionExpired, "the session has expired")
        case .closed: CoordinationError(.sessionExpired, "the session is closed")
        default: nil
        }
    }

    private func waitUntilConnected() async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let ready = guarded.withLock { state -> Result<Bool, any Error> in
                if let error = finalError() { return .failure(error) }
                if state.connection != nil && broadcaster.current == .connected { return .success(true) }
                state.connectedWaiters.append(continuation)
                return .success(false)
            }
            switch ready {
            case .success(true): continuation.resume()
            case .success(false): break
            case .failure(let error): continuation.resume(throwing: error)
            }
        }
    }

    /// A frame from connection `generation`.
    private func received(_ frame: ByteBuffer, generation: Int) {
        var resume: (() -> Void)?
        var fired: [(Watch, WatchEvent)] = []
        var protocolError = false
        guarded.withLock { state in
            guard generation == state.generation else { return }
            state.lastHeard = .now
            if let handshake = state.handshake {
                state.handshake = nil
                resume = { handshake.resume(returning: frame) }
                return
            }
            var reader = JuteReader(buffer: frame)
            guard let xid = try? reader.int(), let zxid = try? reader.long(), let error = try? reader.int() else {
                protocolError = true
                return
            }
            if zxid > 0 { state.lastZxid = max(state.lastZxid, zxid) }
            switch xid {
            case SpecialXid.watchEvent:
                guard let type = try? reader.int(), (try? reader.int()) != nil, let path = try? reader.string() else {
                    protocolError = true
                    return
                }
                fired = Self.takeWatches(type: type, path: path, state: &state)
            case SpecialXid.ping, SpecialXid.setWatches:
                return
            default:
                guard !state.pending.isEmpty, state.pending[0].xid == xid else {
                    protocolError = true
                    return
                }
                let pending = state.pending.removeFirst()
                if let (watch, kind) = pending.watch {
                    let path = watch.path
                    switch kind {
                    case .data where error == 0: state.dataWatches[path, default: []].append(watch)
                    case .children where error == 0: state.childWatches[path, default: []].append(watch)
                    case .exists where error == 0: state.dataWatches[path, default: []].append(watch)
                    case .exists where error == CoordinationError.Code.noNode.value: state.existWatches[path, default: []].append(watch)
                    default: break
                    }
                }
                resume = { pending.continuation.resume(returning: (error, reader)) }
            }
        }
        resume?()
        for (watch, event) in fired { watch.fire(event) }
        if protocolError {
            // Out of step with the server: drop the connection; the session reconnects.
            guarded.withLock { $0.generation == generation ? $0.connection : nil }?.close()
        }
    }

    /// ZooKeeper's rules for which client watches an event fires.
    private static func takeWatches(type: Int32, path: String, state: inout State) -> [(Watch, WatchEvent)] {
        var fired: [(Watch, WatchEvent)] = []
        func take(_ registry: inout [String: [Watch]], _ eventType: WatchEventType) {
            for watch in registry.removeValue(forKey: path) ?? [] { fired.append((watch, WatchEvent(type: eventType, path: path))) }
        }
        switch type {
        case 1:
            take(&state.dataWatches, .nodeCreated)
            take(&state.existWatches, .nodeCreated)
        case 2:
            take(&state.dataWatches, .nodeDeleted)
            take(&state.existWatches, .nodeDeleted)
            take(&state.childWatches, .nodeDeleted)
        case 3:
            take(&state.dataWatches, .nodeDataChanged)
            take(&state.existWatches, .nodeDataChanged)
        case 4:
            take(&state.childWatches, .nodeChildrenChanged)
        default:
            break
        }
        return fired
    }

    // MARK: - Connecting

    /// Connects to `servers[serverIndex]` and runs the handshake (new session, or resuming ours).
    private func establish(serverIndex: Int) async throws {
        let server = servers[serverIndex % servers.count]
        let generation = guarded.withLock { state -> Int in
            state.generation += 1
            return state.generation
        }
        let connectTimeout = min(requestedTimeout, .seconds(5))
        let connection = try await ZooKeeperConnection.connect(
            to: server, timeout: connectTimeout,
            onFrame: { [weak self] frame in self?.received(frame, generation: generation) },
            onClose: { [weak self] in self?.connectionClosed(generation: generation) })
        let (request, stillCurrent) = guarded.withLock { state -> (JuteWriter, Bool) in
            var writer = JuteWriter()
            writer.int(0)
            writer.long(state.lastZxid)
            writer.int(Int32(requestedTimeout.milliseconds))
            writer.long(state.sessionID)
            writer.bytes(state.password)
            writer.bool(false)
            return (writer, state.generation == generation)
        }
        guard stillCurrent else {
            connection.close()
            throw CoordinationError(.connectionLoss, "superseded")
        }
        let response: ByteBuffer
        do {
            response = try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<ByteBuffer, any Error>) in
                guarded.withLock { $0.handshake = continuation }
                connection.send(request.buffer)
                // No answer within the connect timeout: give up on this server.
                DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(Int(connectTimeout.milliseconds))) { [weak self] in
                    let waiting = self?.guarded.withLock { state -> CheckedContinuation<ByteBuffer, any Error>? in
                        guard state.generation == generation else { return nil }
                        return state.handshake.take()
                    }
                    waiting?.resume(throwing: CoordinationError(.connectionLoss, "no handshake from \(server)"))
                }
            }
        } catch {
            connection.close()
            throw error
        }
        var reader = JuteReader(buffer: response)
        _ = try reader.int()
        let timeout = try reader.int()
        let sessionID = try reader.long()
        let password = try reader.bytes() ?? []
        guard timeout > 0 else {
            connection.close()
            finish(as: .expired)
            throw CoordinationError(.sessionExpired, "\(server) says the session has expired")
        }
        let (waiters, watches) = guarded.withLock { state -> ([CheckedContinuation<Void, any Error>], (Int64, [String], [String], [String])) in
            state.connection = connection
            state.sessionID = sessionID
            state.password = password
            state.timeout = .milliseconds(Int(timeout))
            state.serverIndex = serverIndex % servers.count
            state.lastHeard = .now
            defer { state.connectedWaiters.removeAll() }
            return (
                state.connectedWaiters,
                (state.lastZxid, Array(state.dataWatches.keys), Array(state.existWatches.keys), Array(state.childWatches.keys))
            )
        }
        // Watches registered before the connection dropped are set again on this server; it fires
        // those whose node changed meanwhile.
        if !(watches.1.isEmpty && watches.2.isEmpty && watches.3.isEmpty) {
            var writer = JuteWriter()
            writer.int(SpecialXid.setWatches)
            writer.int(OpCode.setWatches.rawValue)
            writer.long(watches.0)
            writer.strings(watches.1)
            writer.strings(watches.2)
            writer.strings(watches.3)
            connection.send(writer.buffer)
        }
        broadcaster.move(to: .connected)
        for waiter in waiters { waiter.resume() }
    }

    private func connectionClosed(generation: Int) {
        let (failed, startReconnect) = guarded.withLock { state -> ([Pending], Bool) in
            guard generation == state.generation, state.connection != nil || state.handshake != nil else { return ([], false) }
            state.connection = nil
            if let handshake = state.handshake.take() {
                handshake.resume(throwing: CoordinationError(.connectionLoss, "the connection closed during the handshake"))
            }
            defer { state.pending.removeAll() }
            let start = !state.reconnecting && !broadcaster.isFinal && broadcaster.current == .connected
            if start { state.reconnecting = true }
            return (state.pending, start)
        }
        for pending in failed { pending.continuation.resume(throwing: CoordinationError(.connectionLoss, "the connection to ZooKeeper was lost")) }
        guard startReconnect else { return }
        broadcaster.move(to: .suspended)
        Task { await reconnect() }
    }

    /// Tries the ensemble's servers in turn, from the next one, until one takes the session back, a
    /// server says it expired, or a whole session timeout passed without reaching any.
    private func reconnect() async {
        defer { guarded.withLock { $0.reconnecting = false } }
        var attempt = guarded.withLock { $0.serverIndex } + 1
        while !broadcaster.isFinal {
            while guarded.withLock({ $0.holdReconnect }) { try? await Task.sleep(for: .milliseconds(20)) }
            let (deadline, closed) = guarded.withLock { ($0.lastHeard + $0.timeout, false) }
            if closed { return }
            do {
                try await establish(serverIndex: attempt)
                return
            } catch let error as CoordinationError where error.code == .sessionExpired {
                return
            } catch {
                if ContinuousClock.now >= deadline {
                    finish(as: .expired)
                    return
                }
                attempt += 1
                try? await Task.sleep(for: .milliseconds(attempt % servers.count == 0 ? 200 : 20))
            }
        }
    }

    /// Ends the session for good: every waiter fails, every watch fires `sessionEnded`.
    private func finish(as final: SessionState) {
        heartbeat.withLock { $0?.cancel() }
        guard broadcaster.move(to: final) else { return }
        let error = finalError() ?? CoordinationError(.sessionExpired)
        let (connection, pending, waiters, watches) = guarded.withLock { state in
            let watches = (state.dataWatches.values.flatMap { $0 } + state.existWatches.values.flatMap { $0 } + state.childWatches.values.flatMap { $0 })
            state.dataWatches.removeAll()
            state.existWatches.removeAll()
            state.childWatches.removeAll()
            state.generation += 1
            defer {
                state.pending.removeAll()
                state.connectedWaiters.removeAll()
                state.connection = nil
            }
            return (state.connection, state.pending, state.connectedWaiters, watches)
        }
        connection?.close()
        for pending in pending { pending.continuation.resume(throwing: error) }
        for waiter in waiters { waiter.resume(throwing: error) }
        for watch in watches { watch.fire(WatchEvent(type: .sessionEnded, path: watch.path)) }
    }

    private func startHeartbeat() {
        let task = Task { [weak self] in
            while !Task.isCancelled {
                guard let self else { return }
                let interval = self.guarded.withLock { $0.timeout } / 3
                try? await Task.sleep(for: interval)
                self.pingOrDrop()
            }
        }
        heartbeat.withLock { $0 = task }
    }

    /// Pings the server; drops a connection that has been silent for two thirds of the timeout.
    private func pingOrDrop() {
        let (connection, silent) = guarded.withLock { state in
            (state.connection, state.lastHeard.duration(to: .now) > state.timeout * 2 / 3)
        }
        guard let connection, broadcaster.current == .connected else { return }
        if silent {
            connection.close()
            return
        }
        var writer = JuteWriter()
        writer.int(SpecialXid.ping)
        writer.int(OpCode.ping.rawValue)
        connection.send(writer.buffer)
    }
}
