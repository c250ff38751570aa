import AtomCLI
import AtomProto
import AtomSkillFormat
import AtomTesting
import Foundation
import Testing

@testable import AtomMarketplace

@Suite("Bundled skills", .serialized)
struct BundledSkillsTests {
    static let root = Repository.root + "/skills"

    static func folders() throws -> [SkillFolder] {
        try FileManager.default.contentsOfDirectory(atPath: root).sorted().filter { !$0.hasPrefix(".") }.map {
            try SkillFolder.load(URL(fileURLWithPath: "\(root)/\($0)"))
        }
    }

    // Every example of every bundled skill is run through the real loader in
    // AtomLoaderTests/BundledSkillsTests.

    @Test("at least 20 skills, valid manifests, several categories, Python and Node, each with examples, no packages to download")
    func catalog() throws {
        let folders = try Self.folders()
        #expect(folders.count >= 20)
        #expect(Set(folders.map(\.manifest.category)).count >= 6)
        #expect(folders.contains { $0.manifest.runtime == .node } && folders.contains { $0.manifest.runtime == .python })
        for folder in folders {
            #expect(!folder.manifest.examples.isEmpty, "\(folder.manifest.name) has no examples")
            #expect(folder.manifest.packages.isEmpty, "\(folder.manifest.name): bundled skills use the standard library only")
            #expect(folder.url.lastPathComponent == folder.manifest.name)
        }
        let fetch = try #require(folders.first { $0.manifest.name == "http-fetch" })
        #expect(fetch.manifest.permissions.network)
        #expect(folders.filter(\.manifest.permissions.network).map(\.manifest.name) == ["http-fetch"])
    }

    @Test("importing skills/ fills the catalog; importing it again changes nothing")
    func importBundled() async throws {
        let scratch = try ScratchDirectory("bundled-import")
        defer { scratch.remove() }
        let catalog = try await Catalog(configuration: MarketplaceConfiguration(home: scratch.path))
        let count = try Self.folders().count
        let first = try await catalog.importItems(try ImportSource.items(at: Self.root))
        #expect(first.added == UInt32(count) && first.failed == 0)
        let second = try await catalog.importItems(try ImportSource.items(at: Self.root))
        #expect(second.unchanged == UInt32(count) && second.added == 0 && second.updated == 0 && second.warnings.isEmpty)
        #expect(try catalog.search(SearchRequest(query: "summar")).response.items.first?.id == "summarize-text")
        #expect(try catalog.search(SearchRequest(query: "csv")).response.items.prefix(2).map(\.id).sorted() == ["csv-stats", "csv-to-json"])
        #expect(catalog.index.categories().count >= 6)
    }
}
