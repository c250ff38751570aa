public import AtomAPI
public import AtomProto
public import AtomRPC
internal import Foundation
public import Logging
internal import Synchronization

/// atom.v1.Workflow: validation, runs (streamed or detached), status, listing, cancellation
/// and resumption. Steps execute through `executor` (the loader service in production).
public final class WorkflowServiceImpl: WorkflowService {
    public let configuration: WorkflowConfiguration
    public let store: RunStore
    public let cache: ResultCache
    public let executor: any StepExecutor
    let registry = RunRegistry()
    let logger: Logger
    private let lock: InstanceLock?

    /// - Parameter exclusive: take `$ATOM_HOME/workflow/instance.lock` (one service instance
    ///   per database: the start-up marks every run in flight as interrupted).
    public init(configuration: WorkflowConfiguration, executor: any StepExecutor, exclusive: Bool = true, logger: Logger = Logger(label: "atom-workflow")) throws {
        self.configuration = configuration
        self.executor = executor
        self.logger = logger
        lock = exclusive ? try InstanceLock(path: configuration.lockPath) : nil
        store = try RunStore(path: configuration.databasePath)
        cache = ResultCache(maxEntries: configuration.cacheMaxEntries)
        let interrupted = try store.markInterrupted()
        if interrupted > 0 {
            logger.notice("runs in flight when the service last stopped are now interrupted; resume them with `atom workflow resume RUN`", metadata: ["runs": "\(interrupted)"])
        }
    }

    deinit { withExtendedLifetime(lock) {} }

    func engine(_ context: RPCContext) -> WorkflowEngine {
        WorkflowEngine(executor: executor, store: store, cache: cache, metrics: context.metrics, logger: logger)
    }

    // MARK: - Validation

    /// The spec of a request: `spec`, or `spec_text` parsed.
    func spec(of request: ValidateWorkflowRequest) throws(SpecError) -> WorkflowSpec {
        if let spec = request.spec { return spec }
        guard !request.specText.isEmpty else { throw SpecError(path: "", message: "give a spec or spec_text", stepID: "") }
        return try SpecParser.parse(request.specText)
    }

    struct Checked {
        var spec: WorkflowSpec?
        var outcome: ValidationOutcome
        var warnings: [String]
    }

    func check(_ request: ValidateWorkflowRequest, context: RPCContext) async throws -> Checked {
        let started = ContinuousClock.now
        let spec: WorkflowSpec
        do {
            spec = try self.spec(of: request)
        } catch {
            let failure = ValidationError(stepId: error.stepID, code: "BAD_SPEC", message: error.description)
            return Checked(spec: nil, outcome: ValidationOutcome(errors: [failure], plan: nil, graph: nil, spec: WorkflowSpec(), limits: configuration.limits), warnings: [])
        }
        var outcome = WorkflowValidator.validate(spec, limits: configuration.limits)
        context.metrics.record("workflow_validation", ContinuousClock.now - started)
        var warnings: [String] = []
        let mode = request.skillCheck == .unspecified ? configuration.skillCheck : request.skillCheck
        if mode != .off && outcome.errors.isEmpty {
            let names = Set(spec.steps.map(\.skill))
            do {
                let problems = try await executor.skillProblems(among: names)
                for step in spec.steps {
                    switch problems[step.skill] {
                    case .unknown:
                        outcome.errors.append(ValidationError(
                            stepId: step.id, code: WorkflowValidator.Code.unknownSkill,
                            message: "step \(step.id): the loader knows no skill \(step.skill)"))
                    case .notLoadable(let why):
                        outcome.errors.append(ValidationError(
                            stepId: step.id, code: WorkflowValidator.Code.skillNotLoadable,
                            message: "step \(step.id): skill \(step.skill) cannot be loaded: \(why)"))
                    case nil:
                        break
                    }
                }
            } catch {
                let reason = RPCError.from(error)
                if mode == .required {
                    throw RPCError.withReason(
                        .unavailable, "cannot check the skills: the loader service did not answer (\(reason.code.displayName): \(reason.message))",
                        reason: "LOADER_UNAVAILABLE")
                }
                warnings.append("skills not checked: the loader service did not answer (\(reason.code.displayName): \(reason.message))")
            }
        }
        return Checked(spec: spec, outcome: outcome, warnings: warnings)
    }

    public func validateWorkflow(_ request: ValidateWorkflowRequest, context: RPCContext) async throws -> ValidateWorkflowResponse {
        let checked = try await check(request, context: context)
        var response = checked.outcome.response
        response.warnings = checked.warnings
        response.spec = checked.spec
        return response
    }

    /// A run's workflow, validated and compiled, and its inputs checked against the
    /// declarations; INVALID_ARGUMENT listing every error otherwise.
    func prepare(_ request: RunWorkflowRequest, context: RPCContext) async throws -> (CompiledWorkflow, [String: JSONValue]) {
        guard let workflow = request.workflow else { throw RPCError(.invalidArgument, "workflow is missing: give a spec or spec_text") }
        let checked = try await check(workflow, context: context)
        guard checked.outcome.isValid else { throw Self.invalid(checked.outcome.errors) }
        guard let compiled = checked.outcome.compiled else { throw RPCError(.internal, "a valid workflow did not compile") }
        return (compiled, try Self.runInputs(request.inputsJson, declared: compiled.inputs))
    }

    static func invalid(_ errors: [ValidationError]) -> RPCError {
        let lines = errors.prefix(20).map { error in "\(error.code)\(error.stepId.isEmpty ? "" : " [\(error.stepId)]"): \(error.message)" }
        let more = errors.count > 20 ? "\n(\(errors.count - 20) more)" : ""
        return RPCError.withReason(.invalidArgument, "the workflow is not valid:\n" + lines.joined(separator: "\n") + more, reason: "INVALID_WORKFLOW")
    }

    /// Checks given inputs against the declarations: unknown names, missing required inputs
    /// and wrong types are errors; defaults fill in; numbers and booleans given for a string
    /// input become their text (so `--input zip=02139` and `--input n=3` both work).
    static func runInputs(_ text: String, declared: [WorkflowInput]) throws -> [String: JSONValue] {
        var given: [String: JSONValue]
        do {
            given = try JSONValue.parseObject(text)
        } catch {
            throw RPCError(.invalidArgument, "inputs_json is not a JSON object: \(error)")
        }
        let names = Set(declared.map(\.name))
        for name in given.keys.sorted() where !names.contains(name) {
            throw RPCError(
                .invalidArgument,
                declared.isEmpty ? "input \(name) is not declared: the workflow takes no inputs"
                    : "input \(name) is not declared; the workflow's inputs: \(declared.map(\.name).joined(separator: ", "))")
        }
        for input in declared {
            if var value = given[input.name] {
                if input.type == "string" {
                    switch value {
                    case .int, .double, .bool: value = .string(value.canonicalText)
                    default: break
                    }
                    given[input.name] = value
                }
                if let problem = InputTypes.mismatch(value, input.type) {
                    throw RPCError(.invalidArgument, "input \(input.name) \(problem)")
                }
            } else if !input.defaultJson.isEmpty, let value = try? JSONValue.parse(input.defaultJson) {
                given[input.name] = value
            } else if input.required {
                throw RPCError(.invalidArgument, "input \(input.name) is required\(input.description.isEmpty ? "" : " (\(input.description))")")
            }
        }
        return given
    }

    // MARK: - Runs

    static func newRunID() -> String {
        let milliseconds = String(RunStore.nowMs(), radix: 36)
        let random = String(UInt64.random(in: 0...UInt64.max) % 2_176_782_336, radix: 36)  // 6 base-36 digits
        return "run-\(milliseconds)-\(String(repeating: "0", count: 6 - random.count))\(random)"
    }

    public func runWorkflow(_ request: RunWorkflowRequest, writer: RPCStreamWriter<StepEvent>, context: RPCContext) async throws {
        let (compiled, inputs) = try await prepare(request, context: context)
        let runID = Self.newRunID()
        try await store.create(runID: runID, spec: compiled.spec, inputs: inputs.canonicalText, startedAt: RunStore.nowMs())
        let run = RunRequest(runID: runID, compiled: compiled, inputs: inputs, noCache: request.noCache)
        let control = RunControl()
        registry.register(runID, control: control)
        await stream(run, control: control, writer: writer, context: context)
    }

    /// Runs while streaming its events to the caller; the run lives as long as the call (a
    /// caller that goes away, or a deadline that passes, cancels it: use StartRun for runs
    /// that outlive their caller). The run is registered under `control` already; this ends
    /// its registration.
    func stream(_ run: RunRequest, control: RunControl, writer: RPCStreamWriter<StepEvent>, context: RPCContext) async {
        defer { registry.finished(run.runID) }
        let engine = self.engine(context)
        let (events, continuation) = AsyncStream<StepEvent>.makeStream()
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                var open = true
                for await event in events where open {
                    do {
                        try await writer.send(event)
                    } catch {
                        open = false
                        control.cancel("the caller went away")
                    }
                }
            }
            _ = await withTaskCancellationHandler {
                await engine.run(run, control: control) { continuation.yield($0) }
            } onCancel: {
                control.cancel("the caller went away or the call's deadline passed")
            }
            continuation.finish()
        }
    }

    public func startRun(_ request: RunWorkflowRequest, context: RPCContext) async throws -> StartRunResponse {
        let (compiled, inputs) = try await prepare(request, context: context)
        let runID = Self.newRunID()
        try await store.create(runID: runID, spec: compiled.spec, inputs: inputs.canonicalText, startedAt: RunStore.nowMs())
        let run = RunRequest(runID: runID, compiled: compiled, inputs: inputs, noCache: request.noCache)
        detach(run, context: context)
        return StartRunResponse(runId: runID)
    }

    /// A run that outlives its call: tracked in the registry until it ends (CancelRun stops it).
    func detach(_ run: RunRequest, context: RPCContext) {
        let control = RunControl()
        let engine = self.engine(context)
        let registry = self.registry
        registry.register(run.runID, control: control)
        let task = Task {
            _ = await engine.run(run, control: control) { _ in }
            registry.finished(run.runID)
        }
        registry.attach(run.runID, task: task)
    }

    public func getRun(_ request: GetRunRequest, context: RPCContext) async throws -> RunRecord {
        guard let stored = try await store.load(runID: request.runId) else { throw Self.unknownRun(request.runId) }
        return stored.record
    }

    static func unknownRun(_ runID: String) -> RPCError {
        runID.isEmpty
            ? RPCError(.invalidArgument, "run_id is empty; `atom workflow list` shows the runs")
            : RPCError(.notFound, "no run \(runID); `atom workflow list` shows the runs")
    }

    public func listRuns(_ request: ListRunsRequest, context: RPCContext) async throws -> ListRunsResponse {
        guard request.limit <= 1_000 else { throw RPCError(.invalidArgument, "limit \(request.limit) is over 1000") }
        if case .unrecognized(let raw) = request.state { throw RPCError(.invalidArgument, "state \(raw) is not a run state") }
        let runs = try await store.list(
            limit: request.limit == 0 ? 50 : Int(request.limit), state: request.state == .unspecified ? nil : request.state,
            workflow: request.workflow.isEmpty ? nil : request.workflow)
        return ListRunsResponse(runs: runs)
    }

    public func cancelRun(_ request: CancelRunRequest, context: RPCContext) async throws -> CancelRunResponse {
        if registry.cancel(request.runId, reason: "cancelled by CancelRun") {
            // Wait (briefly) until it has stopped, so a status read next shows it.
            let deadline = ContinuousClock.now + .seconds(5)
            while registry.isLive(request.runId) && ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(5))
            }
            return CancelRunResponse(cancelled: true)
        }
        guard let stored = try await store.load(runID: request.runId) else { throw Self.unknownRun(request.runId) }
        switch stored.record.state {
        case .interrupted:
            try await store.setState(runID: request.runId, state: .cancelled, error: "cancelled by CancelRun while interrupted")
            return CancelRunResponse(cancelled: true)
        case .running:
            throw RPCError(.failedPrecondition, "run \(request.runId) is marked running but no run of this service is in flight; it belongs to an instance that stopped")
        default:
            throw RPCError(.failedPrecondition, "run \(request.runId) has already ended: \(RunStateName.of(stored.record.state))")
        }
    }

    public func resumeRun(_ request: ResumeRunRequest, writer: RPCStreamWriter<StepEvent>, context: RPCContext) async throws {
        // Claimed before anything is awaited, so that of concurrent resumes of one run exactly
        // one goes on (each used to pass the check, then run the same steps again beside the
        // others, and a cancel reached only the last one registered).
        guard !request.runId.isEmpty else { throw Self.unknownRun(request.runId) }
        let control = RunControl()
        guard registry.claim(request.runId, control: control) else {
            throw RPCError(.failedPrecondition, "run \(request.runId) is running; cancel it first or wait for it")
        }
        var streaming = false
        defer { if !streaming { registry.finished(request.runId) } }
        guard let stored = try await store.load(runID: request.runId) else { throw Self.unknownRun(request.runId) }
        guard RunStore.resumable.contains(stored.record.state) else {
            throw RPCError(.failedPrecondition, "run \(request.runId) is \(RunStateName.of(stored.record.state)); only interrupted, failed, cancelled or timed-out runs resume")
        }
        let outcome = WorkflowValidator.validate(stored.spec, limits: configuration.limits)
        guard outcome.isValid else { throw Self.invalid(outcome.errors) }
        guard let compiled = outcome.compiled else { throw RPCError(.internal, "a valid workflow did not compile") }
        let inputs: [String: JSONValue]
        do {
            inputs = try JSONValue.parseObject(stored.inputs)
        } catch {
            throw RPCError(.dataLoss, "run \(request.runId): its stored inputs are not JSON: \(error)")
        }
        var finished: [Int: StepEvent] = [:]
        var byCondition = Set<Int>()
        for event in stored.record.steps {
            guard let position = compiled.index[event.stepId] else { continue }
            switch event.state {
            case .succeeded, .cached:
                finished[position] = event
            case .skipped where stored.skippedByCondition.contains(event.stepId):
                finished[position] = event
                byCondition.insert(position)
            default:
                break
            }
        }
        // A CancelRun that came while this resume was being prepared: it ends here, before anything runs.
        if let reason = control.reason { throw RPCError(.cancelled, "run \(request.runId): \(reason) before the resume started") }
        guard try await store.beginResume(runID: request.runId) else {
            throw RPCError(.failedPrecondition, "run \(request.runId) changed while it was read for the resume; read its status and try again")
        }
        let run = RunRequest(runID: request.runId, compiled: compiled, inputs: inputs, finished: finished, skippedByCondition: byCondition)
        streaming = true
        await stream(run, control: control, writer: writer, context: context)
    }

    /// Waits for detached runs (tests and shutdown).
    public func waitForRuns() async {
        for task in registry.tasks() { await task.value }
    }
}

/// Runs in flight in this process.
final class RunRegistry: Sendable {
    struct Entry {
        let control: RunControl
        var task: Task<Void, Never>?
    }

    private let entries = Mutex<[String: Entry]>([:])

    func register(_ runID: String, control: RunControl) {
        entries.withLock { $0[runID] = Entry(control: control, task: nil) }
    }

    /// Registers the run unless it is registered already; whether it was.
    func claim(_ runID: String, control: RunControl) -> Bool {
        entries.withLock { entries in
            guard entries[runID] == nil else { return false }
            entries[runID] = Entry(control: control, task: nil)
            return true
        }
    }

    func attach(_ runID: String, task: Task<Void, Never>) {
        entries.withLock { entries in
            // The run may have ended already.
            if entries[runID] != nil { entries[runID]?.task = task }
        }
    }

    func finished(_ runID: String) {
        entries.withLock { _ = $0.removeValue(forKey: runID) }
    }

    func isLive(_ runID: String) -> Bool { entries.withLock { $0[runID] != nil } }

    func cancel(_ runID: String, reason: String) -> Bool {
        guard let control = entries.withLock({ $0[runID]?.control }) else { return false }
        control.cancel(reason)
        return true
    }

    func tasks() -> [Task<Void, Never>] { entries.withLock { $0.values.compactMap(\.task) } }
}

/// Lower-case run and step state names for messages and the CLI.
public enum RunStateName {
    public static func of(_ state: RunState) -> String {
        switch state {
        case .running: "running"
        case .succeeded: "succeeded"
        case .failed: "failed"
        case .cancelled: "cancelled"
        case .interrupted: "interrupted"
        case .timedOut: "timed out"
        case .unspecified: "unknown"
        case .unrecognized(let raw): "state \(raw)"
        }
    }

    public static func of(_ state: StepState) -> String {
        switch state {
        case .pending: "pending"
        case .running: "running"
        case .succeeded: "succeeded"
        case .failed: "failed"
        case .skipped: "skipped"
        case .cancelled: "cancelled"
        case .cached: "cached"
        case .unspecified: "unknown"
        case .unrecognized(let raw): "state \(raw)"
        }
    }
}

/// An exclusive lock on a file for the life of the process (flock: released by the kernel
/// when the process dies, even by SIGKILL).
final class InstanceLock: Sendable {
    let descriptor: Int32

    struct Busy: Error, CustomStringConvertible {
        let description: String
    }

    init(path: String) throws {
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw Busy(description: "cannot open \(path): errno \(errno)") }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            let holder = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "?"
            close(descriptor)
            throw Busy(description: "another atom-workflow (pid \(holder)) uses this ATOM_HOME's run database (\(path)); give each instance its own ATOM_HOME")
        }
        _ = ftruncate(descriptor, 0)
        let pid = "\(getpid())\n"
        _ = pid.withCString { write(descriptor, $0, strlen($0)) }
    }

    deinit { close(descriptor) }
}
