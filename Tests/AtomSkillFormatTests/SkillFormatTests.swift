import AtomSkillFormat
import Foundation
import Testing

private let validManifest = """
name: text-stats
version: "1.2.0"
description: Counts words and lines.
category: text
runtime: python
packages: ["regex==2024.4.16"]
tags: [text, statistics]
permissions: {network: false}
limits: {memory: 128m, cpu: 0.5, timeout_seconds: 5}
inputs:
  type: object
  properties: {text: {type: string}}
  required: [text]
examples:
  - name: two words
    inputs: {text: "hello world"}
    expect: {words: 2}
"""

/// A temporary skill folder, removed when the test ends.
private final class TemporaryFolder {
    let url: URL
    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("atom-skill-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    func write(_ path: String, _ text: String) throws {
        let file = url.appendingPathComponent(path)
        try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(text.utf8).write(to: file)
    }
    deinit { try? FileManager.default.removeItem(at: url) }
}

@Suite("Skill manifests")
struct SkillManifestTests {
    @Test("a full YAML manifest parses with every field")
    func parsesYAML() throws {
        let manifest = try SkillManifest.parse(validManifest)
        #expect(manifest.name == "text-stats")
        #expect(manifest.version == "1.2.0")
        #expect(manifest.runtime == .python)
        #expect(manifest.entry == "main.py")
        #expect(manifest.function == "execute")
        #expect(manifest.packages == ["regex==2024.4.16"])
        #expect(manifest.tags == ["text", "statistics"])
        #expect(manifest.limits == .init(memory: "128m", cpu: "0.5", timeoutSeconds: 5))
        #expect(manifest.inputSchema.source["required"] == .array([.string("text")]))
        #expect(manifest.examples == [.init(name: "two words", inputs: ["text": .string("hello world")], expect: ["words": .number(2)])])
    }

    @Test("JSON manifests parse too, with defaults for what they leave out")
    func parsesJSON() throws {
        let manifest = try SkillManifest.parse(#"{"name":"hasher","version":"0.1.0","description":"d","category":"crypto","runtime":"node"}"#, json: true)
        #expect(manifest.entry == "index.js")
        #expect(manifest.permissions.network == false)
        #expect(manifest.limits == .init())
        #expect(manifest.inputSchema.source == .object(["type": .string("object")]))
    }

    @Test("each bad field is named with what to do", arguments: [
        ("version: \"1.0.0\"\ndescription: d\ncategory: c\nruntime: python", "name", "is required"),
        ("name: Text\nversion: \"1.0.0\"\ndescription: d\ncategory: c\nruntime: python", "name", "must start with a lowercase letter"),
        ("name: a/b\nversion: \"1.0.0\"\ndescription: d\ncategory: c\nruntime: python", "name", "has '/'"),
        ("name: a\nversion: 1.0\ndescription: d\ncategory: c\nruntime: python", "version", "quote it"),
        ("name: a\nversion: \"1.0\"\ndescription: d\ncategory: c\nruntime: python", "version", "not a semantic version"),
        ("name: a\nversion: \"1.0.0\"\ndescription: d\ncategory: c\nruntime: ruby", "runtime", "use python or node"),
        ("name: a\nversion: \"1.0.0\"\ndescription: d\ncategory: c\nruntime: python\npakages: [x]", "pakages", "is not a manifest field"),
        ("name: a\nversion: \"1.0.0\"\ndescription: d\ncategory: c\nruntime: python\nentry: ../x.py", "entry", "leaves the skill folder"),
        ("name: a\nversion: \"1.0.0\"\ndescription: d\ncategory: c\nruntime: python\nentry: /etc/passwd", "entry", "relative path"),
        ("name: a\nversion: \"1.0.0\"\ndescription: d\ncategory: c\nruntime: python\nlimits: {memory: lots}", "limits.memory", "memory size"),
        ("name: a\nversion: \"1.0.0\"\ndescription: d\ncategory: c\nruntime: python\nlimits: {timeout_seconds: -1}", "limits.timeout_seconds", "out of range"),
        ("name: a\nversion: \"1.0.0\"\ndescription: d\ncategory: c\nruntime: python\nlimits: {gpu: 1}", "limits.gpu", "is not a manifest field"),
        ("name: a\nversion: \"1.0.0\"\ndescription: d\ncategory: c\nruntime: python\ntags: [ok, 3]", "tags[1]", "must be a string"),
        ("name: a\nversion: \"1.0.0\"\ndescription: d\ncategory: c\nruntime: python\ninputs: {type: array}", "inputs.type", "must be \"object\""),
        ("name: a\nversion: \"1.0.0\"\ndescription: d\ncategory: c\nruntime: python\nexamples: [3]", "examples[0]", "must be a mapping"),
        ("name: a\nversion: \"1.0.0\"\ndescription: d\ncategory: c\nruntime: python\npermissions: {network: maybe}", "permissions.network", "true or false"),
        ("name: a\nversion: \"1.0.0\"\ndescription: [d]\ncategory: c\nruntime: python", "description", "must be a string, not an array"),
        ("name: a\nversion: \"1.0.0\"\ndescription: d\ncategory: c\nruntime: python\ntags: {a: 1}", "tags", "must be a list, not an object"),
        ("", "", "the manifest is empty"),
        ("# only a comment\n", "", "the manifest is empty"),
        ("- a\n- b", "", "must be a mapping of fields, not an array"),
    ])
    func rejectsBadFields(text: String, field: String, message: String) {
        #expect {
            _ = try SkillManifest.parse(text)
        } throws: { error in
            guard let error = error as? SkillFormatError else { return false }
            return error.code == .invalidField && error.field == field && error.message.contains(message)
        }
    }

    @Test("text that is not YAML, or not a mapping, is reported as such")
    func rejectsUnreadable() {
        #expect(throws: SkillFormatError.self) { _ = try SkillManifest.parse("name: [unclosed") }
        #expect(throws: SkillFormatError.self) { _ = try SkillManifest.parse("{\"name\": ", json: true) }
        #expect(throws: SkillFormatError.self) { _ = try SkillManifest.parse("- a\n- b") }
    }

    @Test("nested YAML aliases that expand past the value limit are refused at once")
    func refusesAliasBomb() throws {
        // Nine levels of ten aliases each: 10^9 values once expanded, about 600 bytes of text.
        var lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
        for level in 1...9 {
            lines.append("a\(level): &a\(level) [" + Array(repeating: "*a\(level - 1)", count: 10).joined(separator: ", ") + "]")
        }
        let bomb = validManifest + "\nbomb_anchors:\n" + lines.map { "  " + $0 }.joined(separator: "\n") + "\n"
        let started = ContinuousClock.now
        let error = try #require(throws: SkillFormatError.self) { _ = try SkillManifest.parse(bomb) }
        #expect(error.message.contains("more than \(SkillManifest.maxValues) values"), "\(error.message)")
        // Refused by counting, long before the expansion could finish (it would not, in memory).
        #expect(ContinuousClock.now - started < .seconds(10))

        // Aliases within the limit still decode, expanded.
        let shared = validManifest.replacingOccurrences(of: "tags: [text, statistics]", with: "tags: &t [text, statistics]") + "\nauthor_tags: *t\n"
        let sharedError = try #require(throws: SkillFormatError.self) { _ = try SkillManifest.parse(shared) }
        #expect(sharedError.field == "author_tags", "an unknown field is still named after the aliases expand: \(sharedError)")
    }

    @Test("a manifest nested too deeply, or too large, is refused before it is composed")
    func refusesDeepOrLargeManifests() throws {
        let deep = "name: " + String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000) + "\n"
        let deepError = try #require(throws: SkillFormatError.self) { _ = try SkillManifest.parse(deep) }
        #expect(deepError.message.contains("nested more than \(JSONValue.maxDepth) levels deep (at line 1)"), "\(deepError.message)")

        let large = validManifest + "\n# " + String(repeating: "x", count: SkillManifest.maxBytes) + "\n"
        let largeError = try #require(throws: SkillFormatError.self) { _ = try SkillManifest.parse(large) }
        #expect(largeError.message.contains("at most \(SkillManifest.maxBytes)"), "\(largeError.message)")
    }

    @Test("semantic versions order by precedence, pre-releases first")
    func semanticVersions() throws {
        let ordered = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1", "1.10.0", "2.0.0"]
        let versions = try ordered.map { try #require(SemanticVersion($0)) }
        #expect(versions == versions.sorted())
        #expect(SemanticVersion("1.0.0+build.5") == SemanticVersion("1.0.0"))
        for bad in ["1.0", "01.0.0", "1.0.0-", "1.0.0+", "a.b.c", "1.0.0.0", ""] {
            #expect(SemanticVersion(bad) == nil, "\(bad)")
        }
    }
}

@Suite("Skill folders")
struct SkillFolderTests {
    @Test("a folder loads with its manifest and a hash that follows its content")
    func loadsAndHashes() throws {
        let folder = try TemporaryFolder()
        try folder.write("skill.yaml", validManifest)
        try folder.write("main.py", "def execute(inputs):\n    return {}\n")
        try folder.write("helpers/words.py", "WORD = 1\n")
        let first = try SkillFolder.load(folder.url)
        #expect(first.manifest.name == "text-stats")
        #expect(first.files == ["helpers/words.py", "main.py", "skill.yaml"])
        #expect(first.contentHash.count == 64)

        // Caches do not change the content; an edit in a submodule does.
        try folder.write("__pycache__/main.cpython-311.pyc", "bytes")
        #expect(try SkillFolder.load(folder.url).contentHash == first.contentHash)
        try folder.write("helpers/words.py", "WORD = 2\n")
        #expect(try SkillFolder.load(folder.url).contentHash != first.contentHash)
    }

    @Test("a missing folder, manifest or entry file is reported")
    func missingParts() throws {
        let folder = try TemporaryFolder()
        #expect(throws: SkillFormatError(.notFound, "no skill folder at \(folder.url.path)/absent")) {
            _ = try SkillFolder.load(folder.url.appendingPathComponent("absent"))
        }
        #expect { _ = try SkillFolder.load(folder.url) } throws: { ($0 as? SkillFormatError)?.code == .notFound }
        try folder.write("skill.yaml", validManifest)
        #expect { _ = try SkillFolder.load(folder.url) } throws: { error in
            guard let error = error as? SkillFormatError else { return false }
            return error.field == "entry" && error.message.contains("does not exist")
        }
    }

    @Test("a symbolic link out of the folder is refused")
    func symlinkEscape() throws {
        let folder = try TemporaryFolder()
        try folder.write("skill.yaml", validManifest.replacingOccurrences(of: "runtime: python", with: "runtime: python\nentry: code.py"))
        try FileManager.default.createSymbolicLink(atPath: folder.url.appendingPathComponent("code.py").path, withDestinationPath: "/etc/hostname")
        #expect { _ = try SkillFolder.load(folder.url) } throws: { error in
            (error as? SkillFormatError)?.message.contains("leads outside the skill folder") == true
        }
    }
}

@Suite("JSON values")
struct JSONValueTests {
    @Test("JSON text is compact with sorted keys and round-trips")
    func jsonText() throws {
        let value = try JSONValue.parse(json: #"{"b": [1, 2.5, true, null], "a": "x\"y\n", "c": {}}"#)
        #expect(value.jsonText == #"{"a":"x\"y\n","b":[1,2.5,true,null],"c":{}}"#)
        #expect(try JSONValue.parse(json: value.jsonText) == value)
        let unicode = JSONValue.object(["é": .string("\u{01}\u{1f}\\ é 😀 \u{7f}")])
        #expect(unicode.jsonText == #"{"é":"\u0001\u001f\\ é 😀 \#u{7f}"}"#)
        #expect(try JSONValue.parse(json: unicode.jsonText) == unicode)
    }
}
