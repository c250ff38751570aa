import AtomLoader
import AtomMetrics
import AtomProto
import AtomRPC
import Foundation
import Logging
import Testing

/// A loader over a temporary skills directory, with real host processes; `withLoader` always
/// stops every host and removes the files.
struct LoaderFixture {
    let root: String
    let skills: String
    let loader: Loader
    let metrics = LatencyRecorder()

    /// Writes a skill folder (`files` relative to it; a manifest is made from the arguments).
    @discardableResult
    func skill(
        _ name: String, runtime: String = "python", files: [String: String], extra: String = "", folder: String? = nil
    ) throws -> String {
        let path = "\(skills)/\(folder ?? name)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        let manifest = """
            name: \(name)
            version: "1.0.0"
            description: A test skill.
            category: test
            runtime: \(runtime)
            \(extra)
            """
        try manifest.write(toFile: "\(path)/skill.yaml", atomically: true, encoding: .utf8)
        for (file, text) in files { try write(text, to: "\(path)/\(file)") }
        return path
    }

    func write(_ text: String, to path: String) throws {
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try text.write(toFile: path, atomically: false, encoding: .utf8)
    }

    /// What an editor does: write a temporary file beside the target, then rename it over.
    func editorSave(_ text: String, to path: String) throws {
        let temporary = (path as NSString).deletingLastPathComponent + "/." + (path as NSString).lastPathComponent + ".swp"
        try text.write(toFile: temporary, atomically: false, encoding: .utf8)
        guard rename(temporary, path) == 0 else { throw LoaderError(.internal, "rename failed: errno \(errno)") }
    }

    @discardableResult
    func load(_ name: String) async throws -> LoadSkillResponse {
        try await loader.load(name: name, path: "", context: nil, metrics: metrics)
    }

    func execute(_ name: String, _ inputs: String = "{}", timeoutMs: UInt32 = 0) async throws -> ExecuteSkillResponse {
        try await loader.execute(name: name, inputs: inputs, timeoutMs: timeoutMs, metrics: metrics)
    }

    /// The outputs of a successful execution as a dictionary.
    func outputs(_ name: String, _ inputs: String = "{}") async throws -> [String: Any] {
        let response = try await execute(name, inputs)
        if let failure = response.failure { Issue.record("\(name) raised \(failure.type): \(failure.message)\n\(failure.traceback)") }
        return try #require(try JSONSerialization.jsonObject(with: Data(response.outputsJson.utf8)) as? [String: Any])
    }

    /// Waits (generously) until `condition` holds.
    func eventually(_ what: String, timeout: Duration = .seconds(10), _ condition: () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try await condition() { return }
            try await Task.sleep(for: .milliseconds(20))
        }
        Issue.record("timed out waiting for \(what)")
    }
}

/// Runs `body` with a loader whose skills directory is a fresh temporary folder.
func withLoader<T>(
    _ settings: [String: String] = [:], configure: (inout LoaderConfiguration) -> Void = { _ in }, _ body: (LoaderFixture) async throws -> T
) async throws -> T {
    let root = NSTemporaryDirectory() + "atom-loader-test-\(UUID().uuidString)"
    let skills = root + "/skills"
    try FileManager.default.createDirectory(atPath: skills, withIntermediateDirectories: true)
    var environment = ["SKILLS_DIRS": skills, "LOADER_HOST_IDLE_SECONDS": "0"]
    for (key, value) in settings { environment[key] = value }
    var configuration = try LoaderConfiguration(home: root + "/home", environment: environment)
    configure(&configuration)
    var logger = Logger(label: "atom-loader-test")
    logger.logLevel = .warning
    let loader = Loader(configuration: configuration, logger: logger) { throw RPCError(.unavailable, "no gateway in this test") }
    let fixture = LoaderFixture(root: root, skills: skills, loader: loader)
    await loader.start(metrics: fixture.metrics)
    do {
        let result = try await body(fixture)
        await loader.shutdown()
        try? FileManager.default.removeItem(atPath: root)
        return result
    } catch {
        await loader.shutdown()
        try? FileManager.default.removeItem(atPath: root)
        throw error
    }
}

/// Whether a process is alive (and not a zombie).
func processIsAlive(_ pid: Int32) -> Bool {
    guard kill(pid, 0) == 0 else { return false }
    let status = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
    return !status.isEmpty && !status.contains(") Z ")
}

func expectLoaderError(_ code: StatusCode, reason: String? = nil, mentions: [String] = [], _ body: () async throws -> Void, sourceLocation: SourceLocation = #_sourceLocation) async {
    do {
        try await body()
        Issue.record("expected \(code.displayName)", sourceLocation: sourceLocation)
    } catch let error as LoaderError {
        #expect(error.code == code, "\(error)", sourceLocation: sourceLocation)
        if let reason { #expect(error.reason == reason, "\(error)", sourceLocation: sourceLocation) }
        for text in mentions { #expect(error.message.contains(text), "\(error.message) should mention \(text)", sourceLocation: sourceLocation) }
    } catch {
        Issue.record("unexpected \(error)", sourceLocation: sourceLocation)
    }
}
