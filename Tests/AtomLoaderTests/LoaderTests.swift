import AtomLoader
import AtomProto
import AtomRPC
import Foundation
import Testing

/// The loader with real Python and Node host processes in the real sandbox (bubblewrap).
@Suite("Loader", .serialized, .timeLimit(.minutes(3)))
struct LoaderTests {
    @Test("load, execute, logs, cached load; a skill raising is a failure in the response")
    func loadAndExecute() async throws {
        try await withLoader { fixture in
            try fixture.skill("greet", files: [
                "main.py": """
                    from helpers import words
                    def execute(inputs):
                        print("greeting", inputs["name"])
                        if inputs["name"] == "boom":
                            raise ValueError("no booms")
                        return {"greeting": words.hello(inputs["name"])}
                    """,
                "helpers/__init__.py": "",
                "helpers/words.py": "def hello(name):\n    return 'hello ' + name\n",
            ])
            let first = try await fixture.load("greet")
            #expect(!first.cached)
            #expect(first.skill?.sandboxed == true)
            let response = try await fixture.execute("greet", #"{"name": "ada"}"#)
            #expect(response.failure == nil)
            #expect(response.outputsJson == #"{"greeting": "hello ada"}"#)
            #expect(response.logs == "greeting ada\n")
            #expect(response.contentHash == first.skill?.contentHash)
            let again = try await fixture.load("greet")
            #expect(again.cached)

            let failed = try await fixture.execute("greet", #"{"name": "boom"}"#)
            let failure = try #require(failed.failure)
            #expect(failure.type == "ValueError")
            #expect(failure.message == "no booms")
            #expect(failure.traceback.contains("main.py"))
            #expect(!failure.traceback.contains("atom_host.py"), "the host's own frames are not the skill's")
            let info = try fixture.loader.get("greet", metrics: fixture.metrics)
            #expect(info.executions == 2 && info.failures == 1)

            await expectLoaderError(.invalidArgument, mentions: ["JSON object"]) { _ = try await fixture.execute("greet", "[1, 2]") }
            await expectLoaderError(.invalidArgument, mentions: ["not valid JSON"]) { _ = try await fixture.execute("greet", "{nope") }
            await expectLoaderError(.notFound, reason: "SKILL_NOT_LOADED") { _ = try await fixture.execute("missing") }
            let operations = fixture.metrics.snapshot()
            #expect(operations["skill_load"]?.totalCount == 1)
            #expect(operations["skill_load_cached"]?.totalCount == 1)
            #expect(operations["skill_execute"]?.totalCount == 2)
        }
    }

    @Test("a skill named json, and one with its own json.py, never shadow the json module of other skills")
    func noShadowing() async throws {
        try await withLoader { fixture in
            try fixture.skill("json", files: ["main.py": "import json\ndef execute(inputs):\n    return {'dumps': json.dumps([1])}\n"])
            try fixture.skill("local-json", files: [
                "main.py": "import json\ndef execute(inputs):\n    return {'value': json.VALUE}\n",
                "json.py": "VALUE = 'mine'\n",
            ])
            try fixture.skill("plain", files: [
                "main.py": "def execute(inputs):\n    import json, sys\n    return {'real': hasattr(json, 'dumps'), 'named': [n for n in sys.modules if n.startswith('atom_skill_')]}\n",
            ])
            try await fixture.load("json")
            try await fixture.load("local-json")
            try await fixture.load("plain")
            #expect(try await fixture.outputs("json")["dumps"] as? String == "[1]")
            #expect(try await fixture.outputs("local-json")["value"] as? String == "mine")
            let plain = try await fixture.outputs("plain")
            #expect(plain["real"] as? Bool == true, "the standard json module is intact after a skill with its own json.py ran")
            let names = plain["named"] as? [String] ?? []
            #expect(!names.contains("json") && names.allSatisfy { $0.hasPrefix("atom_skill_") })
            #expect(try await fixture.outputs("json")["dumps"] as? String == "[1]")
        }
    }

    @Test("reload is atomic: editor saves and helper changes are picked up, a failing import keeps the old version, same hash does nothing")
    func reload() async throws {
        try await withLoader(["SKILL_HOT_RELOAD_ENABLED": "true"]) { fixture in
            let folder = try fixture.skill("counter", files: [
                "main.py": "from helper import value\ndef execute(inputs):\n    return {'v': value()}\n",
                "helper.py": "def value():\n    return 1\n",
            ])
            try await fixture.load("counter")
            #expect(try await fixture.outputs("counter")["v"] as? Int == 1)

            // Editor-style save of a helper module (temporary file renamed over it).
            try fixture.editorSave("def value():\n    return 2\n", to: "\(folder)/helper.py")
            try await fixture.eventually("the hot reload of the helper") { try await fixture.outputs("counter")["v"] as? Int == 2 }

            // A plain write of the entry file.
            try fixture.write("from helper import value\ndef execute(inputs):\n    return {'v': value() * 10}\n", to: "\(folder)/main.py")
            try await fixture.eventually("the hot reload of a write") { try await fixture.outputs("counter")["v"] as? Int == 20 }

            // A new file, then a version that fails to import: the old one keeps serving.
            try fixture.write("BROKEN = True\n", to: "\(folder)/extra.py")
            try fixture.editorSave("def execute(inputs):\n    return {'v': 'never' \n", to: "\(folder)/main.py")
            try await fixture.eventually("the failed reload to be reported") {
                try fixture.loader.get("counter", metrics: fixture.metrics).lastError.contains("SyntaxError")
            }
            #expect(try await fixture.outputs("counter")["v"] as? Int == 20)
            let list = await fixture.loader.list()
            #expect(list.reloads.contains { $0.name == "counter" && $0.outcome == "failed" && $0.trigger == "hot" })
            #expect(list.reloads.contains { $0.name == "counter" && $0.outcome == "reloaded" })

            // ReloadSkill with the same failing content reports the error; fixed content swaps in.
            await expectLoaderError(.failedPrecondition, reason: "SKILL_IMPORT_FAILED", mentions: ["SyntaxError"]) {
                _ = try await fixture.loader.reload(name: "counter", trigger: .rpc, context: nil, metrics: fixture.metrics)
            }
            try fixture.editorSave("def execute(inputs):\n    return {'v': 3}\n", to: "\(folder)/main.py")
            try await fixture.eventually("the fixed version") { try await fixture.outputs("counter")["v"] as? Int == 3 }
            // The swap and the cleared error are one step, but a hot reload of the same save may still
            // be settling: wait for it rather than race it.
            try await fixture.eventually("the error cleared") { try fixture.loader.get("counter", metrics: fixture.metrics).lastError == "" }

            // Deleting a file the skill does not import is a change that reloads cleanly.
            try FileManager.default.removeItem(atPath: "\(folder)/extra.py")
            let unchanged = try await fixture.loader.reload(name: "counter", trigger: .rpc, context: nil, metrics: fixture.metrics)
            try await fixture.eventually("the hash after the delete") {
                try await fixture.loader.reload(name: "counter", trigger: .rpc, context: nil, metrics: fixture.metrics).cached
            }
            _ = unchanged
            #expect(try await fixture.outputs("counter")["v"] as? Int == 3)
            #expect((fixture.metrics.snapshot()["hot_reload"]?.totalCount ?? 0) >= 3)
        }
    }

    @Test("exit, segfault, an endless loop and endless allocation each fail the call clearly and the host is replaced")
    func isolation() async throws {
        try await withLoader { fixture in
            try fixture.skill("fragile", files: [
                "main.py": """
                    import sys
                    def execute(inputs):
                        mode = inputs.get("mode")
                        if mode == "exit":
                            sys.exit(3)
                        if mode == "segfault":
                            import ctypes
                            ctypes.string_at(0)
                        if mode == "loop":
                            while True:
                                pass
                        if mode == "memory":
                            hog = []
                            while True:
                                hog.append(bytearray(16 << 20))
                        return {"ok": True}
                    """,
            ], extra: "limits: {memory: 128m, timeout_seconds: 30}")
            try await fixture.load("fragile")
            #expect(try await fixture.outputs("fragile")["ok"] as? Bool == true)
            let hosts = await fixture.loader.hostPIDs()
            await expectLoaderError(.internal, reason: "HOST_CRASHED", mentions: ["status 3"]) {
                _ = try await fixture.execute("fragile", #"{"mode": "exit"}"#)
            }
            #expect(try await fixture.outputs("fragile")["ok"] as? Bool == true)
            await expectLoaderError(.internal, reason: "HOST_CRASHED", mentions: ["SIGSEGV"]) {
                _ = try await fixture.execute("fragile", #"{"mode": "segfault"}"#)
            }
            #expect(try await fixture.outputs("fragile")["ok"] as? Bool == true)
            await expectLoaderError(.deadlineExceeded, reason: "SKILL_TIMEOUT") {
                _ = try await fixture.execute("fragile", #"{"mode": "loop"}"#, timeoutMs: 300)
            }
            #expect(try await fixture.outputs("fragile")["ok"] as? Bool == true)
            await expectLoaderError(.resourceExhausted, reason: "SKILL_MEMORY", mentions: ["128m"]) {
                _ = try await fixture.execute("fragile", #"{"mode": "memory"}"#)
            }
            #expect(try await fixture.outputs("fragile")["ok"] as? Bool == true)
            for pid in hosts { #expect(!processIsAlive(pid), "a replaced host \(pid) is gone") }
        }
    }

    @Test("an output over 4 MiB is RESOURCE_EXHAUSTED with its size, a huge exception is cut, NaN is no output; the host stays", arguments: ["python", "node"])
    func oversized(runtime: String) async throws {
        try await withLoader { fixture in
            let name = "big-\(runtime)"
            let files = runtime == "python"
                ? ["main.py": """
                    def execute(inputs):
                        if inputs.get("mode") == "raise":
                            raise ValueError("x" * 10_000_000)
                        if inputs.get("mode") == "nan":
                            return {"v": float("nan")}
                        return {"blob": "y" * inputs["bytes"]}
                    """]
                : ["index.js": """
                    module.exports.execute = (inputs) => {
                      if (inputs.mode === 'raise') throw new RangeError('x'.repeat(10000000));
                      return { blob: 'y'.repeat(inputs.bytes) };
                    };
                    """]
            _ = try fixture.skill(name, runtime: runtime, files: files)
            try await fixture.load(name)
            let hosts = await fixture.loader.hostPIDs()
            // 6 MB: over the RPC limit and over the host frame limit, which used to kill the host.
            await expectLoaderError(.resourceExhausted, reason: "SKILL_OUTPUT_TOO_LARGE", mentions: ["the output is 60000", "bytes of JSON; at most 4194304"]) {
                _ = try await fixture.execute(name, #"{"bytes": 6000000}"#)
            }
            let failed = try await fixture.execute(name, #"{"mode": "raise"}"#)
            #expect(failed.failure?.message.count ?? 0 < 70_000 && failed.failure?.message.hasSuffix("[truncated]") == true)
            #expect(try await fixture.outputs(name, #"{"bytes": 3}"#)["blob"] as? String == "yyy")
            if runtime == "python" {
                // NaN is not JSON: Python's json would write it anyway, and callers would get text
                // no JSON parser reads.
                let nan = try await fixture.execute(name, #"{"mode": "nan"}"#)
                #expect(nan.failure?.type == "TypeError" && nan.failure?.message.contains("the output is not JSON") == true, "\(nan)")
            }
            #expect(await fixture.loader.hostPIDs() == hosts, "the host served on; none was replaced")
        }
    }

    @Test("the sandbox: no network unless the manifest allows it, no writes outside the scratch folder")
    func sandbox() async throws {
        // A listening socket on the loopback interface of the test's own network namespace.
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(listener) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        listen(listener, 8)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) } }
        let port = UInt16(bigEndian: address.sin_port)

        try await withLoader { fixture in
            let probe = """
                import socket
                def execute(inputs):
                    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                    s.settimeout(2)
                    try:
                        s.connect(("127.0.0.1", inputs["port"]))
                        return {"connected": True}
                    except OSError as error:
                        return {"connected": False, "error": str(error)}
                    finally:
                        s.close()
                """
            try fixture.skill("no-net", files: ["main.py": probe])
            try fixture.skill("with-net", files: ["main.py": probe], extra: "permissions: {network: true}")
            let writer = try fixture.skill("writer", files: [
                "main.py": """
                    def execute(inputs):
                        results = {}
                        for name, path in inputs["paths"].items():
                            try:
                                with open(path, "w") as f:
                                    f.write("x")
                                results[name] = "written"
                            except OSError as error:
                                results[name] = type(error).__name__
                        return results
                    """,
            ])
            for name in ["no-net", "with-net", "writer"] { try await fixture.load(name) }
            let blocked = try await fixture.outputs("no-net", #"{"port": \#(port)}"#)
            #expect(blocked["connected"] as? Bool == false, "\(blocked)")
            let allowed = try await fixture.outputs("with-net", #"{"port": \#(port)}"#)
            #expect(allowed["connected"] as? Bool == true, "\(allowed)")

            let runtime = fixture.loader.configuration.runtimeDirectory
            let written = try await fixture.outputs("writer", """
                {"paths": {"scratch": "/tmp/scratch.txt", "skill": "\(writer)/evil.py", "runtime": "\(runtime)/evil.py",
                           "root": "/atom-evil", "etc": "/etc/atom-evil", "usr": "/usr/atom-evil"}}
                """)
            #expect(written["scratch"] as? String == "written")
            for name in ["skill", "runtime", "root", "etc", "usr"] { #expect(written[name] as? String != "written", "\(name): \(written)") }
            #expect(!FileManager.default.fileExists(atPath: "\(writer)/evil.py"))
            #expect(!FileManager.default.fileExists(atPath: "\(runtime)/evil.py"))
            #expect(!FileManager.default.fileExists(atPath: "/etc/atom-evil"))
        }
    }

    @Test("no sandbox, no execution: a missing bwrap fails closed")
    func sandboxFailsClosed() async throws {
        try await withLoader(configure: { $0.bwrapExecutable = "/nonexistent/bwrap" }) { fixture in
            try fixture.skill("quiet", files: ["main.py": "def execute(inputs):\n    return {}\n"])
            await expectLoaderError(.failedPrecondition, reason: "SANDBOX_UNAVAILABLE", mentions: ["LOADER_SANDBOX=off"]) {
                try await fixture.load("quiet")
            }
            #expect(await fixture.loader.hostPIDs().isEmpty)
        }
    }

    @Test("paths must resolve inside the skills directories: no .., no symbolic link out")
    func pathContainment() async throws {
        try await withLoader { fixture in
            let outside = fixture.root + "/elsewhere/sneaky"
            try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
            try "name: sneaky\nversion: \"1.0.0\"\ndescription: x\ncategory: test\nruntime: python\n".write(toFile: "\(outside)/skill.yaml", atomically: true, encoding: .utf8)
            try "def execute(inputs):\n    return {}\n".write(toFile: "\(outside)/main.py", atomically: true, encoding: .utf8)
            try FileManager.default.createSymbolicLink(atPath: "\(fixture.skills)/sneaky", withDestinationPath: outside)
            for (name, path) in [("", outside), ("sneaky", ""), ("", "\(fixture.skills)/sneaky"), ("", "\(fixture.skills)/../elsewhere/sneaky"), ("", "/etc")] {
                await expectLoaderError(.permissionDenied, reason: "PATH_OUTSIDE_SKILLS_DIRS") {
                    _ = try await fixture.loader.load(name: name, path: path, context: nil, metrics: fixture.metrics)
                }
            }
            await expectLoaderError(.notFound) { _ = try await fixture.loader.load(name: "nothing-here", path: "", context: nil, metrics: fixture.metrics) }
            #expect(await fixture.loader.list().skills.isEmpty)
        }
    }

    @Test("cache_size: the least recently used skill is unloaded; unload and clear leave no host process")
    func cacheLimit() async throws {
        try await withLoader(["LOADER_CACHE_SIZE": "2"]) { fixture in
            for name in ["one", "two", "three"] {
                try fixture.skill(name, files: ["main.py": "def execute(inputs):\n    return {'name': '\(name)'}\n"])
            }
            try await fixture.load("one")
            try await fixture.load("two")
            _ = try await fixture.execute("one")  // "two" is now the least recently used
            try await fixture.load("three")
            let names = await fixture.loader.list().skills.map(\.name)
            #expect(names == ["one", "three"])
            await expectLoaderError(.notFound) { _ = try await fixture.execute("two") }
            let hosts = await fixture.loader.hostPIDs()
            #expect(!hosts.isEmpty)
            #expect(await fixture.loader.unload(name: "one"))
            #expect(await fixture.loader.clear() == 1)
            #expect(await fixture.loader.hostPIDs().isEmpty)
            for pid in hosts { #expect(!processIsAlive(pid), "host \(pid) is gone after the last skill was unloaded") }
        }
    }

    @Test("idle hosts are stopped and start again on the next call")
    func idleHosts() async throws {
        try await withLoader(["LOADER_HOST_IDLE_SECONDS": "1"]) { fixture in
            try fixture.skill("sleepy", files: ["main.py": "def execute(inputs):\n    return {'ok': 1}\n"])
            try await fixture.load("sleepy")
            let hosts = await fixture.loader.hostPIDs()
            #expect(hosts.count == 1)
            try await fixture.eventually("the idle host to stop") {
                await fixture.loader.hostPIDs().isEmpty && !hosts.contains(where: processIsAlive)
            }
            #expect(try await fixture.outputs("sleepy")["ok"] as? Int == 1)
        }
    }

    @Test("a call cancelled while it waits for a host hands its turn on; the calls behind it get the host", .timeLimit(.minutes(1)))
    func cancelledWaiter() async throws {
        try await withLoader(["LOADER_HOSTS_PER_ENVIRONMENT": "1"]) { fixture in
            _ = try fixture.skill("nap", files: ["main.py": "import time\ndef execute(inputs):\n    time.sleep(inputs['ms'] / 1000)\n    return {'slept': inputs['ms']}\n"])
            try await fixture.load("nap")
            // The only host is busy for 3 s; two calls queue behind it, and the first of them
            // is cancelled (as the RPC server cancels a handler whose deadline passed).
            // Margins of a second: on a busy machine the first call may take a while to start.
            let busy = Task { try await fixture.execute("nap", #"{"ms": 3000}"#) }
            try await Task.sleep(for: .milliseconds(1_000))
            let cancelled = Task { try await fixture.execute("nap", #"{"ms": 1}"#) }
            try await Task.sleep(for: .milliseconds(300))
            let queued = Task { try await fixture.execute("nap", #"{"ms": 2}"#) }
            try await Task.sleep(for: .milliseconds(300))
            cancelled.cancel()
            await #expect(throws: CancellationError.self) { _ = try await cancelled.value }
            _ = try await busy.value
            // Before, the cancelled waiter took the wake-up of the freed host with it, and this
            // call waited for ever beside an idle host.
            let started = ContinuousClock.now
            let answer = try await queued.value
            #expect(answer.outputsJson.contains("\"slept\": 2"), "\(answer)")
            #expect(ContinuousClock.now - started < .seconds(10))
        }
    }

    @Test("a skill unloaded while calls queue for its only host: every queued call ends, none is stranded", .timeLimit(.minutes(1)))
    func unloadWithQueuedCalls() async throws {
        try await withLoader(["LOADER_HOSTS_PER_ENVIRONMENT": "1"]) { fixture in
            _ = try fixture.skill("nap", files: ["main.py": "import time\ndef execute(inputs):\n    time.sleep(inputs['ms'] / 1000)\n    return {'slept': inputs['ms']}\n"])
            try await fixture.load("nap")
            let busy = Task { try await fixture.execute("nap", #"{"ms": 1000}"#) }
            try await Task.sleep(for: .milliseconds(300))
            let queued = (0..<3).map { _ in Task { try await fixture.execute("nap", #"{"ms": 1}"#) } }
            try await Task.sleep(for: .milliseconds(200))
            // The busy call's end wakes one queued call, then drops the unused group: the other
            // queued calls were left in it with nobody to wake them.
            #expect(await fixture.loader.unload(name: "nap"))
            _ = try? await busy.value
            for call in queued { _ = try? await call.value }
        }
    }

    @Test("a Node skill: CommonJS helpers, console captured, async execute, errors with their stack; hot reload of a helper")
    func node() async throws {
        try await withLoader(["SKILL_HOT_RELOAD_ENABLED": "true"]) { fixture in
            let folder = try fixture.skill("node-greet", runtime: "node", files: [
                "index.js": """
                    const words = require('./lib/words');
                    module.exports.execute = async (inputs) => {
                      console.log('greeting', inputs.name);
                      if (inputs.name === 'boom') throw new RangeError('no booms');
                      return { greeting: words.hello(inputs.name) };
                    };
                    """,
                "lib/words.js": "module.exports.hello = (name) => 'hello ' + name;\n",
            ])
            try await fixture.load("node-greet")
            let response = try await fixture.execute("node-greet", #"{"name": "ada"}"#)
            #expect(response.outputsJson == #"{"greeting":"hello ada"}"#)
            #expect(response.logs == "greeting ada\n")
            let failed = try await fixture.execute("node-greet", #"{"name": "boom"}"#)
            #expect(failed.failure?.type == "RangeError")
            #expect(failed.failure?.traceback.contains("index.js") == true)
            try fixture.editorSave("module.exports.hello = (name) => 'hi ' + name;\n", to: "\(folder)/lib/words.js")
            try await fixture.eventually("the Node helper reload") {
                try await fixture.outputs("node-greet", #"{"name": "ada"}"#)["greeting"] as? String == "hi ada"
            }
        }
    }

    @Test("parallel executions of one environment use several hosts")
    func parallel() async throws {
        try await withLoader(["LOADER_HOSTS_PER_ENVIRONMENT": "2"]) { fixture in
            try fixture.skill("nap", files: ["main.py": "import time, os\ndef execute(inputs):\n    start = time.monotonic()\n    time.sleep(0.3)\n    return {'pid': os.getpid(), 'start': start, 'end': time.monotonic()}\n"])
            try await fixture.load("nap")
            let intervals = try await withThrowingTaskGroup(of: (Double, Double).self) { group in
                for _ in 0..<4 {
                    group.addTask {
                        let outputs = try await fixture.outputs("nap")
                        return (outputs["start"] as? Double ?? 0, outputs["end"] as? Double ?? 0)
                    }
                }
                return try await group.reduce(into: [(Double, Double)]()) { $0.append($1) }
            }
            // Two of the four calls ran at the same time (the monotonic clock is the machine's):
            // an overlap, not a duration, so a busy machine cannot fail it.
            let overlapping = intervals.indices.contains { i in
                intervals.indices.contains { j in i != j && intervals[i].0 < intervals[j].1 && intervals[j].0 < intervals[i].1 }
            }
            #expect(overlapping, "\(intervals)")
            #expect(await fixture.loader.hostPIDs().count == 2)
        }
    }
}
