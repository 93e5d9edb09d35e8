/// Why a request on a `KafkaConnection` failed. Every code but `undecodable` means the connection is
/// closed (or was never made): the order of answers on it can no longer be trusted.
public struct ConnectionError: Error, Hashable, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let name: String
        init(_ name: String) { self.name = name }
        public var description: String { name }

        /// The TCP connection could not be made.
        public static let connectFailed = Code("connectFailed")
        /// The peer closed the connection (or it was closed here) before the answer arrived.
        public static let closed = Code("closed")
        /// No answer came within the request's timeout.
        public static let timedOut = Code("timedOut")
        /// A response frame declared a size outside 0...limit.
        public static let badFrame = Code("badFrame")
        /// A response carried another request's correlation id.
        public static let wrongCorrelation = Code("wrongCorrelation")
        /// A response arrived with no request waiting for it.
        public static let unexpectedResponse = Code("unexpectedResponse")
        /// The response did not decode as the expected message (the connection stays open).
        public static let undecodable = Code("undecodable")
    }

    public let code: Code
    public let detail: String

    public init(_ code: Code, _ detail: String) {
        self.code = code
        self.detail = detail
    }

    public var description: String { "\(code): \(detail)" }
}
