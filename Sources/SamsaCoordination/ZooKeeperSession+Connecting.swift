import Dispatch
import NIOCore

/// Connecting, reconnecting, heartbeats and the end of a `ZooKeeperSession`.
///
/// Whatever closes a connection, at whatever point (during the handshake, between the handshake
/// and the session taking the connection, or after), ends in one of: the attempt failing (and the
/// next one starting), or the stored connection dropped with its requests failed and a reconnect
/// started. `connectionClosed` and the step that stores a connection run under the same lock.
extension ZooKeeperSession {
    /// The first connection: the servers in turn until one takes the session or the timeout passes.
    func establishFirst() async throws {
        let deadline = ContinuousClock.now + requestedTimeout
        var attempt = 0
        var lastError: (any Error)?
        while attempt < servers.count || ContinuousClock.now < deadline {
            do {
                try await establish(serverIndex: attempt)
                return
            } catch let error as CoordinationError where error.code == .sessionExpired {
                throw error
            } catch {
                lastError = error
            }
            attempt += 1
            try await backOff(attempt)
        }
        finish(as: .expired)
        throw CoordinationError(.connectionLoss, "no ZooKeeper server of \(servers) took the session: \(lastError.map { "\($0)" } ?? "")")
    }

    /// Connects to `servers[serverIndex]` and runs the handshake (new session, or resuming ours).
    func establish(serverIndex: Int) async throws {
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
        let response: ByteBuffer
        do {
            response = try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<ByteBuffer, any Error>) in
                let refused = guarded.withLock { state -> CoordinationError? in
                    guard state.generation == generation, state.closedGeneration < generation, !state.closing, !broadcaster.isFinal else {
                        return CoordinationError(.connectionLoss, "the connection to \(server) closed before the handshake")
                    }
                    var writer = JuteWriter()
                    writer.int(0)
                    writer.long(state.lastZxid)
                    writer.int(Int32(clamping: requestedTimeout.milliseconds))
                    writer.long(state.sessionID)
                    writer.bytes(state.password)
                    writer.bool(false)
                    state.handshake = continuation
                    connection.send(writer.buffer)
                    state.lastSent = .now
                    return nil
                }
                if let refused { return continuation.resume(throwing: refused) }
                // No answer within the connect timeout: give up on this server.
                DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(Int(connectTimeout.milliseconds))) { [weak self] in
                    let waiting = self?.guarded.withLock { state -> CheckedContinuation<ByteBuffer, any Error>? in
                        guard state.generation == generation else { return nil }
                        return state.handshake.take()
                    }
                    waiting?.resume(throwing: CoordinationError(.connectionLoss, "no handshake from \(server)"))
                }
            }
            try store(connection, response: response, generation: generation, serverIndex: serverIndex)
        } catch {
            connection.close()
            throw error
        }
    }

    /// Takes `connection` as the session's, if it is still open and current: the one step that
    /// moves the session to `.connected`.
    private func store(_ connection: ZooKeeperConnection, response: ByteBuffer, generation: Int, serverIndex: Int) throws {
        var reader = JuteReader(buffer: response)
        _ = try reader.int()
        let timeout = try reader.int()
        let sessionID = try reader.long()
        let password = try reader.bytes() ?? []
        guard timeout > 0 else {
            finish(as: .expired)
            throw CoordinationError(.sessionExpired, "\(connection.server) says the session has expired")
        }
        let waiters = try guarded.withLock { state throws(CoordinationError) -> [CheckedContinuation<Void, any Error>] in
            guard state.generation == generation, state.closedGeneration < generation, !state.closing, !broadcaster.isFinal else {
                throw CoordinationError(.connectionLoss, "the connection to \(connection.server) closed after the handshake")
            }
            state.connection = connection
            state.reconnecting = false
            state.sessionID = sessionID
            state.password = password
            state.timeout = .milliseconds(Int(timeout))
            state.serverIndex = serverIndex % servers.count
            // Watches registered before the connection dropped are set again on this server (before
            // any request can be sent on it); it fires those whose node changed meanwhile.
            for frame in SetWatchesFrames.encode(
                relativeZxid: state.lastZxid, data: state.dataWatches.keys.map(\.string), exist: state.existWatches.keys.map(\.string),
                child: state.childWatches.keys.map(\.string))
            {
                connection.send(frame)
            }
            state.lastSent = .now
            broadcaster.move(to: .connected)
            defer { state.connectedWaiters.removeAll() }
            return state.connectedWaiters
        }
        for waiter in waiters { waiter.resume() }
    }

    func connectionClosed(generation: Int) {
        let (failed, startReconnect) = guarded.withLock { state -> ([Pending], Bool) in
            guard generation == state.generation else { return ([], false) }
            state.closedGeneration = generation
            if let handshake = state.handshake.take() {
                handshake.resume(throwing: CoordinationError(.connectionLoss, "the connection closed during the handshake"))
            }
            // Not stored yet: the attempt that opened it sees `closedGeneration` and fails.
            guard state.connection != nil else { return ([], false) }
            state.connection = nil
            defer { state.pending.removeAll() }
            guard !state.closing else { return (state.pending, false) }
            broadcaster.move(to: .suspended)
            state.reconnecting = true
            return (state.pending, true)
        }
        for pending in failed { pending.continuation.resume(throwing: CoordinationError(.connectionLoss, "the connection to ZooKeeper was lost")) }
        if startReconnect { Task { await reconnect() } }
    }

    /// Tries the ensemble's servers in turn, from the next one, until one takes the session back or a
    /// server says it expired. Never gives up on its own: as in ZooKeeper's Java client, only a server
    /// knows whether the session expired (an ensemble that lost its quorum for longer than the
    /// timeout renews every session's deadline when it elects a leader again), so a session no server
    /// answers stays `suspended` and its owner decides what that means.
    private func reconnect() async {
        var attempt = guarded.withLock { $0.serverIndex } + 1
        while true {
            await waitWhileReconnectHeld()
            if guarded.withLock({ $0.closing }) || broadcaster.isFinal { return }
            do {
                try await establish(serverIndex: attempt)
                return
            } catch let error as CoordinationError where error.code == .sessionExpired {
                return
            } catch {
                attempt += 1
                try? await backOff(attempt)
            }
        }
    }

    /// A short pause between attempts, longer after a whole round of the ensemble.
    private func backOff(_ attempt: Int) async throws {
        try await Task.sleep(for: .milliseconds(attempt % servers.count == 0 ? 200 : 20))
    }

    private func waitWhileReconnectHeld() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let held = guarded.withLock { state -> Bool in
                if state.reconnectHeld { state.heldReconnects.append(continuation) }
                return state.reconnectHeld
            }
            if !held { continuation.resume() }
        }
    }

    /// Holds (or releases) reconnects: the expiry test hook closes the session from another
    /// connection, which this client must not take back meanwhile.
    func holdReconnects(_ hold: Bool) {
        let released = guarded.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.reconnectHeld = hold
            guard !hold else { return [] }
            defer { state.heldReconnects.removeAll() }
            return state.heldReconnects
        }
        for continuation in released { continuation.resume() }
    }

    /// Ends the session for good: every waiter fails, every watch fires `sessionEnded`. A session
    /// its owner is closing ends `.closed`, whatever a server or the clock says.
    func finish(as requested: SessionState) {
        heartbeat.withLock { $0?.cancel() }
        let ended = guarded.withLock { state -> (ZooKeeperConnection?, [Pending], [CheckedContinuation<Void, any Error>], [Watch])? in
            let final: SessionState = state.closing ? .closed : requested
            guard broadcaster.move(to: final) else { return nil }
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
        guard let (connection, pending, waiters, watches) = ended else { return }
        let error = finalError() ?? CoordinationError(.sessionExpired)
        connection?.close()
        for pending in pending { pending.continuation.resume(throwing: error) }
        for waiter in waiters { waiter.resume(throwing: error) }
        for watch in watches { watch.fire(WatchEvent(type: .sessionEnded, path: watch.path)) }
        holdReconnects(false)
    }

    /// The Java client's timing: the read timeout is two thirds of the session timeout; a connection
    /// silent that long is dropped, and a ping goes out when nothing was sent for a third of it.
    func startHeartbeat() {
        let task = Task { [weak self] in
            while !Task.isCancelled {
                guard let wait = self?.pingOrDrop() else { return }
                try? await Task.sleep(for: wait)
            }
        }
        heartbeat.withLock { $0 = task }
    }

    /// Pings or drops the connection as due; returns how long to wait before the next check.
    private func pingOrDrop() -> Duration {
        let now = ContinuousClock.now
        let (drop, wait) = guarded.withLock { state -> (ZooKeeperConnection?, Duration) in
            let readTimeout = state.timeout * 2 / 3
            let pingInterval = readTimeout / 3
            guard let connection = state.connection else { return (nil, pingInterval) }
            if state.lastHeard.duration(to: now) >= readTimeout { return (connection, pingInterval) }
            if state.lastSent.duration(to: now) >= pingInterval {
                var writer = JuteWriter()
                writer.int(SpecialXid.ping)
                writer.int(OpCode.ping.rawValue)
                connection.send(writer.buffer)
                state.lastSent = now
            }
            let next = min(state.lastSent + pingInterval, state.lastHeard + readTimeout)
            return (nil, max(.milliseconds(1), now.duration(to: next)))
        }
        drop?.close()
        return wait
    }
}
