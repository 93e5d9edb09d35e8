import Glibc

/// A storage failure: what went wrong, on which file, and the OS error where there was one.
public struct StorageError: Error, Hashable, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let name: String
        init(_ name: String) { self.name = name }
        public var description: String { name }

        /// A system call failed (`errno` says why).
        public static let io = Code("io")
        /// An fsync failed: data written before it may be lost; the log refuses further writes.
        public static let syncFailed = Code("syncFailed")
        /// The log is closed, or refused writes after an earlier failure.
        public static let closed = Code("closed")
        /// Bytes on disk are not what they must be (and could not be repaired).
        public static let corrupt = Code("corrupt")
        /// An argument is out of range (offset, size, configuration).
        public static let invalidArgument = Code("invalidArgument")
        /// An offset before the log start or past its end.
        public static let offsetOutOfRange = Code("offsetOutOfRange")
        /// An index has no room for another entry.
        public static let indexFull = Code("indexFull")
        /// The log was truncated below an offset before it became durable (the append is gone).
        public static let truncated = Code("truncated")
        /// The log or data directory was opened read-only.
        public static let readOnly = Code("readOnly")
        /// The directory holds files but no `meta.properties`: it is not a Samsa data directory.
        public static let notADataDirectory = Code("notADataDirectory")
        /// Another process (or another writer in this one) holds the data directory's lock.
        public static let locked = Code("locked")
        /// No space left on the device (ENOSPC, EDQUOT): nothing was acknowledged past what was kept.
        public static let noSpace = Code("noSpace")
        /// A record the log refuses by its configuration (a keyless record on a compacted log: Kafka's
        /// INVALID_RECORD).
        public static let invalidRecord = Code("invalidRecord")
    }

    public let code: Code
    public let path: String
    /// The OS error number, 0 where none applies.
    public let errno: Int32
    public let message: String

    public init(_ code: Code, path: String, errno: Int32 = 0, _ message: String) {
        self.code = code
        self.path = path
        self.errno = errno
        self.message = message
    }

    public var description: String {
        var text = "\(code): \(message)"
        if !path.isEmpty { text += " (\(path))" }
        if errno != 0 { text += ": \(String(cString: strerror(errno)))" }
        return text
    }
}
