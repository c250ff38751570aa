internal import Foundation
public import AtomRPC

/// The installer's settings, read once at start from the environment.
///
/// | variable | default | meaning |
/// |---|---|---|
/// | `ATOM_HOME` | `~/.atom` | environments live in `$ATOM_HOME/envs`, uv's cache in `$ATOM_HOME/cache/uv` |
/// | `MAX_CONCURRENT_INSTALLATIONS` | `3` | different environments built at once (1-64) |
/// | `ENV_CACHE_ENABLED` | `true` | `false`: every install builds a fresh environment |
/// | `ENV_CACHE_MAX_BYTES` | unset | after each build, evict least recently used environments (not in use) while the store is larger |
/// | `ATOM_INSTALLER_PYTHON` | `python3` | the interpreter environments are created with |
/// | `ATOM_INSTALLER_UV` | `uv` | the uv executable (a path is used as it is; a name found on PATH that is a wrapper script is replaced by the uv binary beside the interpreter) |
/// | `ATOM_INSTALLER_NPM` | `npm` | the npm executable |
/// | `ATOM_INSTALLER_TIMEOUT_S` | `600` | hard limit for one resolver or installer run (1-86400) |
/// | `ATOM_INSTALLER_RESOLUTION_TTL_S` | `3600` | how long a cached resolution (requirements -> lock) is reused |
/// | `ATOM_INSTALLER_DENY` | empty | comma-separated package names that are always refused |
/// | `ATOM_INSTALLER_ALLOW` | empty | when set, only these packages (comma-separated) may be installed directly |
/// | `ATOM_INSTALLER_TYPOSQUAT` | `warn` | `warn`, `refuse` or `off`: names close to a popular package |
/// | `ATOM_INSTALLER_WHEELS_ONLY` | `false` | refuse source distributions for every request |
/// | `ATOM_INSTALLER_SCANNER` | empty | a command run with the lock file path as its last argument; non-zero exit or a failure to run refuses the install (fails closed) |
public struct InstallerConfiguration: ServiceSettings, Sendable {
    public var home: String
    public var maxConcurrentInstallations: Int
    public var cacheEnabled: Bool
    /// nil: no size cap.
    public var maxBytes: UInt64?
    public var python: String
    public var uv: String
    /// Whether a uv wrapper script found on PATH may be replaced by the uv binary it runs (see
    /// `EnvironmentStore.uvPath`): true when `ATOM_INSTALLER_UV` is unset or a bare name, false
    /// when it is a path (an explicit choice, used as it is).
    public var resolveUVWrapper: Bool
    public var npm: String
    public var timeout: Duration
    public var resolutionTTL: Duration
    public var policy: SupplyChainPolicy

    public var envsDirectory: String { "\(home)/envs" }
    public var uvCacheDirectory: String { "\(home)/cache/uv" }
    public var npmCacheDirectory: String { "\(home)/cache/npm" }
    public var resolutionsDirectory: String { "\(home)/cache/resolutions" }
    public var skillsDirectory: String { "\(home)/skills" }

    /// An invalid setting (names the variable and what it accepts).
    public typealias Invalid = AtomEnvironment.InvalidSetting

    public init(home: String, environment: [String: String]) throws {
        self.home = home
        maxConcurrentInstallations = try Self.integer(environment, "MAX_CONCURRENT_INSTALLATIONS", default: 3, range: 1...64)
        cacheEnabled = try Self.boolean(environment, "ENV_CACHE_ENABLED", default: true)
        if let text = environment["ENV_CACHE_MAX_BYTES"], !text.isEmpty {
            guard case .success(let bytes) = ResourceLimits.parseMemory(text) else {
                throw Invalid(description: "ENV_CACHE_MAX_BYTES=\(text) is invalid; use bytes or a size like 20g")
            }
            maxBytes = bytes
        }
        python = environment["ATOM_INSTALLER_PYTHON"].flatMap { $0.isEmpty ? nil : $0 } ?? "python3"
        uv = environment["ATOM_INSTALLER_UV"].flatMap { $0.isEmpty ? nil : $0 } ?? "uv"
        resolveUVWrapper = !uv.contains("/")
        npm = environment["ATOM_INSTALLER_NPM"].flatMap { $0.isEmpty ? nil : $0 } ?? "npm"
        timeout = .seconds(try Self.integer(environment, "ATOM_INSTALLER_TIMEOUT_S", default: 600, range: 1...86_400))
        resolutionTTL = .seconds(try Self.integer(environment, "ATOM_INSTALLER_RESOLUTION_TTL_S", default: 3_600, range: 0...31_536_000))
        func list(_ key: String) -> Set<String> {
            Set((environment[key] ?? "").split(separator: ",").map { PythonRequirement.normalize($0.trimmingCharacters(in: .whitespaces)) }.filter { !$0.isEmpty })
        }
        let typosquat = environment["ATOM_INSTALLER_TYPOSQUAT"].flatMap { $0.isEmpty ? nil : $0 } ?? "warn"
        guard let mode = SupplyChainPolicy.TyposquatMode(rawValue: typosquat) else {
            throw Invalid(description: "ATOM_INSTALLER_TYPOSQUAT=\(typosquat) is not one of warn, refuse, off")
        }
        let allow = list("ATOM_INSTALLER_ALLOW")
        policy = SupplyChainPolicy(
            deny: list("ATOM_INSTALLER_DENY"), allow: allow.isEmpty ? nil : allow, typosquat: mode,
            wheelsOnly: try Self.boolean(environment, "ATOM_INSTALLER_WHEELS_ONLY", default: false),
            scanner: environment["ATOM_INSTALLER_SCANNER"].flatMap { $0.isEmpty ? nil : $0 })
    }

}
