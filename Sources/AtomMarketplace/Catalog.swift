public import AtomProto
public import AtomRPC
internal import Foundation

/// The catalog: SQLite (the truth), the ranked index (kept in step with every write) and the
/// search cache (invalidated by every write). Every write goes SQLite first, then the index,
/// then the cache, on the store's serial writer; so when a write returns, every later read sees it.
public final class Catalog: Sendable {
    public let store: CatalogStore
    public let index: SearchIndex
    public let cache: SearchCache
    public let configuration: MarketplaceConfiguration

    public init(configuration: MarketplaceConfiguration) async throws {
        self.configuration = configuration
        store = try CatalogStore(path: configuration.databasePath)
        index = SearchIndex()
        cache = SearchCache(ttl: configuration.cacheTTL)
        index.load(try await store.loadAll())
    }

    static var nowMs: UInt64 { UInt64(Date().timeIntervalSince1970 * 1000) }

    // MARK: - Import

    /// Imports items in transactions of `configuration.importChunk`: a crash keeps every chunk
    /// committed before it and no part of the chunk it was writing. Stops between chunks when
    /// the task is cancelled (the caller's deadline).
    public func importItems(_ items: [ImportSource.Item]) async throws -> ImportResponse {
        let started = ContinuousClock.now
        var response = ImportResponse(total: UInt32(clamping: items.count))
        func addError(_ error: ImportItemError) {
            response.failed += 1
            if response.errors.count < 1_000 { response.errors.append(error) } else { response.errorsTruncated = true }
        }
        var valid: [CatalogItem] = []
        valid.reserveCapacity(items.count)
        for item in items {
            switch item {
            case .valid(let catalogItem): valid.append(catalogItem)
            case .invalid(let error): addError(error)
            }
        }
        let index = self.index, cache = self.cache
        let chunkSize = configuration.importChunk
        func slice(at start: Int) -> [CatalogItem] { Array(valid[start..<min(start + chunkSize, valid.count)]) }
        var start = 0
        // Tokenising the next chunk overlaps writing this one (SQLite runs on GRDB's writer).
        var current = slice(at: 0)
        var prepared = SearchIndex.prepare(current.map(\.record))
        while start < valid.count {
            try Task.checkCancellation()
            let chunk = current
            let documents = prepared
            start += chunk.count
            let next = start < valid.count ? slice(at: start) : []
            async let upcoming = SearchIndex.prepare(next.map(\.record))
            let outcomes = try await store.importChunk(chunk, now: Self.nowMs) { outcomes in
                var changed: [PreparedDocument] = []
                for (position, (_, record)) in outcomes.enumerated() {
                    guard let record else { continue }
                    changed.append(documents[position].with(record))
                }
                guard !changed.isEmpty else { return }
                index.upsert(changed)
                cache.invalidate()
            }
            current = next
            prepared = await upcoming
            for ((outcome, record), item) in zip(outcomes, chunk) {
                switch outcome {
                case .added:
                    response.added += 1
                case .updated:
                    response.updated += 1
                case .unchanged(let warning):
                    response.unchanged += 1
                    if let warning, response.warnings.count < 1_000 { response.warnings.append(warning) }
                }
                if record != nil, response.changed.count < 1_000 { response.changed.append(item.record.id) }
            }
        }
        response.durationMs = UInt64((ContinuousClock.now - started) / .milliseconds(1))
        return response
    }

    // MARK: - Search

    public struct SearchOutcome: Sendable {
        public var response: SearchResponse
        public var cached: Bool
    }

    /// A search answered as protobuf bytes, ready for the wire.
    public struct EncodedSearch: Sendable {
        public var bytes: [UInt8]
        public var cached: Bool
    }

    /// A validated request: its cache key and the index query.
    struct PreparedSearch {
        let started: ContinuousClock.Instant
        let key: SearchCache.Key
        let query: SearchQuery
        let useCache: Bool
    }

    /// Validates the request and answers it from the cache or the index.
    public func search(_ request: SearchRequest) throws(RPCError) -> SearchOutcome {
        let prepared = try prepare(request)
        if prepared.useCache, let hit = cache.lookup(prepared.key) {
            guard var response = try? SearchResponse(serializedBytes: hit) else {
                throw RPCError(.internal, "a cached search response could not be decoded")
            }
            response.cached = true
            response.serviceNs = Self.nanoseconds(since: prepared.started)
            return SearchOutcome(response: response, cached: true)
        }
        let generation = cache.generation
        var response = answer(prepared)
        if prepared.useCache { cache.store(prepared.key, try Self.encode(response), generation: generation) }
        response.serviceNs = Self.nanoseconds(since: prepared.started)
        return SearchOutcome(response: response, cached: false)
    }

    /// `search` answered as bytes: a cache hit is one lookup and its stored encoding, with
    /// `cached` and `service_ns` appended (a later occurrence of a protobuf field overrides an
    /// earlier one); a miss is searched and its encoding assembled from the items' kept
    /// encodings, and cached. `service_ns` is the time up to the finished bytes.
    public func encodedSearch(_ request: SearchRequest) throws(RPCError) -> EncodedSearch {
        let prepared = try prepare(request)
        if let hit = cachedAnswer(prepared) { return EncodedSearch(bytes: hit, cached: true) }
        guard let answer = try encodedAnswer(prepared) else {
            throw RPCError(.internal, "the index gave no answer to an unrestricted search")
        }
        return answer
    }

    /// The cache hit for `request`, nil when the request must be searched (or is invalid).
    func cachedSearch(_ request: SearchRequest) -> [UInt8]? {
        guard let prepared = try? prepare(request) else { return nil }
        return cachedAnswer(prepared)
    }

    /// `encodedSearch` when its cost is bounded whatever the catalog holds: a cache hit, or a
    /// search that scores few postings in full with a page of at most 20
    /// (`SearchIndex.searchEncoded(_:boundedOnly:)`). Nil for every other request (and an
    /// invalid one), which the caller searches elsewhere with `encodedSearch`.
    func boundedSearch(_ request: SearchRequest) -> EncodedSearch? {
        guard let prepared = try? prepare(request) else { return nil }
        if let hit = cachedAnswer(prepared) { return EncodedSearch(bytes: hit, cached: true) }
        return try? encodedAnswer(prepared, boundedOnly: true)
    }

    private func cachedAnswer(_ prepared: PreparedSearch) -> [UInt8]? {
        guard prepared.useCache, var hit = cache.lookup(prepared.key) else { return nil }
        hit.append(contentsOf: Self.trailer(cached: true, serviceNs: Self.nanoseconds(since: prepared.started)))
        return hit
    }

    /// Searches and builds the response's encoding: the page's items as the index keeps them
    /// encoded, then the counts (SearchResponse fields 2 to 5, in field order as protobuf-c writes them).
    private func encodedAnswer(_ prepared: PreparedSearch, boundedOnly: Bool = false) throws(RPCError) -> EncodedSearch? {
        let generation = cache.generation
        let page: (total: Int, items: [UInt8], count: Int)
        do {
            guard let found = try index.searchEncoded(prepared.query, boundedOnly: boundedOnly) else { return nil }
            page = found
        } catch {
            throw RPCError(.internal, "the search response could not be encoded: \(error)")
        }
        let pageSize = Int(prepared.key.pageSize)
        var bytes = page.items
        ProtoWire.appendField(2, UInt64(page.total), to: &bytes)
        ProtoWire.appendField(3, UInt64(prepared.key.page), to: &bytes)
        ProtoWire.appendField(4, UInt64(pageSize), to: &bytes)
        ProtoWire.appendField(5, UInt64(UInt32(clamping: (page.total + pageSize - 1) / pageSize)), to: &bytes)
        if prepared.useCache { cache.store(prepared.key, bytes, generation: generation) }
        bytes.append(contentsOf: Self.trailer(cached: false, serviceNs: Self.nanoseconds(since: prepared.started)))
        return EncodedSearch(bytes: bytes, cached: false)
    }

    func prepare(_ request: SearchRequest) throws(RPCError) -> PreparedSearch {
        let started = ContinuousClock.now
        guard request.pageSize <= 100 else {
            throw RPCError(.invalidArgument, "page_size \(request.pageSize) is over 100; ask for at most 100 results a page")
        }
        let order: SearchOrder
        switch request.sort {
        case .relevance: order = .relevance
        case .downloads: order = .downloads
        case .rating: order = .rating
        case .recent: order = .recent
        case .name: order = .name
        case .unrecognized(let value):
            throw RPCError(.invalidArgument, "sort \(value) is unknown; use relevance, downloads, rating, recent or name")
        }
        let page = max(request.page, 1)
        let pageSize = request.pageSize == 0 ? 20 : request.pageSize
        // Only the start of a very long query is searched (its first tokens are all that count).
        let text = request.query.utf8.count > 1_024 ? String(request.query.prefix(1_024)) : request.query
        let key = SearchCache.Key(
            query: text, category: request.category, type: request.type, tags: request.tags, author: request.author,
            sort: request.sort.rawValue, page: page, pageSize: pageSize)
        let query = SearchQuery(
            text: text, category: request.category, type: request.type, tags: request.tags, author: request.author,
            order: order, offset: Int(page - 1) * Int(pageSize), limit: Int(pageSize))
        return PreparedSearch(started: started, key: key, query: query, useCache: !request.bypassCache)
    }

    /// The page from the index (`cached` false, `service_ns` unset).
    private func answer(_ prepared: PreparedSearch) -> SearchResponse {
        let hits = index.search(prepared.query)
        let page = prepared.key.page, pageSize = prepared.key.pageSize
        return SearchResponse(
            items: hits.skills, total: UInt64(hits.total), page: page, pageSize: pageSize,
            totalPages: UInt32(clamping: (hits.total + Int(pageSize) - 1) / Int(pageSize)))
    }

    private static func encode(_ response: SearchResponse) throws(RPCError) -> [UInt8] {
        do {
            return try response.serializedBytes()
        } catch {
            throw RPCError(.internal, "the search response could not be encoded: \(error)")
        }
    }

    /// The encoding of `cached` and `service_ns` alone (fields 6 and 7), appended to a stored response.
    static func trailer(cached: Bool, serviceNs: UInt64) -> [UInt8] {
        var bytes: [UInt8] = []
        ProtoWire.appendField(6, cached ? 1 : 0, to: &bytes)
        ProtoWire.appendField(7, serviceNs, to: &bytes)
        return bytes
    }

    static func nanoseconds(since started: ContinuousClock.Instant) -> UInt64 {
        UInt64((ContinuousClock.now - started) / .nanoseconds(1))
    }

    // MARK: - Ratings and downloads

    public func rate(skillID: String, userID: String, stars: Int) async throws -> RateSkillResponse {
        let index = self.index, cache = self.cache
        let result = try await store.rate(skillID: skillID, userID: userID, stars: stars, now: Self.nowMs) { result in
            guard let (average, count) = result else { return }
            index.updateStats(id: skillID, ratingAverage: average, ratingCount: count)
            cache.invalidate()
        }
        guard let (average, count) = result else { throw RPCError(.notFound, "no skill \(skillID) in the catalog") }
        return RateSkillResponse(ratingAverage: average, ratingCount: count)
    }

    public func recordDownload(skillID: String, agentID: String, environmentID: String) async throws -> UInt64 {
        let index = self.index, cache = self.cache
        let downloads = try await store.recordDownload(skillID: skillID, agentID: agentID, environmentID: environmentID, now: Self.nowMs) { downloads in
            guard let downloads else { return }
            index.updateStats(id: skillID, downloads: downloads)
            cache.invalidate()
        }
        guard let downloads else { throw RPCError(.notFound, "no skill \(skillID) in the catalog") }
        return downloads
    }
}

extension PreparedDocument {
    /// The same terms with the record as stored (figures and times filled in).
    func with(_ record: CatalogSkill) -> PreparedDocument {
        var copy = self
        copy.record = record
        return copy
    }
}
