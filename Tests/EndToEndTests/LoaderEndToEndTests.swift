import AtomAPI
import AtomCLI
import AtomProto
import AtomRPC
import AtomTesting
import Foundation
import Testing

/// The real gateway, `atom-installer` and `atom-loader` processes; skills with packages get
/// their environment from the installer (an offline wheelhouse), hosts run in the sandbox.
@Suite("Loader end to end", .serialized, .timeLimit(.minutes(5)))
struct LoaderEndToEndTests {
    func withLoaderStack<T>(_ body: (LocalStack, LoaderClient, String) async throws -> T) async throws -> T {
        let scratch = try ScratchDirectory("loader-e2e")
        defer { scratch.remove() }
        let wheelhouse = scratch.path + "/wheels"
        try InstallerFixtures.makeWheelhouse(at: wheelhouse)
        let skills = scratch.path + "/skills"
        try FileManager.default.createDirectory(atPath: skills, withIntermediateDirectories: true)
        return try await withProcessStack(echoInstances: 0) { stack in
            try stack.startInstaller()
            try stack.start("atom-loader", name: "loader-1", environment: [
                "ATOM_INSTANCE_ID": "loader-1", "SKILLS_DIRS": skills, "LOADER_INSTALL_FIND_LINKS": wheelhouse, "LOADER_INSTALL_OFFLINE": "true",
            ])
            do {
                try await stack.waitForService("atom.v1.Installer")
                try await stack.waitForService("atom.v1.Loader")
                let client = try RPCClient(endpoint: stack.endpoint)
                defer { client.close() }
                return try await body(stack, LoaderClient(client), skills)
            } catch {
                print("--- loader log ---\n\(stack.log(of: "loader-1").suffix(3000))")
                throw error
            }
        }
    }

    static func writeSkill(_ folder: String, name: String, packages: String = "[]", code: String) throws {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try """
            name: \(name)
            version: "0.1.0"
            description: An end-to-end test skill.
            category: test
            runtime: python
            packages: \(packages)
            """.write(toFile: "\(folder)/skill.yaml", atomically: true, encoding: .utf8)
        try code.write(toFile: "\(folder)/main.py", atomically: true, encoding: .utf8)
    }

    /// Every descendant of `pid` (by /proc's parent links).
    static func descendants(of pid: Int32) -> [Int32] {
        var parents: [Int32: Int32] = [:]
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let child = Int32(entry), let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { continue }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            if fields.count > 1, let parent = Int32(fields[1]) { parents[child] = parent }
        }
        var result: [Int32] = []
        var frontier = [pid]
        while let next = frontier.popLast() {
            let children = parents.filter { $0.value == next }.map(\.key)
            result += children
            frontier += children
        }
        return result
    }

    static func alive(_ pid: Int32) -> Bool {
        guard kill(pid, 0) == 0 else { return false }
        let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
        return !stat.isEmpty && !stat.contains(") Z ")
    }

    @Test("a skill with packages is installed through the installer and runs in that environment; CLI and metrics through the gateway")
    func packagesThroughInstaller() async throws {
        try await withLoaderStack { stack, loader, skills in
            try Self.writeSkill("\(skills)/uses-delta", name: "uses-delta", packages: #"["delta==0.5"]"#, code: """
                import delta
                def execute(inputs):
                    return {"delta": delta.__version__, "twice": inputs.get("n", 0) * 2}
                """)
            let loaded = try await loader.loadSkill(LoadSkillRequest(path: "\(skills)/uses-delta"), options: CallOptions(timeout: .seconds(120)))
            let info = try #require(loaded.skill)
            #expect(!info.environmentId.isEmpty)
            #expect(info.packages == ["delta==0.5"])
            let response = try await loader.executeSkill(ExecuteSkillRequest(name: "uses-delta", inputsJson: #"{"n": 21}"#))
            #expect(response.failure == nil)
            #expect(response.outputsJson == #"{"delta": "0.5", "twice": 42}"#)
            let cached = try await loader.getSkill(GetSkillRequest(name: "uses-delta"))
            #expect(cached.executions == 1 && cached.contentHash == info.contentHash)

            let environment = ["ATOM_GATEWAY": stack.endpoint, "ATOM_HOME": stack.home]
            let exec = try CLI.run(["skill", "exec", "uses-delta", #"{"n": 1}"#, "--json"], environment: environment)
            #expect(exec.status == 0, "\(exec.output)")
            #expect(exec.output.contains(#""outputs" : "{\"delta\": \"0.5\", \"twice\": 2}""#), "\(exec.output)")
            let list = try CLI.run(["skill", "list"], environment: environment)
            #expect(list.status == 0 && list.output.contains("uses-delta 0.1.0"), "\(list.output)")
            let missing = try CLI.run(["skill", "get", "nope"], environment: environment)
            #expect(missing.status == 4 && missing.output.contains("NOT_FOUND"), "\(missing.output)")
            let outside = try CLI.run(["skill", "load", "/etc"], environment: environment)
            #expect(outside.status == 4 && outside.output.contains("PERMISSION_DENIED"), "\(outside.output)")

            let metrics = try await GatewayClient(loader.rpc).metrics(GatewayMetricsRequest())
            let operations = Dictionary(uniqueKeysWithValues: metrics.operations.map { ($0.operation, $0.count) })
            #expect(operations["skill_load"] == 1)
            #expect(operations["skill_execute"] == 2)
            #expect(operations["package_install"] == 1)

            // A skill in the skills directories runs without a LoadSkill first; one that is not
            // there is NOT_FOUND with its name.
            try Self.writeSkill("\(skills)/plain", name: "plain", packages: "[]", code: """
                def execute(inputs):
                    return {"plain": True}
                """)
            let direct = try CLI.run(["skill", "exec", "plain", "{}"], environment: environment)
            #expect(direct.status == 0 && direct.output.contains("plain"), "\(direct.output)")
            let absent = try CLI.run(["skill", "exec", "no-such-skill", "{}"], environment: environment)
            #expect(absent.status == 4 && absent.output.contains("NOT_FOUND") && absent.output.contains("no-such-skill"), "\(absent.output)")

            // Inputs that break the skill's inputs schema are refused before it runs, naming the
            // field and the rule, over RPC and in the CLI.
            try Self.writeSkill("\(skills)/typed", name: "typed", packages: "[]", code: """
                def execute(inputs):
                    return {"twice": inputs["n"] * 2}
                """)
            let manifest = try String(contentsOfFile: "\(skills)/typed/skill.yaml", encoding: .utf8)
            try (manifest + "\ninputs: {type: object, properties: {n: {type: integer, minimum: 0}}, required: [n]}\n")
                .write(toFile: "\(skills)/typed/skill.yaml", atomically: true, encoding: .utf8)
            do {
                _ = try await loader.executeSkill(ExecuteSkillRequest(name: "typed", inputsJson: #"{"n": -1}"#))
                Issue.record("inputs breaking the schema were accepted")
            } catch let error as RPCError {
                #expect(error.code == .invalidArgument, "\(error)")
                #expect(error.reason == "INPUTS_SCHEMA_VIOLATION", "\(error)")
                #expect(error.message.contains("inputs.n: -1 is less than the minimum 0 (minimum)"), "\(error)")
            }
            let refused = try CLI.run(["skill", "exec", "typed", #"{"n": "two"}"#], environment: environment)
            #expect(refused.status != 0 && refused.output.contains("INVALID_ARGUMENT") && refused.output.contains("inputs.n: expected an integer, got a string (type)"), "\(refused.output)")
            let typed = try await loader.executeSkill(ExecuteSkillRequest(name: "typed", inputsJson: #"{"n": 4}"#))
            #expect(typed.outputsJson == #"{"twice": 8}"#)
            #expect(try await loader.getSkill(GetSkillRequest(name: "typed")).executions == 1, "the refused calls never ran")
        }
    }

    @Test("a SIGKILLed loader leaves no host process behind; neither does a stopped one")
    func noLeakedHosts() async throws {
        try await withLoaderStack { stack, loader, skills in
            try Self.writeSkill("\(skills)/busy", name: "busy", code: """
                def execute(inputs):
                    if inputs.get("spin"):
                        while True:
                            pass
                    return {"ok": True}
                """)
            _ = try await loader.loadSkill(LoadSkillRequest(name: "busy"))
            _ = try await loader.executeSkill(ExecuteSkillRequest(name: "busy"))
            let process = try #require(stack.started.first { $0.name == "loader-1" })
            // One host busy in an endless loop, so it cannot notice the closed pipe by itself.
            let spinning = Task { try? await loader.executeSkill(ExecuteSkillRequest(name: "busy", inputsJson: #"{"spin": true}"#), options: CallOptions(timeout: .seconds(30))) }
            var hosts: [Int32] = []
            let deadline = ContinuousClock.now + .seconds(10)
            while ContinuousClock.now < deadline {
                hosts = Self.descendants(of: process.pid)
                // The sandbox: bwrap, its init in the PID namespace, the interpreter (busy).
                if hosts.count >= 3 { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(hosts.count >= 3, "hosts: \(hosts)")
            try await Task.sleep(for: .milliseconds(200))
            process.kill()
            #expect(await process.waitForExit(timeout: .seconds(5)))
            let gone = ContinuousClock.now + .seconds(10)
            while hosts.contains(where: Self.alive) && ContinuousClock.now < gone { try await Task.sleep(for: .milliseconds(50)) }
            #expect(!hosts.contains(where: Self.alive), "left behind: \(hosts.filter(Self.alive))")
            spinning.cancel()

            // A graceful stop too.
            let second = try stack.start("atom-loader", name: "loader-2", environment: ["ATOM_INSTANCE_ID": "loader-2", "SKILLS_DIRS": skills])
            try await stack.waitForService("atom.v1.Loader")
            _ = try await loader.loadSkill(LoadSkillRequest(name: "busy"))
            _ = try await loader.executeSkill(ExecuteSkillRequest(name: "busy"))
            let secondHosts = Self.descendants(of: second.pid)
            #expect(!secondHosts.isEmpty)
            second.terminate()
            #expect(await second.waitForExit(timeout: .seconds(10)))
            #expect(second.exitStatus == 0)
            let stopped = ContinuousClock.now + .seconds(10)
            while secondHosts.contains(where: Self.alive) && ContinuousClock.now < stopped { try await Task.sleep(for: .milliseconds(50)) }
            #expect(!secondHosts.contains(where: Self.alive))
        }
    }
}
