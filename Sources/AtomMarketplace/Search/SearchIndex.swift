public import AtomProto
internal import Synchronization
internal import Foundation

/// How results are ordered.
public enum SearchOrder: Sendable, Hashable, CaseIterable {
    case relevance, downloads, rating, recent, name
}

/// One search: text, filters, order and the slice of results wanted.
public struct SearchQuery: Sendable, Hashable {
    public var text: String
    public var category: String
    public var type: String
    public var tags: [String]
    public var author: String
    public var order: SearchOrder
    public var offset: Int
    public var limit: Int

    public init(
        text: String = "", category: String = "", type: String = "", tags: [String] = [], author: String = "",
        order: SearchOrder = .relevance, offset: Int = 0, limit: Int = 20
    ) {
        self.text = text
        self.category = category
        self.type = type
        self.tags = tags
        self.author = author
        self.order = order
        self.offset = offset
        self.limit = limit
    }
}

/// A page of results as slots (valid under the lock that produced them).
struct SlotHits {
    var total: Int
    var slots: [Int32]
    var scores: [Float]
}

/// A page of results and how many matched in all.
public struct SearchHits: Sendable {
    public var total: Int
    public var skills: [CatalogSkill]
    /// BM25 scores of `skills` (relevance order with text only; empty otherwise).
    public var scores: [Float]
}

/// A skill tokenised for the index, prepared outside the index's lock.
struct PreparedDocument: Sendable {
    struct Term: Sendable {
        let text: String
        let name: UInt16
        let tags: UInt16
        let description: UInt16
    }

    var record: CatalogSkill
    let terms: [Term]
    let nameLength: UInt16
    let tagsLength: UInt16
    let descriptionLength: UInt16

    init(_ record: CatalogSkill) {
        self.record = record
        var counts: [String: (UInt16, UInt16, UInt16)] = [:]
        var order: [String] = []
        func count(_ text: String, field: Int) -> UInt16 {
            var length: UInt16 = 0
            Tokenizer.forEachToken(text) { token in
                length &+= 1
                var entry = counts[token] ?? {
                    order.append(token)
                    return (0, 0, 0)
                }()
                switch field {
                case 0: entry.0 = min(entry.0 &+ 1, 1000)
                case 1: entry.1 = min(entry.1 &+ 1, 1000)
                default: entry.2 = min(entry.2 &+ 1, 1000)
                }
                counts[token] = entry
            }
            return length
        }
        nameLength = count(record.name, field: 0)
        tagsLength = count((record.tags + [record.category]).joined(separator: " "), field: 1)
        descriptionLength = count(record.description, field: 2)
        terms = order.map { token in
            let entry = counts[token]!
            return Term(text: token, name: entry.0, tags: entry.1, description: entry.2)
        }
    }
}

/// The ranked in-memory index of the catalog: inverted lists in slot (document) order with a
/// precomputed BM25F impact per posting and a maximum per block of 256 slots, so a top-k search
/// visits the blocks that can still beat the k-th best score and skips the rest (block-max
/// pruning). SQLite is the source of truth: the index is built from it at start and every write
/// is applied to both.
///
/// Documents live in slots. An update of a skill's text appends a new slot and tombstones the
/// old one, so posting lists only ever grow at their end and stay sorted. When tombstones pass a
/// quarter of the slots, or the catalog has doubled since the field-length averages were taken,
/// the index is rebuilt from its own forward lists (compacted, averages refreshed).
public final class SearchIndex: @unchecked Sendable {
    // All mutable state is guarded by `lock` (searches read, writes write).
    private let lock = ReadWriteLock()
    /// The index's data, in memory of its own. A search reads it in place through a pointer,
    /// where passing a stored property along would copy it (retaining each of its two dozen
    /// buffers, a cache miss each when the search comes in cold) and check every access for
    /// exclusivity. Guarded by `lock` like everything else; `state` addresses it for writes.
    private let statePointer: UnsafeMutablePointer<IndexState> = {
        let pointer = UnsafeMutablePointer<IndexState>.allocate(capacity: 1)
        pointer.initialize(to: IndexState())
        return pointer
    }()
    private var state: IndexState {
        unsafeAddress { UnsafePointer(statePointer) }
        unsafeMutableAddress { statePointer }
    }
    /// Lazily built orders for the non-relevance sorts, tagged with the index version.
    private let orders = Mutex<[SearchOrder: Ordering]>([:])
    /// Impact-ordered heads of the posting lists, built on demand (see `topList`).
    private let topLists = Mutex<[Int: TopList]>([:])
    /// Per slot, its record encoded as a SearchResponse item (see `searchEncoded`); a slot's
    /// entry goes when its record changes, every entry when slots are renumbered.
    private let encodedItems = Mutex(EncodedItems())

    /// BM25F parameters: a name match outweighs a tag match, which outweighs a description match.
    static let k1: Float = 1.2
    static let weights: (name: Float, tags: Float, description: Float) = (4.0, 2.0, 1.0)
    static let lengthNormalisation: (name: Float, tags: Float, description: Float) = (0.5, 0.5, 0.75)
    /// Prefix expansions of the query's last token count for a little less than an exact match.
    static let prefixWeight: Float = 0.85
    static let maxPrefixExpansions = 64
    static let maxQueryTokens = 32
    static let blockShift = 8

    /// Queries whose terms have at most this many postings in all are scored in full
    /// (`scoreAll`); others take the block-max search.
    let scoreAllVolume: Int

    public init() {
        scoreAllVolume = 1_024
    }

    /// An index with another threshold for scoring in full (tests compare both searches).
    init(scoreAllVolume: Int) {
        self.scoreAllVolume = scoreAllVolume
    }

    deinit {
        statePointer.deinitialize(count: 1)
        statePointer.deallocate()
    }

    /// Replaces the whole content (start-up, from SQLite).
    public func load(_ records: [CatalogSkill]) {
        let prepared = Self.prepare(records)
        lock.write {
            state = IndexState()
            topLists.withLock { $0.removeAll() }
            encodedItems.withLock { $0.removeAll() }
            state.freezeAverages(prepared)
            for document in prepared { state.append(document) }
            state.mergeNewTerms()
            state.version &+= 1
        }
    }

    /// Tokenises records; pure, so callers run it before taking the lock.
    static func prepare(_ records: [CatalogSkill]) -> [PreparedDocument] {
        records.map(PreparedDocument.init)
    }

    /// Adds or replaces skills (by id). Text changes move a skill to a new slot.
    func upsert(_ documents: [PreparedDocument]) {
        guard !documents.isEmpty else { return }
        lock.write {
            let changed = documents.compactMap { state.slotOf[$0.record.id].map { Int32($0) } }
            if !changed.isEmpty { encodedItems.withLock { cache in for slot in changed { cache.remove(slot) } } }
            for document in documents { state.upsert(document) }
            state.mergeNewTerms()
            if state.rebuildIfNeeded() {
                topLists.withLock { $0.removeAll() }
                encodedItems.withLock { $0.removeAll() }
            }
            state.version &+= 1
        }
    }

    /// Changes the figures of one skill (downloads, rating) in place.
    func updateStats(id: String, downloads: UInt64? = nil, ratingAverage: Double? = nil, ratingCount: UInt32? = nil) {
        lock.write {
            guard let slot = state.slotOf[id] else { return }
            encodedItems.withLock { $0.remove(Int32(slot)) }
            if let downloads { state.records[slot].downloads = downloads }
            if let ratingAverage { state.records[slot].ratingAverage = ratingAverage }
            if let ratingCount { state.records[slot].ratingCount = ratingCount }
            state.version &+= 1
        }
    }

    public var count: Int { lock.read { state.aliveCount } }

    public func skill(_ id: String) -> CatalogSkill? {
        lock.read { state.slotOf[id].map { state.records[$0] } }
    }

    /// Categories with their number of skills, most first (ties by name).
    public func categories() -> [(String, Int)] {
        lock.read {
            state.categoryCounts.filter { $0.value > 0 }.map { ($0.key, $0.value) }
                .sorted { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 < $1.0 }
        }
    }

    /// Document frequency of a term among live skills (benchmarks pick their words with it).
    public func documentFrequency(_ term: String) -> Int {
        lock.read { state.termIDs[term].map { state.lists[Int($0)].alive } ?? 0 }
    }

    /// Every term with its live document frequency.
    public func termFrequencies() -> [(String, Int)] {
        lock.read { state.lists.indices.map { (state.termText[$0], state.lists[$0].alive) } }
    }

    public func search(_ query: SearchQuery) -> SearchHits {
        lock.read {
            let hits = run(query, UnsafePointer(statePointer))!
            return SearchHits(total: hits.total, skills: hits.slots.map { state.records[Int($0)] }, scores: hits.scores)
        }
    }

    /// `search` with the page's skills as protobuf bytes: each one a `CatalogSkill` encoding
    /// prefixed by the tag and length of SearchResponse's `items` field, so that the page is
    /// their concatenation. A skill's encoding is kept until its record changes, so a search
    /// mostly copies bytes instead of encoding the page again.
    ///
    /// With `boundedOnly`, only a search whose cost is bounded whatever the catalog holds is
    /// answered (relevance order, no tag or author filter, a page of at most 20, and query terms
    /// with at most `scoreAllVolume` postings in all, scored in full): nil otherwise, before any
    /// scoring. The service answers those where the call arrived, without a thread hop.
    func searchEncoded(_ query: SearchQuery, boundedOnly: Bool = false) throws -> (total: Int, items: [UInt8], count: Int)? {
        if boundedOnly {
            guard query.order == .relevance, query.tags.isEmpty, query.author.isEmpty, query.limit <= 20 else { return nil }
        }
        return try lock.read { () throws -> (total: Int, items: [UInt8], count: Int)? in
            guard let hits = run(query, UnsafePointer(statePointer), boundedOnly: boundedOnly) else { return nil }
            var items: [UInt8] = []
            var missing: [Int] = []
            var found: [[UInt8]] = encodedItems.withLock { cache in hits.slots.map { cache[$0] } }
            for (position, bytes) in found.enumerated() where bytes.isEmpty { missing.append(position) }
            if !missing.isEmpty {
                for position in missing { found[position] = try Self.encodeItem(state.records[Int(hits.slots[position])]) }
                encodedItems.withLock { cache in
                    for position in missing { cache.insert(found[position], at: hits.slots[position], slotCount: state.records.count) }
                }
            }
            // Room for the counts and the trailer the caller appends (no second allocation).
            items.reserveCapacity(found.reduce(0) { $0 + $1.count } + Self.responseTailCapacity)
            for bytes in found { items.append(contentsOf: bytes) }
            return (hits.total, items, hits.slots.count)
        }
    }

    /// A skill as an entry of SearchResponse's `items` (field 1, length-delimited).
    static func encodeItem(_ record: CatalogSkill) throws -> [UInt8] {
        let body = try record.serializedBytes()
        var bytes: [UInt8] = [0x0A]
        ProtoWire.appendVarint(UInt64(body.count), to: &bytes)
        bytes.append(contentsOf: body)
        return bytes
    }

    static let encodedItemsCapacity = 20_000
    /// Bytes a response needs after its items: fields 2 to 5 and `cached` and `service_ns`.
    static let responseTailCapacity = 64

    // MARK: - Search

    /// The page of `query`. With `boundedOnly`, nil (before any scoring) unless the query is
    /// answered by scoring few postings in full (`searchEncoded`).
    private func run(_ query: SearchQuery, _ state: UnsafePointer<IndexState>, boundedOnly: Bool = false) -> SlotHits? {
        let slotCount = state.pointee.records.count
        // The filter: live slots of the wanted category, type, tags and author.
        var eligible: Bitset?
        if !query.category.isEmpty {
            guard let set = state.pointee.categories[query.category] else { return SlotHits(total: 0, slots: [], scores: []) }
            eligible = set
        }
        if !query.type.isEmpty {
            guard let set = state.pointee.types[query.type] else { return SlotHits(total: 0, slots: [], scores: []) }
            if eligible == nil { eligible = set } else { eligible!.formIntersection(set) }
        }
        for tag in Set(query.tags) {
            guard let slots = state.pointee.tags[tag] else { return SlotHits(total: 0, slots: [], scores: []) }
            eligible = Self.restrict(eligible ?? state.pointee.alive, to: slots, slotCount: slotCount)
        }
        if !query.author.isEmpty {
            guard let slots = state.pointee.authors[query.author.lowercased()] else { return SlotHits(total: 0, slots: [], scores: []) }
            eligible = Self.restrict(eligible ?? state.pointee.alive, to: slots, slotCount: slotCount)
        }
        if eligible != nil { eligible!.formIntersection(state.pointee.alive) }
        let allowed = eligible ?? state.pointee.alive

        var tooWide = false
        let terms = queryTerms(query.text, state, boundedOnly: boundedOnly, tooWide: &tooWide)
        if boundedOnly && (terms == nil || tooWide) { return nil }
        if terms == nil {
            // No text: every allowed skill, in the wanted order (relevance means most downloaded).
            let order = query.order == .relevance ? SearchOrder.downloads : query.order
            let total = eligible?.count ?? state.pointee.aliveCount
            return SlotHits(total: total, slots: walk(ordering(order, state), allowed: eligible, offset: query.offset, limit: query.limit), scores: [])
        }
        let queryTerms = terms!
        if queryTerms.isEmpty { return SlotHits(total: 0, slots: [], scores: []) }

        if query.order == .relevance {
            // Few postings in all (a rare word, a prefix with few completions): score every match
            // at once; the block bounds and the count bitset would cost more than the scoring.
            var volume = 0
            for term in queryTerms { volume += state.pointee.lists[term.term].docs.count }
            if volume <= scoreAllVolume {
                // At most 1,024 postings, sorted once: a bounded cost.
                let ranked = Self.scoreAll(queryTerms, state, allowed: allowed, filtered: eligible != nil)
                guard query.offset < ranked.count, query.limit > 0 else { return SlotHits(total: ranked.count, slots: [], scores: []) }
                let page = ranked[query.offset..<min(ranked.count, query.offset + query.limit)]
                return SlotHits(total: ranked.count, slots: page.map(\.slot), scores: page.map(\.score))
            }
            if boundedOnly { return nil }
            let total: Int
            if queryTerms.count == 1 {
                let list = state.pointee.lists[queryTerms[0].term]
                total = eligible == nil ? list.alive : Self.countPostings(list, in: allowed)
            } else {
                total = Self.matches(queryTerms, state, allowed: allowed, slotCount: slotCount).count
            }
            guard query.offset < total, query.limit > 0 else { return SlotHits(total: total, slots: [], scores: []) }
            let k = min(query.offset + query.limit, total)
            let top = thresholdTopK(queryTerms, state, allowed: allowed, k: k)
                ?? topK(queryTerms, state, allowed: allowed, k: k, slotCount: slotCount)
            let page = top.dropFirst(query.offset)
            return SlotHits(total: total, slots: page.map(\.slot), scores: page.map(\.score))
        }
        if boundedOnly { return nil }
        let matched = Self.matches(queryTerms, state, allowed: allowed, slotCount: slotCount)
        let total = matched.count
        guard query.offset < total, query.limit > 0 else { return SlotHits(total: total, slots: [], scores: []) }
        let ordering = ordering(query.order, state)
        if total <= 4_096 {
            // Few matches: sort them by their rank in the order instead of walking it all.
            var slots: [Int32] = []
            slots.reserveCapacity(total)
            matched.forEach { slots.append(Int32($0)) }
            slots.sort { ordering.rank[Int($0)] < ordering.rank[Int($1)] }
            return SlotHits(total: total, slots: Array(slots.dropFirst(query.offset).prefix(query.limit)), scores: [])
        }
        return SlotHits(total: total, slots: walk(ordering, allowed: matched, offset: query.offset, limit: query.limit), scores: [])
    }

    /// The query's terms with their weights (idf, less for prefix expansions); nil when the
    /// query has no text at all (browse), empty when it has text but nothing in the index matches.
    /// With `boundedOnly`, a last word with more than `maxPrefixExpansions` completions stops
    /// the walk over them at once and sets `tooWide` (the search is not of bounded cost).
    private func queryTerms(_ text: String, _ state: UnsafePointer<IndexState>, boundedOnly: Bool = false, tooWide: inout Bool) -> [QueryTerm]? {
        // At most 32 tokens: a linear look for duplicates costs less than hashing into a set.
        var tokens: [String] = []
        Tokenizer.forEachToken(text) { token in
            if tokens.count < Self.maxQueryTokens, !tokens.contains(token) { tokens.append(token) }
        }
        if tokens.isEmpty {
            return text.allSatisfy(\.isWhitespace) ? nil : []
        }
        let documents = Float(max(state.pointee.aliveCount, 1))
        func idf(_ frequency: Int) -> Float {
            let df = Float(frequency)
            return log(1 + (documents - df + 0.5) / (df + 0.5))
        }
        var result: [QueryTerm] = []
        result.reserveCapacity(tokens.count)
        // Distinct tokens are distinct terms: `result` holds each exact term once.
        for (index, token) in tokens.enumerated() {
            var isWord = false
            if let id = state.pointee.termIDs[token], state.pointee.lists[Int(id)].alive > 0 {
                isWord = true
                result.append(QueryTerm(term: Int(id), weight: idf(state.pointee.lists[Int(id)].alive)))
            }
            // The last token, when it is not a word of the catalog, matches as a prefix (`summar`
            // finds `summarize`; `for` stays `for` and does not become `forecast`).
            guard index == tokens.count - 1, !isWord, token.utf8.count >= 2 else { continue }
            var expansions: [(Int, Int)] = []
            var position = state.pointee.lowerBound(token)
            // The completions are the terms from there on whose first bytes are the token's: up
            // to 8 bytes, a look at their sort keys; beyond, at their text too.
            let length = token.utf8.count
            let key = IndexState.sortKey(token)
            let mask: UInt64 = length >= 8 ? ~0 : ~(~0 >> UInt64(8 * length))
            while position < state.pointee.sortedTerms.count {
                guard state.pointee.sortedKeys[position] & mask == key else { break }
                let id = Int(state.pointee.sortedTerms[position])
                if length > 8 { guard state.pointee.termText[id].utf8.starts(with: token.utf8) else { break } }
                let alive = state.pointee.lists[id].alive
                if alive > 0, !result.contains(where: { $0.term == id }) { expansions.append((id, alive)) }
                if boundedOnly && expansions.count > Self.maxPrefixExpansions {
                    tooWide = true
                    return result
                }
                position += 1
            }
            if expansions.count > Self.maxPrefixExpansions {
                expansions.sort { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 < $1.0 }
                expansions.removeLast(expansions.count - Self.maxPrefixExpansions)
            }
            for (id, alive) in expansions {
                result.append(QueryTerm(term: id, weight: idf(alive) * Self.prefixWeight))
            }
        }
        return result
    }

    /// Live slots in `set` that are also in `slots`.
    private static func restrict(_ set: Bitset, to slots: [UInt32], slotCount: Int) -> Bitset {
        var restricted = Bitset(capacity: slotCount)
        for slot in slots where set.contains(Int(slot)) { restricted.insert(Int(slot)) }
        return restricted
    }

    private static func countPostings(_ list: TermList, in allowed: Bitset) -> Int {
        var count = 0
        allowed.words.withUnsafeBufferPointer { words in
            list.docs.withUnsafeBufferPointer { docs in
                for doc in docs {
                    let slot = Int(doc)
                    if words[slot >> 6] & (1 << UInt64(slot & 63)) != 0 { count += 1 }
                }
            }
        }
        return count
    }

    /// The allowed slots that hold any of the terms.
    private static func matches(_ terms: [QueryTerm], _ state: UnsafePointer<IndexState>, allowed: Bitset, slotCount: Int) -> Bitset {
        var matched = Bitset(capacity: slotCount)
        matched.words.withUnsafeMutableBufferPointer { out in
            for term in terms {
                state.pointee.lists[term.term].docs.withUnsafeBufferPointer { docs in
                    for doc in docs {
                        let slot = Int(doc)
                        out[slot >> 6] |= 1 << UInt64(slot & 63)
                    }
                }
            }
            allowed.words.withUnsafeBufferPointer { mask in
                let shared = min(out.count, mask.count)
                for index in 0..<shared { out[index] &= mask[index] }
                for index in shared..<out.count { out[index] = 0 }
            }
        }
        return matched
    }

    /// Every allowed match scored, best first (ties: lower slot first), for queries with few
    /// postings. Each slot's score is summed in query order, as the block-max search sums it, so
    /// both give the same scores bit for bit.
    private static func scoreAll(_ terms: [QueryTerm], _ state: UnsafePointer<IndexState>, allowed: Bitset, filtered: Bool) -> [ScoredSlot] {
        // (slot << 8 | term position, contribution), sorted: a slot's contributions end up
        // together and in query order (at most 32 + 64 terms, so a position fits in 8 bits).
        var entries: [(key: UInt64, contribution: Float)] = []
        var volume = 0
        for term in terms { volume += state.pointee.lists[term.term].docs.count }
        entries.reserveCapacity(volume)
        allowed.words.withUnsafeBufferPointer { words in
            for (position, term) in terms.enumerated() {
                let list = state.pointee.lists[term.term]
                // Without a filter, a list whose postings are all live needs no look at the
                // bitset (a cache miss per posting when the search comes in cold).
                let check = filtered || list.alive != list.docs.count
                list.docs.withUnsafeBufferPointer { docs in
                    list.impacts.withUnsafeBufferPointer { impacts in
                        for index in 0..<docs.count {
                            let slot = Int(docs[index])
                            if check {
                                guard slot >> 6 < words.count, words[slot >> 6] & (1 << UInt64(slot & 63)) != 0 else { continue }
                            }
                            entries.append((UInt64(slot) << 8 | UInt64(position), term.weight * impacts[index]))
                        }
                    }
                }
            }
        }
        entries.sort { $0.key < $1.key }
        var ranked: [ScoredSlot] = []
        var index = 0
        while index < entries.count {
            let slot = entries[index].key >> 8
            var score: Float = 0
            while index < entries.count && entries[index].key >> 8 == slot {
                score += entries[index].contribution
                index += 1
            }
            ranked.append(ScoredSlot(score: score, slot: Int32(slot)))
        }
        ranked.sort { $0.score != $1.score ? $0.score > $1.score : $0.slot < $1.slot }
        return ranked
    }

    /// The k best allowed slots by BM25F, best first (ties: lower slot first). Blocks of 256
    /// slots are visited in order of their score bound (the sum over the query terms of idf x
    /// the block's best impact); the search stops at the first block whose bound cannot beat the
    /// k-th best score so far.
    private func topK(_ terms: [QueryTerm], _ state: UnsafePointer<IndexState>, allowed: Bitset, k: Int, slotCount: Int) -> [ScoredSlot] {
        let blockCount = (slotCount >> Self.blockShift) + 1
        var bounds = [Float](repeating: 0, count: blockCount)
        // blockOf[t * blockCount + window]: term t's block in that window, or -1.
        var blockOf = [Int32](repeating: -1, count: blockCount * terms.count)
        bounds.withUnsafeMutableBufferPointer { bounds in
            blockOf.withUnsafeMutableBufferPointer { blockOf in
                for (position, term) in terms.enumerated() {
                    let list = state.pointee.lists[term.term]
                    let base = position * blockCount
                    list.blockWindow.withUnsafeBufferPointer { windows in
                        list.blockMax.withUnsafeBufferPointer { maxima in
                            for block in 0..<windows.count {
                                let window = Int(windows[block])
                                bounds[window] += term.weight * maxima[block]
                                blockOf[base + window] = Int32(block)
                            }
                        }
                    }
                }
            }
        }
        let lists = terms.map { state.pointee.lists[$0.term] }
        let docsOf = lists.map(\.docs), impactsOf = lists.map(\.impacts), startsOf = lists.map(\.blockStart)
        let maximaOf = lists.map(\.blockMax)
        var candidates: [Int32] = []
        candidates.reserveCapacity(blockCount)
        for block in 0..<blockCount where bounds[block] > 0 { candidates.append(Int32(block)) }
        candidates.sort { bounds[Int($0)] > bounds[Int($1)] }

        var heap = TopKHeap(capacity: k)
        let blockSize = 1 << Self.blockShift
        // Per block: the score accumulator (all terms essential), and for MaxScore each term's
        // contribution per local slot (row = term position), the essential partial sums and the
        // local slots the essential terms touched.
        var accumulator = [Float](repeating: 0, count: blockSize)
        var contributions = [Float](repeating: 0, count: blockSize * terms.count)
        var partial = [Float](repeating: 0, count: blockSize)
        var touched = [Int](repeating: 0, count: blockSize)
        // The terms present in the block: position and idf x the block's best impact.
        var present = [(position: Int, bound: Float)]()
        present.reserveCapacity(terms.count)
        accumulator.withUnsafeMutableBufferPointer { scores in
          contributions.withUnsafeMutableBufferPointer { contributions in
            partial.withUnsafeMutableBufferPointer { partial in
              touched.withUnsafeMutableBufferPointer { touched in
                allowed.words.withUnsafeBufferPointer { allowedWords in
                    @inline(__always) func isAllowed(_ slot: Int) -> Bool {
                        slot >> 6 < allowedWords.count && allowedWords[slot >> 6] & (1 << UInt64(slot & 63)) != 0
                    }
                    @inline(__always) func range(_ position: Int, _ block: Int) -> Range<Int> {
                        let starts = startsOf[position]
                        return Int(starts[block])..<(block + 1 < starts.count ? Int(starts[block + 1]) : docsOf[position].count)
                    }
                    for candidate in candidates {
                        let window = Int(candidate)
                        // Strictly below: a block that can tie the k-th best may hold a lower slot, which wins ties.
                        if heap.isFull && bounds[window] < heap.minimum { break }
                        let base = window << Self.blockShift
                        present.removeAll(keepingCapacity: true)
                        for position in 0..<terms.count {
                            let block = Int(blockOf[position * blockCount + window])
                            guard block >= 0 else { continue }
                            present.append((position, terms[position].weight * maximaOf[position][block]))
                        }
                        guard !present.isEmpty else { continue }
                        // MaxScore within the block: the terms whose bounds together cannot reach
                        // the k-th best score are non-essential; a slot holding none of the others
                        // cannot enter the top k, so only the essential terms' postings are
                        // candidates, and the non-essential ones are looked up (binary search in
                        // the block) only while the candidate's bound can still reach the k-th best.
                        var nonEssential = 0
                        var cut: Float = 0
                        if heap.isFull && present.count > 1 {
                            // A margin for the rounding of sums taken in another order than the score's.
                            cut = heap.minimum - heap.minimum * 1e-5 - 1e-6
                            present.sort { $0.bound < $1.bound }
                            var sum: Float = 0
                            while nonEssential < present.count - 1 {
                                sum += present[nonEssential].bound
                                guard sum < cut else { break }
                                nonEssential += 1
                            }
                        }
                        if nonEssential == 0 {
                            // Every term essential: score the block term at a time, in query order.
                            for position in 0..<terms.count {
                                let block = Int(blockOf[position * blockCount + window])
                                guard block >= 0 else { continue }
                                let weight = terms[position].weight
                                docsOf[position].withUnsafeBufferPointer { docs in
                                    impactsOf[position].withUnsafeBufferPointer { impacts in
                                        for index in range(position, block) {
                                            scores[Int(docs[index]) & (blockSize - 1)] += weight * impacts[index]
                                        }
                                    }
                                }
                            }
                            for local in 0..<blockSize where scores[local] > 0 {
                                let score = scores[local]
                                scores[local] = 0
                                if heap.isFull && score < heap.minimum { continue }
                                let slot = base | local
                                guard isAllowed(slot) else { continue }
                                heap.offer(score, Int32(slot))
                            }
                            continue
                        }
                        var touchedCount = 0
                        for rank in nonEssential..<present.count {
                            let position = present[rank].position
                            let weight = terms[position].weight
                            let row = position * blockSize
                            let block = Int(blockOf[position * blockCount + window])
                            docsOf[position].withUnsafeBufferPointer { docs in
                                impactsOf[position].withUnsafeBufferPointer { impacts in
                                    for index in range(position, block) {
                                        let local = Int(docs[index]) & (blockSize - 1)
                                        if partial[local] == 0 {
                                            touched[touchedCount] = local
                                            touchedCount += 1
                                        }
                                        let contribution = weight * impacts[index]
                                        partial[local] += contribution
                                        contributions[row + local] = contribution
                                    }
                                }
                            }
                        }
                        var nonEssentialBound: Float = 0
                        for rank in 0..<nonEssential { nonEssentialBound += present[rank].bound }
                        for index in 0..<touchedCount {
                            let local = touched[index]
                            let slot = base | local
                            var bound = partial[local] + nonEssentialBound
                            partial[local] = 0
                            cut = max(cut, heap.minimum - heap.minimum * 1e-5 - 1e-6)
                            if bound < cut || !isAllowed(slot) { continue }
                            // Look the non-essential terms up, the strongest first, while the bound holds.
                            var rank = nonEssential - 1
                            while rank >= 0 {
                                let (position, termBound) = present[rank]
                                let block = Int(blockOf[position * blockCount + window])
                                let found = docsOf[position].withUnsafeBufferPointer { docs -> Int? in
                                    var low = range(position, block).lowerBound, high = range(position, block).upperBound
                                    let target = UInt32(slot)
                                    while low < high {
                                        let middle = (low + high) >> 1
                                        if docs[middle] < target { low = middle + 1 } else { high = middle }
                                    }
                                    return low < range(position, block).upperBound && docs[low] == target ? low : nil
                                }
                                bound -= termBound
                                if let found {
                                    let contribution = terms[position].weight * impactsOf[position][found]
                                    contributions[position * blockSize + local] = contribution
                                    bound += contribution
                                }
                                if bound < cut { break }
                                rank -= 1
                            }
                            if rank < 0 {
                                // Every term of the block looked up: the exact score, summed in query order.
                                var score: Float = 0
                                for position in 0..<terms.count { score += contributions[position * blockSize + local] }
                                heap.offer(score, Int32(slot))
                            }
                            for position in 0..<terms.count { contributions[position * blockSize + local] = 0 }
                        }
                        // Skipped candidates still hold essential contributions.
                        for index in 0..<touchedCount {
                            let local = touched[index]
                            for rank in nonEssential..<present.count { contributions[present[rank].position * blockSize + local] = 0 }
                        }
                    }
                }
              }
            }
          }
        }
        return heap.sorted()
    }

    /// Every allowed match of `text` scored in full, without pruning, best first (ties: lower
    /// slot first): the reference the pruned searches must agree with exactly (tests).
    func exhaustiveRanking(_ text: String, category: String = "") -> [(id: String, score: Float)] {
        lock.read {
            let state = UnsafePointer(statePointer)
            var tooWide = false
            guard let terms = queryTerms(text, state, tooWide: &tooWide), !terms.isEmpty else { return [] }
            var scores = [Float](repeating: 0, count: state.pointee.records.count)
            for term in terms {
                let list = state.pointee.lists[term.term]
                for (doc, impact) in zip(list.docs, list.impacts) { scores[Int(doc)] += term.weight * impact }
            }
            var ranked: [(slot: Int, score: Float)] = []
            for slot in scores.indices where scores[slot] > 0 && state.pointee.alive.contains(slot) {
                if !category.isEmpty, state.pointee.records[slot].category != category { continue }
                ranked.append((slot, scores[slot]))
            }
            ranked.sort { $0.score != $1.score ? $0.score > $1.score : $0.slot < $1.slot }
            return ranked.map { (state.pointee.records[$0.slot].id, $0.score) }
        }
    }

    /// Top-k by walking the terms' impact-ordered lists in step (Fagin's threshold algorithm):
    /// each new slot is scored in full from its forward list, and the walk stops as soon as the
    /// k-th best score is above what any unseen slot could reach (the sum of the impacts at the
    /// current depth). Words in a large share of the catalog are answered after a few hundred
    /// postings instead of tens of thousands. Nil when it does not apply (many terms, short
    /// lists) or runs out of depth; the block-max search answers then.
    private func thresholdTopK(_ terms: [QueryTerm], _ state: UnsafePointer<IndexState>, allowed: Bitset, k: Int) -> [ScoredSlot]? {
        // One term: its impact-ordered head is already the ranking (score = idf x impact), so the
        // answer is its first k allowed entries. Several terms would need each new slot scored in
        // full (the threshold algorithm); words like "python" and "library" share high impacts
        // over thousands of skills, so the block-max search answers those better.
        guard k > 0, k <= Self.topListDepth / 2, terms.count == 1 else { return nil }
        let term = terms[0]
        guard state.pointee.lists[term.term].docs.count >= 2_048 else { return nil }
        let list = topList(term.term, state)
        var heap = TopKHeap(capacity: k)
        for depth in 0..<list.slots.count {
            let score = term.weight * list.impacts[depth]
            // Every later entry and every slot left out scores at most this (ties go to lower slots).
            if heap.isFull && heap.minimum > score { return heap.sorted() }
            let slot = list.slots[depth]
            if allowed.contains(Int(slot)) { heap.offer(score, slot) }
        }
        if heap.isFull && heap.minimum > term.weight * list.cutoff { return heap.sorted() }
        return list.cutoff == 0 ? heap.sorted() : nil
    }

    static let topListDepth = 1_024

    /// A term's best postings by impact (slot order for ties), built on first use after the
    /// term's list last grew; `cutoff` is the best impact left out (0 when none is).
    private func topList(_ term: Int, _ state: UnsafePointer<IndexState>) -> TopList {
        let list = state.pointee.lists[term]
        let key = ObjectIdentifier(list)
        let count = list.docs.count
        if let cached = topLists.withLock({ $0[term] }), cached.list == key, cached.count == count { return cached }
        let docs = list.docs, impacts = list.impacts
        var order = Array(0..<docs.count)
        order.sort { impacts[$0] != impacts[$1] ? impacts[$0] > impacts[$1] : docs[$0] < docs[$1] }
        let kept = order.prefix(Self.topListDepth)
        let top = TopList(
            list: key, count: count, slots: kept.map { Int32(docs[$0]) }, impacts: kept.map { impacts[$0] },
            cutoff: order.count > Self.topListDepth ? impacts[order[Self.topListDepth]] : 0)
        topLists.withLock { $0[term] = top }
        return top
    }

    /// `limit` skills from `ordering`, after skipping `offset`, keeping those in `allowed` (all
    /// of them when nil).
    private func walk(_ ordering: Ordering, allowed: Bitset?, offset: Int, limit: Int) -> [Int32] {
        guard limit > 0 else { return [] }
        guard let allowed else {
            guard offset < ordering.slots.count else { return [] }
            return Array(ordering.slots[offset..<min(ordering.slots.count, offset + limit)])
        }
        var skipped = 0
        var page: [Int32] = []
        for slot in ordering.slots where allowed.contains(Int(slot)) {
            if skipped < offset {
                skipped += 1
                continue
            }
            page.append(slot)
            if page.count == limit { break }
        }
        return page
    }

    /// The live slots in the order `order`, with each slot's rank (built once per index version).
    private func ordering(_ order: SearchOrder, _ state: UnsafePointer<IndexState>) -> Ordering {
        if let cached = orders.withLock({ $0[order] }), cached.version == state.pointee.version { return cached }
        let records = state.pointee.records
        var slots: [Int32] = []
        slots.reserveCapacity(state.pointee.aliveCount)
        state.pointee.alive.forEach { slots.append(Int32($0)) }
        // Names break every tie, so the order is total and pages never overlap.
        let byName = slots.sorted { records[Int($0)].name < records[Int($1)].name }
        var nameRank = [Int32](repeating: 0, count: records.count)
        for (rank, slot) in byName.enumerated() { nameRank[Int(slot)] = Int32(rank) }
        let sorted: [Int32]
        switch order {
        case .name, .relevance:
            sorted = byName
        case .downloads:
            sorted = byName.sorted { a, b in
                let (x, y) = (records[Int(a)].downloads, records[Int(b)].downloads)
                return x != y ? x > y : nameRank[Int(a)] < nameRank[Int(b)]
            }
        case .rating:
            sorted = byName.sorted { a, b in
                let (x, y) = (records[Int(a)], records[Int(b)])
                if x.ratingAverage != y.ratingAverage { return x.ratingAverage > y.ratingAverage }
                if x.ratingCount != y.ratingCount { return x.ratingCount > y.ratingCount }
                return nameRank[Int(a)] < nameRank[Int(b)]
            }
        case .recent:
            sorted = byName.sorted { a, b in
                let (x, y) = (records[Int(a)].updatedAtMs, records[Int(b)].updatedAtMs)
                return x != y ? x > y : nameRank[Int(a)] < nameRank[Int(b)]
            }
        }
        var rank = [Int32](repeating: Int32.max, count: records.count)
        for (position, slot) in sorted.enumerated() { rank[Int(slot)] = Int32(position) }
        let ordering = Ordering(version: state.pointee.version, slots: sorted, rank: rank)
        orders.withLock { $0[order] = ordering }
        return ordering
    }
}

/// Per slot, the encoding of its record as a SearchResponse item (empty: not encoded yet), at
/// most `SearchIndex.encodedItemsCapacity` of them (then it starts over). Indexed by slot: a
/// page's lookups are one array read each.
struct EncodedItems {
    private var items: [[UInt8]] = []
    private var count = 0

    subscript(slot: Int32) -> [UInt8] {
        Int(slot) < items.count ? items[Int(slot)] : []
    }

    mutating func insert(_ bytes: [UInt8], at slot: Int32, slotCount: Int) {
        if count >= SearchIndex.encodedItemsCapacity { removeAll() }
        if items.count < slotCount { items.append(contentsOf: repeatElement([], count: slotCount - items.count)) }
        guard Int(slot) < items.count else { return }
        if items[Int(slot)].isEmpty { count += 1 }
        items[Int(slot)] = bytes
    }

    mutating func remove(_ slot: Int32) {
        guard Int(slot) < items.count, !items[Int(slot)].isEmpty else { return }
        items[Int(slot)] = []
        count -= 1
    }

    mutating func removeAll() {
        items = []
        count = 0
    }
}

struct QueryTerm {
    let term: Int
    let weight: Float
}

struct ScoredSlot {
    let score: Float
    let slot: Int32
}

struct TopList: Sendable {
    /// The list it was built from and its length then: a longer list or a rebuilt index makes it stale.
    let list: ObjectIdentifier
    let count: Int
    let slots: [Int32]
    let impacts: [Float]
    let cutoff: Float
}

struct Ordering: Sendable {
    let version: UInt64
    let slots: [Int32]
    /// Position of each slot in `slots` (Int32.max for dead slots).
    let rank: [Int32]
}

/// One term's postings in slot order, with a precomputed impact per posting and the best
/// impact of each block of 256 slots.
final class TermList: @unchecked Sendable {
    var docs: [UInt32] = []
    var impacts: [Float] = []
    var blockWindow: [UInt32] = []
    var blockStart: [UInt32] = []
    var blockMax: [Float] = []
    /// Postings whose slot is live.
    var alive = 0

    func append(_ slot: UInt32, _ impact: Float) {
        let window = slot >> UInt32(SearchIndex.blockShift)
        if blockWindow.last != window {
            blockWindow.append(window)
            blockStart.append(UInt32(docs.count))
            blockMax.append(impact)
        } else if impact > blockMax[blockMax.count - 1] {
            blockMax[blockMax.count - 1] = impact
        }
        docs.append(slot)
        impacts.append(impact)
        alive += 1
    }

    /// Recomputes each block's best impact after the impacts changed.
    func refreshBlockMaxima() {
        for block in 0..<blockStart.count {
            let end = block + 1 < blockStart.count ? Int(blockStart[block + 1]) : impacts.count
            var best: Float = 0
            for index in Int(blockStart[block])..<end where impacts[index] > best { best = impacts[index] }
            blockMax[block] = best
        }
    }

    /// The index of the block covering `window`, if the term has postings there.
    @inline(__always)
    func block(for window: UInt32) -> Int? {
        var low = 0, high = blockWindow.count
        while low < high {
            let middle = (low + high) >> 1
            if blockWindow[middle] < window { low = middle + 1 } else { high = middle }
        }
        return low < blockWindow.count && blockWindow[low] == window ? low : nil
    }
}

/// A bounded min-heap of the best scores seen.
struct TopKHeap {
    private var scores: [Float] = []
    private var slots: [Int32] = []
    let capacity: Int

    init(capacity: Int) {
        self.capacity = capacity
        scores.reserveCapacity(min(capacity, 65_536))
        slots.reserveCapacity(min(capacity, 65_536))
    }

    var isFull: Bool { scores.count >= capacity }
    var minimum: Float { scores.first ?? 0 }

    /// Worse: lower score, or the same score and a higher slot.
    @inline(__always)
    private func worse(_ a: Int, _ b: Int) -> Bool {
        scores[a] < scores[b] || (scores[a] == scores[b] && slots[a] > slots[b])
    }

    mutating func offer(_ score: Float, _ slot: Int32) {
        guard capacity > 0 else { return }
        if scores.count < capacity {
            scores.append(score)
            slots.append(slot)
            var child = scores.count - 1
            while child > 0 {
                let parent = (child - 1) / 2
                guard worse(child, parent) else { break }
                scores.swapAt(child, parent)
                slots.swapAt(child, parent)
                child = parent
            }
            return
        }
        guard score > scores[0] || (score == scores[0] && slot < slots[0]) else { return }
        scores[0] = score
        slots[0] = slot
        var parent = 0
        while true {
            let left = 2 * parent + 1
            guard left < scores.count else { break }
            var smallest = left
            if left + 1 < scores.count && worse(left + 1, left) { smallest = left + 1 }
            guard worse(smallest, parent) else { break }
            scores.swapAt(smallest, parent)
            slots.swapAt(smallest, parent)
            parent = smallest
        }
    }

    func sorted() -> [ScoredSlot] {
        zip(scores, slots).map { ScoredSlot(score: $0, slot: $1) }.sorted { $0.score != $1.score ? $0.score > $1.score : $0.slot < $1.slot }
    }
}

/// The index's data; only `SearchIndex` touches it, under its lock.
struct IndexState {
    var termIDs: [String: UInt32] = [:]
    var termText: [String] = []
    var lists: [TermList] = []
    /// Term ids in UTF-8 byte order of their text (a prefix is a contiguous range).
    var sortedTerms: [UInt32] = []
    /// Per position in `sortedTerms`, the term's sort key (`sortKey`): the binary search for a
    /// prefix reads this one array instead of a string per step.
    var sortedKeys: [UInt64] = []
    var newTerms: [UInt32] = []

    var records: [CatalogSkill] = []
    /// Per slot: its terms and their per-field frequencies (to tombstone and to rebuild).
    var forward: [[UInt32]] = []
    var forwardFrequencies: [[UInt64]] = []
    var lengths: [(UInt16, UInt16, UInt16)] = []
    var alive = Bitset()
    var aliveCount = 0
    var slotOf: [String: Int] = [:]

    var categories: [String: Bitset] = [:]
    var categoryCounts: [String: Int] = [:]
    var types: [String: Bitset] = [:]
    var tags: [String: [UInt32]] = [:]
    var authors: [String: [UInt32]] = [:]

    /// Field-length averages used by the impacts, and the live count when they were taken.
    var averages: (Float, Float, Float) = (2, 3, 30)
    var averagedAt = 0
    var version: UInt64 = 0

    mutating func freezeAverages(_ documents: [PreparedDocument]) {
        guard !documents.isEmpty else { return }
        var sums: (Double, Double, Double) = (0, 0, 0)
        for document in documents {
            sums.0 += Double(document.nameLength)
            sums.1 += Double(document.tagsLength)
            sums.2 += Double(document.descriptionLength)
        }
        let count = Double(documents.count)
        averages = (Float(max(sums.0 / count, 1)), Float(max(sums.1 / count, 1)), Float(max(sums.2 / count, 1)))
        averagedAt = documents.count
    }

    /// BM25F: per-field frequencies, each normalised by its field's length, weighted, summed,
    /// then saturated. The query multiplies it by the term's idf.
    func impact(_ frequencies: (UInt16, UInt16, UInt16), _ lengths: (UInt16, UInt16, UInt16)) -> Float {
        let w = SearchIndex.weights, b = SearchIndex.lengthNormalisation
        func part(_ tf: UInt16, _ length: UInt16, _ average: Float, _ weight: Float, _ b: Float) -> Float {
            tf == 0 ? 0 : weight * Float(tf) / (1 - b + b * Float(length) / average)
        }
        let tilde = part(frequencies.0, lengths.0, averages.0, w.name, b.name)
            + part(frequencies.1, lengths.1, averages.1, w.tags, b.tags)
            + part(frequencies.2, lengths.2, averages.2, w.description, b.description)
        return tilde / (SearchIndex.k1 + tilde)
    }

    mutating func termID(_ text: String) -> UInt32 {
        if let id = termIDs[text] { return id }
        let id = UInt32(termText.count)
        termIDs[text] = id
        termText.append(text)
        lists.append(TermList())
        newTerms.append(id)
        return id
    }

    mutating func upsert(_ document: PreparedDocument) {
        if let slot = slotOf[document.record.id] {
            let old = records[slot]
            let new = document.record
            if old.name == new.name, old.description == new.description, old.tags == new.tags, old.category == new.category,
               old.type == new.type, old.author == new.author {
                records[slot] = new
                return
            }
            tombstone(slot)
        }
        append(document)
    }

    mutating func append(_ document: PreparedDocument) {
        let slot = records.count
        let record = document.record
        records.append(record)
        let lengths = (document.nameLength, document.tagsLength, document.descriptionLength)
        self.lengths.append(lengths)
        var ids: [UInt32] = []
        var frequencies: [UInt64] = []
        ids.reserveCapacity(document.terms.count)
        frequencies.reserveCapacity(document.terms.count)
        for term in document.terms {
            let id = termID(term.text)
            ids.append(id)
            frequencies.append(UInt64(term.name) << 32 | UInt64(term.tags) << 16 | UInt64(term.description))
            lists[Int(id)].append(UInt32(slot), impact((term.name, term.tags, term.description), lengths))
        }
        forward.append(ids)
        forwardFrequencies.append(frequencies)
        alive.insert(slot)
        aliveCount += 1
        slotOf[record.id] = slot
        categories[record.category, default: Bitset()].insert(slot)
        categoryCounts[record.category, default: 0] += 1
        types[record.type, default: Bitset()].insert(slot)
        for tag in Set(record.tags) { tags[tag, default: []].append(UInt32(slot)) }
        authors[record.author.lowercased(), default: []].append(UInt32(slot))
    }

    mutating func tombstone(_ slot: Int) {
        guard alive.contains(slot) else { return }
        alive.remove(slot)
        aliveCount -= 1
        for id in forward[slot] { lists[Int(id)].alive -= 1 }
        let record = records[slot]
        categories[record.category]?.remove(slot)
        categoryCounts[record.category, default: 1] -= 1
        types[record.type]?.remove(slot)
        if slotOf[record.id] == slot { slotOf[record.id] = nil }
    }

    /// Sorts the terms added since the last call into `sortedTerms`.
    mutating func mergeNewTerms() {
        guard !newTerms.isEmpty else { return }
        let text = termText
        func precedes(_ a: UInt32, _ b: UInt32) -> Bool {
            text[Int(a)].utf8.lexicographicallyPrecedes(text[Int(b)].utf8)
        }
        let added = newTerms.sorted(by: precedes)
        let addedKeys = added.map { Self.sortKey(text[Int($0)]) }
        newTerms.removeAll()
        if sortedTerms.isEmpty {
            sortedTerms = added
            sortedKeys = addedKeys
            return
        }
        var merged: [UInt32] = [], mergedKeys: [UInt64] = []
        merged.reserveCapacity(sortedTerms.count + added.count)
        mergedKeys.reserveCapacity(sortedTerms.count + added.count)
        var i = 0, j = 0
        while i < sortedTerms.count && j < added.count {
            if precedes(added[j], sortedTerms[i]) {
                merged.append(added[j])
                mergedKeys.append(addedKeys[j])
                j += 1
            } else {
                merged.append(sortedTerms[i])
                mergedKeys.append(sortedKeys[i])
                i += 1
            }
        }
        merged.append(contentsOf: sortedTerms[i...])
        mergedKeys.append(contentsOf: sortedKeys[i...])
        merged.append(contentsOf: added[j...])
        mergedKeys.append(contentsOf: addedKeys[j...])
        sortedTerms = merged
        sortedKeys = mergedKeys
    }

    /// A term's first 8 UTF-8 bytes as a big-endian number, zero-padded. Terms never hold a
    /// zero byte, so keys sort as the texts do, and two terms share a key only when they share
    /// their first 8 bytes (both are that long at least).
    static func sortKey(_ text: String) -> UInt64 {
        var key: UInt64 = 0
        var shift: UInt64 = 56
        for byte in text.utf8 {
            key |= UInt64(byte) << shift
            if shift == 0 { break }
            shift -= 8
        }
        return key
    }

    /// The first position in `sortedTerms` whose text is not below `token`.
    func lowerBound(_ token: String) -> Int {
        let key = Self.sortKey(token)
        var low = 0, high = sortedKeys.count
        while low < high {
            let middle = (low + high) >> 1
            if sortedKeys[middle] < key { low = middle + 1 } else { high = middle }
        }
        // A token under 9 bytes is at the first key not below its own. A longer one shares its
        // key with the terms of the same first 8 bytes: among those, the texts decide.
        guard token.utf8.count > 8 else { return low }
        high = low
        while high < sortedKeys.count && sortedKeys[high] == key { high += 1 }
        while low < high {
            let middle = (low + high) >> 1
            if termText[Int(sortedTerms[middle])].utf8.lexicographicallyPrecedes(token.utf8) { low = middle + 1 } else { high = middle }
        }
        return low
    }

    /// Compacts and refreshes the averages when a quarter of the slots are dead or the live
    /// count has doubled since the averages were taken.
    /// Returns whether it rebuilt.
    mutating func rebuildIfNeeded() -> Bool {
        let dead = records.count - aliveCount
        let grown = aliveCount >= max(2 * averagedAt, 256)
        guard grown || (records.count >= 1_024 && dead * 4 > records.count) else { return false }
        rebuild()
        return true
    }

    /// The rebuild of an index without dead slots (it only grew): the same averages and impacts
    /// as a full rebuild, recomputed in place, without copying records or remaking the filters.
    mutating func refreshImpacts() {
        var sums: (Double, Double, Double) = (0, 0, 0)
        for length in lengths {
            sums.0 += Double(length.0)
            sums.1 += Double(length.1)
            sums.2 += Double(length.2)
        }
        let count = Double(max(records.count, 1))
        averages = (Float(max(sums.0 / count, 1)), Float(max(sums.1 / count, 1)), Float(max(sums.2 / count, 1)))
        averagedAt = records.count
        // Postings are in slot order, so a cursor per list walks them in step with the slots.
        var cursors = [Int](repeating: 0, count: lists.count)
        for slot in 0..<records.count {
            let lengths = self.lengths[slot]
            for (id, packed) in zip(forward[slot], forwardFrequencies[slot]) {
                let tf = (UInt16(truncatingIfNeeded: packed >> 32), UInt16(truncatingIfNeeded: packed >> 16), UInt16(truncatingIfNeeded: packed))
                let list = lists[Int(id)]
                list.impacts[cursors[Int(id)]] = impact(tf, lengths)
                cursors[Int(id)] += 1
            }
        }
        for list in lists { list.refreshBlockMaxima() }
    }

    mutating func rebuild() {
        if aliveCount == records.count {
            refreshImpacts()
            return
        }
        var documents: [(CatalogSkill, [UInt32], [UInt64], (UInt16, UInt16, UInt16))] = []
        documents.reserveCapacity(aliveCount)
        alive.forEach { slot in documents.append((records[slot], forward[slot], forwardFrequencies[slot], lengths[slot])) }
        var sums: (Double, Double, Double) = (0, 0, 0)
        for document in documents {
            sums.0 += Double(document.3.0)
            sums.1 += Double(document.3.1)
            sums.2 += Double(document.3.2)
        }
        let count = Double(max(documents.count, 1))
        let frozenAverages = (Float(max(sums.0 / count, 1)), Float(max(sums.1 / count, 1)), Float(max(sums.2 / count, 1)))
        let text = termText
        let termIDs = self.termIDs
        let sortedTerms = self.sortedTerms, sortedKeys = self.sortedKeys
        let version = self.version
        self = IndexState()
        self.version = version
        self.termText = text
        self.termIDs = termIDs
        self.sortedTerms = sortedTerms
        self.sortedKeys = sortedKeys
        self.lists = text.map { _ in TermList() }
        self.averages = frozenAverages
        self.averagedAt = documents.count
        for (record, ids, frequencies, lengths) in documents {
            let slot = records.count
            records.append(record)
            self.lengths.append(lengths)
            for (id, packed) in zip(ids, frequencies) {
                let tf = (UInt16(truncatingIfNeeded: packed >> 32), UInt16(truncatingIfNeeded: packed >> 16), UInt16(truncatingIfNeeded: packed))
                lists[Int(id)].append(UInt32(slot), impact(tf, lengths))
            }
            forward.append(ids)
            forwardFrequencies.append(frequencies)
            alive.insert(slot)
            aliveCount += 1
            slotOf[record.id] = slot
            categories[record.category, default: Bitset()].insert(slot)
            categoryCounts[record.category, default: 0] += 1
            types[record.type, default: Bitset()].insert(slot)
            for tag in Set(record.tags) { tags[tag, default: []].append(UInt32(slot)) }
            authors[record.author.lowercased(), default: []].append(UInt32(slot))
        }
    }
}
