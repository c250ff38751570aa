import AtomProto
import Foundation
import AtomTesting
import Testing

@testable import AtomMarketplace

/// A small catalog whose ranking can be reasoned about by hand.
enum SmallCatalog {
    static func skill(
        _ name: String, _ description: String, category: String = "text", type: String = "python", tags: [String] = [],
        author: String = "Atom Skills", downloads: UInt64 = 0, rating: Double = 0, ratings: UInt32 = 0, updated: UInt64 = 0
    ) -> CatalogSkill {
        CatalogSkill(
            id: name, name: name, description: description, category: category, type: type, author: author, version: "1.0.0",
            tags: tags, ratingAverage: rating, ratingCount: ratings, downloads: downloads, createdAtMs: updated, updatedAtMs: updated)
    }

    static let skills: [CatalogSkill] = [
        skill("csv-to-json", "Parses CSV text into JSON records.", category: "csv", tags: ["csv", "json"], downloads: 50, rating: 4.5, ratings: 2, updated: 5),
        skill("csv-stats", "Statistics for the columns of CSV data.", category: "csv", tags: ["csv", "statistics"], downloads: 10, rating: 3, ratings: 1, updated: 9),
        skill("json-query", "Extracts a value from a JSON document by a path.", category: "json", tags: ["json"], downloads: 70, rating: 5, ratings: 1, updated: 3),
        skill("text-stats", "Counts words and lines of a text; statistics.", category: "text", tags: ["text", "statistics"], downloads: 30, updated: 7),
        skill("summarize-text", "Summarizes a text by picking its central sentences.", category: "text", tags: ["text", "summary"], downloads: 20, rating: 4, ratings: 3, updated: 8),
        skill("word-count", "Counts the words of a document, with JSON output.", category: "text", type: "node", tags: ["text"], author: "Ada", downloads: 5, updated: 1),
        skill("http-fetch", "Fetches a URL over HTTP.", category: "web", tags: ["http"], author: "Ada", downloads: 90, rating: 2, ratings: 4, updated: 2),
    ]

    static func index() -> SearchIndex {
        let index = SearchIndex()
        index.load(skills)
        return index
    }
}

@Suite("Search index")
struct SearchIndexTests {
    func names(_ index: SearchIndex, _ query: SearchQuery) -> [String] {
        index.search(query).skills.map(\.name)
    }

    @Test("a name match outranks a description match; more matching words rank higher")
    func rankingOrder() {
        let index = SmallCatalog.index()
        // "json" is in json-query's name and tags and in csv-to-json's name; word-count only mentions it.
        let json = names(index, SearchQuery(text: "json"))
        #expect(json.count == 3)
        #expect(Set(json.prefix(2)) == ["json-query", "csv-to-json"])
        #expect(json.last == "word-count")
        // Both words beat one word.
        let both = names(index, SearchQuery(text: "csv statistics"))
        #expect(both.first == "csv-stats")
        #expect(Set(both) == ["csv-stats", "csv-to-json", "text-stats"])
        // Scores are in decreasing order.
        let scores = index.search(SearchQuery(text: "text statistics")).scores
        #expect(scores == scores.sorted(by: >) && !scores.isEmpty)
    }

    @Test("the last word matches as a prefix: summar finds summarize, exact words rank before expansions")
    func prefix() {
        let index = SmallCatalog.index()
        #expect(names(index, SearchQuery(text: "summar")) == ["summarize-text"])
        #expect(names(index, SearchQuery(text: "Summ")) == ["summarize-text"])
        // "stat" expands to "stats" and "statistics".
        #expect(Set(names(index, SearchQuery(text: "stat"))) == ["csv-stats", "text-stats"])
        // Only the last word is a prefix.
        #expect(names(index, SearchQuery(text: "summar xyz")).isEmpty)
    }

    @Test("every filter, alone and combined, including values nobody has")
    func filters() {
        let index = SmallCatalog.index()
        #expect(Set(names(index, SearchQuery(category: "csv"))) == ["csv-to-json", "csv-stats"])
        #expect(names(index, SearchQuery(type: "node")) == ["word-count"])
        #expect(Set(names(index, SearchQuery(tags: ["statistics"]))) == ["csv-stats", "text-stats"])
        #expect(names(index, SearchQuery(tags: ["statistics", "csv"])) == ["csv-stats"])
        #expect(Set(names(index, SearchQuery(author: "ada"))) == ["word-count", "http-fetch"])
        #expect(names(index, SearchQuery(text: "json", category: "csv")) == ["csv-to-json"])
        #expect(names(index, SearchQuery(text: "words", type: "node", author: "Ada")) == ["word-count"])
        for query in [SearchQuery(category: "nope"), SearchQuery(type: "ruby"), SearchQuery(tags: ["nope"]), SearchQuery(author: "nobody")] {
            let hits = index.search(query)
            #expect(hits.total == 0 && hits.skills.isEmpty)
        }
    }

    @Test("every sort, with and without text; ties by name")
    func sorts() {
        let index = SmallCatalog.index()
        #expect(names(index, SearchQuery(order: .downloads)) == ["http-fetch", "json-query", "csv-to-json", "text-stats", "summarize-text", "csv-stats", "word-count"])
        #expect(names(index, SearchQuery(order: .rating)).prefix(4) == ["json-query", "csv-to-json", "summarize-text", "csv-stats"])
        #expect(names(index, SearchQuery(order: .recent)) == ["csv-stats", "summarize-text", "text-stats", "csv-to-json", "json-query", "http-fetch", "word-count"])
        #expect(names(index, SearchQuery(order: .name)) == SmallCatalog.skills.map(\.name).sorted())
        // Relevance without text lists the most downloaded first.
        #expect(names(index, SearchQuery(order: .relevance)) == names(index, SearchQuery(order: .downloads)))
        #expect(names(index, SearchQuery(text: "text", order: .downloads)) == ["csv-to-json", "text-stats", "summarize-text", "word-count"])
        #expect(names(index, SearchQuery(text: "csv", category: "csv", order: .name)) == ["csv-stats", "csv-to-json"])
        // Unrated skills sort after rated ones, by name.
        #expect(names(index, SearchQuery(order: .rating)).suffix(2) == ["text-stats", "word-count"])
    }

    @Test("pages: slices of one order, the right total past the end, empty pages")
    func pagination() {
        let index = SmallCatalog.index()
        let all = names(index, SearchQuery(order: .name, limit: 100))
        var paged: [String] = []
        for page in 0..<4 { paged += names(index, SearchQuery(order: .name, offset: page * 2, limit: 2)) }
        #expect(paged == all)
        let past = index.search(SearchQuery(text: "text", offset: 1_000_000, limit: 20))
        #expect(past.total == 4 && past.skills.isEmpty)
        let relevance = names(index, SearchQuery(text: "text statistics", limit: 100))
        #expect(names(index, SearchQuery(text: "text statistics", offset: 1, limit: 2)) == Array(relevance.dropFirst().prefix(2)))
        #expect(index.search(SearchQuery(text: "text", limit: 0)).skills.isEmpty)
        #expect(index.search(SearchQuery(text: "text", offset: Int(UInt32.max) * 100, limit: 100)).total == 4)
    }

    @Test("hostile queries are text: no syntax, no error, sensible matches")
    func hostileQueries() {
        let index = SmallCatalog.index()
        let cases: [(String, Bool)] = [
            ("\"csv\"", true), ("csv*", true), ("-csv", true), ("csv NEAR json", true), ("(csv OR json)", true),
            ("'; DROP TABLE skills; --", false), ("\" unbalanced", false), ("*", false), ("-", false), ("()", false),
            ("🎉", false), ("naïve café 日本語", false), ("\u{0}\u{1}", false), ("", true), ("   ", true),
            (String(repeating: "a", count: 100_000), false), (String(repeating: "csv ", count: 10_000), true),
            ("NEAR(csv json, 2)", true), ("csv AND NOT json", true), ("^csv$", true), ("{csv}", true), ("csv:json", true),
        ]
        for (query, matches) in cases {
            let hits = index.search(SearchQuery(text: query))
            #expect((hits.total > 0) == matches, "\(query.prefix(40)): \(hits.total)")
        }
        // An emoji is a word like any other.
        index.load(SmallCatalog.skills + [SmallCatalog.skill("party", "Throws a party 🎉 for every release.")])
        #expect(names(index, SearchQuery(text: "🎉")) == ["party"])
        #expect(names(index, SearchQuery(text: "CAFÉ")).isEmpty)
    }

    @Test("updates: new text moves a skill, old words stop matching; figures change in place; rebuilds keep everything")
    func updates() {
        let index = SmallCatalog.index()
        var changed = SmallCatalog.skill("csv-stats", "Quantiles and histograms for tables.", category: "tables", tags: ["tables"])
        index.upsert(SearchIndex.prepare([changed]))
        #expect(!names(index, SearchQuery(text: "columns")).contains("csv-stats"))
        #expect(names(index, SearchQuery(text: "quantiles")) == ["csv-stats"])
        #expect(names(index, SearchQuery(category: "csv")) == ["csv-to-json"])
        #expect(index.categories().first { $0.0 == "tables" }?.1 == 1)
        #expect(index.count == SmallCatalog.skills.count)
        index.updateStats(id: "word-count", downloads: 1_000)
        #expect(names(index, SearchQuery(order: .downloads)).first == "word-count")
        // Many updates force compactions; the result is the same catalog.
        for round in 0..<600 {
            changed.description = "Round \(round) of quantiles."
            index.upsert(SearchIndex.prepare([changed]))
        }
        #expect(index.count == SmallCatalog.skills.count)
        #expect(names(index, SearchQuery(text: "round 599")) .first == "csv-stats")
        #expect(index.documentFrequency("round") == 1)
        #expect(names(index, SearchQuery(text: "json")).count == 3)
    }

    @Test("top-k with pruning returns exactly what scoring every match returns")
    func pruningIsExact() {
        // A generated catalog big enough for many blocks, with a common word in most skills.
        var skills: [CatalogSkill] = []
        var generator = SeededRandom.forTest(2)
        let words = ["data", "parser", "fast", "json", "yaml", "tool", "library", "python", "binding", "network", "http", "client"]
        for number in 0..<5_000 {
            let count = Int.random(in: 3...30, using: &generator)
            let text = (0..<count).map { _ in words.randomElement(using: &generator)! }.joined(separator: " ")
            skills.append(SmallCatalog.skill("s\(number)", text, category: number % 3 == 0 ? "a" : "b"))
        }
        let index = SearchIndex()
        index.load(skills)
        for query in ["data", "json parser", "cli", "net", "library python binding"] {
            let all = index.search(SearchQuery(text: query, limit: 5_000))
            let top = index.search(SearchQuery(text: query, limit: 20))
            #expect(top.total == all.total)
            #expect(top.skills.map(\.name) == Array(all.skills.prefix(20).map(\.name)), "\(query)")
            let filtered = index.search(SearchQuery(text: query, category: "a", limit: 10))
            let expected = all.skills.filter { $0.category == "a" }.prefix(10).map(\.name)
            #expect(filtered.skills.map(\.name) == Array(expected), "\(query) in a")
        }
    }

    @Test("MaxScore top-k equals brute-force BM25F top-k for many random multi-word queries, with filters, pages and updates")
    func maxScoreMatchesBruteForce() {
        // Words with a skewed frequency (a few in most skills, many rare), in names, tags and text,
        // so that blocks hold essential and non-essential terms and thresholds vary.
        var generator = SeededRandom.forTest(3)
        let vocabulary = (0..<300).map { "w\($0)" }
        func word() -> String {
            // Roughly Zipf: low numbers are frequent.
            let u = Double.random(in: 0..<1, using: &generator)
            return vocabulary[min(vocabulary.count - 1, Int(pow(Double(vocabulary.count), u * u)) - 1)]
        }
        func skill(_ number: Int, _ generation: Int) -> CatalogSkill {
            let name = (0..<Int.random(in: 1...3, using: &generator)).map { _ in word() }.joined(separator: "-") + "-\(number)"
            let text = (0..<Int.random(in: 2...40, using: &generator)).map { _ in word() }.joined(separator: " ")
            var record = SmallCatalog.skill(name, text, category: ["a", "b", "c"][number % 3], tags: [word(), word()])
            record.id = "s\(number)"
            record.version = "1.0.\(generation)"
            return record
        }
        let count = 6_000
        let skills = (0..<count).map { skill($0, 0) }
        let updates = (0..<count).filter { $0 % 17 == 0 }.map { skill($0, 1) }
        // The default index (few postings scored in full, the rest block-max), and each search alone.
        let indexes = [SearchIndex(), SearchIndex(scoreAllVolume: 0), SearchIndex(scoreAllVolume: .max)]
        for index in indexes {
            index.load(skills)
            // Some updates: tombstoned slots and new slots at the end.
            index.upsert(SearchIndex.prepare(updates))
        }
        var checked = 0
        for round in 0..<150 {
            let words = (0..<Int.random(in: 2...5, using: &generator)).map { _ in word() }
            let text = words.joined(separator: " ")
            let category = round % 4 == 0 ? "b" : ""
            let expected = indexes[0].exhaustiveRanking(text, category: category)
            for (offset, limit) in [(0, 10), (0, 20), (20, 20), (0, 100)] {
                for (number, index) in indexes.enumerated() {
                    let hits = index.search(SearchQuery(text: text, category: category, offset: offset, limit: limit))
                    #expect(hits.total == expected.count, "\(text) (index \(number))")
                    let want = expected.dropFirst(offset).prefix(limit)
                    #expect(hits.skills.map(\.id) == want.map(\.id), "\(text) [\(category)] offset \(offset) limit \(limit) (index \(number))")
                    #expect(hits.scores == want.map(\.score), "\(text) [\(category)] offset \(offset) limit \(limit) (index \(number))")
                }
                checked += 1
            }
        }
        #expect(checked == 600)
    }

    @Test("prefix queries: the completions are every live term that starts with the last word (by brute force), ranked as scoring every match, on every search path")
    func prefixesMatchBruteForce() {
        // Words that share prefixes of every length, some longer than the 8 bytes of a sort key
        // and sharing those 8 bytes, some not ASCII; a few dropped by updates (no longer live).
        var generator = SeededRandom.forTest(4)
        let stems = ["summar", "summariz", "summarizat", "configur", "configura", "réseau", "réseaux", "zz", "données", "a1b2c3d4e5"]
        let vocabulary = stems.flatMap { stem in (0..<6).map { stem + String("eiostx".randomElement(using: &generator)!) + "\($0)" } } + stems
        func skill(_ number: Int, _ generation: Int) -> CatalogSkill {
            let text = (0..<Int.random(in: 1...12, using: &generator)).map { _ in vocabulary.randomElement(using: &generator)! }.joined(separator: " ")
            var record = SmallCatalog.skill("s-\(number)", text, category: ["a", "b"][number % 2])
            record.version = "1.0.\(generation)"
            return record
        }
        let skills = (0..<1_500).map { skill($0, 0) }
        let updates = (0..<1_500).filter { $0 % 7 == 0 }.map { skill($0, 1) }
        let indexes = [SearchIndex(), SearchIndex(scoreAllVolume: 0), SearchIndex(scoreAllVolume: .max)]
        for index in indexes {
            index.load(skills)
            index.upsert(SearchIndex.prepare(updates))
        }
        let live = Dictionary(uniqueKeysWithValues: indexes[0].termFrequencies().filter { $0.1 > 0 })
        let tokensOf = (0..<1_500).compactMap { number -> (String, Set<String>)? in
            guard let record = indexes[0].skill("s-\(number)") else { return nil }
            return (record.id, Set(Tokenizer.tokens(record.name + " " + record.description + " " + record.category)))
        }
        var checked = 0
        let prefixes = Set(stems.flatMap { stem in (2...stem.count).map { String(stem.prefix($0)) } })
        for prefix in prefixes.sorted() {
            do {
                guard live[prefix] == nil else { continue }  // a word of the catalog is not expanded
                let completions = live.keys.filter { $0.utf8.starts(with: prefix.utf8) }
                guard !completions.isEmpty, completions.count <= SearchIndex.maxPrefixExpansions else { continue }
                // Every skill holding a completion, by brute force over the live skills' tokens.
                let expected = tokensOf.filter { _, tokens in completions.contains(where: tokens.contains) }.count
                let ranking = indexes[0].exhaustiveRanking("x " + prefix)
                for (number, index) in indexes.enumerated() {
                    let all = index.search(SearchQuery(text: prefix, limit: 100))
                    #expect(all.total == expected, "\(prefix) (index \(number))")
                    let page = index.search(SearchQuery(text: "x " + prefix, offset: 5, limit: 20))
                    #expect(page.skills.map(\.id) == ranking.dropFirst(5).prefix(20).map(\.id), "x \(prefix) (index \(number))")
                    #expect(page.scores == ranking.dropFirst(5).prefix(20).map(\.score), "x \(prefix) (index \(number))")
                }
                checked += 1
            }
        }
        #expect(checked >= 15)
    }

    @Test("sort keys order terms as their UTF-8 bytes do, and find the first term not below a token")
    func sortKeys() {
        var generator = SeededRandom.forTest(5)
        let alphabet = Array("abyz019éé日🎉")
        let words = (0..<2_000).map { _ in String((0..<Int.random(in: 1...14, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! }) }
        var state = IndexState()
        for word in words { _ = state.termID(word) }
        state.mergeNewTerms()
        let sorted = Set(words).sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        #expect(state.sortedTerms.map { state.termText[Int($0)] } == sorted)
        #expect(state.sortedKeys == sorted.map(IndexState.sortKey))
        for _ in 0..<500 {
            let token = String((0..<Int.random(in: 1...12, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! })
            let expected = sorted.firstIndex { !$0.utf8.lexicographicallyPrecedes(token.utf8) } ?? sorted.count
            #expect(state.lowerBound(token) == expected, "\(token)")
        }
    }

    @Test("an index grown chunk by chunk (impacts refreshed in place) ranks exactly as one loaded at once")
    func growthRefreshMatchesLoad() {
        let words = ["data", "parser", "fast", "json", "yaml", "tool", "library", "python", "binding", "network"]
        var generator = SeededRandom.forTest(6)
        let skills = (0..<2_048).map { number in
            SmallCatalog.skill(
                "\(words.randomElement(using: &generator)!)-s\(number)",
                (0..<Int.random(in: 1...25, using: &generator)).map { _ in words.randomElement(using: &generator)! }.joined(separator: " "),
                tags: [words.randomElement(using: &generator)!])
        }
        let grown = SearchIndex()
        // 256, 512, 1,024 and 2,048 skills each double the count: the averages are refreshed then.
        for start in stride(from: 0, to: skills.count, by: 256) {
            grown.upsert(SearchIndex.prepare(Array(skills[start..<start + 256])))
        }
        let loaded = SearchIndex()
        loaded.load(skills)
        for query in ["data", "json parser", "python library binding", "fast tool network yaml", "pars"] {
            let a = grown.search(SearchQuery(text: query, limit: 50)), b = loaded.search(SearchQuery(text: query, limit: 50))
            #expect(a.total == b.total, "\(query)")
            #expect(a.skills.map(\.id) == b.skills.map(\.id), "\(query)")
            #expect(a.scores == b.scores, "\(query)")
            #expect(!a.scores.isEmpty)
        }
    }

    @Test("the tokenizer lowercases, splits on punctuation and keeps Unicode letters and emoji")
    func tokenizer() {
        #expect(Tokenizer.tokens("Hello, World! csv-to-json x_y") == ["hello", "world", "csv", "to", "json", "x", "y"])
        #expect(Tokenizer.tokens("Ünïcode ÉTÉ 日本 🎉!") == ["ünïcode", "été", "日本", "🎉"])
        #expect(Tokenizer.tokens("\"*-()") == [])
        #expect(Tokenizer.tokens(String(repeating: "x", count: 500)).first?.utf8.count == Tokenizer.maxTokenBytes)
    }
}
