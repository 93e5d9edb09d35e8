/// Finds an object key given twice in JSON text. Foundation's decoders keep one of the two values
/// silently; a registry with a topic (or a setting) written twice is one no Samsa wrote, so it is
/// refused rather than half read. A linear scan that tracks strings, escapes and nesting; it does
/// not validate the JSON (the decoder does).
enum JSONDuplicateKeys {
    /// The first key found twice in one object, nil when there is none.
    static func first(in bytes: [UInt8]) -> String? {
        // Per open container: the keys seen, or nil for an array.
        var stack: [Set<[UInt8]>?] = []
        var index = 0
        var expectingKey = false
        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "{"):
                stack.append([])
                expectingKey = true
            case UInt8(ascii: "["):
                stack.append(nil)
                expectingKey = false
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                if !stack.isEmpty { stack.removeLast() }
                expectingKey = false
            case UInt8(ascii: ","):
                expectingKey = stack.last.map { $0 != nil } ?? false
            case UInt8(ascii: "\""):
                var end = index + 1
                while end < bytes.count && bytes[end] != UInt8(ascii: "\"") {
                    end += bytes[end] == UInt8(ascii: "\\") ? 2 : 1
                }
                if expectingKey, let keys = stack.last, var seen = keys {
                    let key = Array(bytes[(index + 1)..<min(end, bytes.count)])
                    if !seen.insert(key).inserted { return String(decoding: key.prefix(64), as: UTF8.self) }
                    stack[stack.count - 1] = seen
                    expectingKey = false
                }
                index = end
            default:
                break
            }
            index += 1
        }
        return nil
    }
}
