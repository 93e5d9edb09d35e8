/// Test hooks of `ZooKeeperSession` (package access: for this package's tests, not for users).
extension ZooKeeperSession {
    /// As Curator's `KillSession`: a second connection takes over this session's id and password and
    /// closes the session on the server, which expires it for this client. Returns once this client
    /// reports `.expired`; throws if it does not within the session timeout and a margin.
    package func expireForTesting() async throws {
        let (id, password, index) = guarded.withLock { state in (state.sessionID, state.password, state.serverIndex) }
        // This client must not take the session back while the impostor closes it.
        holdReconnects(true)
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
        } catch {
            holdReconnects(false)
            throw error
        }
        let expired = Task { [self] in
            for await state in states() where state == .expired { return true }
            return false
        }
        holdReconnects(false)
        // The server dropped this client's connection when the impostor took the session; the
        // reconnect now hears that the session expired. A connection it did not drop is closed here.
        guarded.withLock { $0.connection }?.close()
        let deadline = Task {
            try await Task.sleep(for: requestedTimeout + .seconds(5))
            expired.cancel()
        }
        let sawExpiry = await expired.value
        deadline.cancel()
        if !sawExpiry { throw CoordinationError(.systemError, "the session did not expire") }
    }
}
