import Dispatch
import Glibc
import Synchronization

/// SIGINT (^C) and SIGTERM as a request to stop cleanly: the first one calls `onStop` (the command
/// then finishes what it holds, commits and closes the directory cleanly); a second one exits at once,
/// for a shutdown that hangs. Commands that exit after a stop use `exitStatus` (128 + the signal, as
/// a shell reports a process killed by it).
///
/// A real handler (`sigaction`), not `SIG_IGN` plus a dispatch signal source: with `SIG_IGN`, a
/// signal the kernel hands to a thread that does not block it is discarded, so a stop could be lost
/// and `consume --follow` would run on. The handler does only what is async-signal-safe: it writes
/// the signal number to a pipe, which a dispatch source reads.
final class StopSignals: Sendable {
    /// Kept alive (and only touched) here; a Mutex because dispatch sources are not Sendable.
    private let source: Mutex<(any DispatchSourceRead)?>
    private let received = Received()

    /// The first signal seen (0: none yet) and what to do on it, shared with the source's handler; a
    /// signal that came before the action was set runs it when it is set.
    private final class Received: Sendable {
        let number = Atomic<Int32>(0)
        let action = Mutex<(@Sendable () -> Void)?>(nil)
    }

    /// Installs the handlers at once: make it before the work starts, so no stop is ever missed.
    init() {
        var fds: [Int32] = [-1, -1]
        if pipe(&fds) == 0 {
            _ = fcntl(fds[1], F_SETFL, O_NONBLOCK)
            _ = fcntl(fds[0], F_SETFD, FD_CLOEXEC)
            _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
            stopPipeWriteEnd.store(fds[1], ordering: .releasing)
        }
        let readEnd = fds[0]
        let reader = DispatchSource.makeReadSource(fileDescriptor: readEnd, queue: DispatchQueue.global())
        reader.setEventHandler { [received] in
            var number: Int32 = 0
            guard read(readEnd, &number, MemoryLayout<Int32>.size) == MemoryLayout<Int32>.size else { return }
            let (exchanged, _) = received.number.compareExchange(expected: 0, desired: number, ordering: .acquiringAndReleasing)
            if exchanged {
                received.action.withLock { $0 }?()
            } else {
                _exit(128 + number)
            }
        }
        reader.resume()
        source = Mutex(reader)
        for number in [SIGINT, SIGTERM] {
            var action = sigaction()
            action.__sigaction_handler.sa_handler = stopSignalHandler
            sigemptyset(&action.sa_mask)
            action.sa_flags = SA_RESTART
            sigaction(number, &action, nil)
        }
    }

    /// Calls `body` on the first stop signal (at once if one came already).
    func whenStopped(_ body: @escaping @Sendable () -> Void) {
        received.action.withLock { $0 = body }
        if received.number.load(ordering: .acquiring) != 0 { body() }
    }

    /// The signal that asked to stop, if one did.
    var signal: Int32? {
        let number = received.number.load(ordering: .acquiring)
        return number == 0 ? nil : number
    }

    /// 128 + the signal after a stop (130 for ^C, 143 for SIGTERM).
    var exitStatus: Int32? { signal.map { 128 + $0 } }
}

/// The pipe the handler writes to (-1 before a `StopSignals` exists).
private let stopPipeWriteEnd = Atomic<Int32>(-1)

/// The signal handler: one atomic load and one write(2), both async-signal-safe.
private let stopSignalHandler: @convention(c) (Int32) -> Void = { number in
    let fd = stopPipeWriteEnd.load(ordering: .acquiring)
    guard fd >= 0 else { return }
    var value = number
    _ = write(fd, &value, MemoryLayout<Int32>.size)
}
