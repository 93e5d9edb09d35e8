public import ServiceLifecycle

/// The broker as a swift-service-lifecycle `Service`: runs it from start (recovering the data directory)
/// until graceful shutdown, then stops it cleanly (controlled shutdown in a cluster, logs flushed, the
/// data directory marked clean). An app that embeds a broker adds this to its own `ServiceGroup`;
/// `samsa broker` runs it in one that maps SIGTERM and SIGINT to graceful shutdown.
public struct BrokerService: Service {
    public let configuration: BrokerConfiguration
    /// Called once the broker accepts connections (for a "listening on" line, a readiness probe).
    private let onStarted: @Sendable (Broker) -> Void

    public init(_ configuration: BrokerConfiguration, onStarted: @escaping @Sendable (Broker) -> Void = { _ in }) {
        self.configuration = configuration
        self.onStarted = onStarted
    }

    public func run() async throws {
        let broker = try await Broker.start(configuration)
        onStarted(broker)
        // Returns when shutdown is asked for (at once if it was asked for while the logs recovered);
        // throws only when the task is cancelled, which stops the broker the same way.
        try? await gracefulShutdown()
        try await broker.stop()
    }
}
