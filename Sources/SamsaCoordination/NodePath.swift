/// Path rules as ZooKeeper's `PathUtils.validatePath` applies them: absolute, no trailing slash
/// (except the root), no empty, "." or ".." components, no null or control characters.
public enum NodePath {
    public static func validate(_ path: String, sequential: Bool = false) throws(CoordinationError) {
        func invalid(_ why: String) -> CoordinationError { CoordinationError(.badArguments, path: path, "invalid path: \(why)") }
        guard !path.isEmpty else { throw invalid("empty") }
        guard path.hasPrefix("/") else { throw invalid("must start with /") }
        if path == "/" {
            if sequential { return }
            return
        }
        // A sequential node's name may end in "/": the server appends the number.
        if path.hasSuffix("/") && !sequential { throw invalid("must not end with /") }
        let components = path.dropFirst().split(separator: "/", omittingEmptySubsequences: false)
        for (index, component) in components.enumerated() {
            let last = index == components.count - 1
            if component.isEmpty && !(last && sequential) { throw invalid("empty node name") }
            if component == "." || component == ".." { throw invalid("relative names are not allowed") }
        }
        for scalar in path.unicodeScalars {
            let value = scalar.value
            if value == 0 { throw invalid("null character") }
            if (value > 0 && value < 0x20) || (0x7f...0x9f).contains(value) || (0xd800...0xf8ff).contains(value) || (0xfff0...0xffff).contains(value) {
                throw invalid("character U+\(String(value, radix: 16)) is not allowed")
            }
        }
    }

    /// The parent of a valid path ("/" for top-level nodes).
    static func parent(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/"), slash != path.startIndex else { return "/" }
        return String(path[..<slash])
    }

    /// The last component of a valid path.
    static func name(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return path }
        return String(path[path.index(after: slash)...])
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
