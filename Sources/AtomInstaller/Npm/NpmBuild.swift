internal import AtomProto
internal import AtomRPC
internal import AtomSkillFormat
internal import Foundation

extension EnvironmentStore {
    func npmPath() throws -> String {
        guard let npm = Subprocess.which(configuration.npm) else { throw RPCError(.failedPrecondition, "npm (\(configuration.npm)) is not on PATH") }
        return npm
    }

    var npmArguments: [String] { ["--ignore-scripts", "--no-audit", "--no-fund", "--cache", configuration.npmCacheDirectory, "--loglevel", "error"] }

    /// With find-links, the tarballs in those directories are the registry: each requirement
    /// takes the highest version its range allows (checked with `NpmRange`). Without, npm
    /// resolves against the registry into a lockfile (`--package-lock-only`).
    func resolveNpm(_ request: ValidatedInstall) async throws -> ResolveOutcome {
        let requirements = request.requirements.compactMap { if case .npm(let r) = $0 { r } else { nil } }
        if !request.options.findLinks.isEmpty {
            var available: [(name: String, version: SemVer, path: String)] = []
            for directory in request.options.findLinks {
                let path = directory.hasPrefix("file://") ? String(directory.dropFirst(7)) : directory
                guard path.hasPrefix("/") else { return .failure("npm find_links must be local directories (got \(directory))") }
                for file in ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted() where file.hasSuffix(".tgz") {
                    let tarball = "\(path)/\(file)"
                    let outcome = try await Subprocess.run("/bin/tar", ["-xOzf", tarball, "package/package.json"], timeout: .seconds(60))
                    guard outcome.succeeded, let data = outcome.stdout.data(using: .utf8),
                          let manifest = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                          let name = manifest["name"] as? String, let versionText = manifest["version"] as? String,
                          let version = SemVer(versionText)
                    else { continue }
                    available.append((name, version, tarball))
                }
            }
            var locked: [Locked] = []
            for requirement in requirements {
                let candidates = available.filter { $0.name == requirement.name }
                guard let best = candidates.filter({ requirement.range.allowed.contains($0.version) }).max(by: { $0.version < $1.version }) else {
                    let seen = candidates.map(\.version.description).joined(separator: ", ")
                    return .conflict("no tarball of \(requirement.name) satisfies \(requirement.text)" + (seen.isEmpty ? " (none found)" : " (found \(seen))"))
                }
                if locked.contains(where: { $0.name == best.name }) { continue }
                let digest = SHA256Hex.of(bytes: (try? Data(contentsOf: URL(fileURLWithPath: best.path))) ?? Data())
                locked.append(Locked(name: best.name, version: best.version.description, hashes: ["sha256:" + digest], source: best.path))
            }
            let lockText = locked.map { "\($0.name)@\($0.version) \($0.source) \($0.hashes.joined())" }.joined(separator: "\n")
            return .success(Resolution(lockText: lockText, locked: locked, resolvedAt: .now), cached: false)
        }
        let npm = try npmPath()
        let work = "\(configuration.resolutionsDirectory)/.work-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: work) }
        var dependencies: [String: String] = [:]
        for requirement in requirements { dependencies[requirement.name] = requirement.range.text.isEmpty ? "*" : requirement.range.text }
        try writePackageJSON(at: work, dependencies: dependencies)
        var arguments = ["install", "--package-lock-only"] + npmArguments
        if !request.options.indexUrl.isEmpty { arguments += ["--registry", request.options.indexUrl] }
        if request.options.offline { arguments.append("--offline") }
        let outcome = try await Subprocess.run(npm, arguments, directory: work, timeout: configuration.timeout)
        guard outcome.succeeded else {
            if outcome.stderr.contains("ETARGET") || outcome.stderr.contains("ERESOLVE") { return .conflict(outcome.tail) }
            if Self.isNetworkFailure(outcome.stderr) { throw RPCError(.unavailable, "the npm registry is not reachable: \(outcome.tail)") }
            return .failure("npm could not resolve: \(outcome.tail)")
        }
        let lockText = (try? String(contentsOfFile: "\(work)/package-lock.json", encoding: .utf8)) ?? ""
        return .success(Resolution(lockText: lockText, locked: Self.parseNpmLock(lockText), resolvedAt: .now), cached: false)
    }

    /// The `packages` of a package-lock.json (lockfileVersion 2 or 3).
    static func parseNpmLock(_ text: String) -> [Locked] {
        guard let data = text.data(using: .utf8),
              let lock = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let packages = lock["packages"] as? [String: Any]
        else { return [] }
        var result: [Locked] = []
        for (path, value) in packages where path.hasPrefix("node_modules/") {
            guard let entry = value as? [String: Any], let version = entry["version"] as? String else { continue }
            let name = path.components(separatedBy: "node_modules/").last ?? path
            result.append(Locked(name: name, version: version, hashes: [(entry["integrity"] as? String) ?? ""]))
        }
        return result.sorted { $0.name < $1.name }
    }

    func writePackageJSON(at directory: String, dependencies: [String: String]) throws {
        let manifest: [String: Any] = ["name": "atom-skill-environment", "version": "1.0.0", "private": true, "dependencies": dependencies]
        let data = try JSONSerialization.data(withJSONObject: manifest, options: [.prettyPrinted, .sortedKeys])
        try data.write(to: URL(fileURLWithPath: "\(directory)/package.json"))
    }

    func buildNpm(at directory: String, request: ValidatedInstall, resolution: Resolution, progress: InstallProgress) async throws {
        let npm = try npmPath()
        let local = resolution.locked.allSatisfy { !$0.source.isEmpty }
        var arguments: [String]
        if local {
            var dependencies: [String: String] = [:]
            for package in resolution.locked { dependencies[package.name] = "file:" + package.source }
            try writePackageJSON(at: directory, dependencies: dependencies)
            arguments = ["install"] + npmArguments
        } else {
            let requirements = request.requirements.compactMap { if case .npm(let r) = $0 { r } else { nil } }
            var dependencies: [String: String] = [:]
            for requirement in requirements { dependencies[requirement.name] = requirement.range.text.isEmpty ? "*" : requirement.range.text }
            try writePackageJSON(at: directory, dependencies: dependencies)
            try resolution.lockText.write(toFile: "\(directory)/package-lock.json", atomically: true, encoding: .utf8)
            arguments = ["ci"] + npmArguments
            if !request.options.indexUrl.isEmpty { arguments += ["--registry", request.options.indexUrl] }
        }
        if request.options.offline { arguments.append("--offline") }
        await progress(.downloading, "fetching \(resolution.locked.count) package(s)", 0.3)
        await progress(.installing, "npm \(arguments[0]) --ignore-scripts", 0.5)
        let outcome = try await Subprocess.run(npm, arguments, environment: ["npm_config_update_notifier": "false"], directory: directory, timeout: configuration.timeout)
        guard outcome.succeeded else {
            if Self.isNetworkFailure(outcome.stderr) { throw RPCError(.unavailable, "the npm registry is not reachable: \(outcome.tail)") }
            throw InstallFailure("npm \(arguments[0]) failed\(outcome.timedOut ? " (timed out)" : ""): \(outcome.tail)")
        }
        guard FileManager.default.fileExists(atPath: "\(directory)/package-lock.json") else {
            throw InstallFailure("npm wrote no package-lock.json")
        }
        await progress(.verifying, "checking every locked package is installed", 0.8)
        for package in resolution.locked {
            let manifestPath = "\(directory)/node_modules/\(package.name)/package.json"
            guard let data = FileManager.default.contents(atPath: manifestPath),
                  let manifest = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                  let version = manifest["version"] as? String
            else { throw InstallFailure("verification failed: \(package.name) is not in node_modules") }
            guard version == package.version else {
                throw InstallFailure("verification failed: \(package.name) is \(version), the lock says \(package.version)")
            }
        }
    }
}
