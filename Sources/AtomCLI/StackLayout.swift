internal import Foundation

/// The processes `atom up` starts, in start order. A service issue adds its executable here.
struct StackComponent: Sendable {
    /// Short name used in logs and messages.
    let name: String
    let executable: String
    /// The proto service it registers, whose health `atom up --detach` waits for.
    let service: String?

    static let all: [StackComponent] = [
        StackComponent(name: "gateway", executable: "atom-gateway", service: nil),
        StackComponent(name: "echo", executable: "atom-echo", service: "atom.v1.Echo"),
        StackComponent(name: "installer", executable: "atom-installer", service: "atom.v1.Installer"),
        StackComponent(name: "loader", executable: "atom-loader", service: "atom.v1.Loader"),
        StackComponent(name: "marketplace", executable: "atom-marketplace", service: "atom.v1.Marketplace"),
        StackComponent(name: "workflow", executable: "atom-workflow", service: "atom.v1.Workflow"),
    ]
}

/// Finds the service executables: beside the running `atom` binary first, then on PATH.
enum ExecutableLocator {
    static func path(for name: String) throws -> String {
        let selfPath = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
            ?? CommandLine.arguments[0]
        let sibling = URL(fileURLWithPath: selfPath).deletingLastPathComponent().appendingPathComponent(name).path
        if FileManager.default.isExecutableFile(atPath: sibling) { return sibling }
        for directory in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":") {
            let candidate = "\(directory)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        throw CLIFailure(.failure, "cannot find the \(name) executable next to \(selfPath) or on PATH; run `make build`")
    }

    static var selfPath: String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }
}

/// Where a stack keeps its pid file and logs under ATOM_HOME.
struct StackFiles {
    let home: String
    var pidFile: String { "\(home)/run/atom-up.pid" }
    var logDirectory: String { "\(home)/logs" }
    var supervisorLog: String { "\(logDirectory)/atom-up.log" }

    func prepare() throws {
        for directory in ["\(home)/run", logDirectory] {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }
    }

    /// The pid of a live `atom up` for this home, if any (a stale file is ignored).
    func runningSupervisor() -> Int32? {
        guard let text = try? String(contentsOfFile: pidFile, encoding: .utf8),
              let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)), pid > 0
        else { return nil }
        guard let cmdline = try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline")),
              String(decoding: cmdline, as: UTF8.self).contains("atom")
        else { return nil }
        return pid
    }
}

/// The bundled catalog (`skills/`): in the current directory, above the `atom` executable (a
/// build tree inside the repository), or installed in `share/atom/skills` beside `bin/`.
enum BundledSkills {
    static func locate() -> String? {
        var candidates = [FileManager.default.currentDirectoryPath + "/skills"]
        var directory = URL(fileURLWithPath: ExecutableLocator.selfPath).deletingLastPathComponent()
        for _ in 0..<5 {
            candidates.append(directory.appendingPathComponent("skills").path)
            candidates.append(directory.appendingPathComponent("share/atom/skills").path)
            directory = directory.deletingLastPathComponent()
        }
        return candidates.first(where: isCatalog).map { URL(fileURLWithPath: $0).standardizedFileURL.path }
    }

    /// A folder with at least one skill folder (a subfolder holding a skill manifest).
    static func isCatalog(_ path: String) -> Bool {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: path) else { return false }
        return names.contains { name in
            ["skill.yaml", "skill.yml", "skill.json"].contains { FileManager.default.fileExists(atPath: "\(path)/\(name)/\($0)") }
        }
    }
}
