import AtomAPI
import AtomCLI
import AtomProto
import AtomRPC
import AtomTesting
import Foundation
import Testing

/// Runs the `atom` CLI on a thread of its own: `CLI.run` waits synchronously for the child
/// process, which must not hold a thread of the shared pool meanwhile.
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

/// The real gateway, `atom-loader` (sandboxed Python hosts) and `atom-workflow` processes, and
/// the skill folders the loader serves: every step runs a real Python skill.
struct WorkflowStack {
    let stack: LocalStack
    let workflow: WorkflowClient
    let loader: LoaderClient
    /// The loader's skills directory (`SKILLS_DIRS`).
    let skills: String
    /// A second skills directory that holds no skills, only gate files: skills run sandboxed
    /// (nothing written outside their scratch folder) but read the skills directories, so a
    /// test opens a gate (creates the file) to end a skill that waits for it.
    let gates: String

    /// Skill folders: small Python skills, each in `skills/NAME` with its manifest.
    static let skillCode: [String: String] = [
        // Returns its inputs.
        "echo": """
            def execute(inputs):
                return inputs
            """,
        // Sleeps `ms` (or until the file `gate` exists); says when, by the system's monotonic
        // clock (shared by every sandbox), so that tests can see overlaps and re-executions.
        "sleep": """
            import os
            import time


            def execute(inputs):
                ms = inputs.get('ms', 100)
                gate = inputs.get('gate')
                start = time.monotonic()
                deadline = start + ms / 1000
                while True:
                    left = deadline - time.monotonic()
                    if left <= 0 or (gate and os.path.exists(gate)):
                        break
                    time.sleep(min(left, 0.01))
                return {'slept': ms, 'tag': inputs.get('tag'), 'start': start, 'end': time.monotonic()}
            """,
        // Does not import (a syntax error).
        "broken": """
            def execute(inputs)
                return {}
            """,
        // Always raises.
        "fail": """
            def execute(inputs):
                raise ValueError('failure for %s' % inputs.get('tag', 'fail'))
            """,
        // Raises ConnectionError until the file `gate` exists.
        "flaky": """
            import os


            def execute(inputs):
                if not os.path.exists(inputs['gate']):
                    raise ConnectionError('the gate is still closed')
                return {'passed': True}
            """,
    ]

    static func writeSkill(_ name: String, code: String, in skills: String) throws {
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

    /// A gate's path (closed until `open`).
    func gate(_ name: String) -> String { "\(gates)/\(name)" }

    func open(_ gate: String) throws {
        try "open\n".write(toFile: gate, atomically: true, encoding: .utf8)
    }

    /// How many executions of `skill` reached it (the loader's counter: outputs and raised
    /// exceptions count; timeouts and cancelled calls do not).
    func executions(_ skill: String) async throws -> UInt64 {
        try await loader.getSkill(GetSkillRequest(name: skill)).executions
    }

    /// Calls the loader has in flight, as the gateway sees them.
    func loaderInflight() async throws -> UInt32 {
        let services = try await GatewayClient(workflow.rpc).listServices(ListServicesRequest())
        return services.services.first { $0.name == LoaderClient.serviceName }?.instances.map(\.inflight).reduce(0, +) ?? 0
    }

    /// Waits until the loader has no call in flight: a cancelled or timed-out step's skill was
    /// stopped, not left running.
    func waitForIdleLoader(sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let deadline = ContinuousClock.now + .seconds(10)
        var inflight = try await loaderInflight()
        while inflight > 0 && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
            inflight = try await loaderInflight()
        }
        #expect(inflight == 0, "the loader still runs \(inflight) call(s)", sourceLocation: sourceLocation)
    }
}

/// Waits until `condition` holds for the run's record (polling GetRun), or fails.
func waitForRun(
    _ workflow: WorkflowClient, _ runID: String, timeout: Duration = .seconds(30), what: String, _ condition: (RunRecord) -> Bool
) async throws -> RunRecord {
    let deadline = ContinuousClock.now + timeout
    var record = try await workflow.getRun(GetRunRequest(runId: runID))
    while !condition(record) {
        guard ContinuousClock.now < deadline else { throw RPCError(.deadlineExceeded, "\(what) never happened: \(record)") }
        try await Task.sleep(for: .milliseconds(20))
        record = try await workflow.getRun(GetRunRequest(runId: runID))
    }
    return record
}

extension RunRecord {
    func step(_ id: String) -> StepEvent? { steps.first { $0.stepId == id } }
}

/// A skill's own report of when it ran (the `sleep` skill's monotonic start and end).
struct SkillSpan {
    let start: Double
    let end: Double

    init(_ outputsJson: String) throws {
        let object = try #require(try JSONSerialization.jsonObject(with: Data(outputsJson.utf8)) as? [String: Any], "\(outputsJson)")
        start = try #require(object["start"] as? Double, "\(outputsJson)")
        end = try #require(object["end"] as? Double, "\(outputsJson)")
    }
}

@Suite("Workflow end to end", .serialized, .timeLimit(.minutes(5)))
struct WorkflowEndToEndTests {
    /// A stack with the loader (unless `loader` is false) and the workflow service.
    func withWorkflow<T>(
        loader: Bool = true, _ body: (WorkflowStack) async throws -> T
    ) async throws -> T {
        let scratch = try ScratchDirectory("workflow-e2e")
        defer { scratch.remove() }
        let skills = scratch.path + "/skills"
        let gates = scratch.path + "/gates"
        try FileManager.default.createDirectory(atPath: gates, withIntermediateDirectories: true)
        for (name, code) in WorkflowStack.skillCode { try WorkflowStack.writeSkill(name, code: code, in: skills) }
        return try await withProcessStack(echoInstances: 0) { stack in
            if loader {
                try stack.start("atom-loader", name: "loader-1", environment: [
                    "ATOM_INSTANCE_ID": "loader-1", "SKILLS_DIRS": "\(skills):\(gates)", "LOADER_HOSTS_PER_ENVIRONMENT": "4",
                ])
            }
            try stack.start("atom-workflow", name: "workflow-1", environment: ["ATOM_INSTANCE_ID": "workflow-1"])
            let client = try RPCClient(endpoint: stack.endpoint, name: "workflow-e2e")
            defer { client.close() }
            do {
                if loader { try await stack.waitForService(LoaderClient.serviceName) }
                try await stack.waitForService(WorkflowClient.serviceName)
                return try await body(WorkflowStack(
                    stack: stack, workflow: WorkflowClient(client), loader: LoaderClient(client), skills: skills, gates: gates))
            } catch {
                print("--- loader log ---\n\(stack.log(of: "loader-1").suffix(3000))")
                print("--- workflow log ---\n\(stack.log(of: "workflow-1").suffix(3000))")
                throw error
            }
        }
    }

    func run(
        _ workflow: WorkflowClient, _ yaml: String, inputs: String = "", noCache: Bool = false, timeout: Duration = .seconds(60),
        onEvent: (StepEvent) throws -> Void = { _ in }
    ) async throws -> [StepEvent] {
        var events: [StepEvent] = []
        let request = RunWorkflowRequest(workflow: ValidateWorkflowRequest(specText: yaml), inputsJson: inputs, noCache: noCache)
        for try await event in workflow.runWorkflow(request, options: CallOptions(timeout: timeout)) {
            events.append(event)
            try onEvent(event)
        }
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

    /// `{"name": "value", ...}` for a run's inputs.
    func inputs(_ values: [String: String]) throws -> String {
        String(decoding: try JSONSerialization.data(withJSONObject: values, options: [.sortedKeys]), as: UTF8.self)
    }

    @Test("ValidateWorkflow through the gateway: precise errors, the plan, unknown skills asked of the real loader")
    func validation() async throws {
        try await withWorkflow { w in
            let workflow = w.workflow
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
            // The loader finds echo and sleep in its skills directory, not nope.
            let checked = try await workflow.validateWorkflow(ValidateWorkflowRequest(spec: good.spec, skillCheck: .auto))
            #expect(!checked.valid && checked.errors.map(\.code) == ["UNKNOWN_SKILL"] && checked.errors.first?.stepId == "c", "\(checked.errors)")
            let required = try await workflow.validateWorkflow(ValidateWorkflowRequest(
                specText: "steps:\n  - {id: a, skill: no-such-skill}\n  - {id: b, skill: flaky}\n", skillCheck: .required))
            #expect(required.errors.map(\.code) == ["UNKNOWN_SKILL"] && required.errors.first?.stepId == "a", "\(required.errors)")
            #expect(required.errors.first?.message.contains("no skill no-such-skill") == true, "\(required.errors)")
            // A skill that exists but does not import is an error of its own, with the
            // loader's reason (not "the loader did not answer"), in both modes.
            for mode in [SkillCheck.auto, .required] {
                let broken = try await workflow.validateWorkflow(ValidateWorkflowRequest(
                    specText: "steps:\n  - {id: a, skill: broken}\n  - {id: b, skill: nope}\n  - {id: c, skill: echo}\n", skillCheck: mode))
                #expect(!broken.valid && broken.warnings.isEmpty, "\(broken)")
                #expect(broken.errors.map(\.code) == ["SKILL_NOT_LOADABLE", "UNKNOWN_SKILL"] && broken.errors.map(\.stepId) == ["a", "b"], "\(broken.errors)")
                #expect(broken.errors.first?.message.contains("skill broken cannot be loaded") == true, "\(broken.errors)")
                #expect(broken.errors.first?.message.contains("SyntaxError") == true, "\(broken.errors)")
            }
            await expectError(.invalidArgument, mentions: ["SKILL_NOT_LOADABLE [a]", "SyntaxError"]) {
                _ = try await run(workflow, "steps:\n  - {id: a, skill: broken}\n")
            }
            // Checking loaded them (by name, from the skills directory).
            let listed = try await w.loader.listSkills(ListSkillsRequest())
            #expect(Set(listed.skills.map(\.name)).isSuperset(of: ["echo", "sleep", "flaky"]), "\(listed.skills.map(\.name))")

            // Without a loader: `auto` validates and warns, `required` is UNAVAILABLE.
            let loaderProcess = try #require(try w.stack.processes(named: "loader-1").last)
            loaderProcess.terminate()
            #expect(await loaderProcess.waitForExit(timeout: .seconds(10)))
            let request = ValidateWorkflowRequest(specText: "steps:\n  - {id: a, skill: echo}\n", skillCheck: .auto)
            let unchecked = try await workflow.validateWorkflow(request, options: CallOptions(timeout: .seconds(15)))
            #expect(unchecked.valid && unchecked.warnings.first?.contains("skills not checked") == true, "\(unchecked)")
            var mustCheck = request
            mustCheck.skillCheck = .required
            await expectError(.unavailable, mentions: ["loader"]) {
                _ = try await workflow.validateWorkflow(mustCheck, options: CallOptions(timeout: .seconds(15)))
            }
            // A run without a loader fails at the step, UNAVAILABLE, saying so.
            let orphan = try await run(workflow, "steps:\n  - {id: a, skill: echo}\n")
            let step = try #require(orphan.last { $0.stepId == "a" })
            #expect(step.state == .failed && step.errorCode == .unavailable && step.error.contains("loader"), "\(step)")
            // Metrics: validations are recorded under their stable name.
            // (Gathered by a fan-out: on a loaded machine an instance may answer after its deadline.)
            let recorded = try await eventually {
                let metrics = try await GatewayClient(workflow.rpc).metrics(GatewayMetricsRequest())
                return (metrics.operations.first { $0.operation == "workflow_validation" }?.count ?? 0) >= 5
            }
            #expect(recorded)
        }
    }

    @Test("RunWorkflow streams step events: parallel branches, data passing, a failing skill skips its dependents")
    func runs() async throws {
        try await withWorkflow { w in
            let workflow = w.workflow
            func parallelSpec(ms: Int) -> String {
                "steps:\n" + ["a", "b", "c"].map { "  - {id: \($0), skill: sleep, inputs: {ms: \(ms), tag: p\($0)}}\n" }.joined()
            }
            // The first run starts a warm host per branch (hosts start on demand).
            let warm = try await run(workflow, parallelSpec(ms: 300))
            #expect(warm.last?.runState == .succeeded, "\(warm)")
            // Long enough that a loaded machine (load average above 10 in a test run) still shows
            // the overlap: a branch once started 260 ms late with 200 ms sleeps.
            let parallel = try await run(workflow, parallelSpec(ms: 1_000))
            #expect(parallel.last?.runState == .succeeded, "\(parallel)")
            let ends = parallel.filter { $0.state == .succeeded && !$0.stepId.isEmpty }
            #expect(ends.count == 3, "\(parallel)")
            // In parallel: every branch began before any ended, by the skills' own clock and by
            // the service's records (one after the other, none would overlap).
            let spans = try ends.map { try SkillSpan($0.outputsJson) }
            #expect((spans.map(\.start).max() ?? 1) < (spans.map(\.end).min() ?? 0), "\(spans)")
            #expect((ends.map(\.startedAtMs).max() ?? 1) < (ends.map(\.finishedAtMs).min() ?? 0), "\(ends)")
            #expect(Set(ends.compactMap { try? JSONSerialization.jsonObject(with: Data($0.outputsJson.utf8)) as? [String: Any] }.compactMap { $0["tag"] as? String })
                    == ["pa", "pb", "pc"])
            // Every branch of both runs ran once.
            #expect(try await w.executions("sleep") == 6)

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
            #expect(final("broken")?.error.contains("failure for broken") == true, "\(String(describing: final("broken")))")
            #expect(final("after")?.state == .skipped)
            let end = try #require(events.last)
            #expect(end.stepId.isEmpty && end.runState == .failed && end.outputsJson == #"{"text":"hello ada"}"#)
            // Every step's events: running before its end.
            #expect(events.filter { $0.stepId == "greet" }.map(\.state) == [.running, .succeeded])
            // The skipped step never reached its skill: echo ran for greet and again only.
            #expect(try await w.executions("echo") == 2)
            #expect(try await w.executions("fail") == 1)

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
            await expectError(.invalidArgument, mentions: ["not valid", "UNKNOWN_SKILL [a]", "no skill nope"]) {
                _ = try await run(workflow, "steps:\n  - {id: a, skill: nope}\n")
            }
            let runs = try await workflow.listRuns(ListRunsRequest())
            #expect(runs.runs.count == 3)
            // A busy machine can make the instance miss one metrics fan-out (it is then reported
            // missing, not dropped): ask again for a while before judging.
            var steps: UInt64 = 0
            for _ in 0..<20 where steps < 9 {
                let metrics = try await GatewayClient(workflow.rpc).metrics(GatewayMetricsRequest())
                steps = metrics.operations.first { $0.operation == "workflow_step" }?.count ?? 0
                if steps < 9 { try await Task.sleep(for: .milliseconds(250)) }
            }
            #expect(steps >= 9)
        }
    }

    @Test("StartRun, GetRun, ListRuns, CancelRun (the skill is stopped in the loader)")
    func detachedAndCancel() async throws {
        try await withWorkflow { w in
            let workflow = w.workflow
            let spec = "name: long-one\nsteps:\n  - {id: quick, skill: echo}\n  - {id: long, skill: sleep, depends_on: [quick], inputs: {ms: 30000}}\n"
            let started = try await workflow.startRun(RunWorkflowRequest(workflow: ValidateWorkflowRequest(specText: spec)))
            var record = try await waitForRun(workflow, started.runId, what: "step long running") { $0.step("long")?.state == .running }
            #expect(record.state == .running && record.workflow == "long-one")
            #expect(record.steps.map(\.stepId) == ["quick", "long"] && record.steps[0].state == .succeeded)
            // The skill is running in the loader. (The count is the larger of the gateway's and the
            // loader's last heartbeat, which may still include the validation's calls for a moment.)
            let deadline = ContinuousClock.now + .seconds(20)
            while try await w.loaderInflight() != 1 && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
            #expect(try await w.loaderInflight() == 1)
            let listed = try await workflow.listRuns(ListRunsRequest(state: .running))
            #expect(listed.runs.map(\.runId) == [started.runId])
            #expect(try await workflow.cancelRun(CancelRunRequest(runId: started.runId)).cancelled)
            record = try await workflow.getRun(GetRunRequest(runId: started.runId))
            #expect(record.state == .cancelled && record.error.contains("CancelRun"))
            #expect(record.steps[1].state == .cancelled)
            // The cancellation reached the loader: the skill's call ended, it did not sleep on.
            try await w.waitForIdleLoader()
            #expect(try await w.executions("sleep") == 0)
            await expectError(.failedPrecondition, mentions: ["already ended: cancelled"]) {
                _ = try await workflow.cancelRun(CancelRunRequest(runId: started.runId))
            }
            // Four resumes of the cancelled run at once: exactly one goes on, the others are
            // refused while it runs, and a cancel reaches the one that runs.
            let runID = started.runId
            let outcomes = try await withThrowingTaskGroup(of: String.self) { group in
                for _ in 0..<4 {
                    group.addTask {
                        do {
                            for try await _ in workflow.resumeRun(ResumeRunRequest(runId: runID), options: CallOptions(timeout: .seconds(60))) {}
                            return "streamed"
                        } catch let error as RPCError where error.code == .failedPrecondition && error.message.contains("is running") {
                            return "refused"
                        }
                    }
                }
                var outcomes: [String] = []
                for try await outcome in group {
                    outcomes.append(outcome)
                    if outcomes.count == 3 { #expect(try await workflow.cancelRun(CancelRunRequest(runId: runID)).cancelled) }
                }
                return outcomes
            }
            #expect(outcomes.sorted() == ["refused", "refused", "refused", "streamed"], "\(outcomes)")
            record = try await workflow.getRun(GetRunRequest(runId: runID))
            #expect(record.state == .cancelled && record.resumes == 1, "\(record)")
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
        try await withWorkflow { w in
            let workflow = w.workflow
            // c waits for its gate (or 20 s): it is still running when the service is killed,
            // and ends at once when resumed with the gate open.
            let gate = w.gate("durable-c")
            let spec = """
                name: durable
                inputs: [gate]
                steps:
                  - {id: a, skill: echo, inputs: {tag: a, v: 1}}
                  - {id: b, skill: echo, inputs: {tag: b}}
                  - {id: c, skill: sleep, depends_on: [a], inputs: {ms: 20000, tag: c, gate: "${inputs.gate}"}}
                  - {id: d, skill: echo, inputs: {tag: d, from_a: "${steps.a.output.v}", from_c: "${steps.c.output.slept}"}}
                """
            let started = try await workflow.startRun(RunWorkflowRequest(
                workflow: ValidateWorkflowRequest(specText: spec), inputsJson: try inputs(["gate": gate])))
            let before = try await waitForRun(workflow, started.runId, what: "c running after a and b") {
                $0.step("c")?.state == .running && $0.step("b")?.state == .succeeded
            }
            #expect(before.state == .running)
            let deadline = ContinuousClock.now + .seconds(20)
            while try await w.loaderInflight() == 0 && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
            let process = try #require(try w.stack.processes(named: "workflow-1").last)
            process.kill()
            #expect(await process.waitForExit(timeout: .seconds(5)))
            // The dead workflow's skill call does not sleep on in the loader for nobody: the
            // gateway cancels the calls of a client that stops sending keepalives.
            try await w.waitForIdleLoader()
            #expect(try await w.executions("sleep") == 0)

            try w.stack.start("atom-workflow", name: "workflow-1", environment: ["ATOM_INSTANCE_ID": "workflow-2"])
            try await w.stack.waitForService(WorkflowClient.serviceName)
            let after = try await workflow.getRun(GetRunRequest(runId: started.runId), options: CallOptions(timeout: .seconds(10)))
            #expect(after.state == .interrupted && after.error.contains("resume"))
            let states = Dictionary(uniqueKeysWithValues: after.steps.map { ($0.stepId, $0.state) })
            #expect(states == ["a": .succeeded, "b": .succeeded, "c": .cancelled, "d": .pending], "\(states)")
            #expect(after.step("a")?.outputsJson == #"{"tag":"a","v":1}"#)
            #expect(try await workflow.listRuns(ListRunsRequest(state: .interrupted)).runs.map(\.runId) == [started.runId])

            try w.open(gate)
            let resumedAt = UInt64(Date().timeIntervalSince1970 * 1000)
            var events: [StepEvent] = []
            for try await event in workflow.resumeRun(ResumeRunRequest(runId: started.runId), options: CallOptions(timeout: .seconds(30))) {
                events.append(event)
            }
            #expect(events.last?.runState == .succeeded, "\(events)")
            #expect(Set(events.map(\.stepId).filter { !$0.isEmpty }) == ["c", "d"])
            let resumed = try await workflow.getRun(GetRunRequest(runId: started.runId))
            #expect(resumed.state == .succeeded && resumed.resumes == 1)
            // a and b kept their records (they did not run again); c ran again, after the resume.
            for id in ["a", "b"] {
                let old = try #require(after.step(id))
                let new = try #require(resumed.step(id))
                #expect(new.state == .succeeded && new.attempt == old.attempt && new.startedAtMs == old.startedAtMs && new.finishedAtMs == old.finishedAtMs)
            }
            let c = try #require(resumed.step("c"))
            #expect(c.state == .succeeded && c.startedAtMs >= resumedAt, "\(c)")
            // The loader ran echo for a, b (before the kill) and d (after): never twice for a or b.
            #expect(try await w.executions("echo") == 3)
            let d = try #require(resumed.step("d"))
            #expect(d.inputsJson == #"{"from_a":1,"from_c":20000,"tag":"d"}"#)
        }
    }

    @Test("retries: a listed exception is retried with backoff until the skill passes or the attempts run out; other failures are not retried")
    func retries() async throws {
        try await withWorkflow { w in
            let gate = w.gate("flaky")
            let events = try await run(w.workflow, """
                inputs: [gate]
                steps:
                  - id: flaky
                    skill: flaky
                    inputs: {gate: "${inputs.gate}"}
                    retry: {max_attempts: 100, initial_backoff_ms: 20, max_backoff_ms: 50, retry_on: [ConnectionError]}
                  - {id: doomed, skill: fail, inputs: {tag: doomed}, retry: {max_attempts: 3, initial_backoff_ms: 10, retry_on: [ValueError]}}
                  - {id: once, skill: fail, inputs: {tag: once}, retry: 3}
                """, inputs: try inputs(["gate": gate])) { event in
                // The second attempt began: the first one failed. Now let it pass.
                if event.stepId == "flaky" && event.state == .running && event.attempt == 2 { try w.open(gate) }
            }
            #expect(events.last?.runState == .failed, "\(events)")
            func running(_ step: String) -> [StepEvent] { events.filter { $0.stepId == step && $0.state == .running } }
            func final(_ step: String) -> StepEvent? { events.last { $0.stepId == step } }

            let flaky = try #require(final("flaky"))
            #expect(flaky.state == .succeeded && flaky.attempt >= 2 && flaky.outputsJson == #"{"passed":true}"#, "\(flaky)")
            #expect(running("flaky").map(\.attempt) == Array(1...flaky.attempt))
            let retry = try #require(running("flaky").dropFirst().first)
            #expect(retry.errorType == "ConnectionError" && retry.error.contains("attempt 1 failed") && retry.error.contains("the gate is still closed"), "\(retry)")
            // Every attempt reached the skill.
            #expect(try await w.executions("flaky") == UInt64(flaky.attempt))

            let doomed = try #require(final("doomed"))
            #expect(doomed.state == .failed && doomed.attempt == 3 && doomed.errorType == "ValueError" && doomed.error.contains("failure for doomed"), "\(doomed)")
            #expect(running("doomed").map(\.attempt) == [1, 2, 3])
            // A ValueError (UNKNOWN) is not among the default codes: one attempt.
            let once = try #require(final("once"))
            #expect(once.state == .failed && once.attempt == 1 && once.errorCode == .unknown, "\(once)")
            #expect(running("once").map(\.attempt) == [1])
            #expect(try await w.executions("fail") == 4)
        }
    }

    @Test("timeouts: a step past its timeout fails DEADLINE_EXCEEDED (retried by default), a workflow past its own times out; the loader stops the skill")
    func timeouts() async throws {
        try await withWorkflow { w in
            let events = try await run(w.workflow, """
                steps:
                  - {id: slow, skill: sleep, timeout_seconds: 1, retry: {max_attempts: 2, initial_backoff_ms: 10}, inputs: {ms: 20000, tag: slow}}
                  - {id: after, skill: echo, depends_on: [slow]}
                  - {id: other, skill: echo, inputs: {v: 1}}
                """)
            func final(_ step: String) -> StepEvent? { events.last { $0.stepId == step } }
            #expect(events.last?.runState == .failed, "\(events)")
            let slow = try #require(final("slow"))
            #expect(slow.state == .failed && slow.errorCode == .deadlineExceeded && slow.attempt == 2, "\(slow)")
            // Each attempt ended at its limit, far from the skill's 20 s (a generous bound).
            #expect(slow.durationUs < 15_000_000, "\(slow)")
            #expect(events.filter { $0.stepId == "slow" && $0.state == .running }.last?.errorCode == .deadlineExceeded)
            #expect(final("after")?.state == .skipped && final("other")?.state == .succeeded)
            // The skill never finished (not counted), and its calls ended in the loader.
            #expect(try await w.executions("sleep") == 0)
            try await w.waitForIdleLoader()

            // The workflow's own limit: `long` starts half a second in, so its own limit (the
            // workflow's, 2 s) ends after the workflow's.
            let timedOut = try await run(w.workflow, """
                timeout_seconds: 2
                steps:
                  - {id: first, skill: sleep, inputs: {ms: 500}}
                  - {id: long, skill: sleep, depends_on: [first], inputs: {ms: 20000}}
                  - {id: next, skill: echo, depends_on: [long]}
                """)
            let end = try #require(timedOut.last)
            #expect(end.runState == .timedOut && end.error.contains("timeout_seconds"), "\(timedOut)")
            #expect(timedOut.last { $0.stepId == "long" }?.state == .cancelled)
            let next = try #require(timedOut.last { $0.stepId == "next" })
            #expect(next.state == .cancelled && next.error.contains("not started"), "\(next)")
            #expect(try await w.workflow.getRun(GetRunRequest(runId: end.runId)).state == .timedOut)
            try await w.waitForIdleLoader()
            // The loader replaced the hosts it stopped: the skill runs again.
            let again = try await run(w.workflow, "steps:\n  - {id: short, skill: sleep, inputs: {ms: 1}}\n")
            #expect(again.last?.runState == .succeeded, "\(again)")
        }
    }

    @Test("cache: a cacheable step's result is reused for the same skill version and inputs; not with no_cache, other inputs or a new version")
    func cache() async throws {
        try await withWorkflow { w in
            let spec = """
                inputs: [tag]
                steps:
                  - {id: stamp, skill: sleep, cache: true, inputs: {ms: 1, tag: "${inputs.tag}"}}
                """
            func stamp(_ tag: String, noCache: Bool = false) async throws -> StepEvent {
                let events = try await run(w.workflow, spec, inputs: try inputs(["tag": tag]), noCache: noCache)
                #expect(events.last?.runState == .succeeded, "\(events)")
                return try #require(events.last { $0.stepId == "stamp" })
            }
            let first = try await stamp("x")
            #expect(first.state == .succeeded && first.attempt == 1)
            let hit = try await stamp("x")
            #expect(hit.state == .cached && hit.attempt == 0 && hit.outputsJson == first.outputsJson, "\(hit)")
            #expect(try await w.workflow.getRun(GetRunRequest(runId: hit.runId)).step("stamp")?.state == .cached)
            #expect(try await w.executions("sleep") == 1)

            // no_cache runs the skill (a later start) and stores the fresh result.
            let fresh = try await stamp("x", noCache: true)
            #expect(fresh.state == .succeeded && fresh.attempt == 1)
            #expect(try SkillSpan(fresh.outputsJson).start > SkillSpan(first.outputsJson).start)
            let other = try await stamp("y")
            #expect(other.state == .succeeded)
            #expect(try await w.executions("sleep") == 3)
            let freshHit = try await stamp("x")
            #expect(freshHit.state == .cached && freshHit.outputsJson == fresh.outputsJson)

            // A new version of the skill (its code changed and reloaded): not served from the cache.
            let oldHash = try await w.loader.getSkill(GetSkillRequest(name: "sleep")).contentHash
            let code = try #require(WorkflowStack.skillCode["sleep"])
            try WorkflowStack.writeSkill("sleep", code: code + "\n# version 2\n", in: w.skills)
            let reloaded = try await w.loader.reloadSkill(ReloadSkillRequest(name: "sleep"))
            #expect(!reloaded.cached && reloaded.skill?.contentHash != oldHash)
            let newVersion = try await stamp("x")
            #expect(newVersion.state == .succeeded && newVersion.outputsJson != fresh.outputsJson, "\(newVersion)")
            #expect(try await w.executions("sleep") == 4)
            let newHit = try await stamp("x")
            #expect(newHit.state == .cached && newHit.outputsJson == newVersion.outputsJson)
        }
    }

    @Test("the CLI: validate, run with --input and live progress, status, list, cancel")
    func cli() async throws {
        try await withWorkflow { w in
            let stack = w.stack
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

            // --json: one JSON object a line (JSON Lines), the run's end last, exit 0 when it
            // succeeded; a failure is one more line of JSON.
            let jsonRun = try await atomCLI(["workflow", "run", good, "--input", "who=ada", "--json"], environment: environment)
            #expect(jsonRun.status == 0, "\(jsonRun.output)")
            let objects = try jsonRun.output.split(separator: "\n").map { line in
                try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "not a JSON line: \(line)")
            }
            #expect(objects.last?["run_state"] as? String == "succeeded", "\(jsonRun.output)")
            let jsonMissing = try await atomCLI(["workflow", "run", good, "--json"], environment: environment)
            #expect(jsonMissing.status == 4 && jsonMissing.output.contains(#"{"error":{"#), "\(jsonMissing.output)")

            let list = try await atomCLI(["workflow", "list"], environment: environment)
            #expect(list.status == 0 && list.output.contains(String(runID)) && list.output.contains("greet"), "\(list.output)")
            let missingInput = try await atomCLI(["workflow", "run", good], environment: environment)
            #expect(missingInput.status == 4 && missingInput.output.contains("input who is required"), "\(missingInput.output)")
            let cancel = try await atomCLI(["workflow", "cancel", "run-nope"], environment: environment)
            #expect(cancel.status == 4 && cancel.output.contains("NOT_FOUND"), "\(cancel.output)")
            // A caller whose deadline passes cancels its run, and the store says so (the run
            // was once left "running" for good, which neither cancel nor resume could mend).
            let slow = "\(scratch.path)/slow.yaml"
            try "name: slow\nsteps:\n  - {id: nap, skill: sleep, inputs: {ms: 4000}}\n".write(toFile: slow, atomically: true, encoding: .utf8)
            let late = try await atomCLI(["workflow", "run", slow, "--deadline", "1"], environment: environment)
            #expect(late.status == 4 && late.output.contains("DEADLINE_EXCEEDED"), "\(late.output)")
            let lateID = try #require(late.output.split(separator: "\n").first { $0.hasPrefix("run ") && $0.hasSuffix("started") }?.split(separator: " ")[1], "\(late.output)")
            let lateEnd = try await waitForRun(w.workflow, String(lateID), what: "the run whose caller's deadline passed ending") { $0.state != .running }
            #expect(lateEnd.state == .cancelled && lateEnd.steps.first?.state == .cancelled, "\(lateEnd)")

            let detached = try await atomCLI(["workflow", "run", good, "--input", "who=bob", "--detach"], environment: environment)
            #expect(detached.status == 0 && detached.output.hasPrefix("run-"), "\(detached.output)")
            // The detached run ends on its own (through the loader), and the status says so.
            let detachedID = detached.output.trimmingCharacters(in: .whitespacesAndNewlines)
            let ended = try await waitForRun(w.workflow, detachedID, what: "the detached run ending") { $0.state != .running }
            #expect(ended.state == .succeeded && ended.outputsJson.contains("bye bob"), "\(ended)")
        }
    }

    @Test("a second instance on the same ATOM_HOME refuses to start; a bad setting stops it at start")
    func startChecks() async throws {
        try await withWorkflow(loader: false) { w in
            let stack = w.stack
            let second = try CLI.runExecutable("atom-workflow", [], environment: ["ATOM_GATEWAY": stack.endpoint, "ATOM_HOME": stack.home])
            #expect(second.status == 2 && second.output.contains("another atom-workflow"), "\(second.output)")
            let badSetting = try CLI.runExecutable(
                "atom-workflow", [], environment: ["ATOM_GATEWAY": stack.endpoint, "ATOM_HOME": stack.home + "/other", "WORKFLOW_CHECK_SKILLS": "maybe"])
            #expect(badSetting.status == 2 && badSetting.output.contains("WORKFLOW_CHECK_SKILLS=maybe"), "\(badSetting.output)")
        }
    }
}
