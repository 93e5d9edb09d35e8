import NIOCore

/// Requests, replies and watch events of a `ZooKeeperSession`'s current connection.
extension ZooKeeperSession {
    func check(_ error: Int32, _ path: String) throws(CoordinationError) {
        guard error != 0 else { return }
        throw CoordinationError(.from(wire: error), path: path)
    }

    /// Sends one request and waits for its reply (error code and body). Fails with `connectionLoss`
    /// if the connection closes first, and with `badArguments` if the request is larger than a
    /// server accepts (the server would drop the connection, failing every request on it).
    func request(
        _ op: OpCode, watch: (Watch, WatchKind)? = nil, waitForConnection: Bool = true, _ body: (inout JuteWriter) -> Void
    ) async throws -> (Int32, JuteReader) {
        var writer = JuteWriter()
        writer.int(0)
        writer.int(op.rawValue)
        body(&writer)
        guard writer.buffer.readableBytes <= JuteLimits.maximumFrameBytes else {
            throw CoordinationError(
                .badArguments, "a request of \(writer.buffer.readableBytes) bytes exceeds ZooKeeper's jute.maxbuffer (\(JuteLimits.maximumFrameBytes))")
        }
        if waitForConnection { try await waitUntilConnected() }
        return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<(Int32, JuteReader), any Error>) in
            let failure = guarded.withLock { state -> (any Error)? in
                if let error = finalError() { return error }
                guard let connection = state.connection else { return CoordinationError(.connectionLoss, "not connected") }
                let xid = state.nextXid
                state.nextXid = state.nextXid == Int32.max ? 1 : state.nextXid + 1
                writer.buffer.setInteger(xid, at: writer.buffer.readerIndex)
                state.pending.append(Pending(xid: xid, continuation: continuation, watch: watch))
                // Sent under the lock: requests reach the server in the order `pending` expects replies.
                connection.send(writer.buffer)
                state.lastSent = .now
                return nil
            }
            if let failure { continuation.resume(throwing: failure) }
        }
    }

    func finalError() -> CoordinationError? {
        switch broadcaster.current {
        case .expired: CoordinationError(.sessionExpired, "the session has expired")
        case .closed: CoordinationError(.sessionExpired, "the session is closed")
        default: nil
        }
    }

    func waitUntilConnected() async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let ready = guarded.withLock { state -> Result<Bool, any Error> in
                if let error = finalError() { return .failure(error) }
                if state.closing { return .failure(CoordinationError(.sessionExpired, "the session is closing")) }
                if state.connection != nil { return .success(true) }
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
    func received(_ frame: ByteBuffer, generation: Int) {
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
                if let type = ZooKeeperEventType(rawValue: type) { fired = Self.takeWatches(type, path: path, state: &state) }
            case SpecialXid.ping, SpecialXid.setWatches:
                return
            default:
                guard !state.pending.isEmpty, state.pending[0].xid == xid else {
                    protocolError = true
                    return
                }
                let pending = state.pending.removeFirst()
                if let (watch, kind) = pending.watch {
                    let path = PathKey(watch.path)
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
    static func takeWatches(_ type: ZooKeeperEventType, path: String, state: inout State) -> [(Watch, WatchEvent)] {
        var fired: [(Watch, WatchEvent)] = []
        func take(_ registry: inout [PathKey: [Watch]], _ eventType: WatchEventType) {
            for watch in registry.removeValue(forKey: PathKey(path)) ?? [] { fired.append((watch, WatchEvent(type: eventType, path: path))) }
        }
        switch type {
        case .nodeCreated:
            take(&state.dataWatches, .nodeCreated)
            take(&state.existWatches, .nodeCreated)
        case .nodeDeleted:
            take(&state.dataWatches, .nodeDeleted)
            take(&state.existWatches, .nodeDeleted)
            take(&state.childWatches, .nodeDeleted)
        case .nodeDataChanged:
            take(&state.dataWatches, .nodeDataChanged)
            take(&state.existWatches, .nodeDataChanged)
        case .nodeChildrenChanged:
            take(&state.childWatches, .nodeChildrenChanged)
        }
        return fired
    }
}
