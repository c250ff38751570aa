internal import Foundation
public import AtomRPC

/// The loader's settings, read once at start (the environment wins over the config file, the
/// file over the defaults; `atom config` lists them).
///
/// | variable | default | meaning |
/// |---|---|---|
/// | `SKILLS_DIRS` | the repository's `skills/` (when found) and `$ATOM_HOME/skills` | colon-separated folders a skill path must resolve inside |
/// | `SKILL_HOT_RELOAD_ENABLED` | `false` | reload a loaded skill when its files change (inotify) |
/// | `LOADER_CACHE_SIZE` | `100` | loaded skills at most; the least recently used is unloaded first |
/// | `LOADER_HOSTS_PER_ENVIRONMENT` | `4` | host processes per environment, started on demand (executions of one environment run in parallel up to this; a workflow with parallel branches of one environment needs as many) |
/// | `LOADER_HOST_IDLE_SECONDS` | `300` | a host unused this long is stopped (its skills load again on next use); 0: never |
/// | `LOADER_SANDBOX` | `bwrap` | `bwrap` (fail closed: no sandbox, no execution) or `off` (development only, logged loudly) |
/// | `LOADER_PRELOAD` | empty | comma-separated skill names (or paths) loaded at start |
/// | `LOADER_PYTHON` | `python3` | the system Python for skills without packages (resolved to its real executable) |
/// | `LOADER_NODE` | `node` | the system Node for skills without packages |
/// | `LOADER_RUNTIME_DIR` | the repository's `runtime/`, else `/usr/local/share/atom/runtime` | the host programs |
/// | `LOADER_ENVS_DIR` | `$ATOM_HOME/envs` | where the installer's environments are (the installer's `$ATOM_HOME/envs`) |
/// | `LOADER_RELOAD_DEBOUNCE_MS` | `20` | quiet time after the last file event before a hot reload |
/// | `LOADER_INSTALL_INDEX_URL` | unset | package index for skill packages (passed to the installer) |
/// | `LOADER_INSTALL_FIND_LINKS` | unset | comma-separated wheel/tarball folders for skill packages |
/// | `LOADER_INSTALL_OFFLINE` | `false` | install skill packages without network (cache and find-links only) |
public struct LoaderConfiguration: ServiceSettings, Sendable {
    public enum SandboxMode: String, Sendable {
        case bwrap
        case off
    }

    public var home: String
    public var skillsDirectories: [String]
    public var hotReload: Bool
    public var cacheSize: Int
    public var hostsPerEnvironment: Int
    /// ES-module skill versions a Node host imports before it is replaced (Node never frees an
    /// imported ES module, so this bounds a host's memory under many reloads). Not a setting:
    /// tests lower it.
    public var nodeESModuleVersionsPerHost = 64
    /// nil: hosts are never stopped for idleness.
    public var hostIdleTimeout: Duration?
    public var sandbox: SandboxMode
    public var preload: [String]
    public var python: String
    public var node: String
    public var runtimeDirectory: String
    public var environmentsDirectory: String
    public var reloadDebounce: Duration
    public var installIndexURL: String
    public var installFindLinks: [String]
    public var installOffline: Bool
    /// The bubblewrap executable; nil: `bwrap` on PATH. (Tests point it at nothing to check
    /// that a missing sandbox fails closed.)
    public var bwrapExecutable: String?
    /// Where hosts keep their logs and scratch folders.
    public var stateDirectory: String { "\(home)/loader" }
    /// Snapshots of loaded versions' files (`VersionSnapshots`), bound read-only into hosts.
    public var versionsDirectory: String { "\(stateDirectory)/versions" }

    /// An invalid setting (names the variable and what it accepts).
    public typealias Invalid = AtomEnvironment.InvalidSetting

    public init(home: String, environment: [String: String]) throws {
        self.home = home
        func text(_ key: String) -> String? { environment[key].flatMap { $0.isEmpty ? nil : $0 } }
        if let dirs = text("SKILLS_DIRS") {
            skillsDirectories = dirs.split(separator: ":").map(String.init).filter { !$0.isEmpty }
        } else {
            skillsDirectories = (Self.repositoryFolder("skills", marker: nil).map { [$0] } ?? []) + ["\(home)/skills"]
        }
        for directory in skillsDirectories where !directory.hasPrefix("/") {
            throw Invalid(description: "SKILLS_DIRS entry \(directory) is not an absolute path")
        }
        hotReload = try Self.boolean(environment, "SKILL_HOT_RELOAD_ENABLED", default: false)
        cacheSize = try Self.integer(environment, "LOADER_CACHE_SIZE", default: 100, range: 1...100_000)
        hostsPerEnvironment = try Self.integer(environment, "LOADER_HOSTS_PER_ENVIRONMENT", default: 4, range: 1...64)
        let idle = try Self.integer(environment, "LOADER_HOST_IDLE_SECONDS", default: 300, range: 0...86_400)
        hostIdleTimeout = idle == 0 ? nil : .seconds(idle)
        let mode = text("LOADER_SANDBOX") ?? "bwrap"
        guard let sandbox = SandboxMode(rawValue: mode) else { throw Invalid(description: "LOADER_SANDBOX=\(mode) is not one of bwrap, off") }
        self.sandbox = sandbox
        preload = (text("LOADER_PRELOAD") ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        python = text("LOADER_PYTHON") ?? "python3"
        node = text("LOADER_NODE") ?? "node"
        if let runtime = text("LOADER_RUNTIME_DIR") {
            runtimeDirectory = runtime
        } else {
            runtimeDirectory = Self.repositoryFolder("runtime", marker: "python/atom_host.py") ?? "/usr/local/share/atom/runtime"
        }
        environmentsDirectory = text("LOADER_ENVS_DIR") ?? "\(home)/envs"
        reloadDebounce = .milliseconds(try Self.integer(environment, "LOADER_RELOAD_DEBOUNCE_MS", default: 20, range: 0...10_000))
        installIndexURL = text("LOADER_INSTALL_INDEX_URL") ?? ""
        installFindLinks = (text("LOADER_INSTALL_FIND_LINKS") ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        installOffline = try Self.boolean(environment, "LOADER_INSTALL_OFFLINE", default: false)
    }

    /// A folder of the source tree this executable was built from (`.build/<config>/atom-loader`
    /// lies below the repository), or nil when not run from a build tree.
    static func repositoryFolder(_ name: String, marker: String?) -> String? {
        let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var url = URL(fileURLWithPath: executable).deletingLastPathComponent()
        while url.path != "/" {
            let candidate = url.appendingPathComponent(name)
            let check = marker.map { candidate.appendingPathComponent($0).path } ?? candidate.path
            if FileManager.default.fileExists(atPath: check) && FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) {
                return candidate.path
            }
            url = url.deletingLastPathComponent()
        }
        return nil
    }

}
