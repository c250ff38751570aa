import AtomMetrics
import AtomProto
import AtomRPC
import Histogram
@testable import AtomWorkflow
import Foundation
import Synchronization
import Testing

/// Runs real Swift closures as skills: a test of the scheduler (parallelism, timeouts,
/// retries, cancellation, failure propagation, the cache), not of the loader.
final class ClosureExecutor: StepExecutor {
    typealias Skill = @Sendable (JSONValue) async throws -> JSONValue
    let skills: [String: Skill]
    let calls = Mutex<[(skill: String, inputs: JSONValue, start: ContinuousClock.Instant, end: ContinuousClock.Instant?)]>([])
    let running = Mutex<(now: Int, peak: Int)>((0, 0))
    let identities = Mutex<[String: String]>([:])

    init(_ skills: [String: Skill]) { self.skills = skills }

    func execute(skill: String, inputs: String, timeout: Duration) async throws -> String {
        guard let body = skills[skill] else { throw StepFailure(.notFound, "no skill \(skill)") }
        let value = try JSONValue.parse(inputs)
        let index = calls.withLock { calls in
            calls.append((skill, value, .now, nil))
            return calls.count - 1
        }
        running.withLock { state in
            state.now += 1
            state.peak = max(state.peak, state.now)
        }
        defer {
            running.withLock { $0.now -= 1 }
            calls.withLock { $0[index].end = .now }
        }
        return try await body(value).canonicalText
    }

    func identity(of skill: String) async throws -> String { identities.withLock { $0[skill] ?? "\(skill)@1" } }

    func skillProblems(among names: Set<String>) async throws -> [String: SkillProblem] {
        Dictionary(uniqueKeysWithValues: names.subtracting(skills.keys).map { ($0, .unknown) })
    }

    func count(_ skill: String) -> Int { calls.withLock { $0.filter { $0.skill == skill }.count } }

    static func sleep(_ milliseconds: Int) -> Skill {
        { inputs in
            try await Task.sleep(for: .milliseconds(milliseconds))
            return .object(["slept": .int(Int64(milliseconds)), "tag": inputs[member: "tag"] ?? .null])
        }
    }
}

/// Collects a run's events.
final class EventLog: Sendable {
    let events = Mutex<[StepEvent]>([])
    func add(_ event: StepEvent) { events.withLock { $0.append(event) } }
    var all: [StepEvent] { events.withLock { $0 } }
    func final(_ step: String) -> StepEvent? { all.last { $0.stepId == step } }
    func states(_ step: String) -> [StepState] { all.filter { $0.stepId == step }.map(\.state) }
}

struct Harness {
    let directory: String
    let store: RunStore
    let cache: ResultCache
    let metrics = LatencyRecorder()

    init(cache: ResultCache = ResultCache()) throws {
        directory = NSTemporaryDirectory() + "atom-workflow-engine-\(getpid())-\(UUID().uuidString)"
        store = try RunStore(path: "\(directory)/runs.sqlite")
        self.cache = cache
    }

    func remove() { try? FileManager.default.removeItem(atPath: directory) }

    /// Validates and runs `yaml`; returns the outcome and the events.
    func run(
        _ yaml: String, executor: ClosureExecutor, inputs: [String: JSONValue] = [:], control: RunControl = RunControl(),
        runID: String = "run-\(UUID().uuidString.prefix(8))", finished: [Int: StepEvent] = [:], noCache: Bool = false
    ) async throws -> (RunOutcome, EventLog) {
        let outcome = WorkflowValidator.validate(try SpecParser.parse(yaml))
        let compiled = try #require(outcome.compiled, "\(outcome.errors)")
        try await store.create(runID: runID, spec: compiled.spec, inputs: JSONValue.object(inputs).canonicalText, startedAt: RunStore.nowMs())
        let engine = WorkflowEngine(executor: executor, store: store, cache: cache, metrics: metrics)
        let log = EventLog()
        let result = await engine.run(
            RunRequest(runID: runID, compiled: compiled, inputs: inputs, noCache: noCache, finished: finished), control: control) { log.add($0) }
        return (result, log)
    }
}

@Suite("Workflow engine", .serialized)
struct EngineTests {
    @Test("three independent 200 ms steps run in parallel (well under 600 ms)")
    func parallel() async throws {
        let harness = try Harness()
        defer { harness.remove() }
        let executor = ClosureExecutor(["sleep": ClosureExecutor.sleep(200)])
        let (outcome, log) = try await harness.run("""
            steps:
              - {id: a, skill: sleep}
              - {id: b, skill: sleep}
              - {id: c, skill: sleep}
            """, executor: executor)
        #expect(outcome.state == .succeeded, "\(outcome.error)")
        #expect(executor.running.withLock { $0.peak } == 3)
        // All three were running at the same moment: each started before any ended. (The
        // wall-clock bound, 3 x 200 ms in well under 600 ms, is checked end to end through the
        // real process; in here other suites share the thread pool and can delay wake-ups.)
        let calls = executor.calls.withLock { $0 }
        let lastStart = try #require(calls.map(\.start).max())
        let firstEnd = try #require(calls.compactMap(\.end).min())
        #expect(calls.count == 3 && lastStart < firstEnd)
        #expect(log.all.first?.runState == .running && log.all.last?.runState == .succeeded)
        #expect(try JSONValue.parse(outcome.outputs)[member: "a"]?[member: "slept"] == .int(200))
    }

    @Test("a step starts as soon as its own dependencies are done, not level by level; parallelism is a limit")
    func eagerAndBounded() async throws {
        let harness = try Harness()
        defer { harness.remove() }
        // The slow step ends only once both fast steps have started (or after 10 s): an engine
        // that waited for the whole level would start `next` after it, whatever the machine's load.
        let fastStarts = Mutex(0)
        let executor = ClosureExecutor([
            "fast": { inputs in
                fastStarts.withLock { $0 += 1 }
                return try await ClosureExecutor.sleep(20)(inputs)
            },
            "slow": { _ in
                let deadline = ContinuousClock.now + .seconds(10)
                while fastStarts.withLock({ $0 }) < 2 && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
                return .object(["slept": .int(0)])
            },
        ])
        let (outcome, _) = try await harness.run("""
            steps:
              - {id: quick, skill: fast}
              - {id: long, skill: slow}
              - {id: next, skill: fast, depends_on: [quick]}
            """, executor: executor)
        #expect(outcome.state == .succeeded)
        let calls = executor.calls.withLock { $0 }
        let longEnd = try #require(calls.first { $0.skill == "slow" }?.end)
        let nextStart = try #require(calls.last { $0.skill == "fast" }?.start)
        #expect(nextStart < longEnd, "next waited for the slow step of the same level")

        let bounded = ClosureExecutor(["sleep": ClosureExecutor.sleep(50)])
        let (limited, _) = try await harness.run(
            "parallelism: 2\nsteps:\n" + (0..<6).map { "  - {id: s\($0), skill: sleep}\n" }.joined(), executor: bounded)
        #expect(limited.state == .succeeded)
        #expect(bounded.running.withLock { $0.peak } == 2)
    }

    @Test("data passing: references resolve, and a dependency's output never overwrites a step's own inputs")
    func dataPassing() async throws {
        let harness = try Harness()
        defer { harness.remove() }
        let executor = ClosureExecutor([
            "produce": { _ in .object(["x": .string("theirs"), "n": .int(7), "nested": .object(["list": .array([.int(1), .int(2)])])]) },
            "echo": { inputs in inputs },
        ])
        let (outcome, log) = try await harness.run("""
            inputs: {who: {type: string, required: true}, times: {type: integer, default: 2}}
            steps:
              - {id: produce, skill: produce}
              - id: use
                skill: echo
                inputs: {x: mine, y: "${steps.produce.output.x}", n: "${steps.produce.output.n}", second: "${steps.produce.output.nested.list.1}",
                         text: "hi ${inputs.who} x${inputs.times}: ${steps.produce.output.nested}", literal: "$${not a ref}"}
            outputs: {result: "${steps.use.output}", who: "${inputs.who}"}
            """, executor: executor, inputs: ["who": .string("ada"), "times": .int(2)])
        #expect(outcome.state == .succeeded, "\(outcome.error)")
        let received = try #require(executor.calls.withLock { $0.last?.inputs })
        #expect(received[member: "x"] == .string("mine"))
        #expect(received[member: "y"] == .string("theirs"))
        #expect(received[member: "n"] == .int(7))
        #expect(received[member: "second"] == .int(2))
        #expect(received[member: "text"] == .string(#"hi ada x2: {"list":[1,2]}"#))
        #expect(received[member: "literal"] == .string("${not a ref}"))
        #expect(try JSONValue.parse(outcome.outputs)[member: "who"] == .string("ada"))
        #expect(log.final("use")?.inputsJson.contains("mine") == true)

        // A reference to a member that is not there fails the step with a clear message.
        let (missing, missingLog) = try await harness.run("""
            steps:
              - {id: produce, skill: produce}
              - {id: use, skill: echo, inputs: {y: "${steps.produce.output.nope}"}}
            """, executor: executor)
        #expect(missing.state == .failed)
        #expect(missingLog.final("use")?.error.contains("has no member nope (it has n, nested, x)") == true, "\(missingLog.final("use")?.error ?? "")")
    }

    @Test("per-step timeouts fail the step with DEADLINE_EXCEEDED")
    func stepTimeout() async throws {
        let harness = try Harness()
        defer { harness.remove() }
        let executor = ClosureExecutor(["sleep": ClosureExecutor.sleep(10_000)])
        let started = ContinuousClock.now
        let (outcome, log) = try await harness.run("steps:\n  - {id: slow, skill: sleep, timeout_seconds: 1}\n", executor: executor)
        #expect(ContinuousClock.now - started < .seconds(8), "well before the 10 s sleep ends")
        #expect(outcome.state == .failed)
        let event = try #require(log.final("slow"))
        #expect(event.state == .failed && event.errorCode == .deadlineExceeded && event.error.contains("timed out after 1 s"))
    }

    @Test("retries with exponential backoff on retryable codes and exception types; others fail at once")
    func retries() async throws {
        let harness = try Harness()
        defer { harness.remove() }
        let failures = Mutex<[String: Int]>([:])
        let executor = ClosureExecutor([
            "flaky": { inputs in
                let key = inputs[member: "key"].map { $0.canonicalText } ?? ""
                let seen = failures.withLock { state -> Int in
                    state[key, default: 0] += 1
                    return state[key]!
                }
                if seen < 3 { throw StepFailure(.unavailable, "try again") }
                return .object(["ok": .bool(true)])
            },
            "raises": { _ in throw StepFailure(.unknown, "boom", errorType: "ConnectionError") },
            "bad": { _ in throw StepFailure(.invalidArgument, "never retry") },
        ])
        let (outcome, log) = try await harness.run("""
            steps:
              - {id: flaky, skill: flaky, inputs: {key: 1}, retry: {max_attempts: 5, initial_backoff_ms: 60, multiplier: 2, jitter: 0}}
              - {id: typed, skill: raises, retry: {max_attempts: 2, initial_backoff_ms: 1, retry_on: [ConnectionError]}}
              - {id: bad, skill: bad, retry: {max_attempts: 5, initial_backoff_ms: 1}}
            """, executor: executor)
        #expect(outcome.state == .failed)
        #expect(log.final("flaky")?.state == .succeeded && log.final("flaky")?.attempt == 3)
        let starts = executor.calls.withLock { $0.filter { $0.skill == "flaky" }.map(\.start) }
        #expect(starts.count == 3)
        // Backoff 60 ms then 120 ms (no jitter): generous lower bounds only.
        #expect(starts[1] - starts[0] >= .milliseconds(55) && starts[2] - starts[1] >= .milliseconds(110), "\(starts)")
        #expect(log.states("flaky").filter { $0 == .running }.count == 3)
        #expect(log.all.contains { $0.stepId == "flaky" && $0.attempt == 2 && $0.error.contains("attempt 1 failed") })
        #expect(executor.count("raises") == 2 && log.final("typed")?.errorType == "ConnectionError")
        #expect(executor.count("bad") == 1 && log.final("bad")?.errorCode == .invalidArgument)
    }

    @Test("conditions: a false condition skips the step; its dependents still run and see null")
    func conditions() async throws {
        let harness = try Harness()
        defer { harness.remove() }
        let executor = ClosureExecutor(["echo": { $0 }, "status": { _ in .object(["code": .int(404)]) }])
        let (outcome, log) = try await harness.run("""
            inputs: {mode: {type: string, default: fast}}
            steps:
              - {id: check, skill: status}
              - {id: ok, skill: echo, condition: "${steps.check.output.code} == 200", inputs: {v: 1}}
              - {id: notfound, skill: echo, condition: "${steps.check.output.code} == 404 and ${inputs.mode} == 'fast'", inputs: {v: 2}}
              - {id: merge, skill: echo, inputs: {a: "${steps.ok.output.v}", b: "${steps.notfound.output.v}", s: "${steps.ok.status}"}}
            """, executor: executor, inputs: ["mode": .string("fast")])
        #expect(outcome.state == .succeeded, "\(outcome.error)")
        #expect(log.final("ok")?.state == .skipped && log.final("ok")?.error == "condition is false")
        #expect(log.final("notfound")?.state == .succeeded)
        let merged = try JSONValue.parse(try #require(log.final("merge")).outputsJson)
        #expect(merged == .object(["a": .null, "b": .int(2), "s": .string("skipped")]))
        #expect(executor.count("echo") == 2)
    }

    @Test("a failure skips its dependents while independent branches finish; fail_fast stops everything")
    func failurePropagation() async throws {
        let harness = try Harness()
        defer { harness.remove() }
        let executor = ClosureExecutor([
            "fail": { _ in throw StepFailure(.unknown, "it broke", errorType: "ValueError") },
            "sleep": ClosureExecutor.sleep(300), "echo": { $0 },
        ])
        let spec = """
            steps:
              - {id: bad, skill: fail}
              - {id: child, skill: echo, depends_on: [bad]}
              - {id: grandchild, skill: echo, depends_on: [child]}
              - {id: other, skill: sleep}
              - {id: after_other, skill: echo, depends_on: [other]}
            """
        let (outcome, log) = try await harness.run(spec, executor: executor)
        #expect(outcome.state == .failed && outcome.error.contains("bad"))
        #expect(log.final("bad")?.state == .failed && log.final("bad")?.errorType == "ValueError")
        #expect(log.final("child")?.state == .skipped && log.final("grandchild")?.state == .skipped)
        #expect(log.final("grandchild")?.error.contains("upstream") == true)
        #expect(log.final("other")?.state == .succeeded && log.final("after_other")?.state == .succeeded)

        let started = ContinuousClock.now
        let (fast, fastLog) = try await harness.run("fail_fast: true\n" + spec.replacingOccurrences(of: "sleep}", with: "sleep, timeout_seconds: 60}"), executor: ClosureExecutor([
            "fail": { _ in throw StepFailure(.unknown, "it broke") }, "sleep": ClosureExecutor.sleep(20_000), "echo": { $0 },
        ]))
        #expect(ContinuousClock.now - started < .seconds(15), "well before the 20 s sleep ends")
        #expect(fast.state == .failed && fast.error.contains("fail_fast"))
        #expect(fastLog.final("other")?.state == .cancelled)
        #expect(fastLog.final("after_other")?.state == .cancelled)
    }

    @Test("the workflow timeout cancels what is still running; CancelRun's control cancels a run")
    func timeoutAndCancel() async throws {
        let harness = try Harness()
        defer { harness.remove() }
        let executor = ClosureExecutor(["sleep": ClosureExecutor.sleep(30_000), "quick": ClosureExecutor.sleep(1)])
        let started = ContinuousClock.now
        let (timedOut, log) = try await harness.run("""
            timeout_seconds: 1
            steps:
              - {id: q, skill: quick}
              - {id: long, skill: sleep}
              - {id: later, skill: quick, depends_on: [long]}
            """, executor: executor)
        // Far less than the 30 s sleep (a loose bound: the machine may be busy).
        #expect(ContinuousClock.now - started < .seconds(15))
        #expect(timedOut.state == .timedOut && timedOut.error.contains("timed out after 1 s"))
        #expect(log.final("q")?.state == .succeeded)
        #expect(log.final("long")?.state == .cancelled && log.final("later")?.state == .cancelled)

        let control = RunControl()
        let cancelling = Task {
            try await Task.sleep(for: .milliseconds(200))
            control.cancel("cancelled by the test")
        }
        let (cancelled, cancelLog) = try await harness.run("steps:\n  - {id: long, skill: sleep}\n", executor: executor, control: control)
        try await cancelling.value
        #expect(cancelled.state == .cancelled && cancelled.error == "cancelled by the test")
        #expect(cancelLog.final("long")?.state == .cancelled)
    }

    @Test("a run whose task is cancelled (its caller's deadline passed) still stores its end, and its steps'")
    func cancelledTaskStoresTheEnd() async throws {
        let harness = try Harness()
        defer { harness.remove() }
        let executor = ClosureExecutor(["sleep": ClosureExecutor.sleep(30_000)])
        let runID = "run-cancelled-task"
        // As RunWorkflow's handler: the RPC server cancels the handler's task at the deadline.
        let caller = Task {
            try await harness.run("steps:\n  - {id: long, skill: sleep}\n  - {id: after, skill: sleep, depends_on: [long]}\n", executor: executor, runID: runID)
        }
        try await Task.sleep(for: .milliseconds(300))
        caller.cancel()
        let (outcome, log) = try await caller.value
        #expect(outcome.state == .cancelled)
        #expect(log.final("long")?.state == .cancelled && log.final("after")?.state == .cancelled)
        // What `atom workflow status` reads: the run and every step ended, none left running.
        let stored = try #require(try await harness.store.load(runID: runID))
        #expect(stored.record.state == .cancelled, "the run is stored as \(stored.record.state)")
        #expect(stored.record.finishedAtMs > 0)
        #expect(stored.record.steps.map(\.state) == [.cancelled, .cancelled], "\(stored.record.steps.map(\.state))")
    }

    @Test("cached results: hits within the TTL, misses after it, when the skill changes, or with no_cache")
    func cache() async throws {
        let clock = Mutex(ContinuousClock.now)
        let harness = try Harness(cache: ResultCache(now: { clock.withLock { $0 } }))
        defer { harness.remove() }
        let executor = ClosureExecutor(["echo": { $0 }])
        let spec = "steps:\n  - {id: a, skill: echo, inputs: {v: \"${inputs.v}\"}, cache_ttl_seconds: 30}\ninputs: [v]\n"
        _ = try await harness.run(spec, executor: executor, inputs: ["v": .int(1)])
        let (second, log) = try await harness.run(spec, executor: executor, inputs: ["v": .int(1)])
        #expect(executor.count("echo") == 1)
        #expect(log.final("a")?.state == .cached)
        #expect(try JSONValue.parse(second.outputs)[member: "a"] == .object(["v": .int(1)]))
        // Other inputs: a miss.
        _ = try await harness.run(spec, executor: executor, inputs: ["v": .int(2)])
        #expect(executor.count("echo") == 2)
        // no_cache runs it.
        _ = try await harness.run(spec, executor: executor, inputs: ["v": .int(1)], noCache: true)
        #expect(executor.count("echo") == 3)
        // A new version of the skill: a miss.
        executor.identities.withLock { $0["echo"] = "echo@2" }
        _ = try await harness.run(spec, executor: executor, inputs: ["v": .int(1)])
        #expect(executor.count("echo") == 4)
        _ = try await harness.run(spec, executor: executor, inputs: ["v": .int(1)])
        #expect(executor.count("echo") == 4)
        // Past the TTL: a miss.
        clock.withLock { $0 = $0 + .seconds(31) }
        let (expired, expiredLog) = try await harness.run(spec, executor: executor, inputs: ["v": .int(1)])
        #expect(expired.state == .succeeded && expiredLog.final("a")?.state == .succeeded)
        #expect(executor.count("echo") == 5)
        // Steps not marked cacheable never are.
        _ = try await harness.run("steps:\n  - {id: a, skill: echo}\n", executor: executor)
        _ = try await harness.run("steps:\n  - {id: a, skill: echo}\n", executor: executor)
        #expect(executor.count("echo") == 7)
    }

    @Test("events are stored: a run read back has every step's state, inputs, outputs, attempts and timings; in-flight runs become interrupted")
    func durable() async throws {
        let harness = try Harness()
        defer { harness.remove() }
        let executor = ClosureExecutor(["echo": { $0 }, "fail": { _ in throw StepFailure(.unknown, "no") }])
        let (outcome, _) = try await harness.run(
            "steps:\n  - {id: a, skill: echo, inputs: {v: 1}}\n  - {id: b, skill: fail, depends_on: [a]}\n", executor: executor, runID: "run-durable")
        #expect(outcome.state == .failed)
        let stored = try #require(try await harness.store.load(runID: "run-durable"))
        #expect(stored.record.state == .failed && stored.record.finishedAtMs >= stored.record.startedAtMs)
        let a = try #require(stored.record.steps.first { $0.stepId == "a" })
        #expect(a.state == .succeeded && a.attempt == 1 && a.outputsJson == #"{"v":1}"# && a.inputsJson == #"{"v":1}"# && a.skill == "echo")
        #expect(a.finishedAtMs >= a.startedAtMs && a.startedAtMs > 0)
        let b = try #require(stored.record.steps.first { $0.stepId == "b" })
        #expect(b.state == .failed && b.error == "no" && b.errorCode == .unknown)

        // A run left "running" (its process died) is interrupted at the next start.
        try await harness.store.create(runID: "run-crashed", spec: WorkflowSpec(name: "w", steps: [WorkflowStep(id: "x", skill: "echo")]), inputs: "{}", startedAt: 1)
        #expect(try harness.store.markInterrupted() == 1)
        #expect(try await harness.store.load(runID: "run-crashed")?.record.state == .interrupted)
        #expect(try await harness.store.list(limit: 10, state: .interrupted, workflow: nil).map(\.runId) == ["run-crashed"])
    }

    @Test("resuming re-runs only the steps that had not finished, with the stored outputs of those that had")
    func resume() async throws {
        let harness = try Harness()
        defer { harness.remove() }
        let executor = ClosureExecutor(["echo": { $0 }])
        let spec = """
            steps:
              - {id: a, skill: echo, inputs: {v: 1}}
              - {id: b, skill: echo, inputs: {from_a: "${steps.a.output.v}"}}
              - {id: c, skill: echo, depends_on: [b], inputs: {v: 3}}
            """
        let done = StepEvent(stepId: "a", state: .succeeded, outputsJson: #"{"v":41}"#)
        let (outcome, log) = try await harness.run(spec, executor: executor, finished: [0: done])
        #expect(outcome.state == .succeeded)
        #expect(executor.calls.withLock { $0.map(\.inputs) } == [.object(["from_a": .int(41)]), .object(["v": .int(3)])])
        #expect(log.final("a") == nil)
    }

    @Test("workflow_step is recorded through the metrics recorder")
    func metrics() async throws {
        let harness = try Harness()
        defer { harness.remove() }
        _ = try await harness.run("steps:\n  - {id: a, skill: echo}\n  - {id: b, skill: echo}\n", executor: ClosureExecutor(["echo": { $0 }]))
        #expect(harness.metrics.snapshot()["workflow_step"]?.totalCount == 2)
    }
}
