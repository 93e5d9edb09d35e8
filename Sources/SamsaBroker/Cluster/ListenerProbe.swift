import Glibc
import NIOCore
import NIOPosix

/// Whether a broker's process is gone, asked of the network: a TCP connection to its registered
/// listener refused (nothing listens there: the process died or is restarting). A listener that
/// accepts, or does not answer in time (a stopped process, a lost host), does not count: only
/// coordination may declare those dead.
enum ListenerProbe {
    enum Outcome: Sendable {
        /// Something listens: the connection, for the caller to keep or close.
        case accepted(any Channel)
        /// ECONNREFUSED: nothing listens on that port.
        case refused
        /// No answer in time, or another failure (unreachable host): tells nothing.
        case unanswered
    }

    static func connect(host: String, port: Int, group: any EventLoopGroup, timeout: TimeAmount = .seconds(1)) async -> Outcome {
        do {
            return .accepted(try await ClientBootstrap(group: group).connectTimeout(timeout).connect(host: host, port: port).get())
        } catch let error as NIOConnectionError {
            return !error.connectionErrors.isEmpty && error.connectionErrors.allSatisfy { refused($0.error) } ? .refused : .unanswered
        } catch {
            return refused(error) ? .refused : .unanswered
        }
    }

    static func refuses(host: String, port: Int, group: any EventLoopGroup) async -> Bool {
        switch await connect(host: host, port: port, group: group) {
        case .accepted(let channel):
            try? await channel.close()
            return false
        case .refused: return true
        case .unanswered: return false
        }
    }

    private static func refused(_ error: any Error) -> Bool { (error as? IOError)?.errnoCode == ECONNREFUSED }
}
