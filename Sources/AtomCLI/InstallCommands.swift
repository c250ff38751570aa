internal import ArgumentParser
internal import AtomAPI
internal import AtomProto
internal import AtomRPC
internal import Foundation

/// Options shared by `atom install` and `atom resolve`: type and package sources.
struct PackageSourceOptions: ParsableArguments {
    @Option(name: .long, help: "Package type: python or npm.")
    var type: String = "python"

    @Option(name: .long, help: "Package index URL (python) or registry (npm).")
    var indexURL: String?

    @Option(name: .long, help: "Extra index URL (python); repeatable.")
    var extraIndexURL: [String] = []

    @Option(name: .long, help: "A directory of wheels or npm tarballs to install from; repeatable.")
    var findLinks: [String] = []

    @Flag(name: .long, help: "Use no network: only the local cache and --find-links.")
    var offline = false

    @Flag(name: .long, help: "Refuse source distributions (python).")
    var wheelsOnly = false

    func packageType() throws -> PackageType {
        switch type {
        case "python": .python
        case "npm": .npm
        default: throw CLIFailure(.usage, "--type \(type) is unknown; use python or npm")
        }
    }

    func installOptions(memory: String = "", cpus: String = "", force: Bool = false) -> InstallOptions {
        InstallOptions(
            memoryLimit: memory, cpuLimit: cpus, indexUrl: indexURL ?? "", extraIndexUrls: extraIndexURL,
            findLinks: findLinks.map { $0.hasPrefix("/") || $0.contains("://") ? $0 : FileManager.default.currentDirectoryPath + "/" + $0 },
            offline: offline, force: force, wheelsOnly: wheelsOnly)
    }
}

/// `atom install`: one skill's packages with a progress bar, or a batch from a JSON file.
struct InstallCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "install",
        abstract: "Install packages into a content-addressed skill environment.",
        discussion: """
            Examples: atom install requests==2.28.0 'pandas>=2'; atom install --type npm lodash@^4; \
            atom install --batch skills.json, where the file is a JSON list of \
            {"skill_id": "...", "packages": ["..."], "type": "python"|"npm", "memory_limit": "512m", "cpu_limit": "1.0"}.
            """)

    @OptionGroup var options: GatewayOptions
    @OptionGroup var sources: PackageSourceOptions

    @Option(name: .long, help: "The skill the environment is for.")
    var skill: String = ""

    @Option(name: .long, help: "The agent asking (recorded in the audit log).")
    var agent: String = "atom-cli"

    @Option(name: .long, help: "Memory limit stored with the skill, like 512m or 1g.")
    var memory: String = ""

    @Option(name: .long, help: "CPU limit stored with the skill, like 0.5 or 2.")
    var cpus: String = ""

    @Flag(name: .long, help: "Build a fresh environment even when one is cached.")
    var force = false

    @Option(name: .long, help: "A JSON file with a list of installs to run as one batch.")
    var batch: String?

    @Option(name: .long, help: "Seconds to wait for the install (default 900).", transform: SecondsArgument.parse)
    var deadline: Double = 900

    @Argument(help: "Requirement strings, like requests==2.28.0 or lodash@^4.")
    var packages: [String] = []

    func run() async throws {
        try await reportingFailures(json: options.json) {
            let client = try options.client()
            defer { client.close() }
            let installer = InstallerClient(client)
            let callOptions = SecondsArgument.callOptions(deadline)
            if let batch {
                guard packages.isEmpty else { throw CLIFailure(.usage, "give either --batch FILE or packages, not both") }
                let response = try await installer.batchInstall(try batchRequest(batch), options: callOptions)
                if options.json { try printJSON(response.results.map(ResultView.init)) } else {
                    for result in response.results { print(ResultView(result).line) }
                    print("\(response.total) total, \(response.successes) succeeded, \(response.failures) failed")
                }
                if response.failures > 0 { throw ExitCode(ExitStatus.failure.rawValue) }
                return
            }
            guard !packages.isEmpty else { throw CLIFailure(.usage, "name at least one package (or --batch FILE)") }
            let request = InstallRequest(
                skillId: skill, packages: packages, packageType: try sources.packageType(), agentId: agent,
                options: sources.installOptions(memory: memory, cpus: cpus, force: force))
            var final: InstallResult?
            let interactive = isatty(STDERR_FILENO) == 1
            for try await event in installer.installDependencies(request, options: callOptions) {
                if event.phase == .done, let result = event.result {
                    final = result
                } else if !options.json {
                    Self.progress(event, interactive: interactive)
                }
            }
            if interactive && !options.json { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
            guard let result = final else { throw CLIFailure(.serviceError, "the installer ended the stream without a result") }
            if options.json { try printJSON(ResultView(result)) } else {
                print(ResultView(result).line)
                for warning in result.warnings { print("  warning: \(warning)") }
                for conflict in result.conflicts { print("  conflict: \(conflict.requirements.joined(separator: " vs ")): \(conflict.reason)") }
                for package in result.locked { print("  \(package.name)==\(package.version)") }
            }
            if !result.success { throw ExitCode(ExitStatus.failure.rawValue) }
        }
    }

    /// A bar on a terminal, one line per phase otherwise.
    static func progress(_ event: InstallEvent, interactive: Bool) {
        let phase = event.phase.protoName.replacingOccurrences(of: "INSTALL_PHASE_", with: "").lowercased()
        if interactive {
            let width = 24
            let filled = min(width, max(0, Int(event.progress * Double(width))))
            let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
            FileHandle.standardError.write(Data("\r\u{1B}[K[\(bar)] \(Int(event.progress * 100))% \(phase): \(event.message)".utf8))
        } else {
            FileHandle.standardError.write(Data("\(phase) \(Int(event.progress * 100))%: \(event.message)\n".utf8))
        }
    }

    struct BatchItem: Decodable {
        let skill_id: String?
        let packages: [String]
        let type: String?
        let memory_limit: String?
        let cpu_limit: String?
    }

    func batchRequest(_ path: String) throws -> BatchInstallRequest {
        guard let data = FileManager.default.contents(atPath: path) else { throw CLIFailure(.usage, "cannot read \(path)") }
        let items: [BatchItem]
        do {
            items = try JSONDecoder().decode([BatchItem].self, from: data)
        } catch {
            throw CLIFailure(.usage, "\(path) is not a JSON list of {\"skill_id\", \"packages\", \"type\"}: \(DecodingProblem.describe(error))")
        }
        var installations: [InstallRequest] = []
        for (index, item) in items.enumerated() {
            let type: PackageType
            switch item.type ?? sources.type {
            case "python": type = .python
            case "npm": type = .npm
            default: throw CLIFailure(.usage, "\(path) item \(index): type \(item.type ?? "") is unknown; use python or npm")
            }
            installations.append(InstallRequest(
                skillId: item.skill_id ?? "", packages: item.packages, packageType: type, agentId: agent,
                options: sources.installOptions(memory: item.memory_limit ?? "", cpus: item.cpu_limit ?? "", force: force)))
        }
        return BatchInstallRequest(installations: installations, agentId: agent)
    }

    /// The JSON shape of one install result.
    struct ResultView: Encodable {
        let skill_id: String, success: Bool, environment_id: String, cached: Bool, duration_ms: UInt64
        let locked: [String], warnings: [String], error: String, conflicts: [String]

        init(_ result: InstallResult) {
            skill_id = result.skillId
            success = result.success
            environment_id = result.environmentId
            cached = result.cached
            duration_ms = result.durationMs
            locked = result.locked.map { "\($0.name)==\($0.version)" }
            warnings = result.warnings
            error = result.error
            conflicts = result.conflicts.map { "\($0.requirements.joined(separator: " vs ")): \($0.reason)" }
        }

        var line: String {
            let who = skill_id.isEmpty ? "" : "\(skill_id): "
            if success {
                return "\(who)ok  environment \(environment_id.prefix(16))  \(cached ? "cached" : "built")  \(locked.count) package(s)  \(duration_ms) ms"
            }
            return "\(who)FAILED  \(error)"
        }
    }
}

/// `atom resolve`: the lock for a set of requirements, or the conflicts.
struct ResolveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "resolve", abstract: "Resolve requirements to exact versions, or show why they conflict.")

    @OptionGroup var options: GatewayOptions
    @OptionGroup var sources: PackageSourceOptions

    @Flag(name: .long, help: "Only the direct conflict check (no resolver, no network).")
    var directOnly = false

    @Argument(help: "Requirement strings.")
    var packages: [String] = []

    func run() async throws {
        try await reportingFailures(json: options.json) {
            guard !packages.isEmpty else { throw CLIFailure(.usage, "name at least one package") }
            let client = try options.client()
            defer { client.close() }
            let request = ResolveRequest(
                packages: packages, packageType: try sources.packageType(), options: sources.installOptions(), directOnly: directOnly)
            let response = try await InstallerClient(client).resolveDependencies(
                request, options: CallOptions(timeout: .seconds(max(Int64(options.timeout), 300))))
            if options.json {
                try printJSON(ResolveView(
                    ok: response.ok, cached: response.cached, locked: response.locked.map { "\($0.name)==\($0.version)" },
                    conflicts: response.conflicts.map { "\($0.requirements.joined(separator: " vs ")): \($0.reason)" }))
            } else if response.ok {
                if response.locked.isEmpty { print("no direct conflicts") }
                for package in response.locked { print("\(package.name)==\(package.version)") }
            } else {
                for conflict in response.conflicts {
                    print("conflict\(conflict.package.isEmpty ? "" : " on \(conflict.package)"): \(conflict.requirements.joined(separator: " vs "))")
                    print("  \(conflict.reason)")
                }
            }
            if !response.ok { throw ExitCode(ExitStatus.failure.rawValue) }
        }
    }

    struct ResolveView: Encodable {
        let ok: Bool, cached: Bool, locked: [String], conflicts: [String]
    }
}

/// `atom envs`: the environment store.
struct EnvsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "envs", abstract: "Manage skill environments.", subcommands: [EnvsListCommand.self, EnvsGCCommand.self], defaultSubcommand: EnvsListCommand.self)
}

struct EnvsListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List the environments the installer built.")

    @OptionGroup var options: GatewayOptions

    func run() async throws {
        try await reportingFailures(json: options.json) {
            let client = try options.client()
            defer { client.close() }
            let response = try await InstallerClient(client).listEnvironments(ListEnvironmentsRequest(), options: options.callOptions)
            if options.json {
                try printJSON(response.environments.map {
                    EnvView(
                        environment_id: $0.environmentId, type: $0.packageType == .npm ? "npm" : "python", runtime: $0.runtime,
                        platform: $0.platform, requirements: $0.requirements, locked: $0.locked.map { "\($0.name)==\($0.version)" },
                        created_unix_ms: $0.createdUnixMs, size_bytes: $0.sizeBytes)
                })
                return
            }
            if response.environments.isEmpty { print("no environments") }
            for env in response.environments {
                let size = String(format: "%.1f MB", Double(env.sizeBytes) / 1_048_576)
                print("\(env.environmentId.prefix(16))  \(env.packageType == .npm ? "npm" : "python")  \(env.runtime)  \(env.locked.count) package(s)  \(size)  \(env.requirements.joined(separator: " "))")
            }
        }
    }

    struct EnvView: Encodable {
        let environment_id: String, type: String, runtime: String, platform: String, requirements: [String], locked: [String]
        let created_unix_ms: UInt64, size_bytes: UInt64
    }
}

struct EnvsGCCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gc", abstract: "Remove environments unused for a period, or the least recently used above a size.",
        discussion: "An environment built or served in the last minute is never removed.")

    @OptionGroup var options: GatewayOptions

    @Option(name: .long, help: "Remove environments unused for this long: seconds, or 30m, 12h, 7d.")
    var unusedFor: String?

    @Option(name: .long, help: "Then remove the least recently used while the store is larger: bytes, or 500m, 20g.")
    var maxSize: String?

    @Flag(name: .long, help: "Show what would be removed; remove nothing.")
    var dryRun = false

    func run() async throws {
        try await reportingFailures(json: options.json) {
            var request = CollectGarbageRequest(dryRun: dryRun)
            if let unusedFor { request.unusedForSeconds = try Self.seconds(unusedFor) }
            if let maxSize {
                let trimmed = maxSize.lowercased()
                let units: [(String, Double)] = [("k", 1_024), ("m", 1_048_576), ("g", 1_073_741_824), ("t", 1_099_511_627_776)]
                let unit = units.first { trimmed.hasSuffix($0.0) }
                guard let value = Double(unit.map { _ in String(trimmed.dropLast()) } ?? trimmed), value > 0 else {
                    throw CLIFailure(.usage, "--max-size \(maxSize) is not a size like 500m or 20g")
                }
                request.maxBytes = UInt64(value * (unit?.1 ?? 1))
            }
            guard request.unusedForSeconds > 0 || request.maxBytes > 0 else {
                throw CLIFailure(.usage, "give --unused-for or --max-size")
            }
            let client = try options.client()
            defer { client.close() }
            let response = try await InstallerClient(client).collectGarbage(request, options: options.callOptions)
            if options.json {
                try printJSON(GCView(removed: response.removed, freed_bytes: response.freedBytes, kept: response.kept, dry_run: dryRun))
                return
            }
            for id in response.removed { print("\(dryRun ? "would remove" : "removed") \(id.prefix(16))") }
            print(String(format: "%@%.1f MB freed, %d environment(s) kept", dryRun ? "dry run: " : "", Double(response.freedBytes) / 1_048_576, response.kept))
        }
    }

    static func seconds(_ text: String) throws -> UInt64 {
        let units: [Character: UInt64] = ["s": 1, "m": 60, "h": 3_600, "d": 86_400]
        var body = text
        var multiplier: UInt64 = 1
        if let last = text.last, let unit = units[last] {
            multiplier = unit
            body.removeLast()
        }
        guard let value = UInt64(body), value > 0, value <= 36_500 * 86_400 / multiplier else {
            throw CLIFailure(.usage, "--unused-for \(text) is not a duration like 3600, 30m, 12h or 7d")
        }
        return value * multiplier
    }

    struct GCView: Encodable {
        let removed: [String], freed_bytes: UInt64, kept: UInt32, dry_run: Bool
    }
}
