internal import ArgumentParser
internal import AtomAPI
internal import AtomProto
internal import AtomRPC
internal import Foundation

/// `atom skill`: the loader's skills.
struct SkillCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "skill", abstract: "Load, run, reload and unload skills (the loader service).",
        subcommands: [
            SkillLoadCommand.self, SkillGetCommand.self, SkillListCommand.self, SkillExecCommand.self, SkillReloadCommand.self,
            SkillUnloadCommand.self, SkillClearCommand.self,
        ])
}

/// The JSON shape of a skill's info.
struct SkillView: Encodable {
    let name: String, version: String, path: String, runtime: String, content_hash: String, environment_id: String
    let description: String, category: String, entry: String, function: String, packages: [String], network: Bool
    let memory_limit_bytes: UInt64, timeout_ms: UInt32, loaded_at_ms: UInt64, last_used_ms: UInt64
    let executions: UInt64, failures: UInt64, reloads: UInt64, last_reload_ms: UInt64, last_error: String, sandboxed: Bool

    init(_ info: SkillInfo) {
        name = info.name
        version = info.version
        path = info.path
        runtime = info.runtime
        content_hash = info.contentHash
        environment_id = info.environmentId
        description = info.description
        category = info.category
        entry = info.entry
        function = info.function
        packages = info.packages
        network = info.network
        memory_limit_bytes = info.memoryLimitBytes
        timeout_ms = info.timeoutMs
        loaded_at_ms = info.loadedAtMs
        last_used_ms = info.lastUsedMs
        executions = info.executions
        failures = info.failures
        reloads = info.reloads
        last_reload_ms = info.lastReloadMs
        last_error = info.lastError
        sandboxed = info.sandboxed
    }

    var line: String {
        let environment = environment_id.isEmpty ? "system" : "env \(environment_id.prefix(12))"
        var text = "\(name) \(version)  \(runtime)  \(environment)  \(content_hash.prefix(12))  \(executions) run(s), \(failures) failed, \(reloads) reload(s)"
        if !sandboxed { text += "  UNSANDBOXED" }
        if !last_error.isEmpty { text += "\n  last reload failed (previous version serving): \(last_error.split(separator: "\n").first ?? "")" }
        return text
    }
}

struct LoadView: Encodable {
    let skill: SkillView?, cached: Bool, duration_us: UInt64

    init(_ response: LoadSkillResponse) {
        skill = response.skill.map(SkillView.init)
        cached = response.cached
        duration_us = response.durationUs
    }

    func line(_ verb: String) -> String {
        let what = skill.map { "\($0.name) \($0.version) (\($0.content_hash.prefix(12)))" } ?? "?"
        return cached ? "\(what): unchanged, nothing to do" : "\(verb) \(what) in \(String(format: "%.1f", Double(duration_us) / 1000)) ms"
    }
}

struct SkillLoadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "load", abstract: "Load a skill folder (or a skill by name from the skills directories).",
        discussion: "The folder must be inside the loader's SKILLS_DIRS. Packages are installed through the installer first.")

    @OptionGroup var options: GatewayOptions

    @Argument(help: "A skill folder (a path) or a skill name.")
    var skill: String

    @Option(name: .long, help: "Seconds to wait (package installs can take minutes).", transform: SecondsArgument.parse)
    var deadline: Double = 900

    func run() async throws {
        try await reportingFailures(json: options.json) {
            let client = try options.client()
            defer { client.close() }
            let looksLikePath = skill.contains("/") || skill == "." || FileManager.default.fileExists(atPath: skill)
            var request = LoadSkillRequest()
            if looksLikePath {
                // The loader runs elsewhere: send an absolute path.
                request.path = skill.hasPrefix("/") ? skill : FileManager.default.currentDirectoryPath + "/" + skill
                request.path = URL(fileURLWithPath: request.path).standardizedFileURL.path
            } else {
                request.name = skill
            }
            let response = try await LoaderClient(client).loadSkill(request, options: SecondsArgument.callOptions(deadline))
            if options.json { try printJSON(LoadView(response)) } else { print(LoadView(response).line("loaded")) }
        }
    }
}

struct SkillGetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "get", abstract: "Show a loaded skill.")

    @OptionGroup var options: GatewayOptions

    @Argument(help: "The skill's name.")
    var name: String

    func run() async throws {
        try await reportingFailures(json: options.json) {
            let client = try options.client()
            defer { client.close() }
            let info = try await LoaderClient(client).getSkill(GetSkillRequest(name: name), options: options.callOptions)
            let view = SkillView(info)
            if options.json {
                try printJSON(view)
                return
            }
            print(view.line)
            print("  \(view.description)")
            print("  path \(view.path), entry \(view.entry):\(view.function)")
            if !view.packages.isEmpty { print("  packages \(view.packages.joined(separator: " "))") }
            print("  network \(view.network ? "allowed" : "none"), memory \(view.memory_limit_bytes >> 20) MiB, timeout \(view.timeout_ms) ms")
        }
    }
}

struct SkillListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List loaded skills and recent reloads.")

    @OptionGroup var options: GatewayOptions

    struct ListView: Encodable {
        let skills: [SkillView]
        let reloads: [ReloadView]
    }

    struct ReloadView: Encodable {
        let name: String, at_ms: UInt64, trigger: String, outcome: String, message: String, content_hash: String, duration_us: UInt64
    }

    func run() async throws {
        try await reportingFailures(json: options.json) {
            let client = try options.client()
            defer { client.close() }
            let response = try await LoaderClient(client).listSkills(ListSkillsRequest(), options: options.callOptions)
            let reloads = response.reloads.map {
                ReloadView(name: $0.name, at_ms: $0.atMs, trigger: $0.trigger, outcome: $0.outcome, message: $0.message, content_hash: $0.contentHash, duration_us: $0.durationUs)
            }
            if options.json {
                try printJSON(ListView(skills: response.skills.map(SkillView.init), reloads: reloads))
                return
            }
            if response.skills.isEmpty { print("no skills loaded") }
            for info in response.skills { print(SkillView(info).line) }
            if !reloads.isEmpty {
                print("recent reloads:")
                let formatter = ISO8601DateFormatter()
                for event in reloads.suffix(10) {
                    let at = formatter.string(from: Date(timeIntervalSince1970: Double(event.at_ms) / 1000))
                    let message = event.message.split(separator: "\n").first.map { ": \($0)" } ?? ""
                    print("  \(at)  \(event.name)  \(event.trigger)  \(event.outcome)\(message)")
                }
            }
        }
    }
}

struct SkillExecCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "exec", abstract: "Run a loaded skill with JSON inputs.",
        discussion: "Example: atom skill exec text-stats '{\"text\": \"hello world\"}'. Exit code 1 when the skill raised.")

    @OptionGroup var options: GatewayOptions

    @Argument(help: "The skill's name.")
    var name: String

    @Argument(help: "Inputs: a JSON object, or @FILE.")
    var inputs: String = "{}"

    @Option(name: .long, help: "The skill's time limit in milliseconds (default: its manifest's).")
    var timeoutMs: UInt32 = 0

    struct ExecView: Encodable {
        let outputs: String?, duration_us: UInt64, content_hash: String, logs: String
        let failure: FailureView?
    }

    struct FailureView: Encodable {
        let type: String, message: String, traceback: String
    }

    func run() async throws {
        try await reportingFailures(json: options.json) {
            var text = inputs
            if text.hasPrefix("@") {
                let file = String(text.dropFirst())
                guard !file.isEmpty else { throw CLIFailure(.usage, "@ names no file: give inputs as @FILE or as a JSON object") }
                guard let data = FileManager.default.contents(atPath: file) else {
                    throw CLIFailure(.usage, "cannot read \(file)")
                }
                guard let decoded = String(validating: data, as: UTF8.self) else { throw CLIFailure(.usage, "\(file) is not UTF-8 text") }
                text = decoded
            }
            let client = try options.client()
            defer { client.close() }
            // The call waits for the skill's own limit; the gateway option is the floor.
            let wait = max(options.timeout, Double(timeoutMs) / 1000 + 1, timeoutMs == 0 ? 3_700 : 0)
            let response = try await LoaderClient(client).executeSkill(
                ExecuteSkillRequest(name: name, inputsJson: text, timeoutMs: timeoutMs), options: CallOptions(timeout: .milliseconds(Int64(wait * 1000))))
            if options.json {
                try printJSON(ExecView(
                    outputs: response.failure == nil ? response.outputsJson : nil, duration_us: response.durationUs, content_hash: response.contentHash,
                    logs: response.logs, failure: response.failure.map { FailureView(type: $0.type, message: $0.message, traceback: $0.traceback) }))
            } else {
                if !response.logs.isEmpty { FileHandle.standardError.write(Data(response.logs.utf8)) }
                if let failure = response.failure {
                    FileHandle.standardError.write(Data("\(failure.traceback.isEmpty ? "" : failure.traceback + "\n")skill raised \(failure.type): \(failure.message)\n".utf8))
                } else {
                    print(response.outputsJson)
                }
            }
            if response.failure != nil { throw ExitCode(ExitStatus.failure.rawValue) }
        }
    }
}

struct SkillReloadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reload", abstract: "Reload a skill from its folder (the old version keeps serving if the new one fails).")

    @OptionGroup var options: GatewayOptions

    @Argument(help: "The skill's name.")
    var name: String

    func run() async throws {
        try await reportingFailures(json: options.json) {
            let client = try options.client()
            defer { client.close() }
            let response = try await LoaderClient(client).reloadSkill(ReloadSkillRequest(name: name), options: CallOptions(timeout: .seconds(900)))
            if options.json { try printJSON(LoadView(response)) } else { print(LoadView(response).line("reloaded")) }
        }
    }
}

struct SkillUnloadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "unload", abstract: "Unload a skill.")

    @OptionGroup var options: GatewayOptions

    @Argument(help: "The skill's name.")
    var name: String

    struct UnloadView: Encodable { let name: String, unloaded: Bool }

    func run() async throws {
        try await reportingFailures(json: options.json) {
            let client = try options.client()
            defer { client.close() }
            let response = try await LoaderClient(client).unloadSkill(UnloadSkillRequest(name: name), options: options.callOptions)
            if options.json { try printJSON(UnloadView(name: name, unloaded: response.unloaded)) } else { print("unloaded \(name)") }
        }
    }
}

struct SkillClearCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "clear", abstract: "Unload every skill (ClearCache).")

    @OptionGroup var options: GatewayOptions

    struct ClearView: Encodable { let unloaded: UInt32 }

    func run() async throws {
        try await reportingFailures(json: options.json) {
            let client = try options.client()
            defer { client.close() }
            let response = try await LoaderClient(client).clearCache(ClearCacheRequest(), options: options.callOptions)
            if options.json { try printJSON(ClearView(unloaded: response.unloaded)) } else { print("unloaded \(response.unloaded) skill(s)") }
        }
    }
}
