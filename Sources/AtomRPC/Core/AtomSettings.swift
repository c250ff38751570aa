internal import Foundation

/// Every setting a process of the stack reads, where its value comes from, and how it is
/// checked. Values come from, in order of precedence: the environment, the config file, the
/// default. The config file is `ATOM_CONFIG`, or else `$ATOM_HOME/config.env` when it exists:
/// `KEY=value` lines, `#` comments. An unknown key or an invalid value stops the process at
/// start with a message naming the key, the value and where it came from.
public enum AtomSettings {
    public enum Kind: Sendable {
        case text
        case endpoint
        case integer(ClosedRange<Int>)
        case boolean
        case file
        case logLevel
    }

    public struct Spec: Sendable {
        public let name: String
        /// nil: unset unless given.
        public let defaultValue: String?
        public let kind: Kind
        public let usedBy: String
        public let description: String
    }

    public static let specs: [Spec] = [
        Spec(name: "ATOM_GATEWAY", defaultValue: AtomEnvironment.defaultGateway, kind: .endpoint, usedBy: "all",
             description: "where the gateway listens and where clients and services connect"),
        Spec(name: "ATOM_GATEWAY_LOCAL", defaultValue: nil, kind: .endpoint, usedBy: "gateway",
             description: "a second endpoint the gateway listens on, for processes on its host (`atom up` sets ipc://$ATOM_HOME/run/gateway.ipc)"),
        Spec(name: "ATOM_HOME", defaultValue: "~/.atom", kind: .text, usedBy: "all", description: "state: logs, pid file, databases, environments"),
        Spec(name: "ATOM_CONFIG", defaultValue: nil, kind: .file, usedBy: "all", description: "this config file (default $ATOM_HOME/config.env if present)"),
        Spec(name: "ATOM_INSTANCE_ID", defaultValue: nil, kind: .text, usedBy: "services", description: "an instance's id (default <host>-<pid>-<random>)"),
        Spec(name: "ATOM_CAPACITY", defaultValue: "64", kind: .integer(1...100_000), usedBy: "services", description: "calls one instance runs at once"),
        Spec(name: "ATOM_HEARTBEAT_MS", defaultValue: "1000", kind: .integer(50...60_000), usedBy: "all", description: "liveness interval; silent for 3 means dead"),
        Spec(name: "ATOM_IDLE_POLL_US", defaultValue: "500", kind: .integer(0...100_000), usedBy: "gateway, clients",
             description: "microseconds the gateway and a client keep polling after call traffic before they sleep (a client only while at most one call is in flight; 0: sleep at once); saves wake-ups of halted vCPUs"),
        Spec(name: "ATOM_REACTOR_SLICE_US", defaultValue: "100", kind: .integer(0...100_000), usedBy: "all",
             description: "the scheduler slice (Linux 6.12 and later) of the threads every message passes: reactors and libzmq's I/O threads; 0 or 100-100,000; 0: the kernel's default; threads and processes they start keep the kernel's"),
        Spec(name: "ATOM_LOG_LEVEL", defaultValue: "info", kind: .logLevel, usedBy: "all", description: "trace, debug, info, notice, warning, error, critical"),
        Spec(name: "ATOM_CURVE_SECRET_KEY", defaultValue: nil, kind: .file, usedBy: "all", description: "this process's CurveZMQ secret key file (mode 0600)"),
        Spec(name: "ATOM_CURVE_SERVER_KEY", defaultValue: nil, kind: .file, usedBy: "clients, services", description: "the gateway's CurveZMQ public key file"),
        Spec(name: "ATOM_CURVE_AUTHORIZED_KEYS", defaultValue: nil, kind: .file, usedBy: "gateway", description: "public keys the gateway accepts, one per line"),
        Spec(name: "ATOM_METRICS_HTTP_PORT", defaultValue: nil, kind: .integer(1...65_535), usedBy: "gateway", description: "serve Prometheus text on this port"),
        Spec(name: "ATOM_METRICS_HTTP_ADDRESS", defaultValue: "127.0.0.1", kind: .text, usedBy: "gateway", description: "the address of the Prometheus endpoint"),
        Spec(name: "ATOM_METRICS_BASELINES", defaultValue: nil, kind: .file, usedBy: "gateway", description: "baselines file for regression alerts"),
        // The seed's production settings.
        Spec(name: "SKILL_HOT_RELOAD_ENABLED", defaultValue: "false", kind: .boolean, usedBy: "loader", description: "reload skills when their files change"),
        Spec(name: "WORKFLOW_TIMEOUT_SECONDS", defaultValue: "600", kind: .integer(1...86_400), usedBy: "workflow", description: "a workflow run's time limit"),
        Spec(name: "MAX_CONCURRENT_INSTALLATIONS", defaultValue: "3", kind: .integer(1...64), usedBy: "installer", description: "environment builds at once"),
        Spec(name: "ENV_CACHE_ENABLED", defaultValue: "true", kind: .boolean, usedBy: "installer", description: "reuse built environments (the seed's DOCKER_IMAGE_CACHE_ENABLED)"),
        Spec(name: "ENV_CACHE_MAX_BYTES", defaultValue: nil, kind: .integer(0...Int.max), usedBy: "installer", description: "size cap of the environment store; least recently used go first"),
        Spec(name: "ATOM_INSTALLER_PYTHON", defaultValue: "python3", kind: .text, usedBy: "installer", description: "the Python that skill environments use"),
        Spec(name: "ATOM_INSTALLER_UV", defaultValue: "uv", kind: .text, usedBy: "installer", description: "the uv executable (a path is used as given; a wrapper found on PATH, such as a pyenv shim, gives way to the real binary of the same version)"),
        Spec(name: "ATOM_INSTALLER_NPM", defaultValue: "npm", kind: .text, usedBy: "installer", description: "the npm executable"),
        Spec(name: "ATOM_INSTALLER_TIMEOUT_S", defaultValue: "600", kind: .integer(1...86_400), usedBy: "installer", description: "time limit of one environment build"),
        Spec(name: "ATOM_INSTALLER_RESOLUTION_TTL_S", defaultValue: "3600", kind: .integer(0...31_536_000), usedBy: "installer", description: "seconds a resolution (requirements to lock) is reused"),
        Spec(name: "ATOM_INSTALLER_TYPOSQUAT", defaultValue: "warn", kind: .text, usedBy: "installer", description: "warn, refuse or off for names close to popular packages"),
        Spec(name: "ATOM_INSTALLER_ALLOW", defaultValue: nil, kind: .text, usedBy: "installer", description: "allow-list mode: only these packages (comma-separated)"),
        Spec(name: "ATOM_INSTALLER_DENY", defaultValue: nil, kind: .text, usedBy: "installer", description: "packages never installed (comma-separated)"),
        Spec(name: "ATOM_INSTALLER_WHEELS_ONLY", defaultValue: "false", kind: .boolean, usedBy: "installer", description: "refuse source distributions"),
        Spec(name: "ATOM_INSTALLER_SCANNER", defaultValue: nil, kind: .text, usedBy: "installer", description: "a vulnerability scanner command; its failure fails the install"),
        Spec(name: "SKILLS_DIRS", defaultValue: nil, kind: .text, usedBy: "loader", description: "colon-separated skill folders (default: the repository's skills/ and $ATOM_HOME/skills)"),
        Spec(name: "LOADER_CACHE_SIZE", defaultValue: "100", kind: .integer(1...100_000), usedBy: "loader", description: "loaded skills at most (cache_size); least recently used unloaded first"),
        Spec(name: "LOADER_HOSTS_PER_ENVIRONMENT", defaultValue: "4", kind: .integer(1...64), usedBy: "loader", description: "skill host processes per environment"),
        Spec(name: "LOADER_HOST_IDLE_SECONDS", defaultValue: "300", kind: .integer(0...86_400), usedBy: "loader", description: "stop a host unused this long (0: never)"),
        Spec(name: "LOADER_SANDBOX", defaultValue: "bwrap", kind: .text, usedBy: "loader", description: "bwrap (fails closed) or off (development only)"),
        Spec(name: "LOADER_PRELOAD", defaultValue: nil, kind: .text, usedBy: "loader", description: "skills loaded at start (comma-separated names or paths)"),
        Spec(name: "LOADER_PYTHON", defaultValue: "python3", kind: .text, usedBy: "loader", description: "the Python of skills without packages"),
        Spec(name: "LOADER_NODE", defaultValue: "node", kind: .text, usedBy: "loader", description: "the Node of skills without packages"),
        Spec(name: "LOADER_RUNTIME_DIR", defaultValue: nil, kind: .text, usedBy: "loader", description: "the skill host programs (default: the repository's runtime/)"),
        Spec(name: "LOADER_ENVS_DIR", defaultValue: nil, kind: .text, usedBy: "loader", description: "the installer's environments (default $ATOM_HOME/envs)"),
        Spec(name: "LOADER_RELOAD_DEBOUNCE_MS", defaultValue: "20", kind: .integer(0...10_000), usedBy: "loader", description: "quiet time after file events before a hot reload"),
        Spec(name: "LOADER_INSTALL_INDEX_URL", defaultValue: nil, kind: .text, usedBy: "loader", description: "package index for skill packages"),
        Spec(name: "LOADER_INSTALL_FIND_LINKS", defaultValue: nil, kind: .text, usedBy: "loader", description: "local package folders for skill packages (comma-separated)"),
        Spec(name: "LOADER_INSTALL_OFFLINE", defaultValue: "false", kind: .boolean, usedBy: "loader", description: "install skill packages without network"),
        Spec(name: "MARKETPLACE_CACHE_TTL", defaultValue: "300", kind: .integer(0...86_400), usedBy: "marketplace", description: "seconds search results stay cached (0: no cache); every write invalidates them"),
        Spec(name: "MARKETPLACE_SEED_PATH", defaultValue: nil, kind: .text, usedBy: "marketplace", description: "skills imported at start (`atom up` sets the bundled skills/)"),
        Spec(name: "MARKETPLACE_IMPORT_CHUNK", defaultValue: "1000", kind: .integer(1...100_000), usedBy: "marketplace", description: "items per import transaction"),
        Spec(name: "MARKETPLACE_INSTALL_TIMEOUT_S", defaultValue: "900", kind: .integer(1...86_400), usedBy: "marketplace", description: "longest InstallSkill waits for the installer"),
        Spec(name: "WORKFLOW_CACHE_TTL", defaultValue: "60", kind: .integer(0...86_400), usedBy: "workflow", description: "seconds step results stay cached"),
        Spec(name: "WORKFLOW_MAX_PARALLELISM", defaultValue: "16", kind: .integer(1...1_024), usedBy: "workflow", description: "steps of one run at once (default and limit)"),
        Spec(name: "WORKFLOW_CACHE_MAX_ENTRIES", defaultValue: "10000", kind: .integer(0...1_000_000), usedBy: "workflow", description: "step results the cache keeps"),
        Spec(name: "WORKFLOW_CHECK_SKILLS", defaultValue: "auto", kind: .text, usedBy: "workflow", description: "off, auto or required: ask the loader about unknown skills"),
    ]

    public enum Source: Sendable, Hashable, CustomStringConvertible {
        case defaultValue
        case file(String)
        case environment

        public var description: String {
            switch self {
            case .defaultValue: "default"
            case .file(let path): "file \(path)"
            case .environment: "environment"
            }
        }
    }

    /// The effective settings of this process.
    public struct Resolved: Sendable {
        /// Every known setting that has a value, plus every other variable of the environment.
        public let values: [String: String]
        public let sources: [String: Source]
        public let configFile: String?

        public func value(_ name: String) -> String? { values[name] }

        public func bool(_ name: String) -> Bool { ["1", "true", "yes", "on"].contains(values[name]?.lowercased() ?? "") }

        public func int(_ name: String) -> Int? { values[name].flatMap(Int.init) }
    }

    /// Resolves the settings from `environment` and the config file, validating every value.
    public static func resolve() throws -> Resolved {
        try resolve(ProcessInfo.processInfo.environment)
    }

    public static func resolve(_ environment: [String: String]) throws -> Resolved {
        // An empty known variable counts as unset.
        var values = environment.filter { !($0.value.isEmpty && isKnown($0.key)) }
        var sources: [String: Source] = [:]
        for name in environment.keys where specs.contains(where: { $0.name == name }) && !(environment[name] ?? "").isEmpty {
            sources[name] = .environment
        }
        let home = expandHome(environment["ATOM_HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? "~/.atom", environment)
        var configFile: String?
        if let explicit = environment["ATOM_CONFIG"], !explicit.isEmpty {
            guard FileManager.default.fileExists(atPath: explicit) else {
                throw AtomEnvironment.InvalidSetting(description: "ATOM_CONFIG=\(explicit): no such file")
            }
            configFile = explicit
        } else if FileManager.default.fileExists(atPath: "\(home)/config.env") {
            configFile = "\(home)/config.env"
        }
        if let configFile {
            for (name, value) in try readConfigFile(configFile) where sources[name] == nil {
                values[name] = value
                sources[name] = .file(configFile)
            }
        }
        for spec in specs where values[spec.name] == nil || values[spec.name]?.isEmpty == true {
            if let value = spec.defaultValue {
                values[spec.name] = spec.name == "ATOM_HOME" ? home : value
                sources[spec.name] = .defaultValue
            } else {
                values[spec.name] = nil
            }
        }
        if values["ATOM_HOME"] != nil { values["ATOM_HOME"] = expandHome(values["ATOM_HOME"]!, environment) }
        for spec in specs {
            guard let value = values[spec.name] else { continue }
            if let problem = check(spec, value) {
                throw AtomEnvironment.InvalidSetting(description: "\(spec.name)=\(value) (from \(sources[spec.name] ?? .environment)) \(problem)")
            }
        }
        return Resolved(values: values, sources: sources, configFile: configFile)
    }

    static func isKnown(_ name: String) -> Bool { specs.contains { $0.name == name } }

    static func expandHome(_ path: String, _ environment: [String: String]) -> String {
        guard path.hasPrefix("~") else { return path }
        return (environment["HOME"] ?? NSHomeDirectory()) + path.dropFirst()
    }

    static func check(_ spec: Spec, _ value: String) -> String? {
        switch spec.kind {
        case .text, .file:
            return value.isEmpty ? "is empty" : nil
        case .endpoint:
            return AtomEnvironment.endpointProblem(value)
        case .integer(let range):
            guard let number = Int(value), range.contains(number) else {
                return "is invalid; expected an integer in \(range.lowerBound)...\(range.upperBound)"
            }
            return nil
        case .boolean:
            let accepted = ["true", "false", "1", "0", "yes", "no", "on", "off"]
            return accepted.contains(value.lowercased()) ? nil : "is invalid; expected true or false"
        case .logLevel:
            let levels = ["trace", "debug", "info", "notice", "warning", "error", "critical"]
            return levels.contains(value) ? nil : "is not one of \(levels.joined(separator: ", "))"
        }
    }

    /// `KEY=value` lines; `#` comments; values may be wrapped in double quotes.
    static func readConfigFile(_ path: String) throws -> [(String, String)] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw AtomEnvironment.InvalidSetting(description: "cannot read the config file \(path)")
        }
        var entries: [(String, String)] = []
        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard let equals = line.firstIndex(of: "=") else {
                throw AtomEnvironment.InvalidSetting(description: "\(path) line \(index + 1): expected KEY=value, got \"\(line)\"")
            }
            let key = line[..<equals].trimmingCharacters(in: .whitespaces)
            var value = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            if value.count >= 2 && value.hasPrefix("\"") && value.hasSuffix("\"") { value = String(value.dropFirst().dropLast()) }
            guard specs.contains(where: { $0.name == key }) else {
                throw AtomEnvironment.InvalidSetting(description: "\(path) line \(index + 1): unknown setting \(key); `atom config` lists them")
            }
            guard key != "ATOM_CONFIG", key != "ATOM_HOME" else {
                throw AtomEnvironment.InvalidSetting(description: "\(path) line \(index + 1): \(key) can only be set in the environment (it locates this file)")
            }
            entries.append((key, value))
        }
        return entries
    }
}
