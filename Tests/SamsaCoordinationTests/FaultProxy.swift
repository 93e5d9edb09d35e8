import Foundation
import Glibc

/// A TCP proxy in front of a ZooKeeper server that injects network faults: resetting every
/// connection, refusing connections for a while (the server "down"), and losing the reply to a
/// request after the server executed it (the proxy closes the connection instead of forwarding it).
/// It reads ZooKeeper's frames in both directions to recognise requests and replies.
final class FaultProxy: @unchecked Sendable {
    // @unchecked: the mutable state is guarded by `lock`.
    let port: Int
    private let upstreamPort: Int
    private let listener: Int32
    private let lock = NSLock()
    private var pairs: [Int: Pair] = [:]
    private var nextPair = 0
    private var down = false
    private var loseReplyTo: (@Sendable (_ opCode: Int32, _ request: [UInt8]) -> Bool)?
    private var stopped = false
    private var lost = 0
    var lostReplies: Int { lock.withLock { lost } }

    private struct Pair {
        var client: Int32
        var upstream: Int32
        /// The xid whose reply is to be lost.
        var doomedXid: Int32?
    }

    var server: String { "127.0.0.1:\(port)" }

    /// A proxy to 127.0.0.1:`upstreamPort`.
    init(upstreamPort: Int) throws {
        self.upstreamPort = upstreamPort
        (listener, port) = try TestSockets.listen()
        let listener = self.listener
        Thread.detachNewThread { [self] in
            while true {
                let fd = accept(listener, nil, nil)
                if fd < 0 { return }
                accepted(fd)
            }
        }
    }

    deinit { stop() }

    /// Closes every connection now (clients see a reset; the server sees its clients go).
    func resetAll() {
        let open = lock.withLock { Array(pairs.values) }
        for pair in open {
            TestSockets.hangUp(pair.client)
            TestSockets.hangUp(pair.upstream)
        }
    }

    /// While down, every connection is reset and new ones are closed at once.
    func setDown(_ isDown: Bool) {
        lock.withLock { down = isDown }
        if isDown { resetAll() }
    }

    /// The next request (op code and frame) that `matches` reaches the server, but its reply is lost:
    /// the proxy closes that connection when the reply comes.
    func loseNextReply(where matches: @escaping @Sendable (_ opCode: Int32, _ request: [UInt8]) -> Bool) {
        lock.withLock { loseReplyTo = matches }
    }

    var replyLossArmed: Bool { lock.withLock { loseReplyTo != nil } }

    func stop() {
        lock.withLock { stopped = true }
        TestSockets.hangUp(listener)
        resetAll()
    }

    private func accepted(_ client: Int32) {
        let refuse = lock.withLock { down || stopped }
        guard !refuse, let upstream = TestSockets.connect(port: upstreamPort) else {
            TestSockets.hangUp(client)
            Glibc.close(client)
            return
        }
        let id = lock.withLock { () -> Int in
            nextPair += 1
            pairs[nextPair] = Pair(client: client, upstream: upstream)
            return nextPair
        }
        let ends = EndCount()
        // Each direction's thread ends the pair; the second one closes the descriptors.
        let end: @Sendable () -> Void = { [self] in
            TestSockets.hangUp(client)
            TestSockets.hangUp(upstream)
            if ends.increment() == 2 {
                lock.withLock { _ = pairs.removeValue(forKey: id) }
                Glibc.close(client)
                Glibc.close(upstream)
            }
        }
        Thread.detachNewThread { [self] in
            defer { end() }
            var first = true
            while let frame = TestSockets.readFrame(client) {
                if !first {
                    let xid = JuteBytes.int(frame, at: 0)
                    let type = JuteBytes.int(frame, at: 4)
                    lock.withLock {
                        if let matches = loseReplyTo, matches(type, frame) {
                            loseReplyTo = nil
                            pairs[id]?.doomedXid = xid
                        }
                    }
                }
                first = false
                guard TestSockets.write(upstream, Self.framed(frame)) else { return }
            }
        }
        Thread.detachNewThread { [self] in
            defer { end() }
            var first = true
            while let frame = TestSockets.readFrame(upstream) {
                if !first {
                    let xid = JuteBytes.int(frame, at: 0)
                    let doomed = lock.withLock { () -> Bool in
                        guard let doomed = pairs[id]?.doomedXid, doomed == xid else { return false }
                        lost += 1
                        return true
                    }
                    if doomed { return }
                }
                first = false
                guard TestSockets.write(client, Self.framed(frame)) else { return }
            }
        }
    }

    private static func framed(_ frame: [UInt8]) -> [UInt8] {
        var prefix = JuteBytes()
        prefix.int(Int32(frame.count))
        return prefix.bytes + frame
    }
}

/// How many of a pair's two threads have ended.
private final class EndCount: @unchecked Sendable {
    // @unchecked: guarded by `lock`.
    private let lock = NSLock()
    private var count = 0
    func increment() -> Int {
        lock.withLock {
            count += 1
            return count
        }
    }
}
