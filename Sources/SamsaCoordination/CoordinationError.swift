/// A coordination failure, named and numbered as ZooKeeper names them (`KeeperException.Code`).
public struct CoordinationError: Error, Sendable, Hashable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        /// ZooKeeper's numeric code, as it travels on the wire.
        public let value: Int32
        public let name: String

        init(_ value: Int32, _ name: String) {
            self.value = value
            self.name = name
        }

        public var description: String { name }

        public static let systemError = Code(-1, "systemError")
        public static let runtimeInconsistency = Code(-2, "runtimeInconsistency")
        public static let dataInconsistency = Code(-3, "dataInconsistency")
        public static let connectionLoss = Code(-4, "connectionLoss")
        public static let marshallingError = Code(-5, "marshallingError")
        public static let unimplemented = Code(-6, "unimplemented")
        public static let operationTimeout = Code(-7, "operationTimeout")
        public static let badArguments = Code(-8, "badArguments")
        public static let unknownSession = Code(-12, "unknownSession")
        public static let apiError = Code(-100, "apiError")
        public static let noNode = Code(-101, "noNode")
        public static let noAuth = Code(-102, "noAuth")
        public static let badVersion = Code(-103, "badVersion")
        public static let noChildrenForEphemerals = Code(-108, "noChildrenForEphemerals")
        public static let nodeExists = Code(-110, "nodeExists")
        public static let notEmpty = Code(-111, "notEmpty")
        public static let sessionExpired = Code(-112, "sessionExpired")
        public static let invalidCallback = Code(-113, "invalidCallback")
        public static let invalidACL = Code(-114, "invalidACL")
        public static let authFailed = Code(-115, "authFailed")
        public static let sessionMoved = Code(-118, "sessionMoved")
        public static let notReadOnly = Code(-119, "notReadOnly")
        public static let noWatcher = Code(-121, "noWatcher")
        public static let requestTimeout = Code(-122, "requestTimeout")

        static let all: [Code] = [
            systemError, runtimeInconsistency, dataInconsistency, connectionLoss, marshallingError, unimplemented, operationTimeout,
            badArguments, unknownSession, apiError, noNode, noAuth, badVersion, noChildrenForEphemerals, nodeExists, notEmpty,
            sessionExpired, invalidCallback, invalidACL, authFailed, sessionMoved, notReadOnly, noWatcher, requestTimeout,
        ]

        /// The code for a number received from a server.
        static func from(wire value: Int32) -> Code {
            all.first { $0.value == value } ?? Code(value, "error\(value)")
        }
    }

    public let code: Code
    /// The path the failed operation named, when it named one.
    public let path: String?
    public let message: String

    public init(_ code: Code, path: String? = nil, _ message: String = "") {
        self.code = code
        self.path = path
        self.message = message
    }

    public var description: String {
        var text = code.name
        if let path { text += " at \(path)" }
        if !message.isEmpty { text += ": \(message)" }
        return text
    }
}
