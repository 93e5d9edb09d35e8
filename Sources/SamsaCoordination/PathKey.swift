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
        a.string.utf8.count == b.string.utf8.count && a.string.utf8.elementsEqual(b.string.utf8)
    }

    /// Byte order (ZooKeeper sorts nothing for clients; this is for deterministic iteration).
    static func < (a: PathKey, b: PathKey) -> Bool {
        a.string.utf8.lexicographicallyPrecedes(b.string.utf8)
    }

    func hash(into hasher: inout Hasher) {
        let hashed: Void? = string.utf8.withContiguousStorageIfAvailable { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
        if hashed == nil { for byte in string.utf8 { hasher.combine(byte) } }
    }

    var description: String { string }
}
