internal import ArgumentParser
internal import AtomAPI
internal import AtomProto
internal import AtomRPC
internal import AtomSkillFormat
internal import Foundation

/// `atom search`: ranked search of the marketplace as a table.
struct SearchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "search",
        abstract: "Search the skill marketplace.",
        discussion: """
            Any text is searched as words (quotes, *, -, NEAR and the like have no special meaning); the last word \
            also matches as a prefix, so `summar` finds summarize. Without a query, lists skills (most downloaded \
            first unless --sort says otherwise). Examples: atom search csv; atom search --category text --sort rating.
            """)

    @OptionGroup var options: GatewayOptions

    @Argument(help: "Words to search for (empty: every skill).")
    var query: [String] = []

    @Option(name: .long, help: "Only this category.")
    var category: String = ""

    @Option(name: .long, help: "Only this type: python or node.")
    var type: String = ""

    @Option(name: .long, help: "Only skills with this tag; repeatable (all must match).")
    var tag: [String] = []

    @Option(name: .long, help: "Only this author.")
    var author: String = ""

    @Option(name: .long, help: "relevance, downloads, rating, recent or name.")
    var sort: String = "relevance"

    @Option(name: .long, help: "Page number, from 1.")
    var page: Int = 1

    @Option(name: .long, help: "Results a page, 1 to 100.")
    var pageSize: Int = 20

    @Flag(name: .long, help: "Skip the result cache.")
    var noCache = false

    static func sortValue(_ text: String) throws -> SearchSort {
        switch text.lowercased() {
        case "relevance": .relevance
        case "downloads": .downloads
        case "rating": .rating
        case "recent": .recent
        case "name": .name
        default: throw CLIFailure(.usage, "--sort \(text) is unknown; use relevance, downloads, rating, recent or name")
        }
    }

    func request() throws -> SearchRequest {
        guard page >= 1, page <= Int(UInt32.max) else { throw CLIFailure(.usage, "--page \(page) is invalid; give 1 to \(UInt32.max)") }
        // The service checks the upper bound (over 100 is INVALID_ARGUMENT); below 1 cannot be sent.
        guard pageSize >= 1, pageSize <= Int(UInt32.max) else {
            throw CLIFailure(.usage, "--page-size \(pageSize) is invalid; give 1 to 100")
        }
        return SearchRequest(
            query: query.joined(separator: " "), category: category, type: type, tags: tag, author: author,
            sort: try Self.sortValue(sort), page: UInt32(page), pageSize: UInt32(pageSize), bypassCache: noCache)
    }

    func run() async throws {
        try await reportingFailures(json: options.json) {
            let request = try request()
            let client = try options.client()
            defer { client.close() }
            let response = try await MarketplaceClient(client).search(request, options: options.callOptions)
            if options.json {
                try printJSON(SearchView(response))
                return
            }
            if response.items.isEmpty {
                print(response.total == 0 ? "no skills found" : "page \(response.page) is past the end (\(response.total) results, \(response.totalPages) page(s))")
                return
            }
            print(CatalogSkillView.table(response.items))
            print("page \(response.page) of \(response.totalPages), \(response.total) result(s)\(response.cached ? " (cached)" : "")")
        }
    }
}

/// `atom marketplace`: import, get, rate, categories, install.
struct MarketplaceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "marketplace", abstract: "Manage the skill catalog.",
        subcommands: [
            MarketplaceImportCommand.self, MarketplaceGetCommand.self, MarketplaceRateCommand.self,
            MarketplaceCategoriesCommand.self, MarketplaceInstallCommand.self,
        ])
}

struct MarketplaceImportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import", abstract: "Import skills: a folder of skill folders, one skill folder, or a JSON Lines bundle.",
        discussion: """
            The path is read by the marketplace service, so it must exist on the service's host (it does with `atom up`). \
            With --upload, a .jsonl bundle is read here and sent in chunks instead. Bad items are listed and never stop the rest; \
            the same version again changes nothing, a newer version updates the entry.
            """)

    @OptionGroup var options: GatewayOptions

    @Argument(help: "The folder or .jsonl file.")
    var path: String

    @Flag(name: .long, help: "Read a .jsonl bundle here and send its lines (for a service on another host).")
    var upload = false

    @Option(name: .long, help: "Seconds to wait for the import (default 600).", transform: SecondsArgument.parse)
    var deadline: Double = 600

    func run() async throws {
        try await reportingFailures(json: options.json) {
            guard !path.isEmpty else { throw CLIFailure(.usage, "the path is empty: give a skill folder, a folder of them, or a .jsonl bundle") }
            let absolute = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
            let client = try options.client()
            defer { client.close() }
            let marketplace = MarketplaceClient(client)
            let callOptions = SecondsArgument.callOptions(deadline)
            var total = ImportResponse()
            if upload {
                var isDirectory: ObjCBool = false
                if FileManager.default.fileExists(atPath: absolute, isDirectory: &isDirectory), isDirectory.boolValue {
                    throw CLIFailure(.usage, "--upload sends a .jsonl bundle, and \(absolute) is a folder: import it without --upload (the marketplace service reads it on its host)")
                }
                guard let data = FileManager.default.contents(atPath: absolute) else { throw CLIFailure(.usage, "cannot read \(absolute)") }
                // Lines that cannot be sent as text (a NUL byte, invalid UTF-8) fail here, one by
                // one as the service's checks do; they go as blank lines, which keeps the numbers.
                let parsed = JSONLines.lines(of: data)
                var lines = [String](repeating: "", count: parsed.last?.number ?? 0)
                for line in parsed {
                    switch line.text {
                    case .success(let text): lines[line.number - 1] = text
                    case .failure(let problem):
                        total.total += 1
                        total.failed += 1
                        // Capped as the service caps its own (merge keeps at most 1,000 in all).
                        if total.errors.count < 1_000 {
                            total.errors.append(ImportItemError(item: "\(absolute):\(line.number)", message: problem.description))
                        } else {
                            total.errorsTruncated = true
                        }
                    }
                }
                // Chunks well under the 4 MiB message limit.
                var start = 0
                while start < lines.count {
                    var end = start, bytes = 0
                    while end < lines.count && (end == start || bytes + lines[end].utf8.count < 3_000_000) {
                        bytes += lines[end].utf8.count + 8
                        end += 1
                    }
                    let request = ImportRequest(jsonlLines: Array(lines[start..<end]), label: absolute, firstLine: UInt32(start + 1))
                    total.merge(try await marketplace.import(request, options: callOptions))
                    start = end
                }
            } else {
                total = try await marketplace.import(ImportRequest(path: absolute), options: callOptions)
            }
            if options.json {
                try printJSON(ImportView(total))
            } else {
                for error in total.errors {
                    print("error  \(error.item)\(error.skillId.isEmpty ? "" : " (\(error.skillId))"): \(error.field.isEmpty ? "" : error.field + ": ")\(error.message)")
                }
                if total.errorsTruncated { print("... more errors not shown") }
                for warning in total.warnings { print("note   \(warning)") }
                print("\(total.total) item(s): \(total.added) added, \(total.updated) updated, \(total.unchanged) unchanged, \(total.failed) failed in \(total.durationMs) ms")
            }
            if total.failed > 0 { throw ExitCode(ExitStatus.failure.rawValue) }
        }
    }
}

extension ImportResponse {
    mutating func merge(_ other: ImportResponse) {
        total += other.total
        added += other.added
        updated += other.updated
        unchanged += other.unchanged
        failed += other.failed
        errors += other.errors.prefix(max(0, 1_000 - errors.count))
        errorsTruncated = errorsTruncated || other.errorsTruncated || errors.count + other.errors.count > 1_000
        durationMs += other.durationMs
        changed += other.changed.prefix(max(0, 1_000 - changed.count))
        warnings += other.warnings.prefix(max(0, 1_000 - warnings.count))
    }
}

struct MarketplaceGetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "get", abstract: "Show one skill of the catalog.")

    @OptionGroup var options: GatewayOptions

    @Argument(help: "The skill's id (its name).")
    var id: String

    func run() async throws {
        try await reportingFailures(json: options.json) {
            let client = try options.client()
            defer { client.close() }
            let skill = try await MarketplaceClient(client).getSkill(GetCatalogSkillRequest(id: id), options: options.callOptions)
            let view = CatalogSkillView(skill)
            if options.json {
                try printJSON(view)
                return
            }
            print("""
                \(view.name) \(view.version)  (\(view.type), \(view.category))
                \(view.description)
                author     \(view.author.isEmpty ? "-" : view.author)
                tags       \(view.tags.joined(separator: ", "))
                packages   \(view.packages.isEmpty ? "none" : view.packages.joined(separator: " "))
                rating     \(String(format: "%.2f", view.rating_average)) from \(view.rating_count) rating(s)
                downloads  \(view.downloads)
                network    \(view.network ? "yes" : "no")
                source     \(view.source)
                """)
        }
    }
}

struct MarketplaceRateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rate", abstract: "Rate a skill from 1 to 5 stars (one rating per user; rating again changes it).")

    @OptionGroup var options: GatewayOptions

    @Argument(help: "The skill's id.")
    var id: String

    @Argument(help: "1 to 5.")
    var stars: Int

    @Option(name: .long, help: "Who rates (default: $USER, else atom-cli).")
    var user: String?

    func run() async throws {
        try await reportingFailures(json: options.json) {
            guard (1...5).contains(stars) else { throw CLIFailure(.usage, "stars \(stars) is out of range; give 1 to 5") }
            let environmentUser = ProcessInfo.processInfo.environment["USER"].flatMap { $0.isEmpty ? nil : $0 }
            let user = user ?? environmentUser ?? "atom-cli"
            guard !user.isEmpty else { throw CLIFailure(.usage, "--user is empty; name who rates") }
            let client = try options.client()
            defer { client.close() }
            let response = try await MarketplaceClient(client).rateSkill(
                RateSkillRequest(skillId: id, userId: user, rating: UInt32(stars)), options: options.callOptions)
            if options.json {
                try printJSON(RatingView(skill_id: id, rating_average: response.ratingAverage, rating_count: response.ratingCount))
            } else {
                print("\(id): \(String(format: "%.2f", response.ratingAverage)) from \(response.ratingCount) rating(s)")
            }
        }
    }

    struct RatingView: Encodable {
        let skill_id: String, rating_average: Double, rating_count: UInt32
    }
}

struct MarketplaceCategoriesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "categories", abstract: "Categories and how many skills each holds.")

    @OptionGroup var options: GatewayOptions

    func run() async throws {
        try await reportingFailures(json: options.json) {
            let client = try options.client()
            defer { client.close() }
            let response = try await MarketplaceClient(client).categories(CategoriesRequest(), options: options.callOptions)
            if options.json {
                try printJSON(response.categories.map { CategoryView(category: $0.category, count: $0.count) })
                return
            }
            if response.categories.isEmpty { print("the catalog is empty") }
            let width = response.categories.map(\.category.count).max() ?? 0
            for category in response.categories {
                print("\(category.category.padding(toLength: width, withPad: " ", startingAt: 0))  \(category.count)")
            }
        }
    }

    struct CategoryView: Encodable {
        let category: String, count: UInt64
    }
}

struct MarketplaceInstallCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "install", abstract: "Install a catalog skill's packages through the installer and count the download.")

    @OptionGroup var options: GatewayOptions
    @OptionGroup var sources: PackageSourceOptions

    @Argument(help: "The skill's id.")
    var id: String

    @Option(name: .long, help: "The agent asking.")
    var agent: String = "atom-cli"

    @Option(name: .long, help: "Seconds to wait (default 900).", transform: SecondsArgument.parse)
    var deadline: Double = 900

    func run() async throws {
        try await reportingFailures(json: options.json) {
            let client = try options.client()
            defer { client.close() }
            let response = try await MarketplaceClient(client).installSkill(
                InstallSkillRequest(skillId: id, agentId: agent, options: sources.installOptions()),
                options: SecondsArgument.callOptions(deadline))
            let result = response.install ?? InstallResult()
            if options.json {
                try printJSON(InstallView(install: InstallCommand.ResultView(result), downloads: response.downloads))
            } else {
                print(InstallCommand.ResultView(result).line)
                for warning in result.warnings { print("  note: \(warning)") }
                print("  downloads: \(response.downloads)")
            }
            if !result.success { throw ExitCode(ExitStatus.failure.rawValue) }
        }
    }

    struct InstallView: Encodable {
        let install: InstallCommand.ResultView
        let downloads: UInt64
    }
}

/// The JSON and table shapes of catalog skills.
struct CatalogSkillView: Encodable {
    let id: String, name: String, version: String, description: String, category: String, type: String, author: String
    let tags: [String], packages: [String], rating_average: Double, rating_count: UInt32, downloads: UInt64
    let created_at_ms: UInt64, updated_at_ms: UInt64, source: String, network: Bool

    init(_ skill: CatalogSkill) {
        id = skill.id
        name = skill.name
        version = skill.version
        description = skill.description
        category = skill.category
        type = skill.type
        author = skill.author
        tags = skill.tags
        packages = skill.packages
        rating_average = skill.ratingAverage
        rating_count = skill.ratingCount
        downloads = skill.downloads
        created_at_ms = skill.createdAtMs
        updated_at_ms = skill.updatedAtMs
        source = skill.source
        network = skill.network
    }

    /// NAME, VERSION, CATEGORY, TYPE, RATING, DOWNLOADS, DESCRIPTION (cut to fit).
    static func table(_ skills: [CatalogSkill]) -> String {
        let headers = ["NAME", "VERSION", "CATEGORY", "TYPE", "RATING", "DOWNLOADS", "DESCRIPTION"]
        let rows = skills.map { skill -> [String] in
            let rating = skill.ratingCount == 0 ? "-" : String(format: "%.1f (%d)", skill.ratingAverage, skill.ratingCount)
            let description = skill.description.split(whereSeparator: \.isNewline).first.map(String.init) ?? ""
            return [skill.name, skill.version, skill.category, skill.type, rating, String(skill.downloads),
                    description.count > 60 ? String(description.prefix(59)) + "…" : description]
        }
        let widths = headers.indices.map { column in ([headers[column]] + rows.map { $0[column] }).map(\.count).max() ?? 0 }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { index, cell in
                index == cells.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }
        return ([line(headers)] + rows.map(line)).joined(separator: "\n")
    }
}

struct SearchView: Encodable {
    let items: [CatalogSkillView], total: UInt64, page: UInt32, page_size: UInt32, total_pages: UInt32, cached: Bool, service_ns: UInt64

    init(_ response: SearchResponse) {
        items = response.items.map(CatalogSkillView.init)
        total = response.total
        page = response.page
        page_size = response.pageSize
        total_pages = response.totalPages
        cached = response.cached
        service_ns = response.serviceNs
    }
}

struct ImportView: Encodable {
    struct Failure: Encodable {
        let item: String, skill_id: String, field: String, message: String
    }

    let total: UInt32, added: UInt32, updated: UInt32, unchanged: UInt32, failed: UInt32, duration_ms: UInt64
    let errors: [Failure], errors_truncated: Bool, changed: [String], warnings: [String]

    init(_ response: ImportResponse) {
        total = response.total
        added = response.added
        updated = response.updated
        unchanged = response.unchanged
        failed = response.failed
        duration_ms = response.durationMs
        errors = response.errors.map { Failure(item: $0.item, skill_id: $0.skillId, field: $0.field, message: $0.message) }
        errors_truncated = response.errorsTruncated
        changed = response.changed
        warnings = response.warnings
    }
}
