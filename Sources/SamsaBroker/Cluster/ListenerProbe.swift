import Glibc
import NIOCore
import NIOPosix

/// Whether a broker's process is gone, asked of the network: a TCP connection to its registered
/// listener refused (nothing listens there: the process died or is restarting). A listener that
/// accepts, or does not answer in time (a stopped process, a lost host), does not count: only
/// coordination may declare those dead.
enum ListenerProbe {
    static func refuses(host: String, port: Int, group: any EventLoopGroup) async -> Bool {
        do {
            let channel = try await ClientBootstrap(group: group).connectTimeout(.seconds(1)).connect(host: host, port: port).get()
            try? await channel.close()
            return false
        } catch let error as NIOConnectionError {
            return !error.connectionErrors.isEmpty && error.connectionErrors.allSatisfy { refused($0.error) }
        } catch {
            return refused(error)
        }
    }

    private static func refused(_ error: any Error) -> Bool { (error as? IOError)?.errnoCode == ECONNREFUSED }
}
