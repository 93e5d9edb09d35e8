/// Realistic JSON-like event records for benchmarks, perf tools and samples: varied fields, ids and
/// words, compressing about as well as real application events (LZ4 ~2x, Zstd ~3x), never all zeros.
/// Deterministic for a given seed.
public struct SyntheticEvents: Sendable {
    private var state: UInt64
    private var sequence = 0

    public init(seed: UInt64 = 0x5A45_5341) {
        state = seed
    }

    /// SplitMix64: tiny, fast and good enough to vary test data.
    private mutating func nextRandom() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    private mutating func pick<T>(_ choices: [T]) -> T {
        choices[Int(nextRandom() % UInt64(choices.count))]
    }

    private static let actions = ["page_view", "add_to_cart", "checkout", "login", "logout", "search", "click", "purchase"]
    private static let paths = ["/", "/products", "/cart", "/checkout", "/account", "/search", "/help", "/orders"]
    private static let agents = [
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
        "kafka-python/2.0.2", "Go-http-client/1.1",
    ]
    private static let words = [
        "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet", "kilo",
        "lima", "mike", "november", "oscar", "papa", "quebec", "romeo", "sierra", "tango", "uniform", "victor",
        "whiskey", "xray", "yankee", "zulu", "order", "shipped", "pending", "refund", "premium", "basic",
    ]

    /// One event: a valid JSON object of exactly `size` bytes (at least 16). Fields are added while
    /// they fit; the rest is a note of words, then spaces.
    public mutating func next(size: Int) -> [UInt8] {
        let size = max(size, 16)
        sequence += 1
        let r = nextRandom()
        let fields = [
            "\"id\":\(sequence)",
            "\"ts\":\(1_764_000_000_000 + Int(r % 86_400_000))",
            "\"user\":\"user-\(r >> 40 & 0xFFFF)\"",
            "\"action\":\"\(pick(Self.actions))\"",
            "\"path\":\"\(pick(Self.paths))/\(r >> 20 & 0x3FF)\"",
            "\"session\":\"\(String(nextRandom(), radix: 16))\"",
            "\"amount\":\(r % 100_000 / 100).\(r % 100)",
            "\"agent\":\"\(pick(Self.agents))\"",
        ]
        var text = "{"
        for field in fields where text.utf8.count + field.utf8.count + 2 <= size {
            text += (text.count > 1 ? "," : "") + field
        }
        let noteOpening = (text.count > 1 ? "," : "") + "\"note\":\""
        if size - text.utf8.count - 1 >= noteOpening.utf8.count + 2 {
            text += noteOpening
            while true {
                let word = pick(Self.words)
                guard text.utf8.count + word.utf8.count + 3 <= size else { break }
                text += word + " "
            }
            text += "\""
        }
        text += String(repeating: " ", count: size - 1 - text.utf8.count) + "}"
        return Array(text.utf8)
    }

    /// A key like an entity id, so keyed partitioning spreads.
    public mutating func nextKey() -> [UInt8] {
        Array("user-\(nextRandom() % 100_000)".utf8)
    }
}
