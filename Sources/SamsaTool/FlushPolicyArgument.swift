import ArgumentParser
import SamsaStorage

/// `--flush every-append | interval:MS | messages:N | never`.
struct FlushPolicyArgument: ExpressibleByArgument {
    let policy: FlushPolicy

    init?(argument: String) {
        let parts = argument.split(separator: ":", maxSplits: 1).map(String.init)
        switch (parts.first, parts.count == 2 ? Int(parts[1]) : nil) {
        case ("every-append", _) where parts.count == 1: policy = .everyAppend
        case ("never", _) where parts.count == 1: policy = .never
        case ("interval", let value?) where value > 0: policy = .interval(milliseconds: value)
        case ("messages", let value?) where value > 0: policy = .messages(count: value)
        default: return nil
        }
    }

    static var allValueStrings: [String] { ["every-append", "interval:MS", "messages:N", "never"] }
}
