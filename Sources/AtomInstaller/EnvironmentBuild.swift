internal import AtomProto
internal import AtomRPC
internal import AtomSkillFormat
internal import Foundation

extension EnvironmentStore {
    enum ResolveOutcome: Sendable {
        case success(Resolution, cached: Bool)
        /// The resolver proved the requirements unsatisfiable.
        case conflict(String)
        case failure(String)
    }

    /// Stored resolutions on disk: the lock survives restarts like the environments.
    struct StoredResolution: Codable {
        let lockText: String
        let locked: [Locked]
        let resolvedUnix: Double
    }

    // MARK: - Resolution (requirements + options -> lock), cached

    func resolutionKey(_ request: ValidatedInstall, policy: SupplyChainPolicy, runtime: Runtime) -> String {
        let options = request.options
        var text = "atom-resolve-v1\n\(request.ecosystem.rawValue)\n\(runtime.version)\n\(runtime.platform)\n"
        text += request.canonicalRequirements.joined(separator: "\n")
        text += "\nindex=\(options.indexUrl)\nextra=\(options.extraIndexUrls.joined(separator: " "))"
        text += "\nfind-links=\(options.findLinks.joined(separator: " "))\noffline=\(options.offline)\nwheels-only=\(policy.wheelsOnly)"
        return SHA256Hex.of(text)
    }

    func resolve(_ request: ValidatedInstall, policy: SupplyChainPolicy) async throws -> ResolveOutcome {
        let runtime = try await runtime(for: request.ecosystem)
        let key = resolutionKey(request, policy: policy, runtime: runtime)
        let reuse = configuration.cacheEnabled && !request.options.force
        if reuse, let cached = cachedResolution(key) { return .success(cached, cached: true) }
        let outcome: ResolveOutcome
        switch request.ecosystem {
        case .python: outcome = try await resolvePython(request, policy: policy)
        case .npm: outcome = try await resolveNpm(request)
        }
        if case .success(let resolution, _) = outcome {
            resolutions[key] = resolution
            let stored = StoredResolution(lockText: resolution.lockText, locked: resolution.locked, resolvedUnix: Date().timeIntervalSince1970)
            if let data = try? JSONEncoder().encode(stored) {
                try? data.write(to: URL(fileURLWithPath: "\(configuration.resolutionsDirectory)/\(key).json"), options: .atomic)
            }
        }
        return outcome
    }

    func cachedResolution(_ key: String) -> Resolution? {
        if let memory = resolutions[key] {
            if ContinuousClock.now - memory.resolvedAt <= configuration.resolutionTTL { return memory }
            resolutions[key] = nil
            return nil
        }
        let path = "\(configuration.resolutionsDirectory)/\(key).json"
        guard let data = FileManager.default.contents(atPath: path),
              let stored = try? JSONDecoder().decode(StoredResolution.self, from: data)
        else { return nil }
        let age = Date().timeIntervalSince1970 - stored.resolvedUnix
        guard age >= 0, age <= Double(configuration.resolutionTTL / .seconds(1)) else { return nil }
        let resolution = Resolution(lockText: stored.lockText, locked: stored.locked, resolvedAt: ContinuousClock.now - .seconds(age))
        resolutions[key] = resolution
        return resolution
    }

    var uvEnvironment: [String: String] {
        [
            "UV_CACHE_DIR": configuration.uvCacheDirectory,
            "UV_LINK_MODE": "hardlink",
            "UV_PYTHON_DOWNLOADS": "never",
            "UV_NO_CONFIG": "1",
            "UV_NO_PROGRESS": "1",
            "VIRTUAL_ENV": "",
        ]
    }

    /// uv's index options for a request. `offline` with find-links and no index means the
    /// wheelhouse is the only source (`--no-index`): the air-gapped case.
    func uvIndexArguments(_ options: InstallOptions, wheelsOnly: Bool) -> [String] {
        var arguments: [String] = []
        if !options.indexUrl.isEmpty { arguments += ["--index-url", options.indexUrl] }
        for url in options.extraIndexUrls { arguments += ["--extra-index-url", url] }
        for link in options.findLinks { arguments += ["--find-links", link] }
        if options.offline {
            arguments.append("--offline")
            if !options.findLinks.isEmpty && options.indexUrl.isEmpty && options.extraIndexUrls.isEmpty { arguments.append("--no-index") }
        }
        if wheelsOnly { arguments.append("--no-build") }
        return arguments
    }

    /// The uv executable, resolved once. When the `uv` on PATH is a wrapper script (a pyenv or
    /// asdf shim: a shell script that runs `pyenv exec uv`, about 0.1 s of CPU and 0.3 s of wall
    /// time per start here, against a few milliseconds for uv itself), the uv binary installed
    /// beside the interpreter is used instead, provided it reports the same version as the
    /// wrapper does. Otherwise, and always when `ATOM_INSTALLER_UV` is a path (an explicit choice,
    /// such as a test's deliberately slowed uv), the configured uv is run as it is.
    func uvPath() async throws -> String {
        if let resolvedUV { return resolvedUV }
        guard let uv = Subprocess.which(configuration.uv) else {
            throw RPCError(.failedPrecondition, "uv (\(configuration.uv)) is not on PATH; install it (pip install uv)")
        }
        var chosen = uv
        if configuration.resolveUVWrapper, Self.isScript(uv), let python = try? await runtime(for: .python) {
            let wrapperVersion = try? await Subprocess.run(uv, ["--version"], environment: uvEnvironment, timeout: .seconds(60))
            for candidate in Self.uvCandidates(beside: python) where candidate != uv && !Self.isScript(candidate) {
                guard let version = wrapperVersion, version.succeeded, !version.stdout.isEmpty else { break }
                let own = try? await Subprocess.run(candidate, ["--version"], environment: uvEnvironment, timeout: .seconds(60))
                if let own, own.succeeded, own.stdout == version.stdout {
                    chosen = candidate
                    break
                }
            }
            if chosen == uv { logger.notice("uv on PATH is a wrapper script; every uv run pays for it", metadata: ["uv": "\(uv)"]) }
        }
        resolvedUV = chosen
        return chosen
    }

    /// Where a uv installed with pip into the interpreter's environment lives: its scripts folder,
    /// beside `sys.executable` (and beside the file that path links to).
    static func uvCandidates(beside python: Runtime) -> [String] {
        var folders: [String] = []
        for executable in [python.executable, python.venvLayout?.baseExecutable ?? ""] where executable.hasPrefix("/") {
            folders.append((executable as NSString).deletingLastPathComponent)
            if let real = realpath(executable, nil) {
                folders.append((String(cString: real) as NSString).deletingLastPathComponent)
                free(real)
            }
        }
        var seen: Set<String> = []
        return folders.filter { seen.insert($0).inserted }.map { "\($0)/uv" }.filter { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// Whether a file is a script (`#!`) rather than a binary.
    static func isScript(_ path: String) -> Bool {
        guard let handle = FileHandle(forReadingAtPath: path) else { return false }
        defer { try? handle.close() }
        return (try? handle.read(upToCount: 2)) == Data("#!".utf8)
    }

    /// Creates the virtual environment of a build: written directly (`VirtualEnvironmentLayout`)
    /// for a CPython it knows, else with `uv venv --relocatable`.
    func makeVenv(at venv: String, runtime: Runtime, directory: String) async throws {
        if let layout = runtime.venvLayout {
            try layout.create(at: venv)
            return
        }
        let created = try await Subprocess.run(
            try await uvPath(), ["venv", venv, "--python", runtime.executable, "--relocatable", "--quiet"],
            environment: uvEnvironment, directory: directory, timeout: configuration.timeout)
        guard created.succeeded else { throw InstallFailure("uv venv failed: \(created.tail)") }
    }

    /// One tool run's wall and CPU time, at debug level (`ATOM_LOG_LEVEL=debug`): where a build's
    /// time goes.
    func logRun(_ step: String, _ outcome: ProcessOutcome) {
        logger.debug("\(step) finished", metadata: [
            "status": "\(outcome.status)", "wall_ms": "\(Int(outcome.wall / .milliseconds(1)))", "cpu_ms": "\(Int(outcome.cpu / .milliseconds(1)))",
        ])
    }

    /// Whether a tool's error text says the network could not be reached.
    static func isNetworkFailure(_ text: String) -> Bool {
        let markers = [
            "Failed to fetch", "error sending request", "dns error", "Connection refused", "Could not connect",
            "failed to lookup address", "Network is unreachable", "operation timed out", "ENOTFOUND", "EAI_AGAIN",
            "ECONNREFUSED", "ETIMEDOUT", "ENETUNREACH", "Temporary failure in name resolution", "npm error network",
        ]
        return markers.contains { text.contains($0) }
    }

    func resolvePython(_ request: ValidatedInstall, policy: SupplyChainPolicy) async throws -> ResolveOutcome {
        let uv = try await uvPath()
        let work = "\(configuration.resolutionsDirectory)/.work-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: work) }
        try (request.requirements.map(\.text).joined(separator: "\n") + "\n").write(toFile: "\(work)/requirements.in", atomically: true, encoding: .utf8)
        let arguments = [
            "pip", "compile", "\(work)/requirements.in", "--generate-hashes", "--no-header", "--no-annotate", "--quiet",
            "--python", try await runtime(for: .python).executable, "-o", "\(work)/requirements.lock",
        ] + uvIndexArguments(request.options, wheelsOnly: policy.wheelsOnly)
        let outcome = try await Subprocess.run(uv, arguments, environment: uvEnvironment, directory: work, timeout: configuration.timeout)
        logRun("uv pip compile", outcome)
        if !outcome.succeeded {
            let message = outcome.timedOut ? "uv pip compile timed out" : outcome.tail
            if outcome.stderr.contains("No solution found") { return .conflict(message) }
            if Self.isNetworkFailure(outcome.stderr) { throw RPCError(.unavailable, "the package index is not reachable: \(message)") }
            return .failure("uv pip compile failed: \(message)")
        }
        let lockText = (try? String(contentsOfFile: "\(work)/requirements.lock", encoding: .utf8)) ?? ""
        return .success(Resolution(lockText: lockText, locked: Self.parsePythonLock(lockText), resolvedAt: .now), cached: false)
    }

    /// `name==version \` lines with `--hash=` continuation lines (uv's requirements format).
    static func parsePythonLock(_ text: String) -> [Locked] {
        var result: [Locked] = []
        for rawLine in text.split(separator: "\n") {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            if line.hasPrefix("--hash=") {
                let hash = line.dropFirst("--hash=".count).split(separator: " ").first.map(String.init) ?? ""
                if !result.isEmpty { result[result.count - 1] = Locked(name: result[result.count - 1].name, version: result[result.count - 1].version, hashes: result[result.count - 1].hashes + [hash]) }
                continue
            }
            if line.hasPrefix("-") { continue }
            guard let range = line.range(of: "==") else { continue }
            let name = PythonRequirement.normalize(line[..<range.lowerBound].split(separator: "[").first.map(String.init) ?? "")
            let version = line[range.upperBound...].prefix { !$0.isWhitespace && $0 != ";" && $0 != "\\" }
            var hashes: [String] = []
            if let inline = line.range(of: "--hash=") {
                hashes.append(String(line[inline.upperBound...].prefix { !$0.isWhitespace }))
            }
            result.append(Locked(name: name, version: String(version), hashes: hashes))
        }
        return result
    }

    // MARK: - Build

    /// Creates a build folder (a leased `envs/.build-<n>`, see `BuildSlots`) with its venv while the
    /// resolver runs, and installs the requested packages into it speculatively, so that downloads
    /// overlap resolution and the locked sync that follows finds them in place. Nil when no folder
    /// could be made (the build then tries itself and reports).
    ///
    /// The speculative install takes wheels only (`--no-build`): no package code runs before the
    /// lock has been scanned. The build keeps its result only when it is exactly the lock (same
    /// distributions, same versions); otherwise `uv pip sync --require-hashes` makes it so.
    func prepareVenv(runtime: Runtime, request: ValidatedInstall) async -> PreparedDirectory? {
        guard let uv = try? await uvPath(), let slot = try? buildSlots.lease() else { return nil }
        let directory = slot.path
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            try await makeVenv(at: "\(directory)/venv", runtime: runtime, directory: directory)
            let base = ["pip", "install", "--python", "\(directory)/venv/bin/python", "--link-mode", "hardlink", "--quiet", "--no-build"]
                + uvIndexArguments(request.options, wheelsOnly: false)
            // From the shared cache alone first: no connection at all, so the resolver (which
            // must ask the index) has the network to itself. When something is not cached,
            // uv fails at once and the install goes online.
            let requirements = request.requirements.map(\.text)
            let attempts = request.options.offline ? [base + requirements] : [base + ["--offline"] + requirements, base + requirements]
            for arguments in attempts {
                try Task.checkCancellation()
                // Below the resolvers in priority: the resolver is the critical path of a build,
                // and in a batch the speculative installs would otherwise take its CPU.
                let installed = try? await Subprocess.run(
                    uv, arguments, environment: uvEnvironment, directory: directory, timeout: configuration.timeout, niceness: 5)
                if let installed { logRun(arguments.contains("--offline") ? "uv pip install (speculative, offline)" : "uv pip install (speculative)", installed) }
                if installed?.succeeded == true { return PreparedDirectory(path: directory, speculativeInstall: true, slot: slot) }
            }
            return PreparedDirectory(path: directory, speculativeInstall: false, slot: slot)
        } catch {}
        try? FileManager.default.removeItem(atPath: directory)
        slot.release()
        return nil
    }

    func build(
        id: String, request: ValidatedInstall, resolution: Resolution, runtime: Runtime, reuse: Bool, prepared: PreparedVenv? = nil,
        progress: @escaping InstallProgress
    ) async throws -> BuiltEnvironment {
        // Another request may have finished the same environment while this one waited for a slot.
        if reuse && isReady(id) { return BuiltEnvironment(id: id, built: false) }
        buildsStarted += 1
        activeBuilds += 1
        peakConcurrentBuilds = max(peakConcurrentBuilds, activeBuilds)
        defer { activeBuilds -= 1 }
        let started = ContinuousClock.now
        var adopted: PreparedDirectory?
        if request.ecosystem == .python, let prepared, prepared.task != nil {
            await progress(.downloading, "fetching \(resolution.locked.count) package(s) into the shared cache (started while resolving)", 0.4)
            adopted = await prepared.adopt()
        }
        let preparedAt = ContinuousClock.now
        // Python builds run in a build slot (a stable path: see `BuildSlots`); the slot is
        // released once the folder has been renamed into place or removed.
        let slot = try adopted?.slot ?? (request.ecosystem == .python ? buildSlots.lease() : nil)
        defer { slot?.release() }
        let temporary = adopted?.path ?? slot?.path ?? "\(configuration.envsDirectory)/.tmp-\(id.prefix(16))-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: temporary, withIntermediateDirectories: true)
        do {
            switch request.ecosystem {
            case .python: try await buildPython(at: temporary, prepared: adopted, request: request, resolution: resolution, progress: progress)
            case .npm: try await buildNpm(at: temporary, request: request, resolution: resolution, progress: progress)
            }
            let metadata = Metadata(
                id: id, ecosystem: request.ecosystem, requirements: request.canonicalRequirements, locked: resolution.locked,
                runtime: runtime.version, platform: runtime.platform, createdUnixMs: UInt64(Date().timeIntervalSince1970 * 1000))
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try encoder.encode(metadata).write(to: URL(fileURLWithPath: "\(temporary)/atom-env.json"))
            let built = try finalize(temporary, id: id, reuse: reuse)
            logger.debug("built \(id.prefix(12))", metadata: [
                "waited_for_speculative_install_ms": "\(Int((preparedAt - started) / .milliseconds(1)))",
                "install_verify_rename_ms": "\(Int((ContinuousClock.now - preparedAt) / .milliseconds(1)))",
                "speculative_install_kept": "\(adopted?.speculativeInstall == true)",
            ])
            return BuiltEnvironment(id: id, built: built)
        } catch {
            try? FileManager.default.removeItem(atPath: temporary)
            throw error
        }
    }

    /// Renames the verified build into place, then writes the ready marker: a directory
    /// without the marker is never served. False when an identical environment won the race.
    func finalize(_ temporary: String, id: String, reuse: Bool) throws -> Bool {
        let fm = FileManager.default
        let destination = "\(configuration.envsDirectory)/\(id)"
        if fm.fileExists(atPath: destination) {
            if reuse && isReady(id) {
                try? fm.removeItem(atPath: temporary)
                return false
            }
            // A forced rebuild, or a leftover without the marker: move it aside first so the
            // rename below stays atomic; processes using the old files keep their inodes.
            let trash = "\(configuration.envsDirectory)/.trash-\(UUID().uuidString)"
            try? fm.removeItem(atPath: "\(destination)/.atom-ready")
            guard rename(destination, trash) == 0 else { throw InstallFailure("cannot move the old environment aside: errno \(errno)") }
            // Deleting a tree of a few hundred files takes tens of milliseconds of file-system
            // latency: not on this actor, and not before the new environment is in place.
            trashCan.remove(trash)
        }
        guard rename(temporary, destination) == 0 else {
            if reuse && isReady(id) {
                try? fm.removeItem(atPath: temporary)
                return false
            }
            throw InstallFailure("cannot rename the environment into place: errno \(errno)")
        }
        let marker = "\(destination)/.atom-ready"
        guard fm.createFile(atPath: marker, contents: Data("\(Date().timeIntervalSince1970)\n".utf8)) else {
            throw InstallFailure("cannot write \(marker)")
        }
        return true
    }

    func buildPython(at directory: String, prepared: PreparedDirectory?, request: ValidatedInstall, resolution: Resolution, progress: InstallProgress) async throws {
        let uv = try await uvPath()
        let venv = "\(directory)/venv"
        try resolution.lockText.write(toFile: "\(directory)/requirements.lock", atomically: true, encoding: .utf8)
        if prepared?.speculativeInstall == true, let present = try? Self.installedDistributions(venv: venv), Self.matches(present, resolution.locked) {
            await progress(.installing, "linked \(resolution.locked.count) package(s) from the shared cache", 0.7)
            await progress(.verifying, "the installed packages are exactly the lock", 0.8)
            return
        }
        await progress(.installing, "creating the virtual environment", 0.25)
        if prepared == nil {
            try await makeVenv(at: venv, runtime: try await runtime(for: .python), directory: directory)
        }
        let wheelsOnly = configuration.policy.wheelsOnly || request.options.wheelsOnly
        await progress(.downloading, "fetching \(resolution.locked.count) package(s) into the shared cache and linking them", 0.4)
        let installed = try await Subprocess.run(
            uv,
            ["pip", "sync", "\(directory)/requirements.lock", "--python", "\(venv)/bin/python", "--require-hashes", "--link-mode", "hardlink", "--quiet"]
                + uvIndexArguments(request.options, wheelsOnly: wheelsOnly),
            environment: uvEnvironment, directory: directory, timeout: configuration.timeout)
        logRun("uv pip sync", installed)
        guard installed.succeeded else {
            if Self.isNetworkFailure(installed.stderr) { throw RPCError(.unavailable, "the package index is not reachable: \(installed.tail)") }
            throw InstallFailure("uv pip sync failed\(installed.timedOut ? " (timed out)" : ""): \(installed.tail)")
        }
        await progress(.verifying, "checking every locked package is installed", 0.8)
        let present = try Self.installedDistributions(venv: venv)
        for package in resolution.locked {
            guard let version = present[package.name] else { throw InstallFailure("verification failed: \(package.name) is not installed") }
            guard PythonVersion(version) == PythonVersion(package.version) else {
                throw InstallFailure("verification failed: \(package.name) is \(version), the lock says \(package.version)")
            }
        }
    }
}

/// A virtual environment made while the resolver ran, and whether the speculative install into
/// it succeeded.
struct PreparedDirectory: Sendable {
    let path: String
    let speculativeInstall: Bool
    /// The build slot `path` is in; whoever ends up with the folder releases it.
    var slot: BuildSlot?
}

extension EnvironmentStore {
    /// Whether the installed distributions are exactly the locked set: no package missing, none
    /// at another version, none extra.
    static func matches(_ present: [String: String], _ locked: [Locked]) -> Bool {
        guard present.count == locked.count else { return false }
        return locked.allSatisfy { package in
            present[package.name].map { PythonVersion($0) == PythonVersion(package.version) } ?? false
        }
    }

    /// Name -> version of every distribution in the venv's site-packages, read from the
    /// `*.dist-info/METADATA` files installers write (what `uv pip list` reads, without a process).
    static func installedDistributions(venv: String) throws -> [String: String] {
        let fm = FileManager.default
        let lib = "\(venv)/lib"
        var result: [String: String] = [:]
        for python in (try? fm.contentsOfDirectory(atPath: lib)) ?? [] {
            let site = "\(lib)/\(python)/site-packages"
            for entry in (try? fm.contentsOfDirectory(atPath: site)) ?? [] where entry.hasSuffix(".dist-info") {
                guard let data = fm.contents(atPath: "\(site)/\(entry)/METADATA") else { continue }
                var name: String?, version: String?
                for line in String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false) {
                    if line.isEmpty { break }
                    if line.hasPrefix("Name:") { name = line.dropFirst(5).trimmingCharacters(in: .whitespaces) }
                    if line.hasPrefix("Version:") { version = line.dropFirst(8).trimmingCharacters(in: .whitespaces) }
                }
                if let name, let version { result[PythonRequirement.normalize(name)] = version }
            }
        }
        guard !result.isEmpty || fm.fileExists(atPath: lib) else { throw InstallFailure("verification failed: \(lib) does not exist") }
        return result
    }
}

/// A build step failed: the message says which and why.
struct InstallFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
