/// Bytes that do not decode as the message and version they were read as: a truncated field, a length
/// past the end, a null where the version forbids one, a varint too long. Decoders throw it and never
/// trap; the broker closes the connection that sent them.
public struct ProtocolError: Error, Hashable, Sendable, CustomStringConvertible {
    public let message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}
