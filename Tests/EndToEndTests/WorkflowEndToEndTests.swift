import AtomAPI
import AtomCLI
import AtomProto
import AtomRPC
import AtomTesting
import Foundation
import Synchronization
import Testing

/// Serves atom.v1.Loader's contract (ExecuteSkill, GetSkill, ListSkills) from the test process
/// with fixture skills, registered at the real gateway, so that the real `atom-workflow`
/// process has skills to run through the gateway. The loader service itself is another issue;
/// these tests are about the workflow process (validation, runs, durability, restart).
final class FixtureSkillHost: LoaderService {
    static let skills = ["echo", "sleep", "fail"]
    let executions = Mutex<[String: Int]>([:])
    /// Multiplies every sleep (0: sleeps end at once).
    let sleepScale = Mutex<Double>(1)

    func count(_ tag: String) -> Int { executions.withLock { $0[tag] ?? 0 } }

    func executeSkill(_ request: ExecuteSkillRequest, context: RPCContext) async throws -> ExecuteSkillResponse {
        let inputs = (try JSONSerialization.jsonObject(with: Data(request.inputsJson.utf8)) as? [String: Any]) ?? [:]
        let tag = inputs["tag"] as? String ?? request.name
        executions.withLock { $0[tag, default: 0] += 1 }
        func respond(_ object: [String: Any]) throws -> ExecuteSkillResponse {
            ExecuteSkillResponse(outputsJson: String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self))
        }
        switch request.name {
        case "echo":
            return try respond(inputs)
        case "sleep":
            let milliseconds = inputs["ms"] as? Int ?? 100
            // Long sleeps re-read the scale, so a test can end them early.
            let started = ContinuousClock.now
            while true {
                let wanted = Duration.milliseconds(Int(Double(milliseconds) * sleepScale.withLock { $0 }))
                let left = wanted - (ContinuousClock.now - started)
                if left <= .zero { break }
                try await Task.sleep(for: min(left, .milliseconds(50)))
            }
            return try respond(["slept": milliseconds, "tag": tag])
        case "fail":
            return ExecuteSkillResponse(failure: SkillFailure(type: "ValueError", message: "fixture failure for \(tag)", traceback: "Traceback:\n  line 1\nValueError"))
        default:
            throw RPCError(.notFound, "no skill \(request.name)")
        }
    }

    func getSkill(_ request: GetSkillRequest, context: RPCContext) async throws -> SkillInfo {
        guard Self.skills.contains(request.name) else { throw RPCError(.notFound, "no skill \(request.name)") }
        return SkillInfo(name: request.name, version: "1.0.0", runtime: "fixture", contentHash: "fixture-\(request.name)")
    }

    func listSkills(_ request: ListSkillsRequest, context: RPCContext) async throws -> ListSkillsResponse {
        ListSkillsResponse(skills: Self.skills.map { SkillInfo(name: $0, version: "1.0.0") })
    }

    func loadSkill(_ request: LoadSkillRequest, context: RPCContext) async throws -> LoadSkillResponse {
        LoadSkillResponse(skill: try await getSkill(GetSkillRequest(name: request.name), context: context), cached: true)
    }
    func reloadSkill(_ request: ReloadSkillRequest, context: RPCContext) async throws -> LoadSkillResponse { throw RPCError(.unimplemented, "fixture") }
    func unloadSkill(_ request: UnloadSkillRequest, context: RPCContext) async throws -> UnloadSkillResponse { throw RPCError(.unimplemented, "fixture") }
    func clearCache(_ request: ClearCacheRequest, context: RPCContext) async throws -> ClearCacheResponse { throw RPCError(.unimplemented, "fixture") }
}

/// A fixture host served at a stack's gateway until `stop()`.
final class ServedHost: @unchecked Sendable {
    let host = FixtureSkillHost()
    let server: RPCServer
    let task: Task<Void, Never>

    init(endpoint: String) {
        server = RPCServer(
            service: host,
            configuration: RPCServerConfiguration(gatewayEndpoint: endpoint, instanceID: "fixture-skills", capacity: 256, heartbeatInterval: .milliseconds(200)))
        let server = self.server
        task = Task { await server.run() }
    }

    func stop() async {
        server.shutdown()
        await task.value
    }
}

/// Runs the `atom` CLI on a thread of its own: `CLI.run` waits synchronously, and the fixture
/// skill host in this process needs the shared pool to answer while it waits.
func atomCLI(_ arguments: [String], environment: [String: String]) async throws -> CLI.Outcome {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread {
            do {
                continuation.resume(returning: try CLI.run(arguments, environment: environment))
            } catch {
                continuation.resume(throwing: error)
            }
        }
        thread.start()
    }
}

@Suite("Workflow end to end", .serialized, .timeLimit(.minutes(5)))
struct WorkflowEndToEndTests {
    func withWorkflow<T>(
        skills: Bool = true, environment: [String: String] = [:],
        _ body: (LocalStack, WorkflowClient, ServedHost?) async throws -> T
    ) async throws -> T {
        try await withProcessStack(echoInstances: 0) { stack in
            try stack.start("atom-workflow", name: "workflow-1", environment: environment.merging(["ATOM_INSTANCE_ID": "workflow-1"]) { a, _ in a })
            do {
                try await stack.waitForService(WorkflowClient.serviceName)
            } catch {
                print("--- workflow log ---\n\(stack.log(of: "workflow-1").suffix(3000))")
                throw error
            }
            let served = skills ? ServedHost(endpoint: stack.endpoint) : nil
            if served != nil { try await stack.waitForService(LoaderClient.serviceName) }
            let client = try RPCClient(endpoint: stack.endpoint, name: "workflow-e2e")
            do {
                let result = try await body(stack, WorkflowClient(client), served)
                client.close()
                await served?.stop()
                return result
            } catch {
                print("--- workflow log ---\n\(stack.log(of: "workflow-1").suffix(3000))")
                client.close()
                await served?.stop()
                throw error
            }
        }
    }

    func run(_ workflow: WorkflowClient, _ yaml: String, inputs: String = "", timeout: Duration = .seconds(60)) async throws -> [StepEvent] {
        var events: [StepEvent] = []
        let request = RunWorkflowRequest(workflow: ValidateWorkflowRequest(specText: yaml), inputsJson: inputs)
        for try await event in workflow.runWorkflow(request, options: CallOptions(timeout: timeout)) { events.append(event) }
        return events
    }

    func expectError(_ code: StatusCode, mentions: [String], _ body: () async throws -> Void, sourceLocation: SourceLocation = #_sourceLocation) async {
        do {
            try await body()
            Issue.record("expected \(code.displayName)", sourceLocation: sourceLocation)
        } catch let error as RPCError {
            #expect(error.code == code, "\(error)", sourceLocation: sourceLocation)
            for text in mentions { #expect(error.message.contains(text), "\(error.message) should mention \(text)", sourceLocation: sourceLocation) }
        } catch {
            Issue.record("unexpected \(error)", sourceLocation: sourceLocation)
        }
    }

    @Test("ValidateWorkflow through the gateway: precise errors, the plan, unknown skills asked of the loader")
    func validation() async throws {
        try await withWorkflow { stack, workflow, served in
            let bad = try await workflow.validateWorkflow(ValidateWorkflowRequest(specText: """
                steps:
                  - {id: a, skill: echo, depends_on: [c]}
                  - {id: b, skill: echo, depends_on: [a]}
                  - {id: c, skill: echo, depends_on: [b]}
                  - {id: c, skill: echo}
                """))
            #expect(!bad.valid && bad.plan == nil)
            #expect(bad.errors.map(\.code) == ["DUPLICATE_ID"], "\(bad.errors)")
            let cycle = try await workflow.validateWorkflow(ValidateWorkflowRequest(specText: """
                steps:
                  - {id: a, skill: echo, depends_on: [c]}
                  - {id: b, skill: echo, depends_on: [a]}
                  - {id: c, skill: echo, depends_on: [b]}
                """))
            #expect(cycle.errors.first?.code == "CYCLE" && cycle.errors.first?.message.contains("a -> c -> b -> a") == true, "\(cycle.errors)")
            let unknownField = try await workflow.validateWorkflow(ValidateWorkflowRequest(specText: "steps:\n  - {id: a, skill: echo, retries: 3}\n"))
            #expect(unknownField.errors.first?.code == "BAD_SPEC" && unknownField.errors.first?.stepId == "a")
            #expect(unknownField.errors.first?.message.contains("steps[0] (a).retries: unknown field") == true, "\(unknownField.errors)")

            let good = try await workflow.validateWorkflow(ValidateWorkflowRequest(specText: """
                steps:
                  - {id: a, skill: echo}
                  - {id: b, skill: sleep, inputs: {x: "${steps.a.output.v}"}}
                  - {id: c, skill: nope, depends_on: [a]}
                """, skillCheck: .off))
            #expect(good.valid && good.plan?.levels.map(\.stepIds) == [["a"], ["b", "c"]] && good.plan?.criticalPath.count == 2)
            #expect(good.spec?.steps.count == 3)
            // The loader knows echo and sleep, not nope.
            let checked = try await workflow.validateWorkflow(ValidateWorkflowRequest(spec: good.spec, skillCheck: .auto))
            #expect(!checked.valid && checked.errors.map(\.code) == ["UNKNOWN_SKILL"] && checked.errors.first?.stepId == "c", "\(checked.errors)")

            // Without a loader: `auto` validates and warns, `required` is UNAVAILABLE.
            await served?.stop()
            let request = ValidateWorkflowRequest(specText: "steps:\n  - {id: a, skill: echo}\n", skillCheck: .auto)
            let unchecked = try await workflow.validateWorkflow(request, options: CallOptions(timeout: .seconds(15)))
            #expect(unchecked.valid && unchecked.warnings.first?.contains("skills not checked") == true, "\(unchecked)")
            var required = request
            required.skillCheck = .required
            await expectError(.unavailable, mentions: ["loader"]) {
                _ = try await workflow.validateWorkflow(required, options: CallOptions(timeout: .seconds(15)))
            }
            // Metrics: validations are recorded under their stable name.
            let metrics = try await GatewayClient(workflow.rpc).metrics(GatewayMetricsRequest())
            #expect((metrics.operations.first { $0.operation == "workflow_validation" }?.count ?? 0) >= 5)
            _ = stack
        }
    }

    @Test("RunWorkflow streams step events: parallel branches, data passing, a failing skill skips its dependents")
    func runs() async throws {
        try await withWorkflow { _, workflow, served in
            let host = try #require(served).host
            let started = ContinuousClock.now
            let parallel = try await run(workflow, """
                steps:
                  - {id: a, skill: sleep, inputs: {ms: 200, tag: pa}}
                  - {id: b, skill: sleep, inputs: {ms: 200, tag: pb}}
                  - {id: c, skill: sleep, inputs: {ms: 200, tag: pc}}
                """)
            let elapsed = ContinuousClock.now - started
            #expect(parallel.last?.runState == .succeeded, "\(parallel)")
            // Sequential would be 600 ms or more: a generous bound, timed by the service (from
            // the first step's start to the last one's end), and by the caller as a sanity bound.
            let ends = parallel.filter { $0.state == .succeeded && !$0.stepId.isEmpty }
            let span = (ends.map(\.finishedAtMs).max() ?? 0) - (ends.map(\.startedAtMs).min() ?? 0)
            #expect(ends.count == 3 && span < 590, "3 x 200 ms took \(span) ms in the service")
            #expect(elapsed < .seconds(5), "3 x 200 ms took \(elapsed) end to end")
            #expect(host.count("pa") == 1 && host.count("pb") == 1 && host.count("pc") == 1)

            let events = try await run(workflow, """
                inputs: {who: {type: string, required: true}}
                steps:
                  - {id: greet, skill: echo, inputs: {text: "hello ${inputs.who}", n: 2}}
                  - {id: again, skill: echo, inputs: {text: "${steps.greet.output.text}", mine: own, n: "${steps.greet.output.n}"}}
                  - {id: broken, skill: fail, inputs: {tag: broken}}
                  - {id: after, skill: echo, depends_on: [broken]}
                outputs: {text: "${steps.again.output.text}"}
                """, inputs: #"{"who": "ada"}"#)
            let first = try #require(events.first)
            #expect(first.stepId.isEmpty && first.runState == .running && first.runId.hasPrefix("run-"))
            func final(_ step: String) -> StepEvent? { events.last { $0.stepId == step } }
            #expect(final("again")?.state == .succeeded)
            #expect(try JSONSerialization.jsonObject(with: Data(try #require(final("again")).outputsJson.utf8)) as? NSDictionary
                    == ["text": "hello ada", "mine": "own", "n": 2] as NSDictionary)
            #expect(final("broken")?.state == .failed && final("broken")?.errorType == "ValueError" && final("broken")?.errorCode == .unknown)
            #expect(final("broken")?.error.contains("fixture failure for broken") == true)
            #expect(final("after")?.state == .skipped)
            let end = try #require(events.last)
            #expect(end.stepId.isEmpty && end.runState == .failed && end.outputsJson == #"{"text":"hello ada"}"#)
            // Every step's events: running before its end.
            #expect(events.filter { $0.stepId == "greet" }.map(\.state) == [.running, .succeeded])

            // Bad requests: clear errors, no run stored.
            await expectError(.invalidArgument, mentions: ["workflow is missing"]) { _ = try await workflow.startRun(RunWorkflowRequest()) }
            await expectError(.invalidArgument, mentions: ["input who is required"]) {
                _ = try await run(workflow, "inputs: {who: {required: true}}\nsteps:\n  - {id: a, skill: echo}\n")
            }
            await expectError(.invalidArgument, mentions: ["input zzz is not declared"]) {
                _ = try await run(workflow, "steps:\n  - {id: a, skill: echo}\n", inputs: #"{"zzz": 1}"#)
            }
            await expectError(.invalidArgument, mentions: ["inputs_json is not a JSON object"]) {
                _ = try await run(workflow, "steps:\n  - {id: a, skill: echo}\n", inputs: "[1")
            }
            await expectError(.invalidArgument, mentions: ["not valid", "MISSING_DEPENDENCY [a]"]) {
                _ = try await run(workflow, "steps:\n  - {id: a, skill: echo, depends_on: [zz]}\n")
            }
            let runs = try await workflow.listRuns(ListRunsRequest())
            #expect(runs.runs.count == 2)
            let metrics = try await GatewayClient(workflow.rpc).metrics(GatewayMetricsRequest())
            #expect((metrics.operations.first { $0.operation == "workflow_step" }?.count ?? 0) >= 6)
        }
    }

    @Test("StartRun, GetRun, ListRuns, CancelRun")
    func detachedAndCancel() async throws {
        try await withWorkflow { _, workflow, _ in
            let spec = "name: long-one\nsteps:\n  - {id: quick, skill: echo}\n  - {id: long, skill: sleep, depends_on: [quick], inputs: {ms: 30000}}\n"
            let started = try await workflow.startRun(RunWorkflowRequest(workflow: ValidateWorkflowRequest(specText: spec)))
            var record = try await workflow.getRun(GetRunRequest(runId: started.runId))
            let deadline = ContinuousClock.now + .seconds(10)
            while record.steps.first(where: { $0.stepId == "long" })?.state != .running && ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(20))
                record = try await workflow.getRun(GetRunRequest(runId: started.runId))
            }
            #expect(record.state == .running && record.workflow == "long-one")
            #expect(record.steps.map(\.stepId) == ["quick", "long"] && record.steps[0].state == .succeeded)
            let listed = try await workflow.listRuns(ListRunsRequest(state: .running))
            #expect(listed.runs.map(\.runId) == [started.runId])
            #expect(try await workflow.cancelRun(CancelRunRequest(runId: started.runId)).cancelled)
            record = try await workflow.getRun(GetRunRequest(runId: started.runId))
            #expect(record.state == .cancelled && record.error.contains("CancelRun"))
            #expect(record.steps[1].state == .cancelled)
            await expectError(.failedPrecondition, mentions: ["already ended: cancelled"]) {
                _ = try await workflow.cancelRun(CancelRunRequest(runId: started.runId))
            }
            await expectError(.notFound, mentions: ["no run run-nope"]) { _ = try await workflow.getRun(GetRunRequest(runId: "run-nope")) }
            await expectError(.notFound, mentions: ["no run"]) { _ = try await workflow.cancelRun(CancelRunRequest(runId: "run-nope")) }
            await expectError(.invalidArgument, mentions: ["limit 5000"]) { _ = try await workflow.listRuns(ListRunsRequest(limit: 5_000)) }
            await expectError(.failedPrecondition, mentions: ["only interrupted, failed, cancelled or timed-out"]) {
                let done = try await run(workflow, "steps:\n  - {id: a, skill: echo}\n")
                for try await _ in workflow.resumeRun(ResumeRunRequest(runId: try #require(done.first).runId)) {}
            }
        }
    }

    @Test("kill -9 mid-run: after a restart no record is lost, the run is interrupted, and resume re-runs only unfinished steps")
    func restartAndResume() async throws {
        try await withWorkflow { stack, workflow, served in
            let host = try #require(served).host
            let spec = """
                name: durable
                steps:
                  - {id: a, skill: echo, inputs: {tag: a, v: 1}}
                  - {id: b, skill: sleep, inputs: {ms: 10, tag: b}}
                  - {id: c, skill: sleep, depends_on: [a], inputs: {ms: 20000, tag: c}}
                  - {id: d, skill: echo, inputs: {tag: d, from_a: "${steps.a.output.v}", from_c: "${steps.c.output.slept}"}}
                """
            let started = try await workflow.startRun(RunWorkflowRequest(workflow: ValidateWorkflowRequest(specText: spec)))
            let deadline = ContinuousClock.now + .seconds(10)
            while host.count("c") == 0 || host.count("b") == 0 {
                guard ContinuousClock.now < deadline else { throw RPCError(.deadlineExceeded, "c never started") }
                try await Task.sleep(for: .milliseconds(20))
            }
            var before = try await workflow.getRun(GetRunRequest(runId: started.runId))
            while before.steps.first(where: { $0.stepId == "b" })?.state != .succeeded && ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(20))
                before = try await workflow.getRun(GetRunRequest(runId: started.runId))
            }
            #expect(before.state == .running)
            let process = try #require(stack.processes(named: "workflow-1").last)
            process.kill()
            #expect(await process.waitForExit(timeout: .seconds(5)))

            try stack.start("atom-workflow", name: "workflow-1", environment: ["ATOM_INSTANCE_ID": "workflow-2"])
            try await stack.waitForService(WorkflowClient.serviceName)
            let after = try await workflow.getRun(GetRunRequest(runId: started.runId), options: CallOptions(timeout: .seconds(10)))
            #expect(after.state == .interrupted && after.error.contains("resume"))
            let states = Dictionary(uniqueKeysWithValues: after.steps.map { ($0.stepId, $0.state) })
            #expect(states == ["a": .succeeded, "b": .succeeded, "c": .cancelled, "d": .pending], "\(states)")
            #expect(after.steps.first { $0.stepId == "a" }?.outputsJson == #"{"tag":"a","v":1}"#)
            #expect(try await workflow.listRuns(ListRunsRequest(state: .interrupted)).runs.map(\.runId) == [started.runId])

            host.sleepScale.withLock { $0 = 0 }
            var events: [StepEvent] = []
            for try await event in workflow.resumeRun(ResumeRunRequest(runId: started.runId), options: CallOptions(timeout: .seconds(30))) {
                events.append(event)
            }
            #expect(events.last?.runState == .succeeded, "\(events)")
            #expect(Set(events.map(\.stepId).filter { !$0.isEmpty }) == ["c", "d"])
            #expect(host.count("a") == 1 && host.count("b") == 1 && host.count("c") == 2 && host.count("d") == 1)
            let resumed = try await workflow.getRun(GetRunRequest(runId: started.runId))
            #expect(resumed.state == .succeeded && resumed.resumes == 1)
            let d = try #require(resumed.steps.first { $0.stepId == "d" })
            #expect(d.inputsJson == #"{"from_a":1,"from_c":20000,"tag":"d"}"#)
        }
    }

    @Test("the CLI: validate, run with --input and live progress, status, list, cancel")
    func cli() async throws {
        try await withWorkflow { stack, _, _ in
            let scratch = try ScratchDirectory("workflow-cli")
            defer { scratch.remove() }
            let good = "\(scratch.path)/good.yaml"
            try """
                name: greet
                inputs: {who: {type: string, required: true}, times: {type: integer, default: 1}}
                steps:
                  - {id: hello, skill: echo, inputs: {text: "hello ${inputs.who}", times: "${inputs.times}"}}
                  - {id: wait, skill: sleep, inputs: {ms: 10}}
                  - {id: bye, skill: echo, depends_on: [hello, wait], inputs: {text: "bye ${inputs.who}"}}
                """.write(toFile: good, atomically: true, encoding: .utf8)
            let bad = "\(scratch.path)/bad.yaml"
            try "steps:\n  - {id: a, skill: echo, depends_on: [a]}\n".write(toFile: bad, atomically: true, encoding: .utf8)
            let environment = ["ATOM_GATEWAY": stack.endpoint, "ATOM_HOME": stack.home]

            let valid = try await atomCLI(["workflow", "validate", good], environment: environment)
            #expect(valid.status == 0 && valid.output.contains("valid: 3 step(s), depth 2, width 2"), "\(valid.output)")
            let invalid = try await atomCLI(["workflow", "validate", bad], environment: environment)
            #expect(invalid.status == 1 && invalid.output.contains("SELF_DEPENDENCY [a]"), "\(invalid.output)")

            let run = try await atomCLI(["workflow", "run", good, "--input", "who=ada", "--input", "times=3"], environment: environment)
            #expect(run.status == 0, "\(run.output)")
            #expect(run.output.contains("succeeded hello") && run.output.contains("running   bye") && run.output.contains("succeeded bye"), "\(run.output)")
            #expect(run.output.contains(#""text":"bye ada""#), "\(run.output)")
            let runID = try #require(run.output.split(separator: "\n").first { $0.hasPrefix("run ") && $0.hasSuffix("started") }?.split(separator: " ")[1])

            let status = try await atomCLI(["workflow", "status", String(runID), "--json"], environment: environment)
            #expect(status.status == 0, "\(status.output)")
            let json = try #require(try JSONSerialization.jsonObject(with: Data(status.output.utf8)) as? [String: Any])
            #expect(json["state"] as? String == "succeeded" && (json["steps"] as? [Any])?.count == 3)
            #expect((json["inputs"] as? String) == #"{"times":3,"who":"ada"}"#)

            let list = try await atomCLI(["workflow", "list"], environment: environment)
            #expect(list.status == 0 && list.output.contains(String(runID)) && list.output.contains("greet"), "\(list.output)")
            let missingInput = try await atomCLI(["workflow", "run", good], environment: environment)
            #expect(missingInput.status == 4 && missingInput.output.contains("input who is required"), "\(missingInput.output)")
            let cancel = try await atomCLI(["workflow", "cancel", "run-nope"], environment: environment)
            #expect(cancel.status == 4 && cancel.output.contains("NOT_FOUND"), "\(cancel.output)")
            let detached = try await atomCLI(["workflow", "run", good, "--input", "who=bob", "--detach"], environment: environment)
            #expect(detached.status == 0 && detached.output.hasPrefix("run-"), "\(detached.output)")
        }
    }

    @Test("a second instance on the same ATOM_HOME refuses to start; a bad setting stops it at start")
    func startChecks() async throws {
        try await withWorkflow(skills: false) { stack, _, _ in
            let second = try CLI.runExecutable("atom-workflow", [], environment: ["ATOM_GATEWAY": stack.endpoint, "ATOM_HOME": stack.home])
            #expect(second.status == 2 && second.output.contains("another atom-workflow"), "\(second.output)")
            let badSetting = try CLI.runExecutable(
                "atom-workflow", [], environment: ["ATOM_GATEWAY": stack.endpoint, "ATOM_HOME": stack.home + "/other", "WORKFLOW_CHECK_SKILLS": "maybe"])
            #expect(badSetting.status == 2 && badSetting.output.contains("WORKFLOW_CHECK_SKILLS=maybe"), "\(badSetting.output)")
        }
    }
}

/// The real gateway, `atom-loader` (sandboxed Python hosts) and `atom-workflow` processes:
/// steps run real skills.
@Suite("Workflow through the real loader", .serialized, .timeLimit(.minutes(5)))
struct WorkflowLoaderEndToEndTests {
    func withLoaderAndWorkflow<T>(_ body: (LocalStack, WorkflowClient, LoaderClient) async throws -> T) async throws -> T {
        let scratch = try ScratchDirectory("workflow-loader")
        defer { scratch.remove() }
        let skills = scratch.path + "/skills"
        func skill(_ name: String, _ code: String) throws {
            try FileManager.default.createDirectory(atPath: "\(skills)/\(name)", withIntermediateDirectories: true)
            try """
                name: \(name)
                version: "1.0.0"
                description: A workflow end-to-end skill.
                category: test
                runtime: python
                """.write(toFile: "\(skills)/\(name)/skill.yaml", atomically: true, encoding: .utf8)
            try code.write(toFile: "\(skills)/\(name)/main.py", atomically: true, encoding: .utf8)
        }
        try skill("nap", "import time\n\ndef execute(inputs):\n    time.sleep(inputs['ms'] / 1000)\n    return {'slept': inputs['ms']}\n")
        try skill("shout", "def execute(inputs):\n    return {'text': inputs['text'].upper(), 'mine': inputs.get('mine')}\n")
        try skill("explode", "def execute(inputs):\n    raise ValueError('exploded on purpose')\n")
        return try await withProcessStack(echoInstances: 0) { stack in
            try stack.start("atom-loader", name: "loader-1", environment: [
                "ATOM_INSTANCE_ID": "loader-1", "SKILLS_DIRS": skills, "LOADER_HOSTS_PER_ENVIRONMENT": "4",
            ])
            try stack.start("atom-workflow", name: "workflow-1", environment: ["ATOM_INSTANCE_ID": "workflow-1"])
            do {
                try await stack.waitForService(LoaderClient.serviceName)
                try await stack.waitForService(WorkflowClient.serviceName)
                let client = try RPCClient(endpoint: stack.endpoint, name: "workflow-loader-e2e")
                defer { client.close() }
                return try await body(stack, WorkflowClient(client), LoaderClient(client))
            } catch {
                print("--- loader log ---\n\(stack.log(of: "loader-1").suffix(3000))")
                print("--- workflow log ---\n\(stack.log(of: "workflow-1").suffix(3000))")
                throw error
            }
        }
    }

    func run(_ workflow: WorkflowClient, _ yaml: String, inputs: String = "") async throws -> [StepEvent] {
        var events: [StepEvent] = []
        let request = RunWorkflowRequest(workflow: ValidateWorkflowRequest(specText: yaml), inputsJson: inputs)
        for try await event in workflow.runWorkflow(request, options: CallOptions(timeout: .seconds(120))) { events.append(event) }
        return events
    }

    @Test("real skills: data passing, a skill that raises, unknown skills, and three 200 ms branches in parallel")
    func realSkills() async throws {
        try await withLoaderAndWorkflow { _, workflow, loader in
            // Skills load on first use (by name, from the loader's skills directories).
            let events = try await run(workflow, """
                inputs: [who]
                steps:
                  - {id: first, skill: shout, inputs: {text: "hi ${inputs.who}"}}
                  - {id: second, skill: shout, inputs: {text: "${steps.first.output.text} again", mine: kept}}
                  - {id: bad, skill: explode}
                  - {id: never, skill: shout, depends_on: [bad], inputs: {text: x}}
                """, inputs: #"{"who": "ada"}"#)
            func final(_ step: String) -> StepEvent? { events.last { $0.stepId == step } }
            #expect(final("second")?.state == .succeeded, "\(events)")
            #expect(final("second")?.outputsJson == #"{"mine":"kept","text":"HI ADA AGAIN"}"#)
            #expect(final("bad")?.state == .failed && final("bad")?.errorType == "ValueError" && final("bad")?.error.contains("exploded on purpose") == true)
            #expect(final("never")?.state == .skipped)
            #expect(events.last?.runState == .failed)

            let unknown = try await workflow.validateWorkflow(ValidateWorkflowRequest(specText: "steps:\n  - {id: a, skill: no-such-skill}\n  - {id: b, skill: shout}\n", skillCheck: .required))
            #expect(unknown.errors.map(\.code) == ["UNKNOWN_SKILL"] && unknown.errors.first?.stepId == "a", "\(unknown.errors)")

            // Warm three hosts, then time three 200 ms branches.
            let spec = "steps:\n" + (0..<3).map { "  - {id: n\($0), skill: nap, inputs: {ms: 200}}\n" }.joined()
            _ = try await run(workflow, spec)
            let parallel = try await run(workflow, spec)
            #expect(parallel.last?.runState == .succeeded, "\(parallel)")
            let ends = parallel.filter { $0.state == .succeeded && !$0.stepId.isEmpty }
            let span = (ends.map(\.finishedAtMs).max() ?? 0) - (ends.map(\.startedAtMs).min() ?? 0)
            // Sequential would be 600 ms or more: a generous bound.
            #expect(ends.count == 3 && span < 590, "3 x 200 ms through the loader took \(span) ms")
            let listed = try await loader.listSkills(ListSkillsRequest())
            #expect(Set(listed.skills.map(\.name)).isSuperset(of: ["shout", "explode", "nap"]))
        }
    }
}
