import AtomLoader
import AtomProto
import AtomRPC
import AtomSkillFormat
import Foundation
import Testing

/// Input and output schemas, ES-module helper reloads, and whole skill folders moving.
@Suite("Loader: schemas, ES-module reloads, folders moving")
struct LoaderGapsTests {
    @Test("ExecuteSkill refuses inputs that break the inputs schema, naming the field and the rule, before the skill runs")
    func inputSchema() async throws {
        try await withLoader { fixture in
            let folder = try fixture.skill("strict", files: [
                // Every call that reaches the skill leaves a mark, so a refused call can be seen not to run.
                "main.py": "import os\ndef execute(inputs):\n    open(os.environ.get('TMPDIR', '/tmp') + '/ran', 'a').write('x')\n    return {'n': inputs['count'] * 2, 'ran': len(open(os.environ.get('TMPDIR', '/tmp') + '/ran').read())}\n",
            ], extra: """
                inputs:
                  type: object
                  properties:
                    count: {type: integer, minimum: 1, maximum: 100}
                    unit: {enum: [m, km]}
                    tags: {type: array, items: {type: string}}
                  required: [count]
                  additionalProperties: false
                """)
            _ = folder
            try await fixture.load("strict")
            #expect(try await fixture.outputs("strict", #"{"count": 2, "unit": "km", "tags": ["a"]}"#)["n"] as? Int == 4)
            await expectLoaderError(.invalidArgument, reason: "INPUTS_SCHEMA_VIOLATION", mentions: [#"inputs: missing required property "count" (required)"#]) {
                _ = try await fixture.execute("strict", "{}")
            }
            await expectLoaderError(.invalidArgument, mentions: ["inputs.count: expected an integer, got a string (type)"]) {
                _ = try await fixture.execute("strict", #"{"count": "2"}"#)
            }
            await expectLoaderError(.invalidArgument, mentions: ["inputs.count: 0 is less than the minimum 1 (minimum)"]) {
                _ = try await fixture.execute("strict", #"{"count": 0}"#)
            }
            await expectLoaderError(.invalidArgument, mentions: [#"inputs.unit: "yd" is not one of "m", "km" (enum)"#, "inputs.tags[1]: expected a string"]) {
                _ = try await fixture.execute("strict", #"{"count": 1, "unit": "yd", "tags": ["a", 2]}"#)
            }
            await expectLoaderError(.invalidArgument, mentions: [#"property "extra" is not allowed"#, "(additionalProperties)"]) {
                _ = try await fixture.execute("strict", #"{"count": 1, "extra": true}"#)
            }
            await expectLoaderError(.invalidArgument, reason: "INPUTS_NOT_JSON") {
                _ = try await fixture.execute("strict", #"{"count": "#)
            }
            // None of the refused calls reached the skill: it ran once before, and this is its second run.
            #expect(try await fixture.outputs("strict", #"{"count": 3}"#)["ran"] as? Int == 2)
            let info = try fixture.loader.get("strict", metrics: fixture.metrics)
            #expect(info.executions == 2)
            #expect(info.inputSchemaJson.contains("\"minimum\":1"))
        }
    }

    @Test("outputs that break the outputs schema are the skill's failure, not outputs")
    func outputSchema() async throws {
        try await withLoader { fixture in
            try fixture.skill("promise", files: [
                "main.py": "def execute(inputs):\n    return {'total': inputs.get('total', 1)}\n",
            ], extra: "outputs: {type: object, properties: {total: {type: number}}, required: [total]}")
            try await fixture.load("promise")
            #expect(try await fixture.outputs("promise", #"{"total": 5}"#)["total"] as? Int == 5)
            let broken = try await fixture.execute("promise", #"{"total": "five"}"#)
            #expect(broken.outputsJson.isEmpty)
            #expect(broken.failure?.type == "OutputSchemaError")
            #expect(broken.failure?.message.contains("outputs.total: expected a number, got a string (type)") == true)
            #expect(try fixture.loader.get("promise", metrics: fixture.metrics).failures == 1)
        }
    }

    @Test("a manifest with an unsupported schema keyword does not load, and says which")
    func unsupportedKeyword() async throws {
        try await withLoader { fixture in
            try fixture.skill("refs", files: ["main.py": "def execute(inputs):\n    return {}\n"],
                              extra: "inputs: {type: object, properties: {a: {$ref: '#/$defs/a'}}}")
            // The service maps a SkillFormatError to INVALID_ARGUMENT with this text.
            do {
                try await fixture.load("refs")
                Issue.record("a manifest with $ref loaded")
            } catch let error as SkillFormatError {
                #expect(error.description.contains("inputs.properties.a.$ref"), "\(error)")
                #expect(error.description.contains("not a supported schema keyword"), "\(error)")
            }
        }
    }

    @Test("after a reload that fails, a new host still runs the version that serves: its own files, not the broken save")
    func newHostRunsTheServingVersion() async throws {
        for runtime in ["python", "node"] {
            try await withLoader(["SKILL_HOT_RELOAD_ENABLED": "true"]) { fixture in
                let (entry, good, broken) = runtime == "python"
                    ? ("main.py", "from helper import value\ndef execute(inputs):\n    return {'v': value()}\n",
                       "from helper import value\ndef execute(inputs):\n    return {'v': value( }\n")
                    : ("index.mjs", "import { value } from './helper.mjs';\nexport async function execute() { return { v: value() }; }\n",
                       "import { value } from './helper.mjs';\nexport async function execute() { return { v: value( }; }\n")
                let helper = runtime == "python" ? ("helper.py", "def value():\n    return 1\n") : ("helper.mjs", "export const value = () => 1;\n")
                let folder = try fixture.skill("steady-\(runtime)", runtime: runtime, files: [entry: good, helper.0: helper.1],
                                               extra: runtime == "node" ? "entry: index.mjs" : "")
                try await fixture.load("steady-\(runtime)")
                #expect(try await fixture.outputs("steady-\(runtime)")["v"] as? Int == 1)

                // A save that does not import: the reload fails and version 1 keeps serving.
                try fixture.editorSave(broken, to: "\(folder)/\(entry)")
                try await fixture.eventually("the failed reload of \(runtime)") {
                    try fixture.loader.get("steady-\(runtime)", metrics: fixture.metrics).lastError.contains("SyntaxError")
                }
                // Every host goes: the next call starts a new one, which imports version 1 afresh.
                let pids = await fixture.loader.hostPIDs()
                #expect(!pids.isEmpty)
                for pid in pids { kill(pid, SIGKILL) }
                // Until the loader has seen them go (a call sent to a host that died idle fails).
                try await fixture.eventually("the loader to see the hosts die") { await fixture.loader.hostPIDs().isEmpty }
                #expect(try await fixture.outputs("steady-\(runtime)")["v"] as? Int == 1, "\(runtime): a new host ran the broken save")
                #expect(try fixture.loader.get("steady-\(runtime)", metrics: fixture.metrics).lastError.contains("SyntaxError"))
            }
        }
    }

    @Test("ES-module helpers are reloaded with their skill: static and dynamic imports, a subfolder, hot and by ReloadSkill")
    func esModuleHelpers() async throws {
        try await withLoader(["SKILL_HOT_RELOAD_ENABLED": "true"]) { fixture in
            let folder = try fixture.skill("esm-greet", runtime: "node", files: [
                "index.mjs": """
                    import { hello } from './lib/words.mjs';
                    import { mark } from './lib/mark.js';
                    export async function execute(inputs) {
                      const { suffix } = await import('./lib/suffix.mjs');
                      return { greeting: hello(inputs.name) + suffix + mark };
                    }
                    """,
                "lib/words.mjs": "export const hello = (name) => 'hello ' + name;\n",
                "lib/suffix.mjs": "export const suffix = '!';\n",
                "lib/package.json": #"{"type": "module"}"#,
                "lib/mark.js": "export const mark = '';\n",
            ], extra: "entry: index.mjs")
            try await fixture.load("esm-greet")
            #expect(try await fixture.outputs("esm-greet", #"{"name": "ada"}"#)["greeting"] as? String == "hello ada!")

            // An editor-style save of a statically imported helper.
            try fixture.editorSave("export const hello = (name) => 'hi ' + name;\n", to: "\(folder)/lib/words.mjs")
            try await fixture.eventually("the ES-module helper reload") {
                try await fixture.outputs("esm-greet", #"{"name": "ada"}"#)["greeting"] as? String == "hi ada!"
            }
            // A dynamically imported one, and a .js helper that is an ES module by its package.json.
            try fixture.editorSave("export const suffix = '?';\n", to: "\(folder)/lib/suffix.mjs")
            try fixture.editorSave("export const mark = '*';\n", to: "\(folder)/lib/mark.js")
            try await fixture.eventually("the dynamic-import helper reload") {
                try await fixture.outputs("esm-greet", #"{"name": "ada"}"#)["greeting"] as? String == "hi ada?*"
            }
            // A helper that no longer imports: the old version keeps serving, the error is kept.
            try fixture.editorSave("export const hello = (name) => { return 'x' + ;\n", to: "\(folder)/lib/words.mjs")
            try await fixture.eventually("the failed reload to be reported") {
                try fixture.loader.get("esm-greet", metrics: fixture.metrics).lastError.contains("SyntaxError")
            }
            #expect(try await fixture.outputs("esm-greet", #"{"name": "ada"}"#)["greeting"] as? String == "hi ada?*")
            // Fixed, by ReloadSkill (the hot reload may get there first: either way the new code serves).
            try fixture.write("export const hello = (name) => 'hey ' + name;\n", to: "\(folder)/lib/words.mjs")
            _ = try? await fixture.loader.reload(name: "esm-greet", trigger: .rpc, context: nil, metrics: fixture.metrics)
            try await fixture.eventually("the fixed helper") {
                try await fixture.outputs("esm-greet", #"{"name": "ada"}"#)["greeting"] as? String == "hey ada?*"
            }
        }
    }

    @Test("a Node host that has imported its quota of ES-module versions is replaced, and the skill keeps serving")
    func esModuleHostRetires() async throws {
        try await withLoader(configure: { $0.nodeESModuleVersionsPerHost = 3 }) { fixture in
            let folder = try fixture.skill("esm-count", runtime: "node", files: [
                // The pid is the same in every sandbox (its own PID namespace): a token per host process instead.
                "index.mjs": "import { n } from './n.mjs';\nglobalThis.hostToken ??= Math.random();\nexport function execute() { return { n, pid: globalThis.hostToken }; }\n",
                "n.mjs": "export const n = 0;\n",
            ], extra: "entry: index.mjs")
            try await fixture.load("esm-count")
            let first = try await fixture.outputs("esm-count")
            var pids: Set<Double> = [try #require(first["pid"] as? Double)]
            for version in 1...4 {
                try fixture.write("export const n = \(version);\n", to: "\(folder)/n.mjs")
                _ = try await fixture.loader.reload(name: "esm-count", trigger: .rpc, context: nil, metrics: fixture.metrics)
                let outputs = try await fixture.outputs("esm-count")
                #expect(outputs["n"] as? Int == version)
                pids.insert(try #require(outputs["pid"] as? Double))
            }
            // Five versions with a quota of three: at least one host was replaced.
            #expect(pids.count >= 2, "\(pids)")
            #expect(await fixture.loader.hostPIDs().count == 1)
        }
    }

    @Test("a skill folder renamed away is unloaded, and renamed back it loads again; all of it in the reload log")
    func folderRenamedAway() async throws {
        try await withLoader(["SKILL_HOT_RELOAD_ENABLED": "true"]) { fixture in
            let folder = try fixture.skill("wanderer", files: ["main.py": "def execute(inputs):\n    return {'v': 1}\n"])
            try await fixture.load("wanderer")
            #expect(try await fixture.outputs("wanderer")["v"] as? Int == 1)
            let outside = fixture.root + "/parked-wanderer"
            #expect(rename(folder, outside) == 0)
            try await fixture.eventually("the skill to be unloaded") { await fixture.loader.list().skills.isEmpty }
            let removed = await fixture.loader.list().reloads.last
            #expect(removed?.name == "wanderer")
            #expect(removed?.outcome == "removed")
            #expect(removed?.trigger == "hot")
            #expect(removed?.message.contains(folder) == true)
            await expectLoaderError(.notFound, reason: "SKILL_NOT_LOADED") { _ = try fixture.loader.get("wanderer", metrics: fixture.metrics) }
            try await fixture.eventually("its host to stop") { await fixture.loader.hostPIDs().isEmpty }

            // Changed while away, then moved back in: it loads again, with the new code.
            try fixture.write("def execute(inputs):\n    return {'v': 2}\n", to: "\(outside)/main.py")
            #expect(rename(outside, folder) == 0)
            try await fixture.eventually("the skill to load again") { await fixture.loader.list().skills.map(\.name) == ["wanderer"] }
            #expect(await fixture.loader.list().reloads.last?.outcome == "restored")
            let info = try fixture.loader.get("wanderer", metrics: fixture.metrics)
            #expect(info.path == folder)
            // Watched again: a later edit is picked up.
            try fixture.editorSave("def execute(inputs):\n    return {'v': 3}\n", to: "\(folder)/main.py")
            try await fixture.eventually("the edit after the move back") { try await fixture.outputs("wanderer")["v"] as? Int == 3 }
        }
    }

    @Test("a skill folder deleted is unloaded; replaced by a rename it reloads; moved to another folder it follows")
    func folderReplacedAndMoved() async throws {
        try await withLoader(["SKILL_HOT_RELOAD_ENABLED": "true"]) { fixture in
            let folder = try fixture.skill("swapped", files: ["main.py": "def execute(inputs):\n    return {'v': 1}\n"])
            try await fixture.load("swapped")
            #expect(try await fixture.outputs("swapped")["v"] as? Int == 1)

            // A deployment: the new version is prepared beside it and renamed over it.
            let next = try fixture.skill("swapped", files: ["main.py": "def execute(inputs):\n    return {'v': 2}\n"], folder: ".swapped-next")
            let old = fixture.skills + "/.swapped-old"
            #expect(rename(folder, old) == 0)
            #expect(rename(next, folder) == 0)
            try FileManager.default.removeItem(atPath: old)
            try await fixture.eventually("the replaced folder to serve") { try await fixture.outputs("swapped")["v"] as? Int == 2 }
            // The watches follow the new folder.
            try fixture.editorSave("def execute(inputs):\n    return {'v': 3}\n", to: "\(folder)/main.py")
            try await fixture.eventually("an edit in the replaced folder") { try await fixture.outputs("swapped")["v"] as? Int == 3 }

            // Renamed within the skills directory: the skill follows its folder.
            let moved = fixture.skills + "/swapped-v2"
            #expect(rename(folder, moved) == 0)
            try await fixture.eventually("the skill to follow its folder") {
                (try? fixture.loader.get("swapped", metrics: fixture.metrics).path) == moved
            }
            #expect(try await fixture.outputs("swapped")["v"] as? Int == 3)
            #expect(await fixture.loader.list().reloads.contains { $0.name == "swapped" && ($0.outcome == "moved" || $0.outcome == "restored") })

            // Deleted outright.
            try FileManager.default.removeItem(atPath: moved)
            try await fixture.eventually("the deleted skill to be unloaded") { await fixture.loader.list().skills.isEmpty }
            #expect(await fixture.loader.list().reloads.last?.outcome == "removed")

            // A new folder that was never loaded is left alone (it loads on first use).
            try fixture.skill("newcomer", files: ["main.py": "def execute(inputs):\n    return {'v': 9}\n"])
            try await Task.sleep(for: .milliseconds(300))
            #expect(await fixture.loader.list().skills.isEmpty)
            try await fixture.load("newcomer")
            #expect(try await fixture.outputs("newcomer")["v"] as? Int == 9)
        }
    }
}

@Suite("Node ES-module hooks")
struct NodeModuleHooksTests {
    @Test("an ES-module skill imports a package by name from the environment's node_modules (NODE_PATH), which Node's ES resolver ignores")
    func packagesFromNodePath() async throws {
        let root = NSTemporaryDirectory() + "atom-esm-hooks-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let package = "\(root)/env/node_modules/greetlib"
        try FileManager.default.createDirectory(atPath: package, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: "\(root)/skill", withIntermediateDirectories: true)
        try #"{"name": "greetlib", "version": "1.0.0", "type": "module", "exports": "./index.js"}"#.write(toFile: "\(package)/package.json", atomically: true, encoding: .utf8)
        try "export const greet = (name) => 'hello ' + name;\n".write(toFile: "\(package)/index.js", atomically: true, encoding: .utf8)
        try "import { greet } from 'greetlib';\nexport const text = greet('ada');\n".write(toFile: "\(root)/skill/index.mjs", atomically: true, encoding: .utf8)
        let configuration = try LoaderConfiguration(home: root + "/home", environment: [:])
        let hooks = URL(fileURLWithPath: "\(configuration.runtimeDirectory)/node/atom_esm_hooks.mjs").absoluteString
        let script = """
            require('module').register(\(String(reflecting: hooks)));
            import(\(String(reflecting: URL(fileURLWithPath: "\(root)/skill/index.mjs").absoluteString)))
              .then((m) => console.log(m.text), (e) => { console.error(String(e)); process.exit(1); });
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [configuration.node, "-e", script]
        process.environment = ["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin", "NODE_PATH": "\(root)/env/node_modules"]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "\(text)")
        #expect(text == "hello ada\n")
    }
}
