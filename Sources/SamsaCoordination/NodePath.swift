/// Path rules as ZooKeeper's `PathUtils.validatePath` applies them: absolute, no trailing slash
/// (except the root), no empty, "." or ".." components, no null or control characters, and none of
/// the UTF-16 code units Java's check refuses (surrogates, so every emoji, private use, U+FFF0-FFFF).
/// Paths are handled as bytes (UTF-8), never as Unicode characters: a "/" followed by a combining
/// mark is still a separator, and no normalization happens.
public enum NodePath {
    static let slash = UInt8(ascii: "/")

    public static func validate(_ path: String, sequential: Bool = false) throws(CoordinationError) {
        func invalid(_ why: String) -> CoordinationError { CoordinationError(.badArguments, path: path, "invalid path: \(why)") }
        let bytes = Array(path.utf8)
        guard !bytes.isEmpty else { throw invalid("empty") }
        guard bytes[0] == slash else { throw invalid("must start with /") }
        if bytes.count == 1 { return }
        // A sequential node's name may end in "/": the server appends the number.
        if bytes.last == slash && !sequential { throw invalid("must not end with /") }
        let components = bytes.dropFirst().split(separator: slash, omittingEmptySubsequences: false)
        for (index, component) in components.enumerated() {
            let last = index == components.count - 1
            if component.isEmpty && !(last && sequential) { throw invalid("empty node name") }
            if component.elementsEqual([46]) || component.elementsEqual([46, 46]) { throw invalid("relative names are not allowed") }
        }
        for unit in path.utf16 {
            if unit == 0 { throw invalid("null character") }
            if (unit > 0 && unit < 0x20) || (0x7f...0x9f).contains(unit) || (0xd800...0xf8ff).contains(unit) || (0xfff0...0xffff).contains(unit) {
                throw invalid("character U+\(String(unit, radix: 16)) is not allowed")
            }
        }
    }

    /// The parent of a valid path ("/" for top-level nodes).
    static func parent(of path: String) -> String {
        let bytes = path.utf8
        guard let slash = bytes.lastIndex(of: slash), slash != bytes.startIndex else { return "/" }
        return String(path[..<slash])
    }

    /// The last component of a valid path.
    static func name(of path: String) -> String {
        let bytes = path.utf8
        guard let slash = bytes.lastIndex(of: slash) else { return path }
        return String(path[bytes.index(after: slash)...])
    }

    static func join(_ parent: String, _ name: String) -> String {
        parent == "/" ? "/" + name : parent + "/" + name
    }

    /// A sequential node's name suffix: the parent's child counter, 10 digits, zero-padded.
    static func sequenceSuffix(_ counter: Int32) -> String {
        let digits = String(counter)
        return String(repeating: "0", count: max(0, 10 - digits.count)) + digits
    }
}
