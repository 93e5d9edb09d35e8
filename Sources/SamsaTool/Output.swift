import Glibc

/// Buffers stdout lines and writes them in large chunks (dumping a 1 GiB segment prints millions).
/// A failed write is an error (a full disk, a closed pipe): the caller learns how many lines reached
/// the output before it, so a consumer group commits only what was really written.
struct LineWriter {
    /// Writing standard output failed.
    struct WriteError: Error, CustomStringConvertible {
        let errno: Int32
        var description: String { "cannot write the output: \(String(cString: strerror(errno)))" }
    }

    private var pending: [UInt8] = []
    /// Where each pending line ends in `pending`.
    private var lineEnds: [Int] = []
    /// Lines written completely so far.
    private(set) var linesWritten = 0

    mutating func line(_ text: String) throws(WriteError) {
        pending.append(contentsOf: text.utf8)
        pending.append(UInt8(ascii: "\n"))
        lineEnds.append(pending.count)
        if pending.count >= 1 << 16 { try flush() }
    }

    mutating func flush() throws(WriteError) {
        let (written, error) = pending.withUnsafeBytes { raw -> (Int, Int32?) in
            var offset = 0
            while offset < raw.count {
                let n = write(STDOUT_FILENO, raw.baseAddress! + offset, raw.count - offset)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { return (offset, n < 0 ? errno : EIO) }
                offset += n
            }
            return (offset, nil)
        }
        linesWritten += lineEnds.prefix { $0 <= written }.count
        pending.removeAll(keepingCapacity: true)
        lineEnds.removeAll(keepingCapacity: true)
        if let error { throw WriteError(errno: error) }
    }
}

func standardError(_ text: String) {
    var line = text
    line += "\n"
    _ = line.withUTF8 { write(STDERR_FILENO, $0.baseAddress, $0.count) }
}

/// A JSON object rendered on one line, fields in the order given.
struct JSONLine {
    indirect enum Value {
        case string(String), int(Int64), double(Double), bool(Bool), null
        case array([Value])
        case object([(String, Value)])
    }

    let fields: [(String, Value)]

    init(_ fields: [(String, Value)]) { self.fields = fields }

    var rendered: String { Self.render(.object(fields)) }

    static func render(_ value: Value) -> String {
        switch value {
        case .string(let text): return quote(text)
        case .int(let number): return String(number)
        case .double(let number): return number.isFinite ? String(number) : "null"
        case .bool(let flag): return flag ? "true" : "false"
        case .null: return "null"
        case .array(let items): return "[" + items.map(render).joined(separator: ",") + "]"
        case .object(let members):
            return "{" + members.map { quote($0.0) + ":" + render($0.1) }.joined(separator: ",") + "}"
        }
    }

    static func quote(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let digits = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - digits.count) + digits
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
