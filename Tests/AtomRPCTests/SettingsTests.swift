import Foundation
import Testing

@testable import AtomRPC

@Suite("Configuration")
struct SettingsTests {
    func withHome(_ config: String?, _ body: (String) throws -> Void) throws {
        let home = NSTemporaryDirectory() + "atom-settings-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: home) }
        if let config { try config.write(toFile: "\(home)/config.env", atomically: true, encoding: .utf8) }
        try body(home)
    }

    @Test("environment over config file over defaults, with the source of each value")
    func precedence() throws {
        try withHome("# comment\nATOM_CAPACITY=8\nWORKFLOW_TIMEOUT_SECONDS=\"120\"\nATOM_LOG_LEVEL=warning\n") { home in
            let resolved = try AtomSettings.resolve(["ATOM_HOME": home, "ATOM_LOG_LEVEL": "debug", "PATH": "/bin"])
            #expect(resolved.configFile == "\(home)/config.env")
            #expect(resolved.value("ATOM_CAPACITY") == "8")
            #expect(resolved.sources["ATOM_CAPACITY"] == .file("\(home)/config.env"))
            #expect(resolved.value("WORKFLOW_TIMEOUT_SECONDS") == "120")
            #expect(resolved.value("ATOM_LOG_LEVEL") == "debug")
            #expect(resolved.sources["ATOM_LOG_LEVEL"] == .environment)
            #expect(resolved.value("MAX_CONCURRENT_INSTALLATIONS") == "3")
            #expect(resolved.sources["MAX_CONCURRENT_INSTALLATIONS"] == .defaultValue)
            #expect(resolved.bool("ENV_CACHE_ENABLED"))
            #expect(!resolved.bool("SKILL_HOT_RELOAD_ENABLED"))
            #expect(resolved.value("ATOM_METRICS_HTTP_PORT") == nil)
            #expect(resolved.value("PATH") == "/bin")
            let environment = try AtomEnvironment(resolved.values)
            #expect(environment.capacity == 8)
        }
    }

    @Test(
        "invalid values and unknown keys stop a process with a message naming them",
        arguments: [
            ("ATOM_CAPACITY=0\n", "ATOM_CAPACITY=0"),
            ("MAX_CONCURRENT_INSTALLATIONS=many\n", "MAX_CONCURRENT_INSTALLATIONS=many"),
            ("ENV_CACHE_ENABLED=perhaps\n", "expected true or false"),
            ("ATOM_GATEWAY=tcp://127.0.0.1:70000\n", "invalid port"),
            ("NOT_A_SETTING=1\n", "unknown setting NOT_A_SETTING"),
            ("just words\n", "expected KEY=value"),
            ("ATOM_HOME=/elsewhere\n", "can only be set in the environment"),
        ])
    func invalid(config: String, expected: String) throws {
        try withHome(config) { home in
            do {
                _ = try AtomSettings.resolve(["ATOM_HOME": home])
                Issue.record("accepted \(config)")
            } catch {
                #expect("\(error)".contains(expected), "\(error)")
            }
        }
    }

    @Test("an explicit ATOM_CONFIG must exist; an empty variable counts as unset")
    func explicitFile() throws {
        try withHome(nil) { home in
            #expect(throws: AtomEnvironment.InvalidSetting.self) {
                _ = try AtomSettings.resolve(["ATOM_HOME": home, "ATOM_CONFIG": "\(home)/missing.env"])
            }
            let resolved = try AtomSettings.resolve(["ATOM_HOME": home, "ATOM_CAPACITY": ""])
            #expect(resolved.value("ATOM_CAPACITY") == "64")
            #expect(resolved.configFile == nil)
        }
    }
}
