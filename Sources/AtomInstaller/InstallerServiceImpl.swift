public import AtomAPI
public import AtomProto
public import AtomRPC
internal import Foundation
internal import Logging

/// atom.v1.Installer: validates requests, then hands them to the `EnvironmentStore`.
public struct InstallerServiceImpl: InstallerService {
    public let store: EnvironmentStore

    public init(store: EnvironmentStore) {
        self.store = store
    }

    /// Reads `InstallerConfiguration` from the process environment under `home`.
    public init(home: String) throws {
        store = try EnvironmentStore(configuration: try InstallerConfiguration.resolve(home: home))
    }

    public func installDependencies(_ request: InstallRequest, writer: RPCStreamWriter<InstallEvent>, context: RPCContext) async throws {
        let validated = try RequestValidation.install(request)
        let started = ContinuousClock.now
        let result = try await store.install(validated) { phase, message, fraction in
            guard phase != .done else { return }
            try? await writer.send(InstallEvent(phase: phase, message: message, progress: fraction))
        }
        // The stable operation names `atom metrics` reports (a cache hit is its own operation:
        // mixing lookups with builds would hide both).
        if result.success {
            context.metrics.record(result.cached ? "package_install_cached" : "package_install", ContinuousClock.now - started)
        }
        try await writer.send(InstallEvent(phase: .done, message: result.success ? "done" : result.error, progress: 1, result: result))
    }

    public func batchInstall(_ request: BatchInstallRequest, context: RPCContext) async throws -> BatchInstallResponse {
        guard !request.installations.isEmpty else { throw RPCError(.invalidArgument, "installations is empty") }
        guard request.installations.count <= RequestValidation.maxBatch else {
            throw RPCError(.invalidArgument, "installations has \(request.installations.count) items; at most \(RequestValidation.maxBatch)")
        }
        let store = self.store
        // Identical items (same type, requirement set and options) run once; every item gets
        // its own result. Invalid items fail alone.
        var groups: [String: [Int]] = [:]
        var validated: [Int: ValidatedInstall] = [:]
        var results = [InstallResult](repeating: InstallResult(), count: request.installations.count)
        for (index, item) in request.installations.enumerated() {
            var item = item
            if item.agentId.isEmpty { item.agentId = request.agentId }
            do {
                let valid = try RequestValidation.install(item, field: "installations[\(index)]")
                validated[index] = valid
                groups[Self.dedupKey(valid), default: []].append(index)
            } catch {
                results[index] = InstallResult(success: false, error: RPCError.from(error).message, skillId: item.skillId)
            }
        }
        let jobs = groups.values.compactMap { indices in validated[indices[0]].map { BatchJob(index: indices[0], install: $0) } }
        let outcomes = await withTaskGroup(of: BatchJob.Outcome.self, returning: [Int: InstallResult].self) { group in
            for job in jobs {
                group.addTask {
                    do {
                        return BatchJob.Outcome(index: job.index, result: try await store.install(job.install) { _, _, _ in })
                    } catch {
                        let failed = InstallResult(success: false, error: RPCError.from(error).description, skillId: job.install.skillID)
                        return BatchJob.Outcome(index: job.index, result: failed)
                    }
                }
            }
            var collected: [Int: InstallResult] = [:]
            for await outcome in group { collected[outcome.index] = outcome.result }
            return collected
        }
        for indices in groups.values {
            guard let shared = outcomes[indices[0]] else { continue }
            for index in indices {
                var result = shared
                result.skillId = validated[index]?.skillID ?? ""
                results[index] = result
            }
        }
        // The shared build ran under the first item's skill id; bind the others too.
        for indices in groups.values where indices.count > 1 {
            for index in indices.dropFirst() where results[index].success {
                if let valid = validated[index] { try? await store.bindSkill(valid, to: results[index].environmentId) }
            }
        }
        let successes = results.filter(\.success).count
        return BatchInstallResponse(
            total: UInt32(results.count), successes: UInt32(successes), failures: UInt32(results.count - successes), results: results)
    }

    static func dedupKey(_ install: ValidatedInstall) -> String {
        let options = install.options
        return [
            install.ecosystem.rawValue, install.canonicalRequirements.joined(separator: "\n"), options.indexUrl,
            options.extraIndexUrls.joined(separator: " "), options.findLinks.joined(separator: " "), "\(options.offline)",
            "\(options.force)", "\(options.wheelsOnly)", "\(install.limits.memoryBytes)", "\(install.limits.cpus)",
        ].joined(separator: "\u{1}")
    }

    public func resolveDependencies(_ request: ResolveRequest, context: RPCContext) async throws -> ResolveResponse {
        try await context.metrics.measure("dependency_resolution") { try await resolve(request) }
    }

    private func resolve(_ request: ResolveRequest) async throws -> ResolveResponse {
        let ecosystem = try RequestValidation.ecosystem(request.packageType)
        let requirements = try RequestValidation.requirements(request.packages, ecosystem: ecosystem)
        let options = request.options ?? InstallOptions()
        try RequestValidation.validate(options, field: "options")
        let conflicts = ConflictDetector.conflicts(requirements)
        if !conflicts.isEmpty {
            return ResolveResponse(
                ok: false, conflicts: conflicts.map { DependencyConflict(package: $0.package, requirements: $0.requirements, reason: $0.reason) })
        }
        if request.directOnly { return ResolveResponse(ok: true) }
        let validated = ValidatedInstall(skillID: "", agentID: "", ecosystem: ecosystem, requirements: requirements, options: options, limits: ResourceLimits())
        switch try await store.resolveForClient(validated) {
        case .success(let resolution, let cached):
            return ResolveResponse(ok: true, locked: resolution.locked.map { LockedPackage(name: $0.name, version: $0.version) }, cached: cached)
        case .conflict(let message):
            return ResolveResponse(ok: false, conflicts: [DependencyConflict(package: "", requirements: request.packages, reason: message)])
        case .failure(let message):
            throw RPCError(.failedPrecondition, message)
        }
    }

    public func collectGarbage(_ request: CollectGarbageRequest, context: RPCContext) async throws -> CollectGarbageResponse {
        guard request.unusedForSeconds <= 100 * 365 * 86_400 else {
            throw RPCError(.invalidArgument, "unused_for_seconds \(request.unusedForSeconds) is more than 100 years")
        }
        guard request.unusedForSeconds > 0 || request.maxBytes > 0 else {
            throw RPCError(.invalidArgument, "give unused_for_seconds or max_bytes (or both)")
        }
        return await store.collectGarbage(
            unusedFor: request.unusedForSeconds > 0 ? .seconds(Int64(request.unusedForSeconds)) : nil,
            maxBytes: request.maxBytes > 0 ? request.maxBytes : nil, dryRun: request.dryRun)
    }

    public func listEnvironments(_ request: ListEnvironmentsRequest, context: RPCContext) async throws -> ListEnvironmentsResponse {
        ListEnvironmentsResponse(environments: await store.list())
    }
}

/// One deduplicated batch item: the first index of its group and the validated request.
struct BatchJob: Sendable {
    let index: Int
    let install: ValidatedInstall

    struct Outcome: Sendable {
        let index: Int
        let result: InstallResult
    }
}

extension EnvironmentStore {
    func resolveForClient(_ request: ValidatedInstall) async throws -> ResolveOutcome {
        var policy = configuration.policy
        if request.options.wheelsOnly { policy.wheelsOnly = true }
        return try await resolve(request, policy: policy)
    }

    func bindSkill(_ request: ValidatedInstall, to id: String) throws {
        try bind(request, to: id)
    }
}
