public import AtomAPI
public import AtomProto
public import AtomRPC
internal import Foundation

/// atom.v1.Marketplace: checks requests, then hands them to the `Catalog`. Calls the installer
/// through the gateway for InstallSkill.
public struct MarketplaceServiceImpl: MarketplaceService {
    public let catalog: Catalog
    /// This service's own client of the gateway (for the installer).
    let gateway: RPCClient

    public init(catalog: Catalog, gateway: RPCClient) {
        self.catalog = catalog
        self.gateway = gateway
    }

    public func search(_ request: SearchRequest, context: RPCContext) async throws -> SearchResponse {
        let started = ContinuousClock.now
        let outcome = try catalog.search(request)
        context.metrics.record(outcome.cached ? "marketplace_search_cached" : "marketplace_search", ContinuousClock.now - started)
        return outcome.response
    }

    /// Search on the wire: a cache hit, and a search whose cost is bounded whatever the catalog
    /// holds (few postings scored in full, a page of at most 20: a rare word, a narrow prefix),
    /// is answered where the call arrived (the server's reactor thread: no thread hop); any
    /// other search goes to the shared pool. Either is encoded once (the encoding is what the
    /// cache keeps).
    func encodedSearch(_ request: SearchRequest, context: RPCContext) async throws -> [UInt8] {
        let started = ContinuousClock.now
        if let answer = catalog.boundedSearch(request) {
            context.metrics.record(answer.cached ? "marketplace_search_cached" : "marketplace_search", ContinuousClock.now - started)
            return answer.bytes
        }
        let catalog = self.catalog
        let outcome = try await onSharedPool { () throws(RPCError) in try catalog.encodedSearch(request) }
        context.metrics.record(outcome.cached ? "marketplace_search_cached" : "marketplace_search", ContinuousClock.now - started)
        return outcome.bytes
    }

    /// The generated handlers, with Search answered by `encodedSearch` and every other method
    /// moved to the shared pool: the service runs on its reactor thread (`main.swift`), where
    /// only cache hits stay.
    public var methodHandlers: [RPCMethodHandler] {
        let pooled = PooledMarketplace(service: self).methodHandlers
        let search = RPCMethodHandler.unaryEncoded("Search", responseType: SearchResponse.self) { (request: SearchRequest, context: RPCContext) in
            try await self.encodedSearch(request, context: context)
        }
        return pooled.map { $0.name == search.name ? search : $0 }
    }

    public func getSkill(_ request: GetCatalogSkillRequest, context: RPCContext) async throws -> CatalogSkill {
        guard !request.id.isEmpty else { throw RPCError(.invalidArgument, "id is empty; give a skill's name") }
        guard let skill = catalog.index.skill(request.id) else {
            throw RPCError(.notFound, "no skill \(request.id) in the catalog; `atom search` finds skills")
        }
        return skill
    }

    public func categories(_ request: CategoriesRequest, context: RPCContext) async throws -> CategoriesResponse {
        CategoriesResponse(categories: catalog.index.categories().map { CategoryCount(category: $0.0, count: UInt64($0.1)) })
    }

    public func rateSkill(_ request: RateSkillRequest, context: RPCContext) async throws -> RateSkillResponse {
        guard !request.skillId.isEmpty else { throw RPCError(.invalidArgument, "skill_id is empty") }
        guard !request.userId.isEmpty, request.userId.count <= 256 else {
            throw RPCError(.invalidArgument, "user_id must be 1 to 256 characters (one rating per user per skill)")
        }
        guard (1...5).contains(request.rating) else {
            throw RPCError(.invalidArgument, "rating \(request.rating) is out of range; give 1 to 5 stars")
        }
        return try await catalog.rate(skillID: request.skillId, userID: request.userId, stars: Int(request.rating))
    }

    /// Installs the skill's packages through the installer service (a call through the gateway
    /// that gets what is left of this call's deadline), then counts the download. A skill
    /// without packages needs no environment: the download is counted at once.
    public func installSkill(_ request: InstallSkillRequest, context: RPCContext) async throws -> InstallSkillResponse {
        guard !request.skillId.isEmpty else { throw RPCError(.invalidArgument, "skill_id is empty") }
        guard let skill = catalog.index.skill(request.skillId) else {
            throw RPCError(.notFound, "no skill \(request.skillId) in the catalog")
        }
        let packageType: PackageType = skill.type == "node" ? .npm : .python
        guard !skill.packages.isEmpty else {
            let downloads = try await catalog.recordDownload(skillID: skill.id, agentID: request.agentId, environmentID: "")
            let result = InstallResult(
                success: true, warnings: ["\(skill.id) needs no packages; nothing to install"], skillId: skill.id, packageType: packageType)
            return InstallSkillResponse(install: result, downloads: downloads)
        }
        let install = InstallRequest(
            skillId: skill.id, packages: skill.packages, packageType: packageType, agentId: request.agentId, options: request.options)
        var final: InstallResult?
        do {
            let stream = InstallerClient(gateway).installDependencies(
                install, options: CallOptions(parent: context, timeout: catalog.configuration.installTimeout))
            for try await event in stream where event.phase == .done { final = event.result }
        } catch let error as RPCError {
            // Keep the installer's code (INVALID_ARGUMENT, UNAVAILABLE, ...) and say where it came from.
            throw RPCError(error.code, "installing \(skill.id)'s packages: \(error.message)", details: error.details)
        }
        guard let result = final else {
            throw RPCError(.internal, "the installer ended the stream for \(skill.id) without a result")
        }
        guard result.success else {
            return InstallSkillResponse(install: result, downloads: skill.downloads)
        }
        let downloads = try await catalog.recordDownload(skillID: skill.id, agentID: request.agentId, environmentID: result.environmentId)
        return InstallSkillResponse(install: result, downloads: downloads)
    }

    public func `import`(_ request: ImportRequest, context: RPCContext) async throws -> ImportResponse {
        let items: [ImportSource.Item]
        switch (request.path.isEmpty, request.jsonlLines.isEmpty) {
        case (false, false):
            throw RPCError(.invalidArgument, "give path or jsonl_lines, not both")
        case (true, true):
            throw RPCError(.invalidArgument, "give path (a skill folder, a folder of them or a .jsonl bundle) or jsonl_lines")
        case (false, true):
            guard request.path.hasPrefix("/") else {
                throw RPCError(.invalidArgument, "path \(request.path) is relative; give an absolute path on the marketplace's host")
            }
            do {
                items = try await ImportSource.load(at: request.path)
            } catch let error as ImportFailure {
                switch error {
                case .notFound(let message): throw RPCError(.notFound, message)
                case .unreadable(let message): throw RPCError(.failedPrecondition, message)
                case .invalid(let message): throw RPCError(.invalidArgument, message)
                }
            }
        case (true, false):
            guard request.jsonlLines.count <= ImportSource.maxInlineLines else {
                throw RPCError(.invalidArgument, "\(request.jsonlLines.count) lines; send at most \(ImportSource.maxInlineLines) a call")
            }
            let label = request.label.isEmpty ? "upload" : request.label
            let first = Int(max(request.firstLine, 1))
            items = request.jsonlLines.enumerated().compactMap { index, line in
                line.allSatisfy(\.isWhitespace) ? nil : ImportSource.bundleLine(line, label: "\(label):\(first + index)")
            }
        }
        return try await catalog.importItems(items)
    }
}

/// Runs `body` on the shared pool (the cooperative global executor), whatever executor the
/// calling task prefers; the caller resumes on its own executor after.
func onSharedPool<T: Sendable, Failure: Error>(_ body: @Sendable () async throws(Failure) -> T) async throws(Failure) -> T {
    try await withTaskExecutorPreference(globalConcurrentExecutor, operation: body)
}

/// The marketplace's methods, each run on the shared pool (for a server that runs handlers on
/// its reactor thread); its generated `methodHandlers` are the service's.
struct PooledMarketplace: MarketplaceService {
    let service: MarketplaceServiceImpl

    func search(_ request: SearchRequest, context: RPCContext) async throws -> SearchResponse {
        try await onSharedPool { try await service.search(request, context: context) }
    }

    func getSkill(_ request: GetCatalogSkillRequest, context: RPCContext) async throws -> CatalogSkill {
        try await onSharedPool { try await service.getSkill(request, context: context) }
    }

    func categories(_ request: CategoriesRequest, context: RPCContext) async throws -> CategoriesResponse {
        try await onSharedPool { try await service.categories(request, context: context) }
    }

    func rateSkill(_ request: RateSkillRequest, context: RPCContext) async throws -> RateSkillResponse {
        try await onSharedPool { try await service.rateSkill(request, context: context) }
    }

    func installSkill(_ request: InstallSkillRequest, context: RPCContext) async throws -> InstallSkillResponse {
        try await onSharedPool { try await service.installSkill(request, context: context) }
    }

    func `import`(_ request: ImportRequest, context: RPCContext) async throws -> ImportResponse {
        try await onSharedPool { try await service.import(request, context: context) }
    }
}
