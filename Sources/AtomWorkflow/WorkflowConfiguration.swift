public import AtomProto
public import AtomRPC

/// The workflow service's settings, read once at start (environment, then config file, then
/// defaults; see `AtomSettings`).
///
/// | variable | default | meaning |
/// |---|---|---|
/// | `ATOM_HOME` | `~/.atom` | runs live in `$ATOM_HOME/workflow/runs.sqlite` |
/// | `WORKFLOW_TIMEOUT_SECONDS` | `600` | a run's time limit when its spec sets none (1-86400) |
/// | `WORKFLOW_CACHE_TTL` | `60` | seconds a cacheable step's result is reused when it sets no TTL (0: never) |
/// | `WORKFLOW_MAX_PARALLELISM` | `16` | steps of one run at once: the default and the most a spec may ask for (1-1024) |
/// | `WORKFLOW_CACHE_MAX_ENTRIES` | `10000` | step results kept in the cache (0: no cache) |
/// | `WORKFLOW_CHECK_SKILLS` | `auto` | whether validation asks the loader for unknown skills: `off`, `auto` (warn when the loader cannot be reached), `required` (fail) |
public struct WorkflowConfiguration: ServiceSettings, Sendable {
    public var home: String
    public var limits: WorkflowLimits
    public var cacheMaxEntries: Int
    public var skillCheck: SkillCheck

    public var databasePath: String { "\(home)/workflow/runs.sqlite" }
    public var lockPath: String { "\(home)/workflow/instance.lock" }

    /// An invalid setting (names the variable and what it accepts).
    public typealias Invalid = AtomEnvironment.InvalidSetting

    public init(home: String, environment: [String: String]) throws {
        self.home = home
        limits = WorkflowLimits(
            defaultTimeoutSeconds: UInt32(try Self.integer(environment, "WORKFLOW_TIMEOUT_SECONDS", default: 600, range: 1...86_400)),
            maxParallelism: UInt32(try Self.integer(environment, "WORKFLOW_MAX_PARALLELISM", default: 16, range: 1...1_024)),
            defaultCacheTTLSeconds: UInt32(try Self.integer(environment, "WORKFLOW_CACHE_TTL", default: 60, range: 0...86_400)))
        cacheMaxEntries = try Self.integer(environment, "WORKFLOW_CACHE_MAX_ENTRIES", default: 10_000, range: 0...1_000_000)
        let check = environment["WORKFLOW_CHECK_SKILLS"].flatMap { $0.isEmpty ? nil : $0 } ?? "auto"
        switch check {
        case "off": skillCheck = .off
        case "auto": skillCheck = .auto
        case "required": skillCheck = .required
        default: throw Invalid(description: "WORKFLOW_CHECK_SKILLS=\(check) is not one of off, auto, required")
        }
    }

}
