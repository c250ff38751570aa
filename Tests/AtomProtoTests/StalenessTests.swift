import Foundation
import Testing

/// STALENESS CHECK: the committed generated files must match what scripts/generate-proto
/// produces from proto/atom/v1/*.proto. Uses $ATOM_PROTOGEN, or the atom-protogen built next to
/// this test bundle, or else lets the script build it (slower).
@Suite struct StalenessTests {
    static func builtGenerator() -> String? {
        if let path = ProcessInfo.processInfo.environment["ATOM_PROTOGEN"] { return path }
        var directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = directory.appendingPathComponent("atom-protogen").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            directory = directory.deletingLastPathComponent()
        }
        return nil
    }

    @Test func generatedFilesAreUpToDate() throws {
        var environment: [String: String] = [:]
        if let generator = Self.builtGenerator() { environment["ATOM_PROTOGEN"] = generator }
        let result = try run(["bash", "scripts/generate-proto", "--check"], environment: environment)
        #expect(result.status == 0, "scripts/generate-proto --check failed:\n\(result.stderr)")
    }
}
