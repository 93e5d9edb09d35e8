import SamsaTool

// Parses and runs the command, awaiting asynchronous subcommands (what AsyncParsableCommand.main does;
// spelled out because top-level code resolves `main()` to the synchronous overload).
await SamsaCommand.run(arguments: Array(CommandLine.arguments.dropFirst()))
