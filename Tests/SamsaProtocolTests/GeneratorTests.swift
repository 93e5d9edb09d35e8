import Foundation
import Testing
import SamsaTestSupport

/// The committed codecs are exactly what scripts/generate-protocol.py makes from the schemas in the
/// installed kafka-python (the test virtualenv's, `SAMSA_PYTHON`).
@Suite("Protocol generator", .offCooperativePool)
struct GeneratorTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    @Test("Regenerating gives the committed files")
    func regenerationMatches() throws {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("samsa-protocol-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let generated = scratch.appendingPathComponent("Generated")
        let samples = scratch.appendingPathComponent("Samples.swift")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [
            ProcessInfo.processInfo.environment["SAMSA_PYTHON"] ?? "python3", Self.root.appendingPathComponent("scripts/generate-protocol.py").path,
            generated.path, samples.path,
        ]
        try process.run()
        process.waitUntilExit()
        try #require(process.terminationStatus == 0, "the generator failed (it needs kafka-python: scripts/test.sh installs it)")

        let committed = Self.root.appendingPathComponent("Sources/SamsaProtocol/Generated")
        let names = try FileManager.default.contentsOfDirectory(atPath: committed.path).sorted()
        #expect(try FileManager.default.contentsOfDirectory(atPath: generated.path).sorted() == names)
        for name in names {
            let fresh = try Data(contentsOf: generated.appendingPathComponent(name))
            #expect(fresh == (try Data(contentsOf: committed.appendingPathComponent(name))), "\(name) differs from its regeneration")
        }
        let committedSamples = Self.root.appendingPathComponent("Tests/SamsaProtocolTests/Generated/Samples.swift")
        #expect(try Data(contentsOf: samples) == Data(contentsOf: committedSamples), "Samples.swift differs from its regeneration")
    }
}
