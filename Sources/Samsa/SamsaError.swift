public import SamsaStorage

/// What went wrong in the embedded queue, with a code to match on and a message for people.
public struct SamsaError: Error, Sendable, Hashable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let name: String
        init(_ name: String) { self.name = name }
        public var description: String { name }

        /// No topic of that name.
        public static let unknownTopic = Code("unknownTopic")
        /// A topic of that name exists already.
        public static let topicExists = Code("topicExists")
        /// A partition number outside the topic.
        public static let unknownPartition = Code("unknownPartition")
        /// A topic name, configuration or argument that cannot be used.
        public static let invalidArgument = Code("invalidArgument")
        /// An offset before the partition's log start or past its end.
        public static let offsetOutOfRange = Code("offsetOutOfRange")
        /// A record larger than the topic's `maxRecordBytes`, or than the producer's buffer.
        public static let recordTooLarge = Code("recordTooLarge")
        /// The producer, consumer or data directory was closed.
        public static let closed = Code("closed")
        /// A file Samsa keeps (topics, committed offsets) could not be read as written.
        public static let corrupt = Code("corrupt")
        /// Another process (or another open in this one) writes the data directory.
        public static let locked = Code("locked")
        /// The directory is not a Samsa data directory (it holds other files and no `topics.json`).
        public static let notADataDirectory = Code("notADataDirectory")
        /// The directory was opened read-only (`Samsa.openReadOnly`).
        public static let readOnly = Code("readOnly")
        /// The storage engine failed (I/O error, failed sync); `underlying` says how.
        public static let storage = Code("storage")
    }

    public let code: Code
    public let message: String
    /// The storage engine's error, when it caused this one.
    public let underlying: StorageError?

    public init(_ code: Code, _ message: String, underlying: StorageError? = nil) {
        self.code = code
        self.message = message
        self.underlying = underlying
    }

    init(_ error: StorageError) {
        let code: Code = switch error.code {
        case .offsetOutOfRange: .offsetOutOfRange
        case .closed: .closed
        case .corrupt: .corrupt
        case .readOnly: .readOnly
        case .notADataDirectory: .notADataDirectory
        case .locked: .locked
        default: .storage
        }
        // "locked: locked: ..." says it twice.
        let repeated = "\(error.code): "
        let message = code.name == error.code.name && error.description.hasPrefix(repeated) ? String(error.description.dropFirst(repeated.count)) : error.description
        self.init(code, message, underlying: error)
    }

    public var description: String { "\(code): \(message)" }
}

/// Runs `body`, turning the storage engine's errors into `SamsaError`.
func storage<T>(_ body: () throws(StorageError) -> T) throws(SamsaError) -> T {
    do {
        return try body()
    } catch {
        throw SamsaError(error)
    }
}
