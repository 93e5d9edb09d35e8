import Glibc

/// A child process whose standard output comes back on a pipe (standard error goes to a file), read
/// line by line, and which can be killed.
final class ChildProcess {
    let pid: pid_t
    private let output: Int32
    private var buffered: [UInt8] = []
    private(set) var reachedEnd = false

    init(executable: String, arguments: [String], standardErrorPath: String) throws(TortureViolation) {
        var pipeEnds: [Int32] = [0, 0]
        guard pipe(&pipeEnds) == 0 else { throw TortureViolation("pipe failed: errno \(errno)") }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, pipeEnds[1], STDOUT_FILENO)
        posix_spawn_file_actions_addclose(&actions, pipeEnds[0])
        posix_spawn_file_actions_addclose(&actions, pipeEnds[1])
        posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, standardErrorPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var child: pid_t = 0
        let status = posix_spawn(&child, executable, &actions, nil, argv, environ)
        Glibc.close(pipeEnds[1])
        guard status == 0 else {
            Glibc.close(pipeEnds[0])
            throw TortureViolation("cannot start \(executable): \(String(cString: strerror(status)))")
        }
        pid = child
        output = pipeEnds[0]
    }

    deinit {
        Glibc.close(output)
    }

    /// The next complete line, or nil at the end of the output (a cut last line is dropped).
    func readLine() -> String? {
        while true {
            if let newline = buffered.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: buffered[..<newline], as: UTF8.self)
                buffered.removeSubrange(...newline)
                return line
            }
            if reachedEnd { return nil }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let n = chunk.withUnsafeMutableBytes { read(output, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 {
                reachedEnd = true
                continue
            }
            buffered += chunk[..<n]
        }
    }

    func kill() {
        _ = Glibc.kill(pid, SIGKILL)
    }

    /// Waits for the child; returns the signal that ended it, or nil if it exited (with `status`).
    func wait() -> (signal: Int32?, status: Int32) {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let signal = status & 0x7f
        return signal != 0 ? (signal, 0) : (nil, (status >> 8) & 0xff)
    }
}
