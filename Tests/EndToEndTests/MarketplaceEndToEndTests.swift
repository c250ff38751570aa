import AtomAPI
import AtomCLI
import AtomProto
import AtomRPC
import AtomTesting
import Foundation
import GRDB
import Testing

/// The real gateway, `atom-marketplace` and `atom-installer` processes, the `atom` CLI, real
/// SQLite files, an offline wheelhouse.
@Suite("Marketplace end to end", .serialized, .timeLimit(.minutes(5)))
struct MarketplaceEndToEndTests {
    static let skills = DeploymentTests.root + "/skills"

    static func line(_ name: String, description: String, packages: [String] = [], category: String = "testing") -> String {
        let list = packages.map { "\"\($0)\"" }.joined(separator: ",")
        return #"{"name":"\#(name)","version":"1.0.0","description":"\#(description)","category":"\#(category)","runtime":"python","packages":[\#(list)]}"#
    }

    func withMarketplace<T>(
        installer: Bool = false, environment: [String: String] = [:], _ body: (LocalStack, MarketplaceClient, ScratchDirectory) async throws -> T
    ) async throws -> T {
        let scratch = try ScratchDirectory("marketplace-e2e")
        defer { scratch.remove() }
        return try await withProcessStack(echoInstances: 0) { stack in
            var variables = environment
            variables["ATOM_INSTANCE_ID"] = "marketplace-1"
            variables["MARKETPLACE_SEED_PATH"] = variables["MARKETPLACE_SEED_PATH"] ?? Self.skills
            try stack.start("atom-marketplace", name: "marketplace-1", environment: variables)
            if installer { try stack.startInstaller() }
            do {
                try await stack.waitForService(MarketplaceClient.serviceName)
                if installer { try await stack.waitForService(InstallerClient.serviceName) }
            } catch {
                print("--- marketplace log ---\n\(stack.log(of: "marketplace-1").suffix(3000))")
                throw error
            }
            let client = try RPCClient(endpoint: stack.endpoint)
            defer { client.close() }
            return try await body(stack, MarketplaceClient(client), scratch)
        }
    }

    @Test("search through the gateway: seeded catalog, filters, pagination edges, errors; metrics under their stable names")
    func searchThroughGateway() async throws {
        try await withMarketplace { stack, marketplace, _ in
            let first = try await marketplace.search(SearchRequest(query: "summar"))
            #expect(first.items.first?.id == "summarize-text" && !first.cached && first.serviceNs > 0)
            let repeated = try await marketplace.search(SearchRequest(query: "summar"))
            #expect(repeated.cached && repeated.items.map(\.id) == first.items.map(\.id))
            let csv = try await marketplace.search(SearchRequest(category: "csv", sort: .name))
            #expect(csv.items.map(\.id) == ["csv-stats", "csv-to-json"])
            let node = try await marketplace.search(SearchRequest(type: "node", sort: .name))
            #expect(!node.items.isEmpty && node.items.allSatisfy { $0.type == "node" })
            let tagged = try await marketplace.search(SearchRequest(tags: ["json"], author: "atom skills"))
            #expect(!tagged.items.isEmpty && tagged.items.allSatisfy { $0.tags.contains("json") })

            let all = try await marketplace.search(SearchRequest(sort: .name, pageSize: 100))
            #expect(all.items.count == Int(all.total) && all.total >= 20)
            let zero = try await marketplace.search(SearchRequest(sort: .name, pageSize: 0))
            #expect(zero.pageSize == 20 && zero.items.count == 20)
            let past = try await marketplace.search(SearchRequest(sort: .name, page: 1_000_000, pageSize: 100))
            #expect(past.items.isEmpty && past.total == all.total && past.totalPages == 1)
            let huge = try await marketplace.search(SearchRequest(query: "json", page: UInt32.max, pageSize: 100))
            #expect(huge.items.isEmpty && huge.total > 0)
            do {
                _ = try await marketplace.search(SearchRequest(pageSize: 101))
                Issue.record("page size 101 was accepted")
            } catch let error as RPCError {
                #expect(error.code == .invalidArgument && error.message.contains("100"))
            }
            do {
                _ = try await marketplace.search(SearchRequest(sort: .unrecognized(42)))
                Issue.record("an unknown sort was accepted")
            } catch let error as RPCError {
                #expect(error.code == .invalidArgument && error.message.contains("sort"))
            }
            for hostile in ["\"", "*", "-json", "NEAR(a b)", "((", "' OR 1=1; DROP TABLE skills; --", "🎉🎉", String(repeating: "x ", count: 50_000)] {
                let response = try await marketplace.search(SearchRequest(query: hostile))
                #expect(response.total < all.total || hostile == "-json", "\(hostile.prefix(20))")
            }
            let categories = try await marketplace.categories(CategoriesRequest())
            #expect(categories.categories.reduce(0) { $0 + $1.count } == all.total)
            let skill = try await marketplace.getSkill(GetCatalogSkillRequest(id: "http-fetch"))
            #expect(skill.network && skill.source.hasSuffix("skills/http-fetch") && skill.contentHash.count == 64)
            do {
                _ = try await marketplace.getSkill(GetCatalogSkillRequest(id: "no-such-skill"))
                Issue.record("an unknown skill was found")
            } catch let error as RPCError {
                #expect(error.code == .notFound)
            }
            let metrics = try await GatewayClient(marketplace.rpc).metrics(GatewayMetricsRequest())
            let operations = Dictionary(uniqueKeysWithValues: metrics.operations.map { ($0.operation, $0.count) })
            #expect((operations["marketplace_search"] ?? 0) >= 10)
            #expect(operations["marketplace_search_cached"] == 1)
            _ = stack
        }
    }

    @Test("InstallSkill calls the installer through the gateway, counts the download, and reports installer failures")
    func installThroughInstaller() async throws {
        try await withMarketplace(installer: true) { stack, marketplace, scratch in
            let wheelhouse = scratch.path + "/wheels"
            try InstallerFixtures.makeWheelhouse(at: wheelhouse)
            let imported = try await marketplace.import(ImportRequest(jsonlLines: [
                Self.line("weather", description: "Weather with beta.", packages: ["beta==1.0"]),
                Self.line("broken-deps", description: "Needs a package nobody has.", packages: ["nonexistent-package==9.9"]),
            ], label: "inline"))
            #expect(imported.added == 2)
            let offline = InstallOptions(findLinks: [wheelhouse], offline: true)
            let long = CallOptions(timeout: .seconds(120))
            let installed = try await marketplace.installSkill(InstallSkillRequest(skillId: "weather", agentId: "agent-7", options: offline), options: long)
            let result = try #require(installed.install)
            #expect(result.success, "\(result.error)")
            #expect(result.locked.map(\.name).sorted() == ["alpha", "beta"])
            #expect(installed.downloads == 1)
            #expect(FileManager.default.fileExists(atPath: "\(stack.home)/envs/\(result.environmentId)/.atom-ready"))
            #expect(try await marketplace.getSkill(GetCatalogSkillRequest(id: "weather")).downloads == 1)
            // The downloads order sees it at once (the cache was invalidated).
            let top = try await marketplace.search(SearchRequest(sort: .downloads, pageSize: 1))
            #expect(top.items.first?.id == "weather")

            let failed = try await marketplace.installSkill(InstallSkillRequest(skillId: "broken-deps", agentId: "agent-7", options: offline), options: long)
            #expect(failed.install?.success == false && failed.downloads == 0)
            let stdlib = try await marketplace.installSkill(InstallSkillRequest(skillId: "text-stats", agentId: "agent-7"))
            #expect(stdlib.install?.success == true && stdlib.downloads == 1)
            do {
                _ = try await marketplace.installSkill(InstallSkillRequest(skillId: "nope"))
                Issue.record("an unknown skill was installed")
            } catch let error as RPCError {
                #expect(error.code == .notFound)
            }
            // The installer saw the marketplace's call.
            // (Gathered by a fan-out: on a loaded machine an instance may answer after its deadline.)
            let recorded = try await eventually {
                let metrics = try await GatewayClient(marketplace.rpc).metrics(GatewayMetricsRequest())
                return metrics.operations.contains { $0.operation == "package_install" && $0.count >= 1 }
            }
            #expect(recorded)
        }
    }

    @Test("ratings and imports through the gateway; a read after each write is never stale")
    func writesThenReads() async throws {
        try await withMarketplace { _, marketplace, scratch in
            _ = try await marketplace.search(SearchRequest(query: "walrus"))
            let bundle = scratch.path + "/walrus.jsonl"
            try [Self.line("walrus-a", description: "Walrus one."), Self.line("walrus-b", description: "Walrus two.")].joined(separator: "\n")
                .write(toFile: bundle, atomically: true, encoding: .utf8)
            let imported = try await marketplace.import(ImportRequest(path: bundle))
            #expect(imported.added == 2)
            #expect(try await marketplace.search(SearchRequest(query: "walrus")).total == 2)
            _ = try await marketplace.search(SearchRequest(query: "walrus", sort: .rating))
            let rated = try await marketplace.rateSkill(RateSkillRequest(skillId: "walrus-b", userId: "ann", rating: 5))
            #expect(rated.ratingCount == 1 && rated.ratingAverage == 5)
            #expect(try await marketplace.search(SearchRequest(query: "walrus", sort: .rating)).items.first?.id == "walrus-b")
            for bad in [RateSkillRequest(skillId: "walrus-b", userId: "ann", rating: 0), RateSkillRequest(skillId: "walrus-b", userId: "ann", rating: 6),
                        RateSkillRequest(skillId: "walrus-b", userId: "", rating: 3)] {
                do {
                    _ = try await marketplace.rateSkill(bad)
                    Issue.record("accepted \(bad)")
                } catch let error as RPCError {
                    #expect(error.code == .invalidArgument)
                }
            }
            for bad in [ImportRequest(), ImportRequest(path: "relative/path"), ImportRequest(path: "/no/such/file.jsonl"), ImportRequest(path: bundle, jsonlLines: ["{}"])] {
                do {
                    _ = try await marketplace.import(bad)
                    Issue.record("accepted \(bad)")
                } catch let error as RPCError {
                    #expect(error.code == .invalidArgument || error.code == .notFound, "\(error)")
                }
            }
        }
    }

    @Test("a marketplace SIGKILLed in the middle of an import keeps whole chunks only; the next start and import finish the job")
    func killedImport() async throws {
        let count = 30_000
        try await withMarketplace(environment: ["MARKETPLACE_IMPORT_CHUNK": "500"]) { stack, marketplace, scratch in
            let bundle = scratch.path + "/big.jsonl"
            try (0..<count).map { Self.line("bulk-\($0)", description: "Bulk skill \($0) for walruses.", category: "bulk") }
                .joined(separator: "\n").write(toFile: bundle, atomically: true, encoding: .utf8)
            let database = "\(stack.home)/marketplace/catalog.sqlite"
            let reader = try DatabaseQueue(path: database, configuration: { var c = Configuration(); c.readonly = true; return c }())
            func bulkRows() throws -> Int {
                try reader.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM skills WHERE category = 'bulk'") ?? 0 }
            }
            let importing = Task { try await marketplace.import(ImportRequest(path: bundle), options: CallOptions(timeout: .seconds(120))) }
            let process = try #require(try stack.processes(named: "marketplace-1").first)
            var seen = 0
            let deadline = ContinuousClock.now + .seconds(60)
            while seen == 0 && ContinuousClock.now < deadline {
                seen = (try? bulkRows()) ?? 0
                if seen == 0 { try await Task.sleep(for: .milliseconds(5)) }
            }
            process.kill()
            #expect(await process.waitForExit(timeout: .seconds(5)))
            _ = try? await importing.value
            let committed = try bulkRows()
            try #require(committed > 0 && committed < count, "the import was not caught in the middle (\(committed) rows)")
            #expect(committed % 500 == 0, "\(committed) rows: a chunk was half written")
            let problems = try await reader.read { db in
                try Int.fetchOne(db, sql: """
                    SELECT COUNT(*) FROM skills WHERE category = 'bulk' AND (description = '' OR version <> '1.0.0'
                      OR json_valid(tags) = 0 OR json_valid(packages) = 0 OR content_hash = '' OR source = '')
                    """) ?? -1
            }
            #expect(problems == 0)
            let integrity = try await reader.read { db in try String.fetchOne(db, sql: "PRAGMA integrity_check") }
            #expect(integrity == "ok")

            // A new instance builds its index from SQLite and serves what was committed.
            try stack.start("atom-marketplace", name: "marketplace-2", environment: ["ATOM_INSTANCE_ID": "marketplace-2", "MARKETPLACE_IMPORT_CHUNK": "500"])
            try await stack.waitForService(MarketplaceClient.serviceName)
            #expect(try await marketplace.search(SearchRequest(query: "walruses", bypassCache: true)).total == UInt64(committed))
            let resumed = try await marketplace.import(ImportRequest(path: bundle), options: CallOptions(timeout: .seconds(120)))
            #expect(resumed.unchanged == UInt32(committed) && resumed.added == UInt32(count - committed) && resumed.failed == 0)
            #expect(try await marketplace.search(SearchRequest(query: "walruses")).total == UInt64(count))
        }
    }

    @Test("the atom CLI: search as a table and JSON, marketplace import, get, rate, categories; bad options exit with usage errors")
    func cli() async throws {
        try await withMarketplace { stack, _, scratch in
            let environment = ["ATOM_GATEWAY": stack.endpoint, "ATOM_HOME": stack.home]
            let table = try CLI.run(["search", "csv"], environment: environment)
            #expect(table.status == 0, "\(table.output)")
            #expect(table.output.contains("NAME") && table.output.contains("csv-to-json") && table.output.contains("result(s)"))
            let json = try CLI.run(["search", "csv", "--json", "--sort", "name", "--page-size", "1", "--page", "2"], environment: environment)
            #expect(json.status == 0 && json.output.contains("\"page\" : 2") && json.output.contains("\"csv-to-json\""), "\(json.output)")
            let empty = try CLI.run(["search", "zzzyyyxxx"], environment: environment)
            #expect(empty.status == 0 && empty.output.contains("no skills found"))

            let negative = try CLI.run(["search", "csv", "--page=-1"], environment: environment)
            #expect(negative.status == 2 && negative.output.contains("--page"), "\(negative.output)")
            let pageZero = try CLI.run(["search", "csv", "--page", "0"], environment: environment)
            #expect(pageZero.status == 2, "\(pageZero.output)")
            let zeroSize = try CLI.run(["search", "csv", "--page-size", "0"], environment: environment)
            #expect(zeroSize.status == 2)
            let tooBig = try CLI.run(["search", "csv", "--page-size", "101"], environment: environment)
            #expect(tooBig.status == 4 && tooBig.output.contains("INVALID_ARGUMENT"), "\(tooBig.output)")
            let sort = try CLI.run(["search", "csv", "--sort", "bogus"], environment: environment)
            #expect(sort.status == 2 && sort.output.contains("--sort"))

            let bundle = scratch.path + "/cli.jsonl"
            try [Self.line("cli-one", description: "Narwhal tools."), "{broken"].joined(separator: "\n").write(toFile: bundle, atomically: true, encoding: .utf8)
            let imported = try CLI.run(["marketplace", "import", bundle], environment: environment)
            #expect(imported.status == 1 && imported.output.contains("1 added") && imported.output.contains(":2"), "\(imported.output)")
            let uploaded = try CLI.run(["marketplace", "import", bundle, "--upload", "--json"], environment: environment)
            #expect(uploaded.output.contains("\"unchanged\" : 1") && uploaded.output.contains("cli.jsonl:2"), "\(uploaded.output)")
            // Lines no text message can carry (a NUL byte, invalid UTF-8) fail one by one, by path
            // and by upload alike; the other lines are imported.
            let mixed = scratch.path + "/mixed.jsonl"
            var bytes = Data((Self.line("cli-two", description: "Walrus tools.") + "\n").utf8)
            bytes.append(Data(#"{"name": "nul\#u{0}"}"#.utf8 + [UInt8(ascii: "\n")]))
            bytes.append(Data([0xFF, 0xFE, UInt8(ascii: "{"), UInt8(ascii: "\n")]))
            bytes.append(Data(Self.line("cli-three", description: "Dugong tools.").utf8))
            try bytes.write(to: URL(fileURLWithPath: mixed))
            for arguments in [["marketplace", "import", mixed, "--upload"], ["marketplace", "import", mixed]] {
                let run = try CLI.run(arguments, environment: environment)
                #expect(run.status == 1, "\(arguments): \(run.output)")
                #expect(run.output.contains("mixed.jsonl:2: invalid JSON: a NUL byte at byte 14"), "\(run.output)")
                #expect(run.output.contains("mixed.jsonl:3: the line is not UTF-8 text"), "\(run.output)")
                #expect(run.output.contains("4 item(s)") && run.output.contains("2 failed"), "\(run.output)")
            }
            #expect(try CLI.run(["marketplace", "get", "cli-three"], environment: environment).status == 0)
            let folderUpload = try CLI.run(["marketplace", "import", scratch.path, "--upload"], environment: environment)
            #expect(folderUpload.status == 2 && folderUpload.output.contains("is a folder: import it without --upload"), "\(folderUpload.output)")
            let get = try CLI.run(["marketplace", "get", "cli-one"], environment: environment)
            #expect(get.status == 0 && get.output.contains("Narwhal tools."))
            let missing = try CLI.run(["marketplace", "get", "nope"], environment: environment)
            #expect(missing.status == 4 && missing.output.contains("NOT_FOUND"))
            let rate = try CLI.run(["marketplace", "rate", "cli-one", "4", "--user", "ann"], environment: environment)
            #expect(rate.status == 0 && rate.output.contains("4.00 from 1"), "\(rate.output)")
            let badRate = try CLI.run(["marketplace", "rate", "cli-one", "6"], environment: environment)
            #expect(badRate.status == 2)
            let categories = try CLI.run(["marketplace", "categories", "--json"], environment: environment)
            #expect(categories.status == 0 && categories.output.contains("\"category\" : \"testing\""), "\(categories.output)")
        }
    }
}
