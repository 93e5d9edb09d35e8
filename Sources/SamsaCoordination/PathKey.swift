import Glibc

/// A node path (or name) compared and hashed byte by byte, as ZooKeeper compares paths: never
/// Unicode-normalized, so "café" written precomposed (NFC) and decomposed (NFD) are two nodes, as
/// they are on a ZooKeeper server. (Swift's `String` equality is canonical equivalence.)
struct PathKey: Hashable, Sendable, Comparable, CustomStringConvertible {
    let string: String

    init(_ string: String) {
        var string = string
        string.makeContiguousUTF8()
        self.string = string
    }

    static func == (a: PathKey, b: PathKey) -> Bool {
        // Equal bytes are canonically equal: String's (fast) equality rules out most pairs first.
        guard a.string == b.string else { return false }
        let same = a.string.utf8.withContiguousStorageIfAvailable { x in
            b.string.utf8.withContiguousStorageIfAvailable { y in x.count == y.count && (x.isEmpty || memcmp(x.baseAddress!, y.baseAddress!, x.count) == 0) }
        }
        return (same ?? nil) ?? a.string.utf8.elementsEqual(b.string.utf8)
    }

    /// Byte order (ZooKeeper sorts nothing for clients; this is for deterministic iteration).
    static func < (a: PathKey, b: PathKey) -> Bool {
        a.string.utf8.lexicographicallyPrecedes(b.string.utf8)
    }

    /// String's hash: canonically equal strings hash alike, so byte-equal ones do too.
    func hash(into hasher: inout Hasher) {
        hasher.combine(string)
    }

    var description: String { string }
}
