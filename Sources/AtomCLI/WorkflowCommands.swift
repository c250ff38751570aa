internal import ArgumentParser
internal import AtomAPI
internal import AtomProto
internal import AtomRPC
internal import AtomWorkflow
internal import Foundation

/// `atom workflow`: validate, run, inspect, cancel and resume skill workflows.
struct WorkflowCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "workflow",
        abstract: "Validate, run, inspect, cancel and resume workflows (docs/WORKFLOW.md).",
        subcommands: [
            WorkflowValidateCommand.self, WorkflowRunCommand.self, WorkflowStatusCommand.self, WorkflowListCommand.self,
            WorkflowCancelCommand.self, WorkflowResumeCommand.self,
        ])
}

enum WorkflowFiles {
    static func read(_ path: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path) else { throw CLIFailure(.usage, "cannot read \(path)") }
        guard let text = String(data: data, encoding: .utf8) else { throw CLIFailure(.usage, "\(path) is not UTF-8 text") }
        return text
    }

    static func skillCheck(_ flag: Bool, _ off: Bool) -> SkillCheck {
        off ? .off : (flag ? .required : .unspecified)
    }
}

struct WorkflowValidateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate", abstract: "Check a workflow (YAML or JSON) and print its plan.")

    @OptionGroup var options: GatewayOptions

    @Flag(name: .long, help: "Fail when the loader cannot say whether every skill exists.")
    var checkSkills = false

    @Flag(name: .long, help: "Do not ask the loader about skills.")
    var noSkillCheck = false

    @Argument(help: "The workflow file.")
    var file: String

    func run() async throws {
        try await reportingFailures(json: options.json) {
            let text = try WorkflowFiles.read(file)
            let client = try options.client()
            defer { client.close() }
            let response = try await WorkflowClient(client).validateWorkflow(
                ValidateWorkflowRequest(specText: text, skillCheck: WorkflowFiles.skillCheck(checkSkills, noSkillCheck)), options: options.callOptions)
            if options.json {
                try printJSON(ValidationView(response))
            } else {
                for warning in response.warnings { print("warning: \(warning)") }
                if response.valid, let plan = response.plan {
                    print("valid: \(plan.order.count) step(s), depth \(plan.depth), width \(plan.width)")
                    for (index, level) in plan.levels.enumerated() {
                        print("  level \(index + 1): \(level.stepIds.joined(separator: ", "))")
                    }
                    print("  critical path: \(plan.criticalPath.joined(separator: " -> "))")
                } else {
                    print("invalid: \(response.errors.count) error(s)")
                    for error in response.errors {
                        print("  \(error.code)\(error.stepId.isEmpty ? "" : " [\(error.stepId)]"): \(error.message)")
                    }
                }
            }
            if !response.valid { throw ExitCode(ExitStatus.failure.rawValue) }
        }
    }

    struct ValidationView: Encodable {
        struct Problem: Encodable { let step_id: String, code: String, message: String }
        struct Plan: Encodable { let order: [String], levels: [[String]], depth: UInt32, width: UInt32, critical_path: [String] }
        let valid: Bool
        let errors: [Problem]
        let warnings: [String]
        let plan: Plan?

        init(_ response: ValidateWorkflowResponse) {
            valid = response.valid
            errors = response.errors.map { Problem(step_id: $0.stepId, code: $0.code, message: $0.message) }
            warnings = response.warnings
            plan = response.plan.map {
                Plan(order: $0.order, levels: $0.levels.map(\.stepIds), depth: $0.depth, width: $0.width, critical_path: $0.criticalPath)
            }
        }
    }
}

/// Prints step events as they come.
struct StepProgress {
    let json: Bool
    var lastRun: StepEvent?

    mutating func show(_ event: StepEvent) throws {
        // The run's end, in either mode (it decides the exit code).
        if event.stepId.isEmpty && event.runState != .running { lastRun = event }
        if json {
            try printJSONLine(EventView(event))
        } else if event.stepId.isEmpty {
            if event.runState == .running { print("run \(event.runId) started") }
        } else {
            let state = RunStateName.of(event.state)
            var line = "  \(state.padding(toLength: 9, withPad: " ", startingAt: 0)) \(event.stepId)"
            if event.state == .running && event.attempt > 1 { line += "  attempt \(event.attempt)" }
            if event.durationUs > 0 { line += String(format: "  %.1f ms", Double(event.durationUs) / 1000) }
            if event.state == .running && event.attempt > 1 && !event.error.isEmpty { line += "  (\(event.error.prefix(160)))" }
            if event.state == .failed || event.state == .skipped || event.state == .cancelled, !event.error.isEmpty {
                line += "  \(event.error.split(separator: "\n").first.map(String.init) ?? "")"
            }
            print(line)
        }
        fflush(nil)
    }

    /// Prints the run's end; throws exit code 1 unless it succeeded.
    func finish() throws {
        guard let run = lastRun else { throw CLIFailure(.serviceError, "the stream ended without the run's result") }
        if !json {
            print("run \(run.runId) \(RunStateName.of(run.runState))\(run.error.isEmpty ? "" : ": \(run.error)")")
            if !run.outputsJson.isEmpty && run.outputsJson != "{}" { print("outputs: \(run.outputsJson)") }
        }
        if run.runState != .succeeded { throw ExitCode(ExitStatus.failure.rawValue) }
    }

    struct EventView: Encodable {
        let run_id: String, step_id: String, state: String, attempt: UInt32, duration_us: UInt64, error: String, outputs: String
        let run_state: String?

        init(_ event: StepEvent) {
            run_id = event.runId
            step_id = event.stepId
            state = event.stepId.isEmpty ? RunStateName.of(event.runState) : RunStateName.of(event.state)
            attempt = event.attempt
            duration_us = event.durationUs
            error = event.error
            outputs = event.outputsJson
            run_state = event.stepId.isEmpty ? RunStateName.of(event.runState) : nil
        }
    }
}

/// One JSON object per line (streams).
func printJSONLine<T: Encodable>(_ value: T) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}

struct WorkflowRunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run", abstract: "Run a workflow, showing each step as it starts and ends.",
        discussion: "Inputs: --input url=https://example.com --input count=3 (values that parse as JSON are JSON; the rest are text).")

    @OptionGroup var options: GatewayOptions

    @Option(name: .customLong("input"), help: "An input as NAME=VALUE; repeatable.")
    var inputs: [String] = []

    @Flag(name: .long, help: "Start the run and print its id without waiting (`atom workflow status RUN`).")
    var detach = false

    @Flag(name: .long, help: "Ignore cached step results.")
    var noCache = false

    @Option(name: .long, help: "Seconds to wait for the run (default: the workflow's timeout plus a minute).", transform: SecondsArgument.parse)
    var deadline: Double?

    @Argument(help: "The workflow file (YAML or JSON).")
    var file: String

    func run() async throws {
        try await reportingFailures(json: options.json) {
            let text = try WorkflowFiles.read(file)
            var values: [String: JSONValue] = [:]
            for item in inputs {
                guard let equals = item.firstIndex(of: "="), equals != item.startIndex else {
                    throw CLIFailure(.usage, "--input \(item) is not NAME=VALUE")
                }
                let name = String(item[..<equals])
                let raw = String(item[item.index(after: equals)...])
                values[name] = (try? JSONValue.parse(raw)) ?? .string(raw)
            }
            let request = RunWorkflowRequest(
                workflow: ValidateWorkflowRequest(specText: text), inputsJson: JSONValue.object(values).canonicalText, noCache: noCache)
            let client = try options.client()
            defer { client.close() }
            let workflow = WorkflowClient(client)
            if detach {
                let response = try await workflow.startRun(request, options: options.callOptions)
                if options.json { try printJSON(["run_id": response.runId]) } else { print(response.runId) }
                return
            }
            // The call lives as long as the run: the spec's timeout (or the service's default)
            // plus a margin.
            let seconds = deadline ?? Double((try? SpecParser.parse(text).timeoutSeconds).flatMap { $0 == 0 ? nil : $0 } ?? 86_400) + 60
            var progress = StepProgress(json: options.json)
            for try await event in workflow.runWorkflow(request, options: SecondsArgument.callOptions(seconds)) {
                try progress.show(event)
            }
            try progress.finish()
        }
    }
}

struct WorkflowResumeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "resume", abstract: "Re-run the unfinished steps of an interrupted, failed, cancelled or timed-out run.")

    @OptionGroup var options: GatewayOptions

    @Option(name: .long, help: "Seconds to wait for the run.", transform: SecondsArgument.parse)
    var deadline: Double = 86_460

    @Argument(help: "The run id.")
    var run: String

    func run() async throws {
        try await reportingFailures(json: options.json) {
            let client = try options.client()
            defer { client.close() }
            var progress = StepProgress(json: options.json)
            let stream = WorkflowClient(client).resumeRun(ResumeRunRequest(runId: run), options: SecondsArgument.callOptions(deadline))
            for try await event in stream { try progress.show(event) }
            try progress.finish()
        }
    }
}

struct WorkflowStatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "status", abstract: "A run's state and every step's.")

    @OptionGroup var options: GatewayOptions

    @Argument(help: "The run id.")
    var run: String

    func run() async throws {
        try await reportingFailures(json: options.json) {
            let client = try options.client()
            defer { client.close() }
            let record = try await WorkflowClient(client).getRun(GetRunRequest(runId: run), options: options.callOptions)
            if options.json {
                try printJSON(RunView(record))
                return
            }
            print("run \(record.runId)  \(record.workflow)  \(RunStateName.of(record.state))\(record.resumes > 0 ? "  (resumed \(record.resumes)x)" : "")")
            if !record.error.isEmpty { print("  error: \(record.error)") }
            for step in record.steps {
                var line = "  \(RunStateName.of(step.state).padding(toLength: 9, withPad: " ", startingAt: 0)) \(step.stepId)  (\(step.skill))"
                if step.attempt > 1 { line += "  \(step.attempt) attempts" }
                if step.durationUs > 0 { line += String(format: "  %.1f ms", Double(step.durationUs) / 1000) }
                if !step.error.isEmpty { line += "  \(step.error.split(separator: "\n").first.map(String.init) ?? "")" }
                print(line)
            }
            if !record.outputsJson.isEmpty && record.outputsJson != "{}" { print("  outputs: \(record.outputsJson)") }
        }
    }
}

struct RunView: Encodable {
    struct Step: Encodable {
        let step_id: String, skill: String, state: String, attempts: UInt32, inputs: String, outputs: String, error: String
        let error_code: String, error_type: String, started_at_ms: UInt64, finished_at_ms: UInt64, duration_us: UInt64
    }

    let run_id: String, workflow: String, state: String, error: String, inputs: String, outputs: String
    let started_at_ms: UInt64, finished_at_ms: UInt64, resumes: UInt32
    let steps: [Step]

    init(_ record: RunRecord) {
        run_id = record.runId
        workflow = record.workflow
        state = RunStateName.of(record.state)
        error = record.error
        inputs = record.inputsJson
        outputs = record.outputsJson
        started_at_ms = record.startedAtMs
        finished_at_ms = record.finishedAtMs
        resumes = record.resumes
        steps = record.steps.map {
            Step(
                step_id: $0.stepId, skill: $0.skill, state: RunStateName.of($0.state), attempts: $0.attempt, inputs: $0.inputsJson,
                outputs: $0.outputsJson, error: $0.error, error_code: $0.errorCode == .ok ? "" : $0.errorCode.displayName,
                error_type: $0.errorType, started_at_ms: $0.startedAtMs, finished_at_ms: $0.finishedAtMs, duration_us: $0.durationUs)
        }
    }
}

struct WorkflowListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "Recent runs, newest first.")

    @OptionGroup var options: GatewayOptions

    @Option(name: .long, help: "At most this many runs (1-1000).")
    var limit: UInt32 = 20

    @Option(name: .long, help: "Only runs in this state: running, succeeded, failed, cancelled, interrupted, timed-out.")
    var state: String?

    @Option(name: .long, help: "Only runs of this workflow (its name).")
    var workflow: String?

    func run() async throws {
        try await reportingFailures(json: options.json) {
            guard (1...1_000).contains(limit) else { throw CLIFailure(.usage, "--limit \(limit) is out of range; give 1 to 1000") }
            var request = ListRunsRequest(limit: limit, workflow: workflow ?? "")
            if let state {
                let states: [String: RunState] = [
                    "running": .running, "succeeded": .succeeded, "failed": .failed, "cancelled": .cancelled, "interrupted": .interrupted,
                    "timed-out": .timedOut,
                ]
                guard let value = states[state] else { throw CLIFailure(.usage, "--state \(state) is not one of \(states.keys.sorted().joined(separator: ", "))") }
                request.state = value
            }
            let client = try options.client()
            defer { client.close() }
            let response = try await WorkflowClient(client).listRuns(request, options: options.callOptions)
            if options.json {
                try printJSON(response.runs.map(RunView.init))
                return
            }
            if response.runs.isEmpty { print("no runs") }
            for run in response.runs {
                let started = Date(timeIntervalSince1970: Double(run.startedAtMs) / 1000)
                let took = run.finishedAtMs > run.startedAtMs ? String(format: "%.2f s", Double(run.finishedAtMs - run.startedAtMs) / 1000) : ""
                print("\(run.runId)  \(ISO8601DateFormatter().string(from: started))  \(RunStateName.of(run.state).padding(toLength: 11, withPad: " ", startingAt: 0))  \(took.padding(toLength: 9, withPad: " ", startingAt: 0))  \(run.workflow)")
            }
        }
    }
}

struct WorkflowCancelCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "cancel", abstract: "Cancel a run.")

    @OptionGroup var options: GatewayOptions

    @Argument(help: "The run id.")
    var run: String

    func run() async throws {
        try await reportingFailures(json: options.json) {
            let client = try options.client()
            defer { client.close() }
            let response = try await WorkflowClient(client).cancelRun(CancelRunRequest(runId: run), options: options.callOptions)
            if options.json { try printJSON(["cancelled": response.cancelled]) } else { print(response.cancelled ? "cancelled \(run)" : "not cancelled") }
        }
    }
}
