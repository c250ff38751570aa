public import AtomProto
public import AtomRPC
public import Logging
internal import AtomAPI
public import AtomMetrics
internal import AtomSkillFormat
internal import Foundation
internal import Synchronization

/// One loaded version of a skill: its folder as read, the environment it runs in and the
/// unique module name it has in its hosts.
struct SkillVersion: Sendable {
    /// The skill folder (where it lives, what the watcher and reloads look at).
    let folder: SkillFolder
    /// Its snapshot (`VersionSnapshots`): what hosts import, so every host runs the same files.
    let code: SkillFolder
    let module: String
    let key: HostKey
    /// The installer's environment folder, nil for the system runtime.
    let environment: String?
    let loadedAt: Date

    /// `text` (an error, a traceback) with the snapshot's paths shown as the skill folder's.
    func sourcePaths(_ text: String) -> String {
        text.replacingOccurrences(of: code.url.path + "/", with: folder.url.path + "/")
    }
}

/// A loaded skill: the version that serves, and its counters.
struct SkillEntry {
    var current: SkillVersion
    var executions: UInt64 = 0
    var failures: UInt64 = 0
    var reloads: UInt64 = 0
    var lastReload: Date?
    var lastError = ""
    var lastUsed = ContinuousClock.now
    var lastUsedDate = Date()
}

/// The hosts of one `HostKey`: at most `LOADER_HOSTS_PER_ENVIRONMENT`, each serving one
/// request at a time; callers queue for a free one.
final class HostGroup {
    var hosts: [HostProcess] = []
    var idle: [HostProcess] = []
    var starting = 0
    var lastUsed: [Int: ContinuousClock.Instant] = [:]
    /// Callers waiting for a host, first come first served; each is resumed once, when a host
    /// may be free (or the loader shuts down).
    var waiters: [CheckedContinuation<Void, Never>] = []
}

/// What an execution produced: outputs, or the skill's own exception.
public struct ExecutionOutcome: Sendable {
    public var response: ExecuteSkillResponse
}

/// The loader's state: loaded skills, their hosts, reloads. Host I/O happens outside the
/// actor (it is released while a host works), so executions of different skills, and of one
/// skill on several hosts, run in parallel.
public actor Loader {
    public nonisolated let configuration: LoaderConfiguration
    let factory: HostFactory
    let paths: SkillPaths
    let launcher = HostLauncher()
    let logger: Logger
    let makeClient: @Sendable () throws -> RPCClient
    private var client: RPCClient?
    /// Written only through `store`, `modify` and `discard`, which publish each skill's info to
    /// `published` as well.
    private var skills: [String: SkillEntry] = [:]
    /// What GetSkill answers, readable without entering the actor (no thread hop, no I/O, no
    /// hashing on a cached get).
    private nonisolated let published = Mutex<[String: SkillInfo]>([:])
    private var groups: [HostKey: HostGroup] = [:]
    private let snapshots: VersionSnapshots
    /// Snapshots of versions that stopped serving (hash -> when), removed a while later: a call
    /// that started on the old version may still import from it.
    private var retiredSnapshots: [String: ContinuousClock.Instant] = [:]
    private static let snapshotGrace: Duration = .seconds(60)
    private var reloadEvents: [ReloadEvent] = []
    private var lockedNames: [String: [CheckedContinuation<Void, Never>]] = [:]
    private var nextHostID = 1
    private var nextModule = 1
    private var watcher: SkillWatcher?
    private var gone: [String: String] = [:]
    private var goneOrder: [String] = []
    private var background: [Task<Void, Never>] = []
    private var stopped = false

    /// - Parameter makeClient: a client to the gateway, for the installer (made on first need).
    public init(configuration: LoaderConfiguration, logger: Logger, makeClient: @escaping @Sendable () throws -> RPCClient) {
        signal(SIGPIPE, SIG_IGN)
        self.configuration = configuration
        self.logger = logger
        self.makeClient = makeClient
        factory = HostFactory(configuration: configuration)
        paths = SkillPaths(configuration.skillsDirectories)
        let state = configuration.stateDirectory
        LoaderLeftovers.remove(in: "\(state)/scratch", pid: LoaderLeftovers.hostEntryPID)
        LoaderLeftovers.remove(in: "\(state)/logs", pid: LoaderLeftovers.hostEntryPID)
        snapshots = VersionSnapshots(parent: configuration.versionsDirectory)
        try? FileManager.default.createDirectory(atPath: "\(configuration.home)/skills", withIntermediateDirectories: true)
        if configuration.sandbox == .off {
            logger.warning("LOADER_SANDBOX=off: SKILLS RUN WITHOUT A SANDBOX (network and file system open). Development only.")
        } else if let problem = factory.sandboxProblem {
            logger.error("the skill sandbox is unavailable; every load will fail until it is fixed", metadata: ["problem": "\(problem)"])
        }
        logger.info("loader ready", metadata: [
            "skills_dirs": "\(configuration.skillsDirectories.joined(separator: ":"))", "python": "\(factory.python)",
            "runtime": "\(configuration.runtimeDirectory)", "hot_reload": "\(configuration.hotReload)", "sandbox": "\(configuration.sandbox.rawValue)",
        ])
    }

    /// Starts hot reload (when enabled), the idle-host janitor and the preload list.
    public func start(metrics: LatencyRecorder) {
        if configuration.hotReload {
            let (stream, continuation) = AsyncStream<(String, Bool)>.makeStream(bufferingPolicy: .unbounded)
            do {
                let watcher = try SkillWatcher(debounce: configuration.reloadDebounce) { continuation.yield(($0, $1)) }
                self.watcher = watcher
                for directory in paths.roots { watcher.watchParent(directory) }
                background.append(Task { [weak self] in
                    for await (folder, structural) in stream {
                        await self?.folderChanged(folder, structural: structural, metrics: metrics)
                    }
                })
            } catch {
                logger.error("hot reload is off: \(error)")
            }
        }
        if let idle = configuration.hostIdleTimeout {
            background.append(Task { [weak self] in
                let interval = min(max(idle / 4, .milliseconds(100)), .seconds(30))
                while !Task.isCancelled {
                    try? await Task.sleep(for: interval)
                    await self?.stopIdleHosts(olderThan: idle)
                }
            })
        }
        let preload = configuration.preload
        if !preload.isEmpty {
            background.append(Task { [weak self] in
                for item in preload {
                    let isPath = item.contains("/")
                    do {
                        _ = try await self?.load(name: isPath ? "" : item, path: isPath ? item : "", context: nil, metrics: metrics)
                    } catch {
                        self?.logger.error("preload of \(item) failed: \(LoaderError.rpc(error).message)")
                    }
                }
            })
        }
    }

    /// Stops every host and the background work.
    public func shutdown() async {
        stopped = true
        watcher?.stop()
        for task in background { task.cancel() }
        for group in groups.values {
            for host in group.hosts { await host.stop() }
            // Nobody will release a host again: callers still waiting for one end now.
            for waiter in group.waiters { waiter.resume() }
            group.waiters = []
        }
        groups = [:]
        client?.close()
    }

    // MARK: loading

    /// LoadSkill: loads a skill, or answers `cached` when the same content is loaded already.
    public func load(name: String, path: String, context: RPCContext?, metrics: LatencyRecorder) async throws -> LoadSkillResponse {
        let started = ContinuousClock.now
        let folderPath = try paths.resolve(name: name, path: path)
        let folder = try await Self.readFolder(folderPath)
        let skillName = folder.manifest.name
        guard name.isEmpty || name == skillName else {
            throw LoaderError(.invalidArgument, "the skill at \(folderPath) is named \(skillName) in its manifest, not \(name)")
        }
        await lock(skillName)
        defer { unlock(skillName) }
        if var entry = skills[skillName], entry.current.folder.contentHash == folder.contentHash, entry.current.folder.url == folder.url {
            entry.lastUsed = .now
            entry.lastUsedDate = Date()
            store(skillName, entry)
            let elapsed = ContinuousClock.now - started
            metrics.record("skill_load_cached", elapsed)
            return LoadSkillResponse(skill: info(entry), cached: true, durationUs: Self.micros(elapsed))
        }
        let version = try await prepare(folder, context: context)
        try await activate(version)
        if var entry = skills[skillName] {
            let old = entry.current
            entry.current = version
            entry.reloads += 1
            entry.lastReload = Date()
            entry.lastError = ""
            entry.lastUsed = .now
            store(skillName, entry)
            if old.folder.url != folder.url, !skills.values.contains(where: { $0.current.folder.url == old.folder.url }) {
                // Loaded from another folder now: the old one is not this skill's any more.
                watcher?.unwatch(old.folder.url.path)
            }
            await retire(old)
        } else {
            store(skillName, SkillEntry(current: version))
        }
        watcher?.watch(folder.url.path)
        await evict(keeping: skillName)
        let elapsed = ContinuousClock.now - started
        metrics.record("skill_load", elapsed)
        logger.info("loaded \(skillName) \(folder.manifest.version)", metadata: [
            "loader.skill": "\(skillName)", "loader.hash": "\(folder.contentHash.prefix(12))", "loader.host": "\(version.key)",
        ])
        return LoadSkillResponse(skill: info(skills[skillName]!), cached: false, durationUs: Self.micros(elapsed))
    }

    public enum ReloadTrigger: String, Sendable {
        case hot
        case rpc
    }

    /// ReloadSkill / hot reload: the new version is loaded beside the old one and swapped in
    /// only when it imports; otherwise the old one keeps serving and the error is kept.
    public func reload(name: String, trigger: ReloadTrigger, context: RPCContext?, metrics: LatencyRecorder) async throws -> LoadSkillResponse {
        guard skills[name] != nil else {
            throw LoaderError(
                .notFound, "skill \(name) is not loaded, so there is nothing to reload (a load that failed loads nothing): LoadSkill it (`atom skill load \(name)`), which reports why it cannot be loaded",
                reason: "SKILL_NOT_LOADED")
        }
        let started = ContinuousClock.now
        await lock(name)
        defer { unlock(name) }
        guard let entry = skills[name] else { throw LoaderError(.notFound, "skill \(name) was unloaded") }
        func fail(_ error: any Error) -> any Error {
            let message = LoaderError.rpc(error).message
            modify(name) { $0.lastError = message }
            event(name, trigger, "failed", message, hash: "", started)
            logger.warning("reload of \(name) failed; the previous version keeps serving", metadata: ["loader.skill": "\(name)", "error": "\(message)"])
            return error
        }
        let folder: SkillFolder
        do {
            folder = try await Self.readFolder(entry.current.folder.url.path)
            guard folder.manifest.name == name else {
                throw LoaderError(.failedPrecondition, "the manifest now names the skill \(folder.manifest.name), not \(name); load it under its new name")
            }
        } catch {
            throw fail(error)
        }
        if folder.contentHash == entry.current.folder.contentHash {
            event(name, trigger, "unchanged", "", hash: folder.contentHash, started)
            return LoadSkillResponse(skill: info(entry), cached: true, durationUs: Self.micros(ContinuousClock.now - started))
        }
        let version: SkillVersion
        do {
            version = try await prepare(folder, context: context)
            try await activate(version)
        } catch {
            throw fail(error)
        }
        guard var current = skills[name] else { throw LoaderError(.notFound, "skill \(name) was unloaded during its reload") }
        let old = current.current
        current.current = version
        current.reloads += 1
        current.lastReload = Date()
        current.lastError = ""
        store(name, current)
        await retire(old)
        let elapsed = ContinuousClock.now - started
        metrics.record("hot_reload", elapsed)
        event(name, trigger, "reloaded", "", hash: folder.contentHash, started)
        logger.info("reloaded \(name) (\(trigger.rawValue))", metadata: ["loader.skill": "\(name)", "loader.hash": "\(folder.contentHash.prefix(12))"])
        return LoadSkillResponse(skill: info(current), cached: false, durationUs: Self.micros(elapsed))
    }

    /// A watched path changed. Its files only: reload the skills there. The folder itself
    /// (`structural`): gone, its skills are unloaded (and remembered); replaced, they are reloaded
    /// from the new folder; a folder moved in that holds a skill that went away (from here or
    /// elsewhere) loads it again. A folder that holds a skill never loaded is left alone: it
    /// loads on first use.
    private func folderChanged(_ folder: String, structural: Bool, metrics: LatencyRecorder) async {
        guard !stopped else { return }
        var isDirectory: ObjCBool = false
        let exists = FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory) && isDirectory.boolValue
        let here = skills.filter { $0.value.current.folder.url.path == folder }.map { $0.key }.sorted()
        if !here.isEmpty {
            guard exists else {
                watcher?.unwatch(folder)
                for name in here {
                    let started = ContinuousClock.now
                    await lock(name)
                    // Recorded before the skill leaves the table, so that whoever sees it gone sees why.
                    if skills[name]?.current.folder.url.path == folder {
                        rememberGone(name, folder)
                        event(name, .hot, "removed", "its folder \(folder) was moved away or deleted; it is unloaded and loads again if the folder comes back", hash: "", started)
                        logger.info("\(name): its folder \(folder) is gone; unloaded", metadata: ["loader.skill": "\(name)"])
                        _ = await remove(name)
                    }
                    unlock(name)
                }
                return
            }
            if structural { watcher?.rewatch(folder) }
            for name in here {
                _ = try? await reload(name: name, trigger: .hot, context: nil, metrics: metrics)
            }
            return
        }
        guard structural, exists, !gone.isEmpty || skills.values.contains(where: { !FileManager.default.fileExists(atPath: $0.current.folder.url.path) }) else { return }
        // A folder moved in: does it hold a skill that went away?
        guard let name = try? await Self.readFolder(folder).manifest.name else { return }
        let movedFrom = skills[name].map(\.current.folder.url.path).flatMap { FileManager.default.fileExists(atPath: $0) ? nil : $0 }
        guard movedFrom != nil || gone[name] != nil else { return }
        let started = ContinuousClock.now
        do {
            let response = try await load(name: "", path: folder, context: nil, metrics: metrics)
            gone[name] = nil
            if let movedFrom, !skills.values.contains(where: { $0.current.folder.url.path == movedFrom }) { watcher?.unwatch(movedFrom) }
            event(name, .hot, movedFrom != nil ? "moved" : "restored", "loaded from \(folder)", hash: response.skill?.contentHash ?? "", started)
            logger.info("\(name): its folder appeared at \(folder); loaded", metadata: ["loader.skill": "\(name)"])
        } catch {
            let message = LoaderError.rpc(error).message
            event(name, .hot, "failed", message, hash: "", started)
            logger.warning("\(name): its folder appeared at \(folder) but does not load", metadata: ["loader.skill": "\(name)", "error": "\(message)"])
        }
    }

    /// Skills unloaded because their folder went away (name -> folder), so that they load again
    /// when it comes back; the oldest are forgotten past 100.
    private func rememberGone(_ name: String, _ folder: String) {
        gone[name] = folder
        goneOrder.removeAll { $0 == name }
        goneOrder.append(name)
        if goneOrder.count > 100 { gone[goneOrder.removeFirst()] = nil }
    }

    private func event(_ name: String, _ trigger: ReloadTrigger, _ outcome: String, _ message: String, hash: String, _ started: ContinuousClock.Instant) {
        reloadEvents.append(ReloadEvent(
            name: name, atMs: Self.millis(Date()), trigger: trigger.rawValue, outcome: outcome, message: message, contentHash: hash,
            durationUs: Self.micros(ContinuousClock.now - started)))
        if reloadEvents.count > 50 { reloadEvents.removeFirst(reloadEvents.count - 50) }
    }

    /// The environment (installing packages through the installer when the skill has any) and
    /// the host key of a new version.
    private func prepare(_ folder: SkillFolder, context: RPCContext?) async throws -> SkillVersion {
        let manifest = folder.manifest
        var environmentID = ""
        var environment: String?
        if !manifest.packages.isEmpty {
            environmentID = try await install(manifest, context: context)
            environment = "\(configuration.environmentsDirectory)/\(environmentID)"
        }
        let key = HostKey(runtime: manifest.runtime, environmentID: environmentID, network: manifest.permissions.network, memoryBytes: manifest.limits.memoryBytes ?? 0)
        let safe = String(manifest.name.map { $0.isLetter || $0.isNumber ? $0 : "_" })
        let module = "atom_skill_\(safe)_\(folder.contentHash.prefix(12))_\(nextModule)"
        nextModule += 1
        var code = try await Self.snapshot(folder, in: snapshots)
        // The same files may be a retired version's snapshot, due for removal: claim it, and make
        // it again if a sweep removed it while it was being looked up.
        retiredSnapshots[code.contentHash] = nil
        if !FileManager.default.fileExists(atPath: code.url.path) {
            code = try await Self.snapshot(folder, in: snapshots)
        }
        return SkillVersion(folder: folder, code: code, module: module, key: key, environment: environment, loadedAt: Date())
    }

    /// The version's snapshot, copied off the cooperative pool.
    private static func snapshot(_ folder: SkillFolder, in snapshots: VersionSnapshots) async throws -> SkillFolder {
        do {
            return try await offPool { try snapshots.snapshot(of: folder) }
        } catch {
            throw LoaderError(.internal, "cannot copy \(folder.url.path) for loading: \(error)", reason: "SKILL_SNAPSHOT_FAILED")
        }
    }

    /// A version stopped serving (or never started): its snapshot goes after the grace period,
    /// unless a loaded version uses the same files again.
    private func retireSnapshot(_ hash: String) {
        let now = ContinuousClock.now
        retiredSnapshots[hash] = now
        let inUse = Set(skills.values.map(\.current.code.contentHash))
        for (retired, since) in retiredSnapshots where inUse.contains(retired) || now - since >= Self.snapshotGrace {
            retiredSnapshots[retired] = nil
            if !inUse.contains(retired) { snapshots.remove(hash: retired) }
        }
    }

    private func install(_ manifest: SkillManifest, context: RPCContext?) async throws -> String {
        if client == nil { client = try makeClient() }
        let installer = InstallerClient(client!)
        let request = InstallRequest(
            skillId: manifest.name, packages: manifest.packages, packageType: manifest.runtime == .python ? .python : .npm, agentId: "atom-loader",
            options: InstallOptions(
                memoryLimit: manifest.limits.memory, cpuLimit: manifest.limits.cpu, indexUrl: configuration.installIndexURL,
                findLinks: configuration.installFindLinks, offline: configuration.installOffline))
        let options = context.map { CallOptions(parent: $0, timeout: .seconds(900)) } ?? CallOptions(timeout: .seconds(900))
        var result: InstallResult?
        do {
            for try await event in installer.installDependencies(request, options: options) where event.phase == .done {
                result = event.result
            }
        } catch {
            let rpc = RPCError.from(error)
            throw LoaderError(rpc.code, "installing the packages of \(manifest.name) through the installer failed: \(rpc.message)", reason: "INSTALL_FAILED")
        }
        guard let result, result.success else {
            throw LoaderError(.failedPrecondition, "installing the packages of \(manifest.name) failed: \(result?.error ?? "the installer gave no result")", reason: "INSTALL_FAILED")
        }
        return result.environmentId
    }

    /// Imports a version into a host of its key (a new module beside any older one).
    private func activate(_ version: SkillVersion) async throws {
        do {
            let host = try await acquire(version.key, preferring: nil, environment: version.environment)
            defer { release(host) }
            try await loadInto(host, version)
        } catch {
            // It never served: its snapshot is not needed.
            retireSnapshot(version.code.contentHash)
            throw error
        }
    }

    private func loadInto(_ host: HostProcess, _ version: SkillVersion) async throws {
        let manifest = version.folder.manifest
        let reply: HostFrame
        do {
            reply = try await host.request(
                .load, [version.module, version.code.url.path, version.code.entryURL.path, manifest.function].map { Array($0.utf8) },
                timeout: .seconds(max(manifest.limits.timeoutSeconds, 10)))
        } catch let exit as HostExit {
            throw Self.hostFailure(exit, skill: manifest.name, doing: "loading")
        }
        if reply.text(reply.op == .ok ? 1 : 5) == "retire" && !host.isRetiring {
            host.markRetiring()
            logger.info("host \(host.id) (\(host.key)) holds as many ES-module versions as it may; it is replaced once idle", metadata: ["pid": "\(host.pid)"])
        }
        if reply.op == .ok {
            host.markLoaded(version.module)
            return
        }
        if reply.text(3) == "memory" {
            host.kill(.stopped)
            throw LoaderError(.resourceExhausted, "skill \(manifest.name) ran out of memory while importing (limit \(manifest.limits.memory))", reason: "SKILL_MEMORY")
        }
        let traceback = version.sourcePaths(reply.text(2))
        throw LoaderError(
            .failedPrecondition, "skill \(manifest.name) failed to import: \(reply.text(0)): \(version.sourcePaths(reply.text(1)))\(traceback.isEmpty ? "" : "\n\(traceback)")",
            reason: "SKILL_IMPORT_FAILED")
    }

    /// Takes an old version out of its hosts; stops hosts no loaded skill needs any more.
    private func retire(_ version: SkillVersion) async {
        retireSnapshot(version.code.contentHash)
        if let group = groups[version.key] {
            for host in group.hosts { host.unload([version.module]) }
        }
        await stopUnusedGroups()
    }

    private func stopUnusedGroups() async {
        let used = Set(skills.values.map(\.current.key))
        // A group with callers waiting stays: they are woken from it, and cancelled from it.
        for (key, group) in groups where !used.contains(key) && group.starting == 0 && group.idle.count == group.hosts.count && group.waiters.isEmpty {
            groups[key] = nil
            for host in group.hosts { await host.stop() }
        }
    }

    /// Unloads the least recently used skills while more than `cache_size` are loaded.
    private func evict(keeping: String) async {
        while skills.count > configuration.cacheSize {
            guard let victim = skills.filter({ $0.key != keeping && lockedNames[$0.key] == nil }).min(by: { $0.value.lastUsed < $1.value.lastUsed })?.key else { return }
            logger.info("cache_size \(configuration.cacheSize) reached: unloading \(victim), the least recently used")
            _ = await remove(victim)
        }
    }

    private func remove(_ name: String) async -> Bool {
        guard let entry = discard(name) else { return false }
        if !skills.values.contains(where: { $0.current.folder.url == entry.current.folder.url }) {
            watcher?.unwatch(entry.current.folder.url.path)
        }
        await retire(entry.current)
        return true
    }

    public func unload(name: String) async -> Bool {
        await lock(name)
        defer { unlock(name) }
        return await remove(name)
    }

    public func clear() async -> UInt32 {
        var count: UInt32 = 0
        for name in skills.keys.sorted() {
            if await unload(name: name) { count += 1 }
        }
        return count
    }

    // MARK: executing

    /// ExecuteSkill. A skill's own exception is a `failure` in the response; a host that dies,
    /// runs out of time or memory is an error (and the host is replaced).
    public func execute(name: String, inputs: String, timeoutMs: UInt32, capMs: UInt32? = nil, metrics: LatencyRecorder) async throws -> ExecuteSkillResponse {
        guard var entry = skills[name] else {
            throw LoaderError(.notFound, "skill \(name) is not loaded; LoadSkill it first (`atom skill load`)", reason: "SKILL_NOT_LOADED")
        }
        entry.lastUsed = .now
        entry.lastUsedDate = Date()
        store(name, entry)
        let version = entry.current
        let manifest = version.folder.manifest
        if !manifest.inputSchema.onlyRequiresObject {
            // Refused before the skill runs; parsed and checked off the actor.
            try await Self.checkInputs(inputs, against: manifest.inputSchema, skill: name)
        }
        let limits = manifest.limits
        var milliseconds = timeoutMs > 0 ? Int64(timeoutMs) : Int64(limits.timeoutSeconds * 1000)
        if let capMs { milliseconds = min(milliseconds, Int64(capMs)) }
        let timeout: Duration = .milliseconds(milliseconds)
        let cpuSeconds = Int(((timeout / .seconds(1)) * (limits.cpuCount ?? 1)).rounded(.up)) + 1
        let host = try await acquire(version.key, preferring: version.module, environment: version.environment)
        let started = ContinuousClock.now
        let reply: HostFrame
        do {
            if !host.hasLoaded(version.module) { try await loadInto(host, version) }
            var answer = try await host.request(.execute, [Array(version.module.utf8), Array(inputs.utf8), Array(String(cpuSeconds).utf8)], timeout: timeout)
            if answer.op == .failure && answer.text(3) == "missing" {
                // Unloaded from this host by a reload racing with this call: load it and retry once.
                try await loadInto(host, version)
                answer = try await host.request(.execute, [Array(version.module.utf8), Array(inputs.utf8), Array(String(cpuSeconds).utf8)], timeout: timeout)
            }
            reply = answer
        } catch let exit as HostExit {
            release(host)
            throw Self.hostFailure(exit, skill: name, doing: "running", timeout: timeout)
        } catch {
            release(host)
            throw error
        }
        let elapsed = ContinuousClock.now - started
        var response = ExecuteSkillResponse(durationUs: Self.micros(elapsed), contentHash: version.folder.contentHash)
        switch (reply.op, reply.text(3)) {
        case (.ok, _):
            release(host)
            response.logs = reply.text(1)
            modify(name) { $0.executions += 1 }
            let outputs = reply.text(0)
            if !manifest.outputSchema.onlyRequiresObject,
                let violations = await Self.outputViolations(outputs, against: manifest.outputSchema) {
                // The skill broke its own promise: its failure, like returning a non-object.
                response.failure = SkillFailure(
                    type: "OutputSchemaError",
                    message: "skill \(name) returned outputs that do not match its outputs schema: \(violations.map(\.description).joined(separator: "; "))",
                    traceback: "")
                modify(name) { $0.failures += 1 }
            } else {
                response.outputsJson = outputs
            }
        case (_, "input"):
            release(host)
            throw LoaderError(.invalidArgument, "skill \(name): \(reply.text(1))")
        case (_, "output-size"):
            release(host)
            throw LoaderError(.resourceExhausted, "skill \(name): \(reply.text(1))", reason: "SKILL_OUTPUT_TOO_LARGE")
        case (_, "memory"):
            // Its heap may be in any state: replace the host.
            host.kill(.stopped)
            release(host)
            throw LoaderError(
                .resourceExhausted, "skill \(name) ran out of memory (limit \(limits.memory)); its host is replaced. \(reply.text(0)): \(reply.text(1))",
                reason: "SKILL_MEMORY")
        default:
            release(host)
            response.failure = SkillFailure(type: reply.text(0), message: version.sourcePaths(reply.text(1)), traceback: version.sourcePaths(reply.text(2)))
            response.logs = reply.text(4)
            modify(name) {
                $0.executions += 1
                $0.failures += 1
            }
        }
        metrics.record("skill_execute", elapsed)
        // Unloaded while it ran: its hosts may now serve nothing.
        if skills[name] == nil { await stopUnusedGroups() }
        return response
    }

    /// INVALID_ARGUMENT naming every violated field and rule (up to five) when `inputs` does not
    /// match the skill's inputs schema. Runs off the actor: inputs may be megabytes.
    @concurrent
    nonisolated static func checkInputs(_ inputs: String, against schema: JSONSchema, skill: String) async throws {
        let value: JSONValue
        do {
            value = inputs.isEmpty ? .object([:]) : try JSONValue.parse(json: inputs)
        } catch {
            throw LoaderError(.invalidArgument, "inputs_json of skill \(skill) is not valid JSON: \(error)", reason: "INPUTS_NOT_JSON")
        }
        let violations = schema.violations(of: value, root: "inputs")
        guard violations.isEmpty else {
            throw LoaderError(
                .invalidArgument,
                "inputs of skill \(skill) do not match its inputs schema: \(violations.map(\.description).joined(separator: "; "))",
                reason: "INPUTS_SCHEMA_VIOLATION")
        }
    }

    /// The outputs schema's violations by a skill's outputs (nil when they conform).
    @concurrent
    nonisolated static func outputViolations(_ outputs: String, against schema: JSONSchema) async -> [JSONSchema.Violation]? {
        guard let value = try? JSONValue.parse(json: outputs) else {
            return [JSONSchema.Violation(path: "outputs", keyword: "json", message: "not valid JSON")]
        }
        let violations = schema.violations(of: value, root: "outputs")
        return violations.isEmpty ? nil : violations
    }

    /// A dead host as the error the caller sees: DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED or INTERNAL.
    static func hostFailure(_ exit: HostExit, skill: String, doing: String, timeout: Duration? = nil) -> LoaderError {
        let tail = exit.logTail.split(separator: "\n").suffix(12).joined(separator: "\n")
        let detail = tail.isEmpty ? "" : "\nhost output:\n\(tail)"
        switch exit.killReason {
        case .timeout:
            let limit = timeout.map { " of \(Int64($0 / .milliseconds(1))) ms" } ?? ""
            return LoaderError(.deadlineExceeded, "skill \(skill) ran past its time limit\(limit) while \(doing); its host was stopped and is replaced", reason: "SKILL_TIMEOUT")
        case .cancelled:
            return LoaderError(.cancelled, "the caller of skill \(skill) went away while \(doing); its host was stopped", reason: "CALL_CANCELLED")
        default:
            break
        }
        if exit.signal == SIGXCPU {
            return LoaderError(.resourceExhausted, "skill \(skill) used up its CPU time while \(doing); its host is replaced", reason: "SKILL_CPU")
        }
        let lower = tail.lowercased()
        if lower.contains("memoryerror") || lower.contains("out of memory") || lower.contains("cannot allocate memory") {
            return LoaderError(.resourceExhausted, "skill \(skill) ran out of memory while \(doing); its host \(exit.summary) and is replaced\(detail)", reason: "SKILL_MEMORY")
        }
        if exit.signal == SIGKILL && exit.killReason == nil {
            return LoaderError(
                .resourceExhausted, "the host of skill \(skill) was killed (SIGKILL, likely the kernel's out-of-memory killer) while \(doing)\(detail)",
                reason: "SKILL_MEMORY")
        }
        return LoaderError(.internal, "the host of skill \(skill) \(exit.summary) while \(doing); it is replaced\(detail)", reason: "HOST_CRASHED")
    }

    // MARK: hosts

    private func acquire(_ key: HostKey, preferring module: String?, environment: String?) async throws -> HostProcess {
        var woken = false
        while true {
            if Task.isCancelled {
                // A wake-up handed to this call must not end with it: the next waiter gets it.
                // (Dropping it left a freed host idle while others waited, for good.)
                if woken, let group = groups[key] { wakeOne(group) }
                throw CancellationError()
            }
            // No host may start once shutdown has swept the groups.
            if stopped { throw LoaderError(.unavailable, "the loader is shutting down", reason: "LOADER_STOPPING") }
            let group = groups[key] ?? {
                let group = HostGroup()
                groups[key] = group
                return group
            }()
            group.hosts.removeAll { !$0.isAlive }
            group.idle.removeAll { !$0.isAlive }
            if !group.idle.isEmpty {
                let index = module.flatMap { module in group.idle.firstIndex { $0.hasLoaded(module) } } ?? group.idle.count - 1
                return group.idle.remove(at: index)
            }
            if group.hosts.count + group.starting < configuration.hostsPerEnvironment {
                group.starting += 1
                let id = nextHostID
                nextHostID += 1
                do {
                    let launch = try factory.launch(for: key, environment: environment, id: id)
                    let host = try await HostProcess.start(id: id, key: key, launch: launch, launcher: launcher)
                    group.starting -= 1
                    group.hosts.append(host)
                    logger.debug("started host \(id) for \(key)", metadata: ["pid": "\(host.pid)"])
                    return host
                } catch {
                    group.starting -= 1
                    wakeOne(group)
                    throw error
                }
            }
            // A cancelled call stays in line until its turn, and then hands the turn on.
            await withCheckedContinuation { group.waiters.append($0) }
            woken = true
        }
    }

    private func release(_ host: HostProcess) {
        guard let group = groups[host.key] else {
            host.kill(.stopped)
            return
        }
        if host.isAlive && !stopped && !host.isRetiring {
            group.idle.append(host)
            group.lastUsed[host.id] = .now
        } else {
            group.hosts.removeAll { $0 === host }
            if !stopped { host.kill(.stopped) }
        }
        wakeOne(group)
    }

    private func wakeOne(_ group: HostGroup) {
        if !group.waiters.isEmpty { group.waiters.removeFirst().resume() }
    }

    private func stopIdleHosts(olderThan idle: Duration) async {
        let now = ContinuousClock.now
        for group in groups.values {
            for host in group.idle where now - (group.lastUsed[host.id] ?? now) > idle {
                group.idle.removeAll { $0 === host }
                group.hosts.removeAll { $0 === host }
                logger.debug("stopping idle host \(host.id) (\(host.key))")
                await host.stop()
            }
        }
        await stopUnusedGroups()
    }

    /// Live host processes (the interpreter's or bwrap's pids), for tests and `atom skill list`.
    public func hostPIDs() -> [Int32] {
        groups.values.flatMap { $0.hosts.filter(\.isAlive).map(\.pid) }
    }

    // MARK: queries

    /// GetSkill: the published info of a loaded skill, read without entering the actor.
    public nonisolated func get(_ name: String, metrics: LatencyRecorder) throws(LoaderError) -> SkillInfo {
        guard let info = published.withLock({ $0[name] }) else {
            throw LoaderError(.notFound, "skill \(name) is not loaded; LoadSkill it first (`atom skill load`)", reason: "SKILL_NOT_LOADED")
        }
        return info
    }

    private func store(_ name: String, _ entry: SkillEntry) {
        skills[name] = entry
        let info = info(entry)
        published.withLock { $0[name] = info }
    }

    private func modify(_ name: String, _ change: (inout SkillEntry) -> Void) {
        guard var entry = skills[name] else { return }
        change(&entry)
        store(name, entry)
    }

    private func discard(_ name: String) -> SkillEntry? {
        published.withLock { _ = $0.removeValue(forKey: name) }
        return skills.removeValue(forKey: name)
    }

    public func list() -> ListSkillsResponse {
        ListSkillsResponse(skills: skills.keys.sorted().map { info(skills[$0]!) }, reloads: reloadEvents)
    }

    private func info(_ entry: SkillEntry) -> SkillInfo {
        let version = entry.current
        let manifest = version.folder.manifest
        var info = SkillInfo()
        info.name = manifest.name
        info.version = manifest.version
        info.path = version.folder.url.path
        info.runtime = manifest.runtime.rawValue
        info.contentHash = version.folder.contentHash
        info.environmentId = version.key.environmentID
        info.loadedAtMs = Self.millis(version.loadedAt)
        info.executions = entry.executions
        info.failures = entry.failures
        info.description = manifest.description
        info.category = manifest.category
        info.entry = manifest.entry
        info.function = manifest.function
        info.packages = manifest.packages
        info.network = manifest.permissions.network
        info.memoryLimitBytes = manifest.limits.memoryBytes ?? 0
        info.timeoutMs = UInt32(min(manifest.limits.timeoutSeconds * 1000, Double(UInt32.max)))
        info.reloads = entry.reloads
        info.lastReloadMs = entry.lastReload.map(Self.millis) ?? 0
        info.lastError = entry.lastError
        info.lastUsedMs = Self.millis(entry.lastUsedDate)
        info.inputSchemaJson = manifest.inputSchema.jsonText
        info.outputSchemaJson = manifest.outputSchema.jsonText
        info.sandboxed = factory.sandboxed
        return info
    }

    // MARK: helpers

    /// One operation at a time per skill name (load, reload, unload).
    private func lock(_ name: String) async {
        if lockedNames[name] == nil {
            lockedNames[name] = []
            return
        }
        await withCheckedContinuation { lockedNames[name]!.append($0) }
    }

    private func unlock(_ name: String) {
        guard var waiters = lockedNames[name] else { return }
        if waiters.isEmpty {
            lockedNames[name] = nil
        } else {
            let next = waiters.removeFirst()
            lockedNames[name] = waiters
            next.resume()
        }
    }

    /// Reads and hashes a skill folder off the cooperative pool.
    static func readFolder(_ path: String) async throws -> SkillFolder {
        try await offPool { try SkillFolder.load(URL(fileURLWithPath: path)) }
    }

    /// Runs blocking file work on a Dispatch thread, off the cooperative pool.
    static func offPool<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async {
                do {
                    continuation.resume(returning: try work())
                } catch {
                    continuation.resume(throwing: error)
                }
            }
        }
    }

    static func micros(_ duration: Duration) -> UInt64 {
        UInt64(max(0, duration.components.seconds)) * 1_000_000 + UInt64(max(0, duration.components.attoseconds) / 1_000_000_000_000)
    }

    static func millis(_ date: Date) -> UInt64 { UInt64(max(0, date.timeIntervalSince1970 * 1000)) }
}
