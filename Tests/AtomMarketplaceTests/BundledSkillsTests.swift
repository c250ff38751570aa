import AtomCLI
import AtomProto
import AtomSkillFormat
import AtomTesting
import Foundation
import Testing

@testable import AtomMarketplace

/// Runs a skill's entry function in a real python3 or node process. A minimal stand-in for the
/// loader's skill host (`runtime/`, on the loader's branch): once it is merged, these tests should
/// run the examples through the loader instead.
enum SkillHarness {
    static let python = #"""
        import importlib.util, json, sys
        folder, entry, function = sys.argv[1], sys.argv[2], sys.argv[3]
        sys.path.insert(0, folder)
        spec = importlib.util.spec_from_file_location("atom_skill_under_test", folder + "/" + entry)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        result = getattr(module, function)(json.loads(sys.stdin.read()))
        sys.stdout.write(json.dumps(result))
        """#

    static let node = #"""
        import { pathToFileURL } from "node:url";
        import { readFileSync } from "node:fs";
        const [folder, entry, fn] = process.argv.slice(2);
        const mod = await import(pathToFileURL(`${folder}/${entry}`).href);
        const f = mod[fn] ?? mod.default?.[fn];
        if (typeof f !== "function") throw new Error(`${entry} exports no ${fn}`);
        const result = await f(JSON.parse(readFileSync(0, "utf8")));
        process.stdout.write(JSON.stringify(result));
        """#

    struct Failed: Error, CustomStringConvertible {
        let description: String
    }

    /// Runs `folder`'s function with `inputs`; returns its output object.
    static func run(_ folder: SkillFolder, inputs: [String: JSONValue], scratch: String) throws -> JSONValue {
        let harness: String
        let executable: String
        switch folder.manifest.runtime {
        case .python:
            harness = scratch + "/harness.py"
            try python.write(toFile: harness, atomically: true, encoding: .utf8)
            executable = "python3"
        case .node:
            harness = scratch + "/harness.mjs"
            try node.write(toFile: harness, atomically: true, encoding: .utf8)
            executable = "node"
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [executable, harness, folder.url.path, folder.manifest.entry, folder.manifest.function]
        // Files, not pipes: nothing can fill up and block; the exit is polled (never a hang).
        let id = UUID().uuidString
        let inputPath = "\(scratch)/in-\(id).json", outputPath = "\(scratch)/out-\(id).json", errorPath = "\(scratch)/err-\(id).txt"
        try JSONValue.object(inputs).jsonText.write(toFile: inputPath, atomically: true, encoding: .utf8)
        _ = FileManager.default.createFile(atPath: outputPath, contents: nil)
        _ = FileManager.default.createFile(atPath: errorPath, contents: nil)
        let input = try FileHandle(forReadingFrom: URL(fileURLWithPath: inputPath))
        let output = try FileHandle(forWritingTo: URL(fileURLWithPath: outputPath))
        let errors = try FileHandle(forWritingTo: URL(fileURLWithPath: errorPath))
        defer {
            try? input.close()
            try? output.close()
            try? errors.close()
        }
        process.standardInput = input
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let deadline = ContinuousClock.now + .seconds(60)
        while ChildLiveness.isRunning(process) && ContinuousClock.now < deadline { usleep(5_000) }
        if ChildLiveness.isRunning(process) {
            kill(process.processIdentifier, SIGKILL)
            throw Failed(description: "\(folder.manifest.name) did not finish in 60 s")
        }
        let status = ChildLiveness.status(process)
        let out = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        guard status == 0 else {
            let err = (try? String(contentsOfFile: errorPath, encoding: .utf8)) ?? ""
            throw Failed(description: "\(folder.manifest.name) exited \(status): \(err.suffix(800))")
        }
        return try JSONLines.parse(out)
    }

    /// Every key of `expect` is in `actual` with an equal value (objects compared the same way,
    /// lists element by element, numbers as numbers).
    static func matches(_ expect: JSONValue, _ actual: JSONValue) -> Bool {
        switch (expect, actual) {
        case (.object(let wanted), .object(let got)):
            return wanted.allSatisfy { key, value in got[key].map { matches(value, $0) } ?? false }
        case (.array(let wanted), .array(let got)):
            return wanted.count == got.count && zip(wanted, got).allSatisfy(matches)
        case (.number(let a), .number(let b)):
            return abs(a - b) <= 1e-9 * max(1, abs(a))
        default:
            return expect == actual
        }
    }
}

@Suite("Bundled skills", .serialized)
struct BundledSkillsTests {
    static let root = Fixtures.repositoryRoot + "/skills"

    static func folders() throws -> [SkillFolder] {
        try FileManager.default.contentsOfDirectory(atPath: root).sorted().filter { !$0.hasPrefix(".") }.map {
            try SkillFolder.load(URL(fileURLWithPath: "\(root)/\($0)"))
        }
    }

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

    @Test("every example of every bundled skill runs in a real python3 or node process and gives what it promises")
    func examples() throws {
        let scratch = try ScratchDirectory("bundled-skills")
        defer { scratch.remove() }
        var ran = 0
        for folder in try Self.folders() {
            for example in folder.manifest.examples {
                let output = try SkillHarness.run(folder, inputs: example.inputs, scratch: scratch.path)
                #expect(SkillHarness.matches(.object(example.expect), output), "\(folder.manifest.name) / \(example.name): got \(output.jsonText.prefix(400))")
                ran += 1
            }
        }
        #expect(ran >= 40)
    }

    @Test("http-fetch fetches over real HTTP from a local server (standard library only)")
    func httpFetch() throws {
        let scratch = try ScratchDirectory("http-fetch")
        defer { scratch.remove() }
        try #"{"hello": "world"}"#.write(toFile: scratch.path + "/data.json", atomically: true, encoding: .utf8)
        let port = Int(try LocalStack.freeTCPEndpoint().split(separator: ":").last!)!
        let server = Process()
        server.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        server.arguments = ["python3", "-m", "http.server", String(port), "--bind", "127.0.0.1", "--directory", scratch.path]
        server.standardOutput = FileHandle.nullDevice
        server.standardError = FileHandle.nullDevice
        try server.run()
        defer {
            kill(server.processIdentifier, SIGKILL)
            let deadline = ContinuousClock.now + .seconds(5)
            while ChildLiveness.isRunning(server) && ContinuousClock.now < deadline { usleep(10_000) }
        }
        let folder = try SkillFolder.load(URL(fileURLWithPath: Self.root + "/http-fetch"))
        var output: JSONValue = .null
        // The server needs a moment to listen.
        for _ in 0..<50 {
            if let result = try? SkillHarness.run(folder, inputs: ["url": .string("http://127.0.0.1:\(port)/data.json")], scratch: scratch.path) {
                output = result
                break
            }
            usleep(100_000)
        }
        #expect(output["status"] == .number(200))
        #expect(output["json"] == .object(["hello": .string("world")]))
        #expect(output["content_type"] == .string("application/json"))
        #expect(throws: SkillHarness.Failed.self) {
            _ = try SkillHarness.run(folder, inputs: ["url": .string("http://127.0.0.1:\(port)/missing")], scratch: scratch.path)
        }
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
