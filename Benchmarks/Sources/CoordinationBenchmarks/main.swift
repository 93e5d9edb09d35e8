import Foundation
import Glibc
import Histogram
import SamsaCoordination

// Coordination latency (issue 5), release build: `swift run -c release CoordinationBenchmarks [--quick]`.
// create / get / set, one at a time from one client: the embedded backend (in memory, and durable in a
// directory), Samsa's ZooKeeper client, and Python's kazoo against the same standalone ZooKeeper
// (Debian's 3.8, started here on 127.0.0.1 and stopped by PID), all in one run.
let quick = CommandLine.arguments.contains("--quick")
let operations = quick ? 500 : 2000
print("Samsa coordination benchmarks (\(quick ? "quick" : "full") run): \(operations) of each operation, one at a time")

func now() -> UInt64 {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
}

struct Figures {
    var p50: Double
    var p99: Double
}

func measure(_ body: (Int) async throws -> Void) async throws -> Figures {
    var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000_000, numberOfSignificantValueDigits: .three)
    for index in 0..<operations {
        let start = now()
        try await body(index)
        _ = histogram.record(now() - start)
    }
    return Figures(p50: Double(histogram.valueAtPercentile(50)) / 1000, p99: Double(histogram.valueAtPercentile(99)) / 1000)
}

func run(_ name: String, _ session: any CoordinationSession) async throws {
    let root = "/bench-\(UUID().uuidString.prefix(8))"
    _ = try await session.create(root, data: [], mode: .persistent)
    let payload = [UInt8](repeating: 7, count: 100)
    let create = try await measure { index in _ = try await session.create("\(root)/n\(index)", data: payload, mode: .persistent) }
    let get = try await measure { index in _ = try await session.data("\(root)/n\(index)", watch: false) }
    let set = try await measure { index in _ = try await session.setData("\(root)/n\(index)", data: payload, version: -1) }
    report(name, create, get, set)
}

func report(_ name: String, _ create: Figures, _ get: Figures, _ set: Figures) {
    func cell(_ f: Figures) -> String { String(format: "%7.0f / %7.0f", f.p50, f.p99) }
    print(name.padding(toLength: 44, withPad: " ", startingAt: 0) + cell(create) + "   " + cell(get) + "   " + cell(set))
    fflush(nil)
}

print("\n" + "µs, p50 / p99".padding(toLength: 44, withPad: " ", startingAt: 0) + "         create                get                set")

// Embedded, in memory and durable.
do {
    let coordinator = try EmbeddedCoordinator.open()
    let session = try coordinator.connect()
    try await run("embedded (in memory)", session)
    await session.close()
    try coordinator.close()
}
do {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("samsa-coord-bench-\(UUID().uuidString)").path
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let coordinator = try EmbeddedCoordinator.open(directory: directory)
    let session = try coordinator.connect()
    try await run("embedded (durable: log synced per write)", session)
    await session.close()
    try coordinator.close()
}

// A standalone ZooKeeper for the two clients.
let zkDirectory = FileManager.default.temporaryDirectory.appendingPathComponent("samsa-zk-bench-\(UUID().uuidString)").path
try FileManager.default.createDirectory(atPath: zkDirectory + "/data", withIntermediateDirectories: true)
let port = 21_000 + Int(getpid() % 8000)
try """
    tickTime=2000
    dataDir=\(zkDirectory)/data
    clientPort=\(port)
    clientPortAddress=127.0.0.1
    admin.enableServer=false
    4lw.commands.whitelist=*

    """.write(toFile: zkDirectory + "/zoo.cfg", atomically: true, encoding: .utf8)
let server = Process()
server.executableURL = URL(fileURLWithPath: "/usr/bin/java")
let classpath = ["zookeeper.jar", "zookeeper-jute.jar", "slf4j-api.jar", "slf4j-simple.jar", "netty-all.jar"].map { "/usr/share/java/\($0)" }
    .filter { FileManager.default.fileExists(atPath: $0) }.joined(separator: ":")
server.arguments = ["-Xmx256m", "-cp", classpath, "org.apache.zookeeper.server.quorum.QuorumPeerMain", zkDirectory + "/zoo.cfg"]
server.standardOutput = FileHandle.nullDevice
server.standardError = FileHandle.nullDevice
try server.run()
defer {
    kill(server.processIdentifier, SIGKILL)
    server.waitUntilExit()
    try? FileManager.default.removeItem(atPath: zkDirectory)
}
var session: ZooKeeperSession?
for _ in 0..<100 where session == nil {
    session = try? await ZooKeeperSession.connect(servers: ["127.0.0.1:\(port)"], sessionTimeout: .seconds(10))
    if session == nil { try await Task.sleep(for: .milliseconds(200)) }
}
guard let session else { fatalError("ZooKeeper did not start (is Debian's zookeeper package installed?)") }
try await run("ZooKeeper 3.8 via Samsa's client", session)
await session.close()

// kazoo, timed inside Python the same way.
let python = ProcessInfo.processInfo.environment["SAMSA_PYTHON"] ?? "python3"
let script = """
    import sys, time, uuid
    from kazoo.client import KazooClient
    n = int(sys.argv[2])
    zk = KazooClient(hosts=sys.argv[1]); zk.start(timeout=10)
    root = "/bench-" + uuid.uuid4().hex[:8]; zk.create(root)
    payload = b"\\x07" * 100
    def measure(f):
        t = []
        for i in range(n):
            s = time.perf_counter_ns(); f(i); t.append(time.perf_counter_ns() - s)
        t.sort(); return t[len(t) // 2] / 1000, t[min(len(t) - 1, int(len(t) * 0.99))] / 1000
    c = measure(lambda i: zk.create(f"{root}/n{i}", payload))
    g = measure(lambda i: zk.get(f"{root}/n{i}"))
    s = measure(lambda i: zk.set(f"{root}/n{i}", payload))
    print(*c, *g, *s)
    zk.stop()
    """
let kazoo = Process()
kazoo.executableURL = URL(fileURLWithPath: "/usr/bin/env")
kazoo.arguments = [python, "-c", script, "127.0.0.1:\(port)", "\(operations)"]
let output = Pipe()
kazoo.standardOutput = output
try kazoo.run()
let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
kazoo.waitUntilExit()
let values = text.split(whereSeparator: { $0 == " " || $0 == "\n" }).compactMap { Double($0) }
if values.count == 6 {
    report(
        "ZooKeeper 3.8 via kazoo 2.11 (Python)", Figures(p50: values[0], p99: values[1]), Figures(p50: values[2], p99: values[3]),
        Figures(p50: values[4], p99: values[5]))
} else {
    print("kazoo run failed (install it with scripts/test.sh, or set SAMSA_PYTHON): \(text)")
}
