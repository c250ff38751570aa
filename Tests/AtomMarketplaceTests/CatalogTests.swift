import AtomAPI
import AtomProto
import AtomRPC
import AtomSkillFormat
import AtomTesting
import Foundation
import GRDB
import Testing

@testable import AtomMarketplace

/// Bundles and skill folders written for a test.
enum Fixtures {
    static func line(
        _ name: String, version: String = "1.0.0", description: String = "A skill.", category: String = "text",
        runtime: String = "python", tags: [String] = [], extra: String = ""
    ) -> String {
        let tagText = tags.map { "\"\($0)\"" }.joined(separator: ",")
        return #"{"name":"\#(name)","version":"\#(version)","description":"\#(description)","category":"\#(category)","runtime":"\#(runtime)","tags":[\#(tagText)]\#(extra)}"#
    }

    static func writeSkill(in folder: String, name: String, version: String = "1.0.0", description: String = "A skill.", packages: [String] = []) throws {
        let path = "\(folder)/\(name)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        let packageText = packages.isEmpty ? "" : "packages: [\(packages.map { "\"\($0)\"" }.joined(separator: ", "))]\n"
        try """
            name: \(name)
            version: "\(version)"
            description: \(description)
            category: testing
            runtime: python
            tags: [fixture]
            \(packageText)
            """.write(toFile: "\(path)/skill.yaml", atomically: true, encoding: .utf8)
        try "def execute(inputs):\n    return {\"ok\": True}\n".write(toFile: "\(path)/main.py", atomically: true, encoding: .utf8)
    }

    static var repositoryRoot: String {
        Repository.root
    }
}

@Suite("Catalog: SQLite, index and cache together", .serialized)
struct CatalogTests {
    func withCatalog<T>(ttl: Duration = .seconds(300), chunk: Int = 1_000, _ body: (Catalog, ScratchDirectory) async throws -> T) async throws -> T {
        let scratch = try ScratchDirectory("catalog")
        defer { scratch.remove() }
        let catalog = try await Catalog(configuration: MarketplaceConfiguration(home: scratch.path, cacheTTL: ttl, importChunk: chunk))
        return try await body(catalog, scratch)
    }

    func search(_ catalog: Catalog, _ query: String, sort: SearchSort = .relevance, category: String = "") throws -> SearchResponse {
        try catalog.search(SearchRequest(query: query, category: category, sort: sort)).response
    }

    @Test("a bundle: bad lines are reported with line, field and message; the good ones are imported")
    func bundleErrors() async throws {
        try await withCatalog { catalog, scratch in
            let lines = [
                Fixtures.line("alpha", description: "Parses alpha files."),
                "{not json",
                Fixtures.line("Bad Name"),
                Fixtures.line("beta", version: "1.0"),
                "",
                Fixtures.line("gamma", extra: #","pakages":["x"]"#),
                "[1, 2]",
                Fixtures.line("delta", extra: #","downloads":-3"#),
                Fixtures.line("epsilon", extra: #","source":"https://example.org/epsilon","downloads":42"#),
            ]
            let path = scratch.path + "/bundle.jsonl"
            try lines.joined(separator: "\n").write(toFile: path, atomically: true, encoding: .utf8)
            let response = try await catalog.importItems(try ImportSource.items(at: path))
            #expect(response.total == 8)
            #expect(response.added == 2 && response.failed == 6)
            let byLine = Dictionary(uniqueKeysWithValues: response.errors.map { ($0.item.split(separator: ":").last.map(String.init) ?? "", $0) })
            #expect(byLine["2"]?.message == "invalid JSON: expected a member name in quotes at byte 1")
            #expect(byLine["3"]?.field == "name")
            #expect(byLine["4"]?.field == "version" && byLine["4"]?.skillId == "beta")
            #expect(byLine["6"]?.field == "pakages")
            #expect(byLine["7"]?.message.contains("JSON object") == true)
            #expect(byLine["8"]?.field == "downloads")
            let epsilon = try #require(catalog.index.skill("epsilon"))
            #expect(epsilon.source == "https://example.org/epsilon" && epsilon.downloads == 42)
            #expect(try await catalog.store.count() == 2)
        }
    }

    @Test("list and text fields are bounded at import, so the largest page of the largest entries fits one message")
    func fieldBounds() async throws {
        try await withCatalog { catalog, scratch in
            let tooMany = try await catalog.importItems(ImportSource.bundle([
                Fixtures.line("many-tags", tags: (0...SkillManifest.maxTags).map { "t\($0)" }),
                Fixtures.line("many-packages", extra: #","packages":[\#((0...SkillManifest.maxPackages).map { "\"p\($0)\"" }.joined(separator: ","))]"#),
                Fixtures.line("long-package", extra: #","packages":["\#(String(repeating: "p", count: SkillManifest.maxPackageLength + 1))"]"#),
                Fixtures.line("long-author", extra: #","author":"\#(String(repeating: "a", count: SkillManifest.maxAuthorLength + 1))""#),
                Fixtures.line("long-source", extra: #","source":"\#(String(repeating: "s", count: ImportSource.maxSourceBytes + 1))""#),
            ].joined(separator: "\n"), label: "bounds"))
            #expect(tooMany.failed == 5 && tooMany.added == 0)
            #expect(tooMany.errors.map(\.field) == ["tags", "packages", "packages[0]", "author", "source"])
            #expect(tooMany.errors.first?.message == "has \(SkillManifest.maxTags + 1) items; at most \(SkillManifest.maxTags)")

            // Bounds count UTF-8 bytes: a character may hold any number of combining marks, and
            // four-byte characters fill a package name four times as fast as letters.
            let marks = "e" + String(repeating: "\u{301}", count: 8_000)
            let heavy = try await catalog.importItems(ImportSource.bundle([
                Fixtures.line("heavy-description", description: marks),
                Fixtures.line("heavy-package", extra: #","packages":["\#(String(repeating: "😀", count: 51))"]"#),
            ].joined(separator: "\n"), label: "heavy"))
            #expect(heavy.errors.map(\.field) == ["description", "packages[0]"], "\(heavy.errors)")
            #expect(heavy.errors.first?.message == "is 16001 bytes of UTF-8; at most \(SkillManifest.maxDescriptionBytes)")

            // A hundred entries at every bound, in the widest bytes each allows: the largest page
            // of them (about 3.6 MB) stays under 90% of the message limit.
            let wide = "😀"
            let lines = (0..<100).map { index in
                Fixtures.line(
                    String(format: "max-%03d", index), version: "1.0.0-" + String(repeating: "a", count: SkillManifest.maxVersionLength - 6),
                    description: "boundword " + "e" + String(repeating: "\u{301}", count: (SkillManifest.maxDescriptionBytes - 11) / 2),
                    tags: (0..<SkillManifest.maxTags).map { String(format: "%02d", $0) + String(repeating: "t", count: 62) },
                    extra: #","packages":[\#((0..<SkillManifest.maxPackages).map { "\"" + String(format: "%02d", $0) + String(repeating: wide, count: (SkillManifest.maxPackageLength - 2) / 4) + "\"" }.joined(separator: ","))]"#
                        + #","author":"\#(String(repeating: wide, count: SkillManifest.maxAuthorLength / 4))""#
                        + #","source":"\#(String(repeating: "s", count: ImportSource.maxSourceBytes))""#)
            }
            let path = scratch.path + "/widest.jsonl"
            try lines.joined(separator: "\n").write(toFile: path, atomically: true, encoding: .utf8)
            let imported = try await catalog.importItems(try ImportSource.items(at: path))
            #expect(imported.added == 100 && imported.failed == 0, "\(imported.errors.prefix(2))")
            let page = try catalog.search(SearchRequest(query: "boundword", pageSize: 100)).response
            #expect(page.items.count == 100)
            let bytes = try page.serializedBytes().count
            #expect(bytes < RPCLimits.maxPayloadBytes * 9 / 10, "a page of the widest entries is \(bytes) bytes")
        }
    }

    @Test("the same version again changes nothing; a newer version updates text and keeps figures; an older one is kept out")
    func versions() async throws {
        try await withCatalog { catalog, _ in
            _ = try await catalog.importItems(ImportSource.bundle(Fixtures.line("alpha", description: "Reads zebra files."), label: "a"))
            _ = try await catalog.rate(skillID: "alpha", userID: "u1", stars: 4)
            let before = try #require(try await catalog.store.skill("alpha"))

            let same = try await catalog.importItems(ImportSource.bundle(Fixtures.line("alpha", description: "Reads zebra files."), label: "a"))
            #expect(same.unchanged == 1 && same.added == 0 && same.updated == 0 && same.warnings.isEmpty)
            let sameVersionOtherText = try await catalog.importItems(ImportSource.bundle(Fixtures.line("alpha", description: "Other."), label: "a"))
            #expect(sameVersionOtherText.unchanged == 1 && sameVersionOtherText.warnings.first?.contains("raise the version") == true)
            #expect(try await catalog.store.skill("alpha") == before)

            let newer = try await catalog.importItems(ImportSource.bundle(Fixtures.line("alpha", version: "1.1.0", description: "Reads yak files."), label: "a"))
            #expect(newer.updated == 1 && newer.changed == ["alpha"])
            let after = try #require(try await catalog.store.skill("alpha"))
            #expect(after.version == "1.1.0" && after.ratingCount == 1 && after.ratingAverage == 4 && after.createdAtMs == before.createdAtMs)
            #expect(try search(catalog, "zebra").total == 0)
            #expect(try search(catalog, "yak").items.map(\.id) == ["alpha"])

            let older = try await catalog.importItems(ImportSource.bundle(Fixtures.line("alpha", version: "0.9.0"), label: "a"))
            #expect(older.unchanged == 1 && older.warnings.first?.contains("older") == true)
            #expect(try await catalog.store.skill("alpha")?.version == "1.1.0")
        }
    }

    @Test("folders: a folder of skills, one skill folder; a broken folder is one error among successes")
    func folders() async throws {
        try await withCatalog { catalog, scratch in
            let folder = scratch.path + "/skills"
            try Fixtures.writeSkill(in: folder, name: "one")
            try Fixtures.writeSkill(in: folder, name: "two")
            try FileManager.default.createDirectory(atPath: folder + "/broken", withIntermediateDirectories: true)
            try "name: broken\n".write(toFile: folder + "/broken/skill.yaml", atomically: true, encoding: .utf8)
            try FileManager.default.createDirectory(atPath: folder + "/empty", withIntermediateDirectories: true)
            let response = try await catalog.importItems(try ImportSource.items(at: folder))
            #expect(response.added == 2 && response.failed == 2)
            #expect(response.errors.contains { $0.item.hasSuffix("/broken") && $0.field == "version" })
            #expect(response.errors.contains { $0.item.hasSuffix("/empty") && $0.message.contains("skill.yaml") })
            // A single skill folder; a new version of it updates the entry.
            try Fixtures.writeSkill(in: folder, name: "one", version: "2.0.0", description: "Now with walruses.")
            let single = try await catalog.importItems(try ImportSource.items(at: folder + "/one"))
            #expect(single.updated == 1)
            #expect(try search(catalog, "walrus").items.first?.version == "2.0.0")
            #expect(catalog.index.skill("one")?.source.hasSuffix("/skills/one") == true)
            #expect(catalog.index.skill("one")?.contentHash.count == 64)
            #expect(throws: ImportFailure.self) { try ImportSource.items(at: scratch.path + "/nothing-here") }
        }
    }

    @Test("the cache answers repeats and is invalidated by every kind of write")
    func cacheInvalidation() async throws {
        try await withCatalog { catalog, _ in
            _ = try await catalog.importItems(ImportSource.bundle(
                [Fixtures.line("alpha", description: "Walrus tools."), Fixtures.line("beta", description: "Walrus helpers.")].joined(separator: "\n"), label: "b"))
            func walrus(_ sort: SearchSort = .relevance) throws -> Catalog.SearchOutcome {
                try catalog.search(SearchRequest(query: "walrus", sort: sort))
            }
            #expect(try walrus().cached == false)
            #expect(try walrus().cached == true)

            // Import of a new skill.
            _ = try await catalog.importItems(ImportSource.bundle(Fixtures.line("gamma", description: "Walrus farm."), label: "c"))
            let afterImport = try walrus()
            #expect(afterImport.cached == false && afterImport.response.total == 3)
            #expect(try walrus().cached == true)

            // Update (a new version).
            _ = try await catalog.importItems(ImportSource.bundle(Fixtures.line("gamma", version: "2.0.0", description: "Seal farm."), label: "c"))
            let afterUpdate = try walrus()
            #expect(afterUpdate.cached == false && afterUpdate.response.total == 2)

            // Rating, seen by the rating sort.
            _ = try walrus(.rating)
            #expect(try walrus(.rating).cached == true)
            _ = try await catalog.rate(skillID: "beta", userID: "u", stars: 5)
            let afterRating = try walrus(.rating)
            #expect(afterRating.cached == false && afterRating.response.items.first?.id == "beta")

            // Download, seen by the downloads sort.
            _ = try walrus(.downloads)
            _ = try await catalog.recordDownload(skillID: "alpha", agentID: "a", environmentID: "")
            let afterDownload = try walrus(.downloads)
            #expect(afterDownload.cached == false && afterDownload.response.items.first?.id == "alpha")
            #expect(afterDownload.response.items.first?.downloads == 1)

            // An import that changes nothing still leaves no stale answer.
            _ = try await catalog.importItems(ImportSource.bundle(Fixtures.line("alpha", description: "Walrus tools."), label: "b"))
            #expect(try walrus(.downloads).response.items.first?.downloads == 1)
        }
    }

    @Test("encoded search (the wire path): bytes decode to the typed answer; a hit is the stored bytes with cached and service_ns; writes invalidate")
    func encodedSearch() async throws {
        try await withCatalog { catalog, _ in
            _ = try await catalog.importItems(ImportSource.bundle(
                (0..<30).map { Fixtures.line("walrus-\($0)", description: "Walrus tools number \($0).", tags: ["sea"]) }.joined(separator: "\n"),
                label: "a"))
            let request = SearchRequest(query: "walrus", tags: ["sea"], page: 2, pageSize: 10)
            #expect(catalog.cachedSearch(request) == nil)
            let miss = try catalog.encodedSearch(request)
            #expect(miss.cached == false)
            var decoded = try SearchResponse(serializedBytes: miss.bytes)
            #expect(decoded.cached == false && decoded.serviceNs > 0)
            var typed = try catalog.search(SearchRequest(query: "walrus", tags: ["sea"], page: 2, pageSize: 10, bypassCache: true)).response
            typed.serviceNs = decoded.serviceNs
            #expect(decoded == typed)
            #expect(decoded.items.count == 10 && decoded.total == 30 && decoded.page == 2 && decoded.totalPages == 3)

            // Empty pages, no match, browsing and other sorts assemble the same bytes' meaning.
            let probes = [
                SearchRequest(query: "walrus", page: 9), SearchRequest(query: "nothing-matches"), SearchRequest(sort: .downloads, pageSize: 7),
                SearchRequest(query: "walrus", sort: .name, page: 2, pageSize: 3), SearchRequest(query: "walr", category: "text"),
            ]
            for var probe in probes {
                probe.bypassCache = true
                var encoded = try SearchResponse(serializedBytes: try catalog.encodedSearch(probe).bytes)
                let typed = try catalog.search(probe).response
                encoded.serviceNs = typed.serviceNs
                #expect(encoded == typed, "\(probe)")
            }

            // The repeat is a hit, on the wire path and on the typed one alike.
            let hit = try #require(catalog.cachedSearch(request))
            let hitResponse = try SearchResponse(serializedBytes: hit)
            #expect(hitResponse.cached && hitResponse.serviceNs > 0)
            decoded.cached = true
            decoded.serviceNs = hitResponse.serviceNs
            #expect(hitResponse == decoded)
            #expect(try catalog.encodedSearch(request).cached)
            #expect(try catalog.search(request).cached)
            // bypass_cache never reads it; an invalid request is not answered from it.
            var bypass = request
            bypass.bypassCache = true
            #expect(catalog.cachedSearch(bypass) == nil)
            #expect(try catalog.encodedSearch(bypass).cached == false)
            #expect(catalog.cachedSearch(SearchRequest(query: "walrus", pageSize: 101)) == nil)
            #expect(throws: RPCError.self) { try catalog.encodedSearch(SearchRequest(query: "walrus", pageSize: 101)) }

            // A write: the next answer is searched again and sees it.
            _ = try await catalog.rate(skillID: "walrus-15", userID: "ann", stars: 5)
            #expect(catalog.cachedSearch(request) == nil)
            let fresh = try SearchResponse(serializedBytes: try catalog.encodedSearch(request).bytes)
            #expect(fresh.cached == false)
            // Equal scores rank by age: page 2 is walrus-10 to walrus-19, and its kept encodings were renewed.
            #expect(fresh.items.first { $0.id == "walrus-15" }?.ratingCount == 1)
        }
    }

    @Test("bounded searches (answered on the reactor thread): few postings and a page of at most 20 get the pool's bytes; anything else is left to the pool; the cache and writes work the same")
    func boundedSearch() async throws {
        try await withCatalog { catalog, _ in
            // "common" is in all 2,000 skills (over 1,024 postings); "rare" and "walruses" in four;
            // "zeta0" to "zeta1999" one each: "zet" has more completions than a search expands.
            _ = try await catalog.importItems(ImportSource.bundle(
                (0..<2_000).map { Fixtures.line("skill-\($0)", description: "A common tool zeta\($0)\($0 % 500 == 0 ? " for rare walruses" : "").", tags: ["t\($0 % 3)"]) }
                    .joined(separator: "\n"),
                label: "b"))
            for query in ["rare", "walr", "rare walr", "nothing-matches"] {
                for request in [
                    SearchRequest(query: query, bypassCache: true), SearchRequest(query: query, category: "text", page: 2, pageSize: 3, bypassCache: true),
                ] {
                    let bounded = try #require(catalog.boundedSearch(request), "\(request)")
                    #expect(bounded.cached == false)
                    var answer = try SearchResponse(serializedBytes: bounded.bytes)
                    let pool = try SearchResponse(serializedBytes: try catalog.encodedSearch(request).bytes)
                    answer.serviceNs = pool.serviceNs
                    #expect(answer == pool, "\(request)")
                    #expect(answer.total == (query == "nothing-matches" ? 0 : 4))
                }
            }
            // Many postings, tags, authors, other sorts, big pages, browsing and invalid requests go to the pool.
            let unbounded = [
                SearchRequest(query: "common"), SearchRequest(query: "rare", tags: ["t0"]), SearchRequest(query: "rare", author: "x"),
                SearchRequest(query: "rare", sort: .downloads), SearchRequest(query: "rare", pageSize: 21), SearchRequest(query: ""),
                SearchRequest(query: "rare", pageSize: 101), SearchRequest(query: "zet"),
            ]
            for var request in unbounded {
                request.bypassCache = true
                #expect(catalog.boundedSearch(request) == nil, "\(request)")
            }
            #expect(try catalog.encodedSearch(SearchRequest(query: "zet", bypassCache: true)).bytes.isEmpty == false)
            #expect(try catalog.search(SearchRequest(query: "zet", bypassCache: true)).response.total == 64)
            // The cache: a bounded miss is stored, the repeat is a hit; a search of many postings is
            // answered here once the pool has cached it; a write invalidates both.
            let rare = SearchRequest(query: "rare")
            #expect(catalog.boundedSearch(rare)?.cached == false)
            #expect(catalog.boundedSearch(rare)?.cached == true)
            let common = SearchRequest(query: "common")
            #expect(catalog.boundedSearch(common) == nil)
            #expect(try catalog.encodedSearch(common).cached == false)
            #expect(catalog.boundedSearch(common)?.cached == true)
            _ = try await catalog.rate(skillID: "skill-500", userID: "ann", stars: 4)
            #expect(catalog.boundedSearch(common) == nil)
            let fresh = try #require(catalog.boundedSearch(rare))
            #expect(fresh.cached == false)
            #expect(try SearchResponse(serializedBytes: fresh.bytes).items.first { $0.id == "skill-500" }?.ratingCount == 1)
        }
    }

    @Test("the service's handlers: Search is the encoded one, every other generated method is kept")
    func methodHandlers() async throws {
        try await withCatalog { catalog, _ in
            let client = try RPCClient(endpoint: "tcp://127.0.0.1:1", name: "unused")
            defer { client.close() }
            let names = MarketplaceServiceImpl(catalog: catalog, gateway: client).methodHandlers.map(\.name)
            #expect(names == ["Search", "GetSkill", "Categories", "RateSkill", "InstallSkill", "Import"])
        }
    }

    @Test("the cache expires after its TTL and is off with TTL 0; bypass_cache neither reads nor writes it")
    func cacheTTL() async throws {
        try await withCatalog(ttl: .milliseconds(300)) { catalog, _ in
            _ = try await catalog.importItems(ImportSource.bundle(Fixtures.line("alpha"), label: "a"))
            _ = try catalog.search(SearchRequest(query: "skill"))
            #expect(try catalog.search(SearchRequest(query: "skill")).cached)
            try await Task.sleep(for: .milliseconds(400))
            #expect(try catalog.search(SearchRequest(query: "skill")).cached == false)
            #expect(try catalog.search(SearchRequest(query: "other", bypassCache: true)).cached == false)
            #expect(try catalog.search(SearchRequest(query: "other")).cached == false)
        }
        try await withCatalog(ttl: .zero) { catalog, _ in
            _ = try catalog.search(SearchRequest(query: "x"))
            #expect(try catalog.search(SearchRequest(query: "x")).cached == false)
            #expect(catalog.cache.count == 0)
        }
    }

    @Test("request validation: page size 0 is 20, 100 is fine, 101 and unknown sorts are INVALID_ARGUMENT; huge pages are empty")
    func requestValidation() async throws {
        try await withCatalog { catalog, _ in
            let lines = (0..<150).map { Fixtures.line("skill-\($0)", description: "Common words here.") }
            _ = try await catalog.importItems(ImportSource.bundle(lines.joined(separator: "\n"), label: "many"))
            let defaults = try catalog.search(SearchRequest(query: "common")).response
            #expect(defaults.items.count == 20 && defaults.pageSize == 20 && defaults.page == 1 && defaults.total == 150 && defaults.totalPages == 8)
            #expect(try catalog.search(SearchRequest(query: "common", pageSize: 100)).response.items.count == 100)
            #expect(try catalog.search(SearchRequest(query: "common", page: 2, pageSize: 100)).response.items.count == 50)
            let error = #expect(throws: RPCError.self) { try catalog.search(SearchRequest(pageSize: 101)) }
            #expect(error?.code == .invalidArgument && error?.message.contains("101") == true)
            let sort = #expect(throws: RPCError.self) { try catalog.search(SearchRequest(sort: .unrecognized(9))) }
            #expect(sort?.code == .invalidArgument)
            let huge = try catalog.search(SearchRequest(query: "common", page: UInt32.max, pageSize: 100)).response
            #expect(huge.items.isEmpty && huge.total == 150 && huge.page == UInt32.max)
            let browse = try catalog.search(SearchRequest(page: 8, pageSize: 20)).response
            #expect(browse.items.count == 10 && browse.total == 150)
        }
    }

    @Test("ratings: 1 to 5, one per user and updatable; unknown skills are NOT_FOUND")
    func ratings() async throws {
        try await withCatalog { catalog, _ in
            _ = try await catalog.importItems(ImportSource.bundle(Fixtures.line("alpha"), label: "a"))
            #expect(try await catalog.rate(skillID: "alpha", userID: "ann", stars: 5).ratingCount == 1)
            let second = try await catalog.rate(skillID: "alpha", userID: "bob", stars: 2)
            #expect(second.ratingCount == 2 && second.ratingAverage == 3.5)
            let changed = try await catalog.rate(skillID: "alpha", userID: "bob", stars: 4)
            #expect(changed.ratingCount == 2 && changed.ratingAverage == 4.5)
            await #expect(throws: RPCError.self) { _ = try await catalog.rate(skillID: "nope", userID: "ann", stars: 3) }
            #expect(catalog.index.skill("alpha")?.ratingAverage == 4.5)
        }
    }

    @Test("a reopened catalog is built from SQLite; searches during an import never fail and end fresh")
    func reopenAndConcurrentSearches() async throws {
        let scratch = try ScratchDirectory("catalog-reopen")
        defer { scratch.remove() }
        let configuration = MarketplaceConfiguration(home: scratch.path, importChunk: 200)
        let lines = (0..<4_000).map { Fixtures.line("skill-\($0)", description: "Walrus number \($0) with parsers.", category: $0 % 2 == 0 ? "even" : "odd") }
        do {
            let catalog = try await Catalog(configuration: configuration)
            let imported = try await withThrowingTaskGroup(of: Int.self) { group in
                group.addTask {
                    let response = try await catalog.importItems(ImportSource.bundle(lines.joined(separator: "\n"), label: "big"))
                    return Int(response.added)
                }
                for reader in 0..<3 {
                    group.addTask {
                        var previous: UInt64 = 0
                        var searches = 0
                        while previous < 4_000 {
                            let response = try catalog.search(SearchRequest(query: reader == 0 ? "walrus" : "pars", category: reader == 2 ? "even" : "")).response
                            let total = reader == 2 ? response.total * 2 : response.total
                            // Totals only grow during an import of new skills.
                            #expect(total >= previous)
                            previous = total
                            searches += 1
                            await Task.yield()
                        }
                        return -searches
                    }
                }
                var added = 0
                for try await value in group where value > 0 { added = value }
                return added
            }
            #expect(imported == 4_000)
            #expect(try catalog.search(SearchRequest(query: "walrus")).response.total == 4_000)
        }
        let reopened = try await Catalog(configuration: configuration)
        #expect(reopened.index.count == 4_000)
        #expect(try reopened.search(SearchRequest(query: "walrus", category: "odd")).response.total == 2_000)
        let again = try await reopened.importItems(ImportSource.bundle(lines.joined(separator: "\n"), label: "big"))
        #expect(again.unchanged == 4_000 && again.added == 0)
    }
}

@Suite("JSON Lines bundles")
struct BundleLineEndingTests {
    @Test("CRLF line ends (a bundle written on Windows) split like LF ones, blank lines skipped")
    func crlf() {
        let text = Fixtures.line("alpha") + "\r\n\r\n" + Fixtures.line("beta") + "\r\n"
        let items = ImportSource.bundle(text, label: "b")
        #expect(items.count == 2)
        let names: [String] = items.compactMap { item in
            if case .valid(let skill) = item { return skill.record.id }
            return nil
        }
        #expect(names == ["alpha", "beta"], "\(items)")
    }
}
