public import AtomAPI
public import AtomProto
public import AtomRPC
internal import Foundation
public import Logging

/// atom.v1.Loader: validates requests and hands them to the `Loader`; every error becomes an
/// RPC status here, once.
public struct LoaderServiceImpl: LoaderService {
    public let loader: Loader

    public init(loader: Loader) {
        self.loader = loader
    }

    /// The loader for this process: settings from the environment and config file, the gateway
    /// client for the installer made from the same environment.
    public static func make(environment: AtomEnvironment, logger: Logger) throws -> LoaderServiceImpl {
        let configuration = try LoaderConfiguration.resolve(home: environment.home)
        let loader = Loader(configuration: configuration, logger: logger) {
            try RPCClient(environment: environment, name: "atom-loader")
        }
        return LoaderServiceImpl(loader: loader)
    }

    /// Largest inputs JSON accepted (the RPC payload limit leaves room for the envelope).
    static let maxInputBytes = 4 << 20

    public func loadSkill(_ request: LoadSkillRequest, context: RPCContext) async throws -> LoadSkillResponse {
        try await mapped {
            guard !request.name.isEmpty || !request.path.isEmpty else { throw LoaderError(.invalidArgument, "give a skill name, a path, or both") }
            return try await loader.load(name: request.name, path: request.path, context: context, metrics: context.metrics)
        }
    }

    public func getSkill(_ request: GetSkillRequest, context: RPCContext) async throws -> SkillInfo {
        // No await: the published info is read on the calling (reactor) thread.
        do {
            return try loader.get(request.name, metrics: context.metrics)
        } catch {
            throw error.rpcError
        }
    }

    public func listSkills(_ request: ListSkillsRequest, context: RPCContext) async throws -> ListSkillsResponse {
        await loader.list()
    }

    public func executeSkill(_ request: ExecuteSkillRequest, context: RPCContext) async throws -> ExecuteSkillResponse {
        try await mapped {
            guard !request.name.isEmpty else { throw LoaderError(.invalidArgument, "name is empty") }
            guard request.inputsJson.utf8.count <= Self.maxInputBytes else {
                throw LoaderError(.invalidArgument, "inputs_json is \(request.inputsJson.utf8.count) bytes; at most \(Self.maxInputBytes)")
            }
            guard request.timeoutMs <= 3_600_000 else {
                throw LoaderError(.invalidArgument, "timeout_ms \(request.timeoutMs) is more than an hour")
            }
            // The caller's own deadline bounds the execution too (less a margin to answer in).
            let cap = context.remaining.map { UInt32(clamping: max(1, Int64($0 / .milliseconds(1)) - 5)) }
            do {
                return try await loader.execute(name: request.name, inputs: request.inputsJson, timeoutMs: request.timeoutMs, capMs: cap, metrics: context.metrics)
            } catch let error as LoaderError where error.reason == "SKILL_NOT_LOADED" {
                // A skill in the skills directories need not be loaded by hand first: load it by
                // name (NOT_FOUND if there is none), then run it.
                _ = try await loader.load(name: request.name, path: "", context: context, metrics: context.metrics)
                let cap = context.remaining.map { UInt32(clamping: max(1, Int64($0 / .milliseconds(1)) - 5)) }
                return try await loader.execute(name: request.name, inputs: request.inputsJson, timeoutMs: request.timeoutMs, capMs: cap, metrics: context.metrics)
            }
        }
    }

    public func reloadSkill(_ request: ReloadSkillRequest, context: RPCContext) async throws -> LoadSkillResponse {
        try await mapped { try await loader.reload(name: request.name, trigger: .rpc, context: context, metrics: context.metrics) }
    }

    public func unloadSkill(_ request: UnloadSkillRequest, context: RPCContext) async throws -> UnloadSkillResponse {
        try await mapped {
            guard !request.name.isEmpty else { throw LoaderError(.invalidArgument, "name is empty") }
            guard await loader.unload(name: request.name) else {
                throw LoaderError(.notFound, "skill \(request.name) is not loaded", reason: "SKILL_NOT_LOADED")
            }
            return UnloadSkillResponse(unloaded: true)
        }
    }

    public func clearCache(_ request: ClearCacheRequest, context: RPCContext) async throws -> ClearCacheResponse {
        ClearCacheResponse(unloaded: await loader.clear())
    }

    private func mapped<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch {
            throw LoaderError.rpc(error)
        }
    }
}
