internal import AtomSkillFormat
internal import Foundation

/// What one host serves: skills of one runtime and environment, with one network permission
/// and one memory limit (limits of a process apply to everything in it, so skills that differ
/// in them never share a host).
struct HostKey: Hashable, Sendable, CustomStringConvertible {
    var runtime: SkillManifest.Runtime
    /// The installer's environment id; empty for the system runtime.
    var environmentID: String
    var network: Bool
    /// 0: no limit.
    var memoryBytes: UInt64

    var description: String {
        "\(runtime.rawValue)/\(environmentID.isEmpty ? "system" : String(environmentID.prefix(12)))\(network ? "/net" : "")/\(memoryBytes >> 20)m"
    }
}

/// Builds the command line of a host: the interpreter with the host program, inside bubblewrap
/// (no network unless allowed, read-only system and skill folders, one writable scratch
/// folder, its own PID namespace, dies with the loader) unless the sandbox is off.
struct HostFactory: Sendable {
    let configuration: LoaderConfiguration
    /// The system interpreters, resolved to real executables (a pyenv shim costs ~50 ms a start).
    let python: String
    let node: String
    let bwrap: String?
    let setpriv: String?
    /// Why the sandbox cannot be used (bwrap missing or failing); nil when it works or is off.
    let sandboxProblem: String?

    init(configuration: LoaderConfiguration) {
        self.configuration = configuration
        python = Self.realPython(configuration.python) ?? configuration.python
        node = Self.which(configuration.node).map(Self.realPath) ?? configuration.node
        bwrap = configuration.bwrapExecutable.map { FileManager.default.isExecutableFile(atPath: $0) ? $0 : nil } ?? Self.which("bwrap")
        setpriv = Self.which("setpriv")
        if configuration.sandbox == .off {
            sandboxProblem = nil
        } else if let bwrap {
            sandboxProblem = Self.probe(bwrap)
        } else {
            sandboxProblem = "bwrap (Debian's bubblewrap) is not installed"
        }
    }

    var sandboxed: Bool { configuration.sandbox == .bwrap }

    /// The command that starts a host for `key`; `environment` is the installer's folder for
    /// environment hosts.
    func launch(for key: HostKey, environment: String?, id: Int) throws(LoaderError) -> HostLaunch {
        if sandboxed, let sandboxProblem {
            throw LoaderError(
                .failedPrecondition,
                "the skill sandbox is unavailable: \(sandboxProblem). Skills never run unsandboxed unless LOADER_SANDBOX=off (development only); install bubblewrap (scripts/setup)",
                reason: "SANDBOX_UNAVAILABLE")
        }
        let state = configuration.stateDirectory
        let scratch = "\(state)/scratch/host-\(getpid())-\(id)"
        do {
            try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
            try FileManager.default.createDirectory(atPath: "\(state)/logs", withIntermediateDirectories: true)
        } catch {
            throw LoaderError(.internal, "cannot create the host's scratch folder \(scratch): \(error.localizedDescription)")
        }
        let logPath = "\(state)/logs/host-\(getpid())-\(id).log"
        let home = sandboxed ? "/tmp" : scratch
        var variables = ["PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": home, "TMPDIR": home, "LANG": "C.UTF-8", "PYTHONUNBUFFERED": "1"]
        var command: [String]
        var readOnly: [String] = [configuration.runtimeDirectory]
        switch key.runtime {
        case .python:
            var interpreter = python
            var extra: [String] = []
            if let environment {
                let venv = "\(environment)/venv"
                interpreter = "\(venv)/bin/python"
                guard FileManager.default.isExecutableFile(atPath: interpreter) else {
                    throw LoaderError(.failedPrecondition, "environment \(key.environmentID) has no Python at \(interpreter); is LOADER_ENVS_DIR the installer's envs folder?")
                }
                readOnly.append(environment)
                if let home = Self.venvHome(venv) { readOnly.append(home) }
                let lib = "\(venv)/lib"
                for version in (try? FileManager.default.contentsOfDirectory(atPath: lib)) ?? [] where version.hasPrefix("python") {
                    extra += ["--site", "\(lib)/\(version)/site-packages"]
                }
            }
            readOnly.append(Self.prefix(of: Self.realPath(interpreter)))
            command = [interpreter, "-I", "-S", "-B", "\(configuration.runtimeDirectory)/python/atom_host.py"] + extra
            if key.memoryBytes > 0 { command += ["--memory", String(key.memoryBytes)] }
        case .node:
            if let environment {
                readOnly.append(environment)
                variables["NODE_PATH"] = "\(environment)/node_modules"
            }
            variables["ATOM_ESM_VERSIONS_PER_HOST"] = String(configuration.nodeESModuleVersionsPerHost)
            readOnly.append(Self.prefix(of: node))
            // Each ES-module skill version is imported through a symbolic link of its own
            // (runtime/node/atom_host.js): its files keep that path rather than the real one.
            command = [node, "--preserve-symlinks"]
            // V8 reserves far more address space than it uses, so RLIMIT_AS cannot bound it:
            // its heap limit does.
            if key.memoryBytes > 0 { command.append("--max-old-space-size=\(max(16, key.memoryBytes >> 20))") }
            command.append("\(configuration.runtimeDirectory)/node/atom_host.js")
        }
        readOnly += SkillPaths(configuration.skillsDirectories).roots
        readOnly.append(configuration.versionsDirectory)
        guard sandboxed, let bwrap else {
            // Development only: no sandbox. The host still dies with the loader.
            if let setpriv { command = [setpriv, "--pdeathsig", "KILL", "--"] + command }
            return HostLaunch(executable: command[0], arguments: Array(command.dropFirst()), environment: variables, logPath: logPath, scratch: scratch)
        }
        var arguments = [
            "--die-with-parent", "--new-session", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
        ]
        if !key.network { arguments.append("--unshare-net") }
        // The scratch folder first: binds below /tmp (skills in temporary folders) go on top of it.
        arguments += ["--proc", "/proc", "--dev", "/dev", "--bind", scratch, "/tmp"]
        for system in ["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"] {
            arguments += ["--ro-bind-try", system, system]
        }
        for file in [
            "/etc/ld.so.cache", "/etc/localtime", "/etc/passwd", "/etc/group", "/etc/nsswitch.conf", "/etc/hosts", "/etc/resolv.conf",
            "/etc/ssl", "/etc/ca-certificates", "/etc/alternatives", "/etc/mime.types",
        ] {
            arguments += ["--ro-bind-try", file, file]
        }
        var seen: Set<String> = []
        for path in readOnly where !path.isEmpty && seen.insert(path).inserted {
            arguments += ["--ro-bind", path, path]
        }
        // Everything else (bwrap's own root) read-only: only /tmp, the scratch folder, is writable.
        arguments += ["--remount-ro", "/", "--chdir", "/tmp", "--cap-drop", "ALL", "--"]
        return HostLaunch(executable: bwrap, arguments: arguments + command, environment: variables, logPath: logPath, scratch: scratch)
    }

    /// Runs a minimal sandbox once: nil when it works, else what went wrong.
    static func probe(_ bwrap: String) -> String? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: bwrap)
        process.arguments = ["--unshare-net", "--unshare-pid", "--die-with-parent", "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev", "true"]
        let pipe = Pipe()
        process.standardError = pipe
        process.standardOutput = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            return "cannot run \(bwrap): \(error.localizedDescription)"
        }
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            let text = String(decoding: output, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            return "bwrap cannot create a sandbox here (exit \(process.terminationStatus)): \(text)"
        }
        return nil
    }

    /// The interpreter's own path (`sys.executable`), so a pyenv shim is not run at every start.
    static func realPython(_ name: String) -> String? {
        guard let found = which(name) else { return nil }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: found)
        process.arguments = ["-I", "-S", "-c", "import sys; print(sys.executable)"]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return nil }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let path = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return process.terminationStatus == 0 && path.hasPrefix("/") ? path : nil
    }

    /// `home` of a venv's pyvenv.cfg, less its `bin`: the base interpreter's installation.
    static func venvHome(_ venv: String) -> String? {
        guard let text = try? String(contentsOfFile: "\(venv)/pyvenv.cfg", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("home") {
            guard let equals = line.firstIndex(of: "=") else { continue }
            let home = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            return prefix(of: realPath(home + "/python3"))
        }
        return nil
    }

    /// The installation an executable belongs to: `/x/bin/python3` -> `/x`; nothing extra for
    /// system paths the sandbox binds anyway.
    static func prefix(of executable: String) -> String {
        let url = URL(fileURLWithPath: executable)
        let prefix = url.deletingLastPathComponent().deletingLastPathComponent().path
        for system in ["/usr", "/bin", "/sbin", "/lib"] where prefix == system || prefix.hasPrefix(system + "/") || prefix == "/" {
            return ""
        }
        return prefix == "/" ? "" : prefix
    }

    static func realPath(_ path: String) -> String {
        guard let pointer = realpath(path, nil) else { return path }
        defer { free(pointer) }
        return String(cString: pointer)
    }

    static func which(_ name: String) -> String? {
        if name.contains("/") { return FileManager.default.isExecutableFile(atPath: name) ? name : nil }
        for directory in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let candidate = "\(directory)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }
}
