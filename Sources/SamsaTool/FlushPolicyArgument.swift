import ArgumentParser
import SamsaStorage

/// `--flush every-append | interval:MS | messages:N | never`.
struct FlushPolicyArgument: ExpressibleByArgument {
    let policy: FlushPolicy

    init?(argument: String) {
        guard let policy = FlushPolicy(argument) else { return nil }
        self.policy = policy
    }

    static var allValueStrings: [String] { ["every-append", "interval:MS", "messages:N", "never"] }
}
