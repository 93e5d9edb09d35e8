import Glibc
public import Foundation
import SamsaCoordination

/// Apache ZooKeeper servers (Debian's `zookeeper` package, 3.8) started by the tests on 127.0.0.1
/// from temporary directories, and stopped by PID.
public final class ZooKeeperEnsemble: @unchecked Sendable {
    // @unchecked: `processes` is set up before the ensemble is shared and changed only by `kill`,
    // which the tests call from one task.
    public struct Server {
        public var id: Int
        public var clientPort: Int
        public var directory: String
        public var process: Process?
    }

    public private(set) var servers: [Server]
    public let root: String

    public var connectString: [String] { servers.map { "127.0.0.1:\($0.clientPort)" } }

    public static var classpath: String {
        ["zookeeper.jar", "zookeeper-jute.jar", "slf4j-api.jar", "slf4j-simple.jar", "netty-all.jar"]
            .map { "/usr/share/java/\($0)" }.filter { FileManager.default.fileExists(atPath: $0) }.joined(separator: ":")
    }

    public static var isInstalled: Bool { FileManager.default.fileExists(atPath: "/usr/share/java/zookeeper.jar") }

    /// Starts `count` servers (1: standalone; 3: a quorum on loopback) and waits until each serves.
    public init(count: Int) throws {
        guard Self.isInstalled else {
            throw CoordinationError(.systemError, "ZooKeeper is not installed: scripts/test.sh installs Debian's zookeeper package")
        }
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("samsa-zk-\(UUID().uuidString)").path
        self.root = root
        StartedServers.shared.addDirectory(root)
        let ports = try (0..<(count * 3)).map { _ in try freePort() }
        servers = (0..<count).map { index in Server(id: index + 1, clientPort: ports[index * 3], directory: "\(root)/server\(index + 1)", process: nil) }
        for index in servers.indices {
            let server = servers[index]
            try FileManager.default.createDirectory(atPath: server.directory + "/data", withIntermediateDirectories: true)
            // initLimit/syncLimit (20 s / 10 s) are generous: on two loaded cores a follower syncing with a
            // newly elected leader can take longer than ZooKeeper's usual 5 s, and the election repeats.
            var config = """
                tickTime=500
                initLimit=40
                syncLimit=20
                dataDir=\(server.directory)/data
                clientPort=\(server.clientPort)
                clientPortAddress=127.0.0.1
                admin.enableServer=false
                4lw.commands.whitelist=*
                minSessionTimeout=1000
                maxSessionTimeout=60000

                """
            if count > 1 {
                for peer in servers.indices {
                    config += "server.\(servers[peer].id)=127.0.0.1:\(ports[peer * 3 + 1]):\(ports[peer * 3 + 2])\n"
                }
                try "\(server.id)\n".write(toFile: server.directory + "/data/myid", atomically: true, encoding: .utf8)
            }
            try config.write(toFile: server.directory + "/zoo.cfg", atomically: true, encoding: .utf8)
        }
        for index in servers.indices { try start(index) }
        for index in servers.indices {
            // A JVM on a loaded two-core machine may take a minute to start.
            guard waitUntilServing(index, timeout: 120) else {
                let log = (try? String(contentsOfFile: servers[index].directory + "/server.log", encoding: .utf8)) ?? ""
                stopAll()
                throw CoordinationError(.connectionLoss, "ZooKeeper server \(index + 1) did not start:\n\(log.suffix(2000))")
            }
        }
    }

    deinit { stopAll() }

    private func start(_ index: Int) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/java")
        process.arguments = [
            // A busy election port is retried until it is free (0: no limit), not given up after 3 tries.
            "-Xmx128m", "-Dzookeeper.log.dir=\(servers[index].directory)", "-Dzookeeper.electionPortBindRetry=0", "-cp", Self.classpath,
            "org.apache.zookeeper.server.quorum.QuorumPeerMain", servers[index].directory + "/zoo.cfg",
        ]
        let logPath = servers[index].directory + "/server.log"
        if !FileManager.default.fileExists(atPath: logPath) { _ = FileManager.default.createFile(atPath: logPath, contents: nil) }
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        try log.seekToEnd()
        process.standardOutput = log
        process.standardError = log
        try process.run()
        servers[index].process = process
        StartedServers.shared.add(process.processIdentifier)
        // A watchdog kills the server if this test process dies without stopping it.
        let watchdog = Process()
        watchdog.executableURL = URL(fileURLWithPath: "/bin/sh")
        watchdog.arguments = ["-c", "while kill -0 \(getpid()) 2>/dev/null && kill -0 \(process.processIdentifier) 2>/dev/null; do sleep 1; done; kill -9 \(process.processIdentifier) 2>/dev/null"]
        try watchdog.run()
    }

    /// A four-letter command's answer ("" when the server does not answer).
    public func command(_ word: String, server index: Int) -> String {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return "" }
        defer { Glibc.close(fd) }
        // A server that accepts but does not answer (still starting, or overloaded) must not block us.
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(servers[index].clientPort).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard connected == 0 else { return "" }
        _ = word.withCString { send(fd, $0, strlen($0), 0) }
        var result = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = recv(fd, &chunk, chunk.count, 0)
            if n <= 0 { break }
            result += chunk[..<n]
        }
        return String(decoding: result, as: UTF8.self)
    }

    /// "leader", "follower" or "standalone" once the server serves; nil before.
    public func mode(of index: Int) -> String? {
        for line in command("srvr", server: index).split(separator: "\n") where line.hasPrefix("Mode: ") {
            return String(line.dropFirst(6))
        }
        return nil
    }

    public func waitUntilServing(_ index: Int, timeout: Double) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if mode(of: index) != nil { return true }
            usleep(100_000)
        }
        return false
    }

    /// The index of the quorum's leader (or the standalone server).
    public func leaderIndex() -> Int? {
        servers.indices.first { servers[$0].process != nil && (mode(of: $0) == "leader" || mode(of: $0) == "standalone") }
    }

    /// The last `bytes` of each server's log, for a failure message: what the servers said while a
    /// test waited on them (an election that does not finish says why only there).
    public func logTails(bytes: Int = 3000) -> String {
        servers.map { server in
            let log = (try? String(contentsOfFile: server.directory + "/server.log", encoding: .utf8)) ?? ""
            return "ZooKeeper server \(server.id) (\(server.process == nil ? "killed" : "running")), \(server.directory)/server.log:\n\(log.suffix(bytes))"
        }.joined(separator: "\n")
    }

    /// Kills a server with SIGKILL.
    public func kill(_ index: Int) {
        guard let process = servers[index].process else { return }
        Glibc.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        servers[index].process = nil
    }

    /// SIGSTOP / SIGCONT: a server that keeps its connections open and answers nothing.
    public func pause(_ index: Int) {
        if let process = servers[index].process { Glibc.kill(process.processIdentifier, SIGSTOP) }
    }

    public func resume(_ index: Int) {
        if let process = servers[index].process { Glibc.kill(process.processIdentifier, SIGCONT) }
    }

    /// Starts a killed server again on its data (sessions and nodes survive, as after a crash).
    public func restart(_ index: Int) throws {
        kill(index)
        try start(index)
        guard waitUntilServing(index, timeout: 120) else { throw CoordinationError(.connectionLoss, "ZooKeeper server \(index + 1) did not restart") }
    }

    public func stopAll() {
        for index in servers.indices { kill(index) }
        try? FileManager.default.removeItem(atPath: root)
    }
}

/// Every JVM the tests started, killed at exit if a test could not stop it (the shared server is
/// never stopped otherwise), and their directories, removed then.
public final class StartedServers: @unchecked Sendable {
    // @unchecked: guarded by `lock`.
    public static let shared = StartedServers()
    private let lock = NSLock()
    private var pids: [Int32] = []
    private var directories: [String] = []

    private init() {
        atexit {
            let (pids, directories) = StartedServers.shared.lock.withLock { (StartedServers.shared.pids, StartedServers.shared.directories) }
            for pid in pids {
                Glibc.kill(pid, SIGKILL)
                var status: Int32 = 0
                waitpid(pid, &status, 0)
            }
            for directory in directories { try? FileManager.default.removeItem(atPath: directory) }
        }
    }

    public func add(_ pid: Int32) { lock.withLock { pids.append(pid) } }
    public func addDirectory(_ directory: String) { lock.withLock { directories.append(directory) } }
}

/// A TCP port nothing listens on now, for a server a test starts (or restarts) on it later. Taken
/// below the kernel's ephemeral range (`ip_local_port_range`), at random: a port from that range
/// (what binding port 0 gives) is soon handed to some outgoing connection of the busy test process,
/// and a ZooKeeper server whose election port was taken that way starts deaf to its peers ("Leaving
/// listener thread ... after 3 errors"), so its ensemble cannot elect a leader once another server dies.
public func freePort() throws -> Int {
    let ephemeralLow = (try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8))
        .flatMap { $0.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).first.flatMap { Int($0) } } ?? 32768
    let range = 10_000..<max(10_001, ephemeralLow)
    for _ in 0..<200 {
        let port = Int.random(in: range)
        if canBind(port) { return port }
    }
    throw CoordinationError(.systemError, "no free port below \(ephemeralLow)")
}

/// Whether a listening socket could bind `port` on 127.0.0.1 now.
private func canBind(_ port: Int) -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return false }
    defer { Glibc.close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    return withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } } == 0
}
