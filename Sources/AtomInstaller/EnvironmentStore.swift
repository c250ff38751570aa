public import AtomProto
internal import AtomRPC
internal import AtomSkillFormat
internal import Foundation
public import Logging

/// A progress report during an install: phase, message, fraction done.
public typealias InstallProgress = @Sendable (InstallPhase, String, Double) async -> Void

/// Content-addressed environments under `$ATOM_HOME/envs/<id>`.
///
/// The id is the SHA-256 of the locked requirement set (names, versions and file hashes,
/// sorted) plus the runtime version and the platform. An environment is built in
/// `envs/.tmp-*`, verified, renamed into place, and only then marked valid by `.atom-ready`;
/// a directory without that marker is never served. Identical concurrent builds coalesce into
/// one; different builds run at most `maxConcurrentInstallations` at a time.
public actor EnvironmentStore {
    public let configuration: InstallerConfiguration
    let audit: AuditLog?
    let logger: Logger
    private let slots: AsyncSemaphore
    /// The folders Python builds run in (stable paths, so uv's interpreter cache applies).
    let buildSlots: BuildSlots
    /// Removes environments a forced rebuild moved aside, off the actor and off the install's path.
    let trashCan = TrashCan()
    var runtimes: [Ecosystem: Runtime] = [:]
    /// The uv binary every build runs (a wrapper script on PATH resolved to it once; see `uvPath`).
    var resolvedUV: String?
    var resolutions: [String: Resolution] = [:]
    var inFlight: [String: Task<BuiltEnvironment, any Error>] = [:]
    /// Request fingerprint -> the environment it was served last: a repeated request is a
    /// dictionary lookup and one stat of the ready marker, no hashing and no subprocess.
    var hits: [String: Hit] = [:]
    /// Skill -> the binding last written, so a repeated install does not rewrite the file.
    var bindings: [String: String] = [:]
    /// When each environment was last served, and last touched on disk (see `noteUse`).
    var lastServed: [String: ContinuousClock.Instant] = [:]
    var lastTouched: [String: ContinuousClock.Instant] = [:]

    struct Hit: Sendable {
        let id: String
        let locked: [LockedPackage]
        let warnings: [String]
        let at: ContinuousClock.Instant
    }
    /// Builds that ran (not served from the cache or joined): for tests and `atom envs`.
    public internal(set) var buildsStarted = 0
    var activeBuilds = 0
    /// The most builds that ran at once.
    public internal(set) var peakConcurrentBuilds = 0

    /// The interpreter and platform an environment is built for: part of its key.
    struct Runtime: Sendable, Hashable {
        let version: String
        let platform: String
        /// The interpreter's real path (`sys.executable`): handing uv a resolved path skips
        /// wrapper scripts such as pyenv shims on every call.
        var executable: String = ""
        /// How to write a virtual environment for this interpreter without `uv venv`; nil when
        /// it is not a CPython this installer knows how to lay out (then `uv venv` does it).
        var venvLayout: VirtualEnvironmentLayout? = nil
    }

    /// A lock: what the resolver decided for a requirement set.
    struct Resolution: Sendable {
        let lockText: String
        let locked: [Locked]
        let resolvedAt: ContinuousClock.Instant
    }

    struct Locked: Sendable, Hashable, Codable {
        let name: String
        let version: String
        /// File hashes (python) or the tarball digest (npm); part of the environment key.
        let hashes: [String]
        /// npm: the tarball the version comes from (local installs), else empty.
        var source: String = ""
    }

    struct BuiltEnvironment: Sendable {
        let id: String
        let built: Bool
    }

    /// What `atom-env.json` in an environment records.
    struct Metadata: Codable {
        let id: String
        let ecosystem: Ecosystem
        let requirements: [String]
        let locked: [Locked]
        let runtime: String
        let platform: String
        let createdUnixMs: UInt64
    }

    public init(configuration: InstallerConfiguration, logger: Logger = Logger(label: "atom-installer")) throws {
        self.configuration = configuration
        self.logger = logger
        slots = AsyncSemaphore(configuration.maxConcurrentInstallations)
        let fm = FileManager.default
        let installerDirectory = "\(configuration.home)/installer"
        for directory in [
            configuration.envsDirectory, configuration.uvCacheDirectory, configuration.resolutionsDirectory, configuration.skillsDirectory,
            installerDirectory,
        ] {
            try fm.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }
        audit = try AuditLog(path: "\(installerDirectory)/audit.sqlite")
        buildSlots = BuildSlots(envs: configuration.envsDirectory, locks: installerDirectory)
        Self.removeAbandoned(in: configuration.envsDirectory, olderThan: configuration.timeout, slots: buildSlots)
    }

    /// Removes what a crash left behind: build directories and environments without the
    /// ready marker, once they are older than the longest a build may take (another
    /// installer on the same home may still be building a younger one), and build slots
    /// (`.build-<n>`) whose lock no build holds.
    static func removeAbandoned(in directory: String, olderThan age: Duration, slots: BuildSlots) {
        let fm = FileManager.default
        let cutoff = Date().addingTimeInterval(-Double(age / .seconds(1)) - 60)
        for entry in (try? fm.contentsOfDirectory(atPath: directory)) ?? [] {
            let path = "\(directory)/\(entry)"
            if entry.hasPrefix(".build-") {
                if let index = Int(entry.dropFirst(".build-".count)), index >= 0, index < BuildSlots.limit, slots.isIdle(index) {
                    try? fm.removeItem(atPath: path)
                }
                continue
            }
            let isScratch = entry.hasPrefix(".tmp-") || entry.hasPrefix(".trash-")
            let unmarked = !entry.hasPrefix(".") && !fm.fileExists(atPath: "\(path)/.atom-ready")
            guard isScratch || unmarked else { continue }
            let modified = (try? fm.attributesOfItem(atPath: path)[.modificationDate] as? Date) ?? .distantPast
            if modified < cutoff { try? fm.removeItem(atPath: path) }
        }
    }

    // MARK: - Install

    /// Installs one validated request. Domain failures (policy, conflicts, resolver or build
    /// errors) come back as a result with `success == false`; an unreachable index throws
    /// UNAVAILABLE.
    public func install(_ request: ValidatedInstall, progress: @escaping InstallProgress) async throws -> InstallResult {
        let prepared = PreparedVenv()
        do {
            let result = try await install(request, prepared: prepared, progress: progress)
            await prepared.discard()
            return result
        } catch {
            await prepared.discard()
            throw error
        }
    }

    private func install(_ request: ValidatedInstall, prepared: PreparedVenv, progress: @escaping InstallProgress) async throws -> InstallResult {
        let start = ContinuousClock.now
        var result = InstallResult(skillId: request.skillID)
        result.packageType = request.ecosystem == .python ? .python : .npm
        result.memoryLimitBytes = request.limits.memoryBytes
        result.cpuLimit = request.limits.cpus
        func finish(_ result: inout InstallResult) {
            result.durationMs = UInt64(max(0, (ContinuousClock.now - start) / .milliseconds(1)))
        }
        func fail(_ message: String, _ result: inout InstallResult) -> InstallResult {
            result.success = false
            result.error = message
            finish(&result)
            record(request, decision: "failed", detail: message)
            return result
        }

        let reuse = configuration.cacheEnabled && !request.options.force
        let fingerprint = request.fingerprint
        if reuse, let hit = hits[fingerprint] {
            if ContinuousClock.now - hit.at <= configuration.resolutionTTL && isReady(hit.id) {
                noteUse(hit.id)
                try? bind(request, to: hit.id)
                result.success = true
                result.cached = true
                result.environmentId = hit.id
                result.locked = hit.locked
                result.warnings = hit.warnings
                finish(&result)
                return result
            }
            hits[fingerprint] = nil
        }

        var policy = configuration.policy
        if request.options.wheelsOnly { policy.wheelsOnly = true }
        let decision = policy.evaluate(request.requirements, ecosystem: request.ecosystem)
        result.warnings += decision.warnings
        if !decision.allowed {
            record(request, decision: "refused", detail: decision.refusals.joined(separator: "; "))
            result.error = "refused by the supply-chain policy: " + decision.refusals.joined(separator: "; ")
            finish(&result)
            return result
        }
        if !decision.warnings.isEmpty { record(request, decision: "warned", detail: decision.warnings.joined(separator: "; ")) }

        await progress(.resolving, "resolving \(request.requirements.count) requirement(s)", 0.05)
        let conflicts = ConflictDetector.conflicts(request.requirements)
        if !conflicts.isEmpty {
            result.conflicts = conflicts.map { DependencyConflict(package: $0.package, requirements: $0.requirements, reason: $0.reason) }
            return fail("conflicting requirements: " + conflicts.map(\.description).joined(separator: "; "), &result)
        }
        if request.ecosystem == .python {
            // A resolver run takes a few hundred milliseconds: create the virtual environment
            // a build would need meanwhile and install into it speculatively (discarded if
            // nothing is built).
            let runtime = try await runtime(for: .python)
            if !(reuse && cachedResolution(resolutionKey(request, policy: policy, runtime: runtime)) != nil) {
                let store = self
                prepared.task = Task { await store.prepareVenv(runtime: runtime, request: request) }
            }
        }
        let resolution: Resolution
        switch try await resolve(request, policy: policy) {
        case .success(let resolved, _):
            resolution = resolved
            logger.debug("resolved", metadata: ["after_ms": "\(Int((ContinuousClock.now - start) / .milliseconds(1)))"])
        case .conflict(let message):
            result.conflicts = [DependencyConflict(package: "", requirements: request.requirements.map(\.text), reason: message)]
            return fail("the resolver found no solution: \(message)", &result)
        case .failure(let message):
            return fail(message, &result)
        }
        result.locked = resolution.locked.map { LockedPackage(name: $0.name, version: $0.version) }

        if let scanner = policy.scanner {
            if let problem = await scan(resolution, with: scanner) {
                record(request, decision: "refused", detail: problem)
                return fail(problem, &result)
            }
        }

        let runtime = try await runtime(for: request.ecosystem)
        let id = Self.environmentID(ecosystem: request.ecosystem, locked: resolution.locked, runtime: runtime)
        result.environmentId = id
        if reuse && isReady(id) {
            hits[fingerprint] = Hit(id: id, locked: result.locked, warnings: result.warnings, at: .now)
            noteUse(id)
            try? bind(request, to: id)
            result.success = true
            result.cached = true
            finish(&result)
            await progress(.done, "environment \(id.prefix(12)) is cached", 1)
            return result
        }

        let build: Task<BuiltEnvironment, any Error>
        if let running = inFlight[id] {
            await progress(.downloading, "waiting for an identical build in progress", 0.2)
            build = running
        } else {
            let store = self
            build = Task {
                try await store.slots.acquire()
                do {
                    let built = try await store.build(
                        id: id, request: request, resolution: resolution, runtime: runtime, reuse: reuse, prepared: prepared, progress: progress)
                    await store.slots.release()
                    return built
                } catch {
                    await store.slots.release()
                    throw error
                }
            }
            inFlight[id] = build
        }
        do {
            let built = try await build.value
            if inFlight[id] == build { inFlight[id] = nil }
            noteUse(id)
            if built.built { enforceSizeCap() }
            try? bind(request, to: id)
            if configuration.cacheEnabled { hits[fingerprint] = Hit(id: id, locked: result.locked, warnings: result.warnings, at: .now) }
            result.success = true
            result.cached = !built.built
            finish(&result)
            record(request, decision: "installed", detail: id)
            logger.debug("installed \(id.prefix(12))", metadata: ["after_ms": "\(result.durationMs)", "built": "\(built.built)"])
            await progress(.done, "environment \(id.prefix(12)) is ready", 1)
            return result
        } catch let error as RPCError {
            if inFlight[id] == build { inFlight[id] = nil }
            record(request, decision: "failed", detail: error.message)
            throw error
        } catch {
            if inFlight[id] == build { inFlight[id] = nil }
            return fail("\(error)", &result)
        }
    }

    func isReady(_ id: String) -> Bool {
        FileManager.default.fileExists(atPath: "\(configuration.envsDirectory)/\(id)/.atom-ready")
    }

    /// The environment id: SHA-256 over the ecosystem, the locked set and the runtime.
    static func environmentID(ecosystem: Ecosystem, locked: [Locked], runtime: Runtime) -> String {
        var text = "atom-env-v1\n\(ecosystem.rawValue)\n\(runtime.version)\n\(runtime.platform)\n"
        for entry in locked.sorted(by: { $0.name < $1.name }) {
            text += "\(entry.name)==\(entry.version) \(entry.hashes.sorted().joined(separator: ","))\n"
        }
        return SHA256Hex.of(text)
    }

    /// Records which environment a skill uses, and the limits the loader applies.
    func bind(_ request: ValidatedInstall, to id: String) throws {
        guard !request.skillID.isEmpty else { return }
        let signature = "\(id) \(request.limits.memoryBytes) \(request.limits.cpus) \(request.canonicalRequirements)"
        if bindings[request.skillID] == signature { return }
        let binding: [String: Any] = [
            "skill_id": request.skillID, "environment_id": id, "package_type": request.ecosystem.rawValue,
            "requirements": request.requirements.map(\.text), "memory_limit_bytes": request.limits.memoryBytes,
            "cpu_limit": request.limits.cpus,
        ]
        let data = try JSONSerialization.data(withJSONObject: binding, options: [.sortedKeys, .prettyPrinted])
        try data.write(to: URL(fileURLWithPath: "\(configuration.skillsDirectory)/\(request.skillID).json"), options: .atomic)
        bindings[request.skillID] = signature
    }

    func record(_ request: ValidatedInstall, decision: String, detail: String) {
        do {
            try audit?.record(
                agentID: request.agentID, skillID: request.skillID, ecosystem: request.ecosystem.rawValue,
                packages: request.requirements.map(\.text), decision: decision, detail: detail)
        } catch {
            logger.error("cannot write the audit log", metadata: ["error": "\(error)"])
        }
    }

    /// Runs the configured scanner on the lock; any failure to run it refuses the install.
    func scan(_ resolution: Resolution, with scanner: String) async -> String? {
        let path = "\(configuration.resolutionsDirectory)/scan-\(UUID().uuidString).txt"
        defer { try? FileManager.default.removeItem(atPath: path) }
        do {
            try resolution.lockText.write(toFile: path, atomically: true, encoding: .utf8)
            let outcome = try await Subprocess.run("/bin/sh", ["-c", scanner + " \"$0\"", path], timeout: configuration.timeout)
            if outcome.succeeded { return nil }
            return "the vulnerability scanner refused the install (exit \(outcome.status)\(outcome.timedOut ? ", timed out" : "")): \(outcome.tail)"
        } catch {
            return "the vulnerability scanner could not run, so the install is refused: \(error)"
        }
    }

    // MARK: - Runtime

    /// Asks the interpreter for its version and layout and resolves the uv binary, so the first
    /// install does not pay for it. Errors are left for that install to report.
    public func warmUp() async {
        _ = try? await runtime(for: .python)
        _ = try? await uvPath()
    }

    func runtime(for ecosystem: Ecosystem) async throws -> Runtime {
        if let known = runtimes[ecosystem] { return known }
        let found: Runtime
        switch ecosystem {
        case .python:
            guard let python = Subprocess.which(configuration.python) else {
                throw RPCError(.failedPrecondition, "the python interpreter \(configuration.python) is not on PATH")
            }
            let script = (["import sys, sysconfig", "print('%d.%d.%d' % sys.version_info[:3]); print(sysconfig.get_platform()); print(sys.executable)"]
                + VirtualEnvironmentLayout.probeLines).joined(separator: "\n")
            let outcome = try await Subprocess.run(python, ["-c", script])
            let lines = outcome.stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            guard outcome.succeeded, lines.count >= 3 else {
                throw RPCError(.failedPrecondition, "cannot ask \(python) for its version: \(outcome.tail)")
            }
            let layout = lines.count >= 8
                ? VirtualEnvironmentLayout(implementation: lines[3], baseExecutable: lines[4], versionInfo: lines[5], sitePackages: [lines[6], lines[7]])
                : nil
            found = Runtime(version: "cpython-" + lines[0], platform: lines[1], executable: lines[2], venvLayout: layout)
        case .npm:
            guard let node = Subprocess.which("node") else { throw RPCError(.failedPrecondition, "node is not on PATH") }
            let outcome = try await Subprocess.run(node, ["-p", "process.version + ' ' + process.platform + '-' + process.arch"])
            let parts = outcome.stdout.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: " ")
            guard outcome.succeeded, parts.count == 2 else { throw RPCError(.failedPrecondition, "cannot ask node for its version: \(outcome.tail)") }
            found = Runtime(version: "node-" + parts[0], platform: String(parts[1]))
        }
        runtimes[ecosystem] = found
        return found
    }

    // MARK: - Listing

    public func list() -> [EnvironmentInfo] {
        let fm = FileManager.default
        var result: [EnvironmentInfo] = []
        for entry in ((try? fm.contentsOfDirectory(atPath: configuration.envsDirectory)) ?? []).sorted() where !entry.hasPrefix(".") {
            let path = "\(configuration.envsDirectory)/\(entry)"
            guard fm.fileExists(atPath: "\(path)/.atom-ready"),
                  let data = fm.contents(atPath: "\(path)/atom-env.json"),
                  let metadata = try? JSONDecoder().decode(Metadata.self, from: data)
            else { continue }
            result.append(EnvironmentInfo(
                environmentId: metadata.id, packageType: metadata.ecosystem == .python ? .python : .npm,
                requirements: metadata.requirements,
                locked: metadata.locked.map { LockedPackage(name: $0.name, version: $0.version) },
                runtime: metadata.runtime, platform: metadata.platform, createdUnixMs: metadata.createdUnixMs,
                sizeBytes: Self.size(of: path)))
        }
        return result
    }

    /// Bytes in a directory tree, counting each hard-linked file once per directory tree.
    static func size(of path: String) -> UInt64 {
        var total: UInt64 = 0
        guard let enumerator = FileManager.default.enumerator(atPath: path) else { return 0 }
        while let relative = enumerator.nextObject() as? String {
            if let attributes = try? FileManager.default.attributesOfItem(atPath: "\(path)/\(relative)"),
               attributes[.type] as? FileAttributeType == .typeRegular,
               let size = attributes[.size] as? NSNumber {
                total += size.uint64Value
            }
        }
        return total
    }
}

/// A virtual environment created while the resolver runs; `build` adopts it (and with it its
/// build slot), otherwise `discard` removes it and gives the slot back.
final class PreparedVenv: @unchecked Sendable {
    // Only touched from the store's actor and after the task it starts has finished.
    var task: Task<PreparedDirectory?, Never>?
    private var adopted = false

    /// The finished preparation, now the build's to rename or remove (and its slot to release).
    func adopt() async -> PreparedDirectory? {
        guard let task else { return nil }
        adopted = true
        return await task.value
    }

    func discard() async {
        guard !adopted, let task else { return }
        // Stops a speculative install that nothing will adopt.
        task.cancel()
        guard let prepared = await task.value else { return }
        if FileManager.default.fileExists(atPath: prepared.path) { try? FileManager.default.removeItem(atPath: prepared.path) }
        prepared.slot?.release()
    }
}

/// Deletes folders on a thread of its own (a file-system walk blocks; the cooperative pool must
/// not), after the install that moved them aside has finished with them. `settle` waits for every
/// deletion asked for so far. A crash before a deletion leaves a `.trash-*` folder, which the
/// start-up clean-up removes.
final class TrashCan: Sendable {
    private let queue = DispatchQueue(label: "atom-installer-trash", qos: .utility)
    private let group = DispatchGroup()

    func remove(_ path: String) {
        group.enter()
        queue.async { [group] in
            try? FileManager.default.removeItem(atPath: path)
            group.leave()
        }
    }

    func settle() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            group.notify(queue: .global()) { continuation.resume() }
        }
    }
}

extension EnvironmentStore {
    /// Waits until the old environments forced rebuilds moved aside are deleted.
    public func settle() async {
        await trashCan.settle()
    }
}

/// A counting semaphore for async code: waiters queue in order, no thread blocks.
actor AsyncSemaphore {
    private var available: Int
    private var waiters: [CheckedContinuation<Void, Never>] = []

    init(_ count: Int) { available = count }

    func acquire() async throws {
        if available > 0 {
            available -= 1
            return
        }
        await withCheckedContinuation { waiters.append($0) }
    }

    func release() {
        if waiters.isEmpty {
            available += 1
        } else {
            waiters.removeFirst().resume()
        }
    }
}
