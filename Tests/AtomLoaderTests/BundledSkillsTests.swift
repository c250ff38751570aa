import AtomLoader
import AtomSkillFormat
import AtomTesting
import Foundation
import Testing

/// The bundled catalog (`skills/`) run the way agents run it: loaded into real, sandboxed skill
/// hosts by the loader, every example of every skill executed and checked.
@Suite("Bundled skills through the loader", .serialized)
struct BundledSkillsTests {
    static let root = Repository.root + "/skills"

    static func folders() throws -> [SkillFolder] {
        try FileManager.default.contentsOfDirectory(atPath: root).sorted().filter { !$0.hasPrefix(".") }.map {
            try SkillFolder.load(URL(fileURLWithPath: "\(root)/\($0)"))
        }
    }

    @Test("every example of every bundled skill gives what it promises")
    func examples() async throws {
        let folders = try Self.folders()
        #expect(folders.count >= 20)
        try await withLoader(["SKILLS_DIRS": Self.root, "LOADER_CACHE_SIZE": "100"]) { fixture in
            var ran = 0
            for folder in folders {
                _ = try await fixture.loader.load(name: "", path: folder.url.path, context: nil, metrics: fixture.metrics)
                for example in folder.manifest.examples {
                    let response = try await fixture.execute(folder.manifest.name, JSONValue.object(example.inputs).jsonText)
                    if let failure = response.failure {
                        Issue.record("\(folder.manifest.name) / \(example.name) raised \(failure.type): \(failure.message)")
                        continue
                    }
                    let output = try JSONValue.parse(json: response.outputsJson)
                    #expect(example.accepts(output), "\(folder.manifest.name) / \(example.name): got \(output.jsonText.prefix(400))")
                    ran += 1
                }
            }
            #expect(ran >= 40)
        }
    }

    @Test("http-fetch reaches a local HTTP server: its manifest asks for the network, so its sandbox has it")
    func httpFetch() async throws {
        let scratch = try ScratchDirectory("http-fetch")
        defer { scratch.remove() }
        try #"{"hello": "world"}"#.write(toFile: scratch.path + "/data.json", atomically: true, encoding: .utf8)
        let port = try Repository.freePort()
        let server = Process()
        server.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        server.arguments = ["python3", "-m", "http.server", String(port), "--bind", "127.0.0.1", "--directory", scratch.path]
        server.standardOutput = FileHandle.nullDevice
        server.standardError = FileHandle.nullDevice
        try server.run()
        defer {
            kill(server.processIdentifier, SIGKILL)
            server.waitUntilExit()
        }
        try await withLoader(["SKILLS_DIRS": Self.root]) { fixture in
            _ = try await fixture.loader.load(name: "", path: Self.root + "/http-fetch", context: nil, metrics: fixture.metrics)
            var output: JSONValue = .null
            // The server needs a moment to listen.
            for _ in 0..<50 {
                let response = try await fixture.execute("http-fetch", #"{"url": "http://127.0.0.1:\#(port)/data.json"}"#)
                if response.failure == nil {
                    output = try JSONValue.parse(json: response.outputsJson)
                    break
                }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(output["status"] == .number(200))
            #expect(output["json"] == .object(["hello": .string("world")]))
            #expect(output["content_type"] == .string("application/json"))
            let missing = try await fixture.execute("http-fetch", #"{"url": "http://127.0.0.1:\#(port)/missing"}"#)
            #expect(missing.failure != nil, "a 404 is the skill's own error")
        }
    }
}
