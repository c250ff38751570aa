public import AtomMetrics
public import AtomProto
internal import AtomRPC
internal import Foundation
public import Logging
internal import Synchronization

/// Stops a run from outside: CancelRun, or a caller that went away.
public final class RunControl: Sendable {
    private let reasonState = Mutex<String?>(nil)
    let signals: AsyncStream<Void>
    private let continuation: AsyncStream<Void>.Continuation

    public init() {
        (signals, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Asks the run to stop; the first reason given is kept.
    public func cancel(_ reason: String) {
        reasonState.withLock { if $0 == nil { $0 = reason } }
        continuation.yield()
    }

    public var reason: String? { reasonState.withLock { $0 } }
}

/// What to run: a validated workflow, its inputs, and for a resumed run the steps that had
/// finished.
public struct RunRequest: Sendable {
    public var runID: String
    public var compiled: CompiledWorkflow
    public var inputs: [String: JSONValue]
    public var noCache: Bool
    /// Resumed runs: the stored events of finished steps, by step index.
    public var finished: [Int: StepEvent]
    /// Resumed runs: finished steps that were skipped by their condition.
    public var skippedByCondition: Set<Int>

    public init(
        runID: String, compiled: CompiledWorkflow, inputs: [String: JSONValue], noCache: Bool = false,
        finished: [Int: StepEvent] = [:], skippedByCondition: Set<Int> = []
    ) {
        self.runID = runID
        self.compiled = compiled
        self.inputs = inputs
        self.noCache = noCache
        self.finished = finished
        self.skippedByCondition = skippedByCondition
    }
}

public struct RunOutcome: Sendable {
    public let state: RunState
    public let error: String
    public let outputs: String
}

/// The scheduler: each step starts as soon as its dependencies are done (not level by level),
/// up to the run's parallelism, with per-attempt timeouts, retries with backoff and jitter,
/// conditions, data passing, the result cache, failure propagation (dependents skipped,
/// independent branches finish; fail_fast stops everything), the workflow timeout and
/// cancellation. One task drives a run and owns all of its state; steps are child tasks.
public struct WorkflowEngine: Sendable {
    public let executor: any StepExecutor
    public let store: RunStore
    public let cache: ResultCache
    public let metrics: LatencyRecorder?
    public let logger: Logger

    public init(executor: any StepExecutor, store: RunStore, cache: ResultCache, metrics: LatencyRecorder? = nil, logger: Logger = Logger(label: "atom-workflow")) {
        self.executor = executor
        self.store = store
        self.cache = cache
        self.metrics = metrics
        self.logger = logger
    }

    /// Runs to the end. Every event is stored, then passed to `emit`. The run must already be
    /// stored (`RunStore.create`, or `beginResume`).
    public func run(_ request: RunRequest, control: RunControl, emit: @escaping @Sendable (StepEvent) async -> Void) async -> RunOutcome {
        let recorder = Recorder(store: store, emit: emit, logger: logger)
        var scheduler = Scheduler(request: request)
        await recorder.record(StepEvent(runId: request.runID, runState: .running, inputsJson: request.inputs.canonicalText, startedAtMs: RunStore.nowMs()))
        let outcome = await scheduler.drive(engine: self, recorder: recorder, control: control)
        await recorder.record(StepEvent(
            runId: request.runID, outputsJson: outcome.outputs, error: outcome.error, runState: outcome.state, finishedAtMs: RunStore.nowMs()))
        return outcome
    }
}

/// Stores an event, then hands it on.
struct Recorder: Sendable {
    let store: RunStore
    let emit: @Sendable (StepEvent) async -> Void
    let logger: Logger

    func record(_ event: StepEvent, byCondition: Bool = false) async {
        do {
            try await store.apply(event, byCondition: byCondition)
        } catch {
            logger.error("cannot store a workflow event", metadata: ["workflow.run.id": "\(event.runId)", "error": "\(error)"])
        }
        await emit(event)
    }
}

enum StepPhase: UInt8 {
    case pending, running, succeeded, cached, skippedByCondition, skippedUpstream, failed, cancelled

    var isFinished: Bool { self == .succeeded || self == .cached || self == .skippedByCondition }

    var statusName: String {
        switch self {
        case .pending: "pending"
        case .running: "running"
        case .succeeded: "succeeded"
        case .cached: "cached"
        case .skippedByCondition, .skippedUpstream: "skipped"
        case .failed: "failed"
        case .cancelled: "cancelled"
        }
    }
}

/// References resolve against the run's inputs and the outputs so far.
struct RunScope: ReferenceScope {
    let inputs: [String: JSONValue]
    let index: [String: Int]
    let outputs: [JSONValue?]
    let phases: [StepPhase]

    func input(_ name: String) -> JSONValue? { inputs[name] }

    func stepOutput(_ id: String) -> JSONValue? {
        guard let position = index[id] else { return nil }
        if phases[position] == .skippedByCondition { return .null }
        return outputs[position]
    }

    func stepStatus(_ id: String) -> String? { index[id].map { phases[$0].statusName } }
}

/// How a step's child task ended.
enum StepResult: Sendable {
    case succeeded(outputs: JSONValue, text: String, attempts: Int, cached: Bool)
    case failed(StepFailure, attempts: Int)
    case cancelled(attempts: Int)
}

enum Completion: Sendable {
    case step(Int, StepResult, inputs: String, started: ContinuousClock.Instant, startedAtMs: UInt64)
    case timeout
    case cancelRequested
    case stopped
}

struct Scheduler {
    let request: RunRequest
    let compiled: CompiledWorkflow
    var phases: [StepPhase]
    var outputs: [JSONValue?]
    /// Dependencies not finished yet, per step.
    var waiting: [Int32]
    var ready: [Int32] = []
    var readyHead = 0
    var running = 0
    var failedCount = 0
    var firstFailure: String?
    var stop: (state: RunState, reason: String)?

    init(request: RunRequest) {
        self.request = request
        compiled = request.compiled
        let count = compiled.steps.count
        phases = [StepPhase](repeating: .pending, count: count)
        outputs = [JSONValue?](repeating: nil, count: count)
        waiting = [Int32](repeating: 0, count: count)
        for (position, event) in request.finished {
            phases[position] = request.skippedByCondition.contains(position) ? .skippedByCondition : (event.state == .cached ? .cached : .succeeded)
            outputs[position] = (try? JSONValue.parse(event.outputsJson.isEmpty ? "{}" : event.outputsJson)) ?? .object([:])
        }
        for position in 0..<count where phases[position] == .pending {
            var open: Int32 = 0
            for dependency in compiled.dependencies[position] where !phases[Int(dependency)].isFinished { open += 1 }
            waiting[position] = open
            if open == 0 { ready.append(Int32(position)) }
        }
    }

    var scope: RunScope { RunScope(inputs: request.inputs, index: compiled.index, outputs: outputs, phases: phases) }

    mutating func drive(engine: WorkflowEngine, recorder: Recorder, control: RunControl) async -> RunOutcome {
        let timeout = compiled.timeout
        let parallelism = compiled.parallelism
        await withTaskGroup(of: Completion.self) { group in
            group.addTask {
                do {
                    try await Task.sleep(for: timeout)
                    return .timeout
                } catch {
                    return .stopped
                }
            }
            group.addTask {
                for await _ in control.signals { return .cancelRequested }
                return .stopped
            }
            await launchReady(&group, engine: engine, recorder: recorder, parallelism: parallelism)
            while running > 0 {
                guard let completion = await group.next() else { break }
                switch completion {
                case .timeout:
                    stopAll(&group, .timedOut, "the workflow timed out after \(timeout.secondsText) (timeout_seconds)")
                case .cancelRequested:
                    stopAll(&group, .cancelled, control.reason ?? "cancelled")
                case .stopped:
                    break
                case .step(let position, let result, let inputs, let started, let startedAtMs):
                    running -= 1
                    await finish(position, result, inputs: inputs, started: started, startedAtMs: startedAtMs, engine: engine, recorder: recorder, group: &group)
                }
                if stop == nil && Task.isCancelled { stopAll(&group, .cancelled, control.reason ?? "the run was cancelled") }
                if stop == nil { await launchReady(&group, engine: engine, recorder: recorder, parallelism: parallelism) }
            }
            group.cancelAll()
            for await _ in group {}
        }
        // Steps that never started.
        let now = RunStore.nowMs()
        for position in 0..<phases.count where phases[position] == .pending {
            phases[position] = .cancelled
            let reason = stop?.reason ?? "the run ended before the step could start"
            await recorder.record(StepEvent(
                runId: request.runID, stepId: compiled.steps[position].id, state: .cancelled, error: "not started: \(reason)",
                skill: compiled.steps[position].skill, finishedAtMs: now, errorCode: .cancelled))
        }
        let state: RunState
        let error: String
        if let stop {
            state = stop.state
            error = stop.reason
        } else if failedCount > 0 {
            state = .failed
            error = failedCount == 1 ? (firstFailure ?? "a step failed") : "\(failedCount) steps failed; first: \(firstFailure ?? "")"
        } else {
            state = .succeeded
            error = ""
        }
        return RunOutcome(state: state, error: error, outputs: runOutputs())
    }

    mutating func stopAll(_ group: inout TaskGroup<Completion>, _ state: RunState, _ reason: String) {
        guard stop == nil else { return }
        stop = (state, reason)
        group.cancelAll()
    }

    /// Starts ready steps up to the parallelism; conditions are evaluated here, so a skipped
    /// step releases its dependents at once.
    mutating func launchReady(_ group: inout TaskGroup<Completion>, engine: WorkflowEngine, recorder: Recorder, parallelism: Int) async {
        while running < parallelism && readyHead < ready.count && stop == nil {
            let position = Int(ready[readyHead])
            readyHead += 1
            guard phases[position] == .pending else { continue }
            let step = compiled.steps[position]
            let scope = self.scope
            if let condition = step.condition {
                let verdict: Bool
                do {
                    verdict = try condition.evaluate(in: scope).isTruthy
                } catch {
                    await fail(position, StepFailure(.invalidArgument, "condition: \(error)"), attempts: 0, inputs: "", started: .now, startedAtMs: RunStore.nowMs(), recorder: recorder, group: &group)
                    continue
                }
                if !verdict {
                    phases[position] = .skippedByCondition
                    outputs[position] = .null
                    let now = RunStore.nowMs()
                    await recorder.record(
                        StepEvent(runId: request.runID, stepId: step.id, state: .skipped, error: "condition is false", skill: step.skill, startedAtMs: now, finishedAtMs: now),
                        byCondition: true)
                    release(position)
                    continue
                }
            }
            let inputs: JSONValue
            do {
                inputs = try step.inputs.resolve(in: scope)
            } catch {
                await fail(position, StepFailure(.failedPrecondition, "inputs: \(error)"), attempts: 0, inputs: "", started: .now, startedAtMs: RunStore.nowMs(), recorder: recorder, group: &group)
                continue
            }
            phases[position] = .running
            running += 1
            let runID = request.runID
            let noCache = request.noCache
            group.addTask {
                await Self.runStep(position, step, inputs: inputs, runID: runID, noCache: noCache, engine: engine, recorder: recorder)
            }
        }
    }

    /// A finished step's dependents lose one open dependency; those with none become ready.
    mutating func release(_ position: Int) {
        for dependent in compiled.dependents[position] {
            let index = Int(dependent)
            waiting[index] -= 1
            if waiting[index] == 0 && phases[index] == .pending { ready.append(dependent) }
        }
    }

    mutating func finish(
        _ position: Int, _ result: StepResult, inputs: String, started: ContinuousClock.Instant, startedAtMs: UInt64,
        engine: WorkflowEngine, recorder: Recorder, group: inout TaskGroup<Completion>
    ) async {
        let step = compiled.steps[position]
        let elapsed = ContinuousClock.now - started
        let durationUs = UInt64(max(0, elapsed.components.seconds * 1_000_000 + elapsed.components.attoseconds / 1_000_000_000_000))
        switch result {
        case .succeeded(let value, let text, let attempts, let cached):
            phases[position] = cached ? .cached : .succeeded
            outputs[position] = value
            if !cached { engine.metrics?.record("workflow_step", elapsed) }
            await recorder.record(StepEvent(
                runId: request.runID, stepId: step.id, state: cached ? .cached : .succeeded, attempt: UInt32(attempts), outputsJson: text,
                durationUs: durationUs, skill: step.skill, inputsJson: inputs, startedAtMs: startedAtMs, finishedAtMs: RunStore.nowMs()))
            release(position)
        case .failed(let failure, let attempts):
            engine.metrics?.record("workflow_step", elapsed)
            await fail(position, failure, attempts: attempts, inputs: inputs, started: started, startedAtMs: startedAtMs, recorder: recorder, group: &group)
        case .cancelled(let attempts):
            phases[position] = .cancelled
            let reason = stop?.reason ?? "cancelled"
            await recorder.record(StepEvent(
                runId: request.runID, stepId: step.id, state: .cancelled, attempt: UInt32(attempts), error: reason, durationUs: durationUs,
                skill: step.skill, inputsJson: inputs, startedAtMs: startedAtMs, finishedAtMs: RunStore.nowMs(), errorCode: .cancelled))
        }
    }

    /// A failed step: its dependents (transitively) are skipped at once; with fail_fast the
    /// whole run stops.
    mutating func fail(
        _ position: Int, _ failure: StepFailure, attempts: Int, inputs: String, started: ContinuousClock.Instant, startedAtMs: UInt64,
        recorder: Recorder, group: inout TaskGroup<Completion>
    ) async {
        let step = compiled.steps[position]
        phases[position] = .failed
        failedCount += 1
        if firstFailure == nil { firstFailure = "step \(step.id) failed: \(failure)" }
        let elapsed = ContinuousClock.now - started
        let durationUs = UInt64(max(0, elapsed.components.seconds * 1_000_000 + elapsed.components.attoseconds / 1_000_000_000_000))
        await recorder.record(StepEvent(
            runId: request.runID, stepId: step.id, state: .failed, attempt: UInt32(attempts), error: failure.message, durationUs: durationUs,
            skill: step.skill, inputsJson: inputs, startedAtMs: startedAtMs, finishedAtMs: RunStore.nowMs(), errorCode: failure.code,
            errorType: failure.errorType))
        // Skip everything downstream.
        var stack = compiled.dependents[position]
        let now = RunStore.nowMs()
        while let next = stack.popLast() {
            let index = Int(next)
            guard phases[index] == .pending else { continue }
            phases[index] = .skippedUpstream
            await recorder.record(StepEvent(
                runId: request.runID, stepId: compiled.steps[index].id, state: .skipped, error: "upstream step \(step.id) failed",
                skill: compiled.steps[index].skill, startedAtMs: now, finishedAtMs: now, errorCode: .failedPrecondition))
            stack.append(contentsOf: compiled.dependents[index])
        }
        if request.compiled.spec.failFast {
            stopAll(&group, .failed, "fail_fast: step \(step.id) failed: \(failure)")
        }
    }

    /// The run's outputs: the spec's templates, or the outputs of the steps nothing depends on.
    func runOutputs() -> String {
        if let templates = compiled.outputs {
            do {
                return try templates.resolve(in: scope).canonicalText
            } catch {
                return JSONValue.object(["error": .string("outputs: \(error)")]).canonicalText
            }
        }
        var result: [String: JSONValue] = [:]
        for position in 0..<phases.count where compiled.dependents[position].isEmpty {
            if phases[position] == .succeeded || phases[position] == .cached, let value = outputs[position] {
                result[compiled.steps[position].id] = value
            }
        }
        return JSONValue.object(result).canonicalText
    }


    // MARK: - One step

    /// Runs one step in its child task: the cache, then attempts with timeouts and backoff.
    static func runStep(
        _ position: Int, _ step: CompiledStep, inputs: JSONValue, runID: String, noCache: Bool, engine: WorkflowEngine, recorder: Recorder
    ) async -> Completion {
        let started = ContinuousClock.now
        let startedAtMs = RunStore.nowMs()
        let inputsText = inputs.canonicalText
        func done(_ result: StepResult) -> Completion {
            .step(position, result, inputs: inputsText, started: started, startedAtMs: startedAtMs)
        }
        var cacheKey: String?
        if let ttl = step.cacheTTL, ttl > .zero {
            do {
                let identity = try await engine.executor.identity(of: step.skill)
                let key = ResultCache.key(identity: identity, skill: step.skill, inputs: inputsText, spec: step.inputsTemplate.canonicalText)
                cacheKey = key
                if !noCache, let hit = engine.cache.lookup(key), let value = try? JSONValue.parse(hit) {
                    return done(.succeeded(outputs: value, text: hit, attempts: 0, cached: true))
                }
            } catch {
                // No identity, no key: run the step uncached rather than risk a stale result.
                engine.logger.notice("step result not cacheable: the skill's identity is unknown", metadata: [
                    "workflow.run.id": "\(runID)", "workflow.step": "\(step.id)", "error": "\(error)",
                ])
            }
        }
        await recorder.record(StepEvent(
            runId: runID, stepId: step.id, state: .running, attempt: 1, skill: step.skill, inputsJson: inputsText, startedAtMs: startedAtMs))
        var attempt = 1
        while true {
            if Task.isCancelled { return done(.cancelled(attempts: attempt - 1)) }
            let outcome = await attemptOnce(engine.executor, step, inputs: inputsText)
            switch outcome {
            case .success(let text):
                let value: JSONValue
                do {
                    value = try JSONValue.parse(text.isEmpty ? "{}" : text)
                } catch {
                    return done(.failed(StepFailure(.internal, "the skill's outputs are not JSON: \(error)"), attempts: attempt))
                }
                guard case .object = value else {
                    return done(.failed(StepFailure(.internal, "the skill's outputs must be a JSON object, not \(value.typeName)"), attempts: attempt))
                }
                let canonical = value.canonicalText
                if let cacheKey, let ttl = step.cacheTTL { engine.cache.store(cacheKey, outputs: canonical, ttl: ttl) }
                return done(.succeeded(outputs: value, text: canonical, attempts: attempt, cached: false))
            case .failure(let failure):
                if Task.isCancelled { return done(.cancelled(attempts: attempt)) }
                guard attempt < step.retry.maxAttempts, step.retry.retries(failure) else {
                    return done(.failed(failure, attempts: attempt))
                }
                let pause = step.retry.backoff(beforeAttempt: attempt + 1)
                do {
                    try await Task.sleep(for: pause)
                } catch {
                    return done(.cancelled(attempts: attempt))
                }
                attempt += 1
                await recorder.record(StepEvent(
                    runId: runID, stepId: step.id, state: .running, attempt: UInt32(attempt),
                    error: "attempt \(attempt - 1) failed: \(failure); retrying after \(Self.milliseconds(pause)) ms", skill: step.skill,
                    inputsJson: inputsText, startedAtMs: startedAtMs, errorCode: failure.code, errorType: failure.errorType))
            }
        }
    }

    static func milliseconds(_ duration: Duration) -> Int64 {
        duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
    }

    /// One attempt, raced against its timeout: the engine stops waiting at the deadline even
    /// if the executor does not.
    static func attemptOnce(_ executor: any StepExecutor, _ step: CompiledStep, inputs: String) async -> Result<String, StepFailure> {
        let timeout = step.timeout
        return await withTaskGroup(of: Result<String, StepFailure>?.self) { group in
            group.addTask {
                do {
                    return .success(try await executor.execute(skill: step.skill, inputs: inputs, timeout: timeout))
                } catch {
                    return .failure(StepFailure.from(error))
                }
            }
            group.addTask {
                do {
                    try await Task.sleep(for: timeout)
                } catch {
                    return nil
                }
                return .failure(StepFailure(.deadlineExceeded, "the step timed out after \(timeout.secondsText) (timeout_seconds)"))
            }
            while let next = await group.next() {
                if let result = next {
                    group.cancelAll()
                    return result
                }
            }
            return .failure(StepFailure(.cancelled, "cancelled"))
        }
    }
}
