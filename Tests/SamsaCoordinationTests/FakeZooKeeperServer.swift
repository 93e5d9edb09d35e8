import Foundation
import Glibc

/// Where a fake server's connection fails on purpose.
enum FakeFault: Hashable, Sendable, CustomStringConvertible {
    /// Closes as soon as the connection is accepted.
    case onAccept
    /// Reads the connect request, closes without answering.
    case afterConnectRequest
    /// Sends half the connect response, then closes.
    case midConnectResponse
    /// Sends the whole connect response, then closes at once.
    case afterConnectResponse
    /// Closes right after the n-th reply on the connection (pings included).
    case afterReply(Int)
    /// Answers the handshake and n replies, then reads everything and answers nothing (a hung server).
    case silentAfterReply(Int)

    var description: String {
        switch self {
        case .onAccept: "onAccept"
        case .afterConnectRequest: "afterConnectRequest"
        case .midConnectResponse: "midConnectResponse"
        case .afterConnectResponse: "afterConnectResponse"
        case .afterReply(let n): "afterReply(\(n))"
        case .silentAfterReply(let n): "silentAfterReply(\(n))"
        }
    }
}

/// A small ZooKeeper server speaking just enough of the protocol for one session's handshake,
/// pings, `exists`, `getData`, `SetWatches` and `closeSession`, whose connections fail at chosen
/// points: connection `i` (counted from 0) applies `faults[i]`; later connections behave.
final class FakeZooKeeperServer: @unchecked Sendable {
    // @unchecked: the mutable state is guarded by `lock`.
    let port: Int
    private let listener: Int32
    private let faults: [FakeFault?]
    private let lock = NSLock()
    private var connections: [Int32] = []
    private var accepted = 0
    private var sessions: [Int64: Bool] = [:]  // id -> closed
    private var nextSession: Int64 = 0x5a5a_0000
    private var zxid: Int64 = 1
    private var stopped = false

    var server: String { "127.0.0.1:\(port)" }
    var acceptedConnections: Int { lock.withLock { accepted } }
    private var lastReply: ContinuousClock.Instant?
    /// When the server last answered a request (handshakes not counted).
    var lastReplyAt: ContinuousClock.Instant? { lock.withLock { lastReply } }

    init(faults: [FakeFault?]) throws {
        (listener, port) = try TestSockets.listen()
        self.faults = faults
        let listener = self.listener
        Thread.detachNewThread { [self] in
            while true {
                let fd = accept(listener, nil, nil)
                if fd < 0 { return }
                let index = lock.withLock { () -> Int? in
                    if stopped { return nil }
                    connections.append(fd)
                    accepted += 1
                    return accepted - 1
                }
                guard let index else {
                    Glibc.close(fd)
                    return
                }
                Thread.detachNewThread { [self] in serve(fd, fault: index < faults.count ? faults[index] : nil) }
            }
        }
    }

    deinit { stop() }

    func stop() {
        let open = lock.withLock { () -> [Int32] in
            stopped = true
            defer { connections.removeAll() }
            return connections
        }
        TestSockets.hangUp(listener)
        for fd in open { TestSockets.hangUp(fd) }
    }

    private func serve(_ fd: Int32, fault: FakeFault?) {
        defer {
            TestSockets.hangUp(fd)
            lock.withLock { connections.removeAll { $0 == fd } }
            Glibc.close(fd)
        }
        if fault == .onAccept { return }
        guard let connect = TestSockets.readFrame(fd), connect.count >= 28 else { return }
        if fault == .afterConnectRequest { return }
        let timeout = JuteBytes.int(connect, at: 12)
        let requested = Int64(JuteBytes.int(connect, at: 16)) << 32 | Int64(UInt32(bitPattern: JuteBytes.int(connect, at: 20)))
        let session = lock.withLock { () -> Int64? in
            if requested == 0 {
                nextSession += 1
                sessions[nextSession] = false
                return nextSession
            }
            return sessions[requested] == false ? requested : nil
        }
        var response = JuteBytes()
        response.int(0)
        response.int(session == nil ? 0 : timeout)
        response.long(session ?? 0)
        response.buffer([UInt8](repeating: 7, count: 16))
        response.bool(false)
        let frame = response.frame
        if fault == .midConnectResponse {
            TestSockets.write(fd, Array(frame.prefix(frame.count / 2)))
            return
        }
        guard TestSockets.write(fd, frame), fault != .afterConnectResponse, let session else { return }
        var replies = 0
        while let request = TestSockets.readFrame(fd) {
            if case .silentAfterReply(let n) = fault, replies >= n { continue }
            let xid = JuteBytes.int(request, at: 0)
            let type = JuteBytes.int(request, at: 4)
            var reply = JuteBytes()
            reply.int(xid)
            reply.long(lock.withLock { zxid })
            reply.int(0)
            switch type {
            case 3: reply.stat()  // exists
            case 4:  // getData
                reply.buffer([])
                reply.stat()
            default: break  // ping, setWatches, closeSession: the header alone
            }
            guard TestSockets.write(fd, reply.frame) else { return }
            lock.withLock { lastReply = .now }
            replies += 1
            if type == -11 {
                lock.withLock { sessions[session] = true }
                return
            }
            if case .afterReply(let n) = fault, replies >= n { return }
        }
    }
}
