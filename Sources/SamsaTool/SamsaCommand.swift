public import ArgumentParser

/// The `samsa` command line: one subcommand per file.
public struct SamsaCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "samsa",
        abstract: "Samsa: a performance-first commit log with Kafka's record format.",
        subcommands: [
            Topics.self, Groups.self, Reassign.self, Leaders.self, Produce.self, Consume.self, Perf.self, DumpLog.self, Verify.self, GenerateLog.self, CrashWriter.self, BrokerCommand.self,
            Torture.self, TortureChildCommand.self,
        ]
    )

    public init() {}

    /// Parses `arguments`, runs the chosen subcommand (awaiting it if asynchronous) and exits with its
    /// status; errors are printed the way ArgumentParser prints them.
    public static func run(arguments: [String]) async -> Never {
        do {
            var command = try parseAsRoot(arguments)
            if var asynchronous = command as? any AsyncParsableCommand {
                try await asynchronous.run()
            } else {
                try command.run()
            }
            exit()
        } catch {
            exit(withError: error)
        }
    }
}
