import Dispatch
import Glibc
import Synchronization

/// SIGINT (^C) and SIGTERM as a request to stop cleanly: the first one calls `onStop` (the command
/// then finishes what it holds, commits and closes the directory cleanly); a second one exits at once,
/// for a shutdown that hangs. Commands that exit after a stop use `exitStatus` (128 + the signal, as
/// a shell reports a process killed by it).
final class StopSignals: Sendable {
    private let sources: Mutex<[any DispatchSourceSignal]>
    private let received = Received()

    /// The first signal seen (0: none yet).
    private final class Received: Sendable {
        let number = Atomic<Int32>(0)
    }

    init(onStop: @escaping @Sendable () -> Void) {
        var installed: [any DispatchSourceSignal] = []
        for number in [SIGINT, SIGTERM] {
            // Ignored so the default action (death without a clean close) does not run; the dispatch
            // source still sees each delivery.
            Glibc.signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: DispatchQueue.global())
            source.setEventHandler { [received] in
                let (exchanged, _) = received.number.compareExchange(expected: 0, desired: number, ordering: .acquiringAndReleasing)
                if exchanged {
                    onStop()
                } else {
                    _exit(128 + number)
                }
            }
            source.resume()
            installed.append(source)
        }
        sources = Mutex(installed)
    }

    /// The signal that asked to stop, if one did.
    var signal: Int32? {
        let number = received.number.load(ordering: .acquiring)
        return number == 0 ? nil : number
    }

    /// 128 + the signal after a stop (130 for ^C, 143 for SIGTERM).
    var exitStatus: Int32? { signal.map { 128 + $0 } }
}
