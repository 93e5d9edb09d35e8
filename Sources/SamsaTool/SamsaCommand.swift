public import ArgumentParser

/// The `samsa` command line: one subcommand per file.
public struct SamsaCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "samsa",
        abstract: "Samsa: a performance-first commit log with Kafka's record format.",
        subcommands: [DumpLog.self, GenerateLog.self]
    )

    public init() {}
}
