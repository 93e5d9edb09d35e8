/// Settings of a `KafkaClient` (Kafka's client property names in the comments).
public struct ClientConfiguration: Sendable {
    /// The client id sent with every request (`client.id`).
    public var clientId: String
    /// How long a connection attempt may take (`socket.connection.setup.timeout.ms`).
    public var connectTimeoutMilliseconds: Int64
    /// How long a response may take (beyond a fetch's max wait) before the connection is closed and
    /// the request retried (`request.timeout.ms`).
    public var requestTimeoutMilliseconds: Int64
    /// How long to wait between retries of a failed or stale-metadata call (`retry.backoff.ms`).
    public var retryBackoffMilliseconds: Int64
    /// How many times a call is retried after a retriable error (`retries`, for reads and admin calls).
    public var retries: Int
    /// The largest response accepted; a larger one closes the connection.
    public var maxResponseBytes: Int
    /// Event loop threads of the client's connections.
    public var eventLoopThreads: Int

    public init(
        clientId: String = "samsa", connectTimeoutMilliseconds: Int64 = 10_000, requestTimeoutMilliseconds: Int64 = 30_000, retryBackoffMilliseconds: Int64 = 100, retries: Int = 20,
        maxResponseBytes: Int = 512 << 20, eventLoopThreads: Int = 1
    ) {
        self.clientId = clientId
        self.connectTimeoutMilliseconds = connectTimeoutMilliseconds
        self.requestTimeoutMilliseconds = requestTimeoutMilliseconds
        self.retryBackoffMilliseconds = retryBackoffMilliseconds
        self.retries = retries
        self.maxResponseBytes = maxResponseBytes
        self.eventLoopThreads = eventLoopThreads
    }
}

/// A broker address, `HOST:PORT`.
public struct BrokerAddress: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `HOST:PORT` (the host may be a bracketed IPv6 address).
    public init?(_ text: String) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (1...65535).contains(port) else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty else { return nil }
        self.init(host: host, port: port)
    }

    /// A comma-separated list of addresses (`bootstrap.servers`).
    public static func list(_ text: String) -> [BrokerAddress]? {
        let addresses = text.split(separator: ",").map { BrokerAddress(String($0).trimmingSpaces) }
        guard !addresses.isEmpty, addresses.allSatisfy({ $0 != nil }) else { return nil }
        return addresses.compactMap { $0 }
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

extension String {
    fileprivate var trimmingSpaces: String {
        String(drop { $0 == " " }.reversed().drop { $0 == " " }.reversed())
    }
}
