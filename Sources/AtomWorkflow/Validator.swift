public import AtomProto

/// The limits and defaults validation applies (from the service's settings).
public struct WorkflowLimits: Sendable {
    /// A workflow's time limit when its spec sets none (WORKFLOW_TIMEOUT_SECONDS).
    public var defaultTimeoutSeconds: UInt32 = 600
    /// The most steps a workflow runs at once, and the default (WORKFLOW_MAX_PARALLELISM).
    public var maxParallelism: UInt32 = 16
    /// A cacheable step's TTL when it sets none (WORKFLOW_CACHE_TTL).
    public var defaultCacheTTLSeconds: UInt32 = 60
    public static let maxSteps = 10_000
    public static let maxTimeoutSeconds: UInt32 = 86_400
    public static let maxAttempts: UInt32 = 100
    public static let maxBackoffMs: UInt32 = 3_600_000
    public static let maxCacheTTLSeconds: UInt32 = 30 * 86_400
    public static let maxInputsBytes = 1 << 20
    public static let maxInputs = 1_000

    public init(defaultTimeoutSeconds: UInt32 = 600, maxParallelism: UInt32 = 16, defaultCacheTTLSeconds: UInt32 = 60) {
        self.defaultTimeoutSeconds = defaultTimeoutSeconds
        self.maxParallelism = maxParallelism
        self.defaultCacheTTLSeconds = defaultCacheTTLSeconds
    }
}

/// Retry settings with defaults applied.
public struct EffectiveRetry: Sendable, Hashable {
    public var maxAttempts: Int = 1
    public var initialBackoff: Duration = .milliseconds(100)
    public var maxBackoff: Duration = .seconds(10)
    public var multiplier: Double = 2
    public var jitter: Double = 0.1
    public var retryOn: Set<StatusCode> = [.unavailable, .deadlineExceeded, .resourceExhausted]
    public var retryOnErrors: Set<String> = []

    /// Whether a failure retries (attempts left aside).
    public func retries(_ failure: StepFailure) -> Bool {
        if retryOn.contains(failure.code) { return true }
        if !failure.errorType.isEmpty && (retryOnErrors.contains(failure.errorType) || retryOnErrors.contains("*")) { return true }
        return false
    }

    /// The pause before attempt `attempt` (2, 3, ...): exponential, capped, with jitter.
    public func backoff(beforeAttempt attempt: Int, random: Double = Double.random(in: 0...1)) -> Duration {
        let base = Double(initialBackoff.components.seconds) + Double(initialBackoff.components.attoseconds) / 1e18
        let cap = Double(maxBackoff.components.seconds) + Double(maxBackoff.components.attoseconds) / 1e18
        var delay = min(base * pow(multiplier, Double(attempt - 2)), cap)
        // Jitter spreads retries of many steps: delay * (1 +- jitter).
        delay *= 1 + jitter * (2 * random - 1)
        return .nanoseconds(Int64(max(delay, 0) * 1e9))
    }
}

private func pow(_ base: Double, _ exponent: Double) -> Double {
    var result = 1.0
    var count = Int(exponent)
    while count > 0 {
        result *= base
        count -= 1
        if result > 1e12 { return result }
    }
    return result
}

/// One step, compiled: references resolved to step indices, defaults applied.
public struct CompiledStep: Sendable {
    public let id: String
    public let skill: String
    public let inputs: CompiledValue
    /// The inputs as written (templates unresolved), canonical: part of the cache key.
    public let inputsTemplate: JSONValue
    public let condition: Expression?
    public let timeout: Duration
    public let retry: EffectiveRetry
    /// nil: not cacheable.
    public let cacheTTL: Duration?
}

/// A workflow that passed validation: what the engine runs.
public struct CompiledWorkflow: Sendable {
    public let spec: WorkflowSpec
    public let steps: [CompiledStep]
    public let index: [String: Int]
    /// Dependencies and dependents of each step (explicit and implied by references), by index.
    public let dependencies: Adjacency
    public let dependents: Adjacency
    public let plan: WorkflowPlan
    public let timeout: Duration
    public let parallelism: Int
    public let inputs: [WorkflowInput]
    /// Templates of the run's outputs; nil: the outputs of the steps nothing depends on.
    public let outputs: CompiledValue?
}

/// Lists of step indices per step, in one flat array (compressed sparse rows).
public struct Adjacency: Sendable {
    let start: [Int32]
    let targets: [Int32]

    public subscript(position: Int) -> ArraySlice<Int32> { targets[Int(start[position])..<Int(start[position + 1])] }
}

/// A workflow's graph once it is known to be acyclic.
public struct ValidatedGraph: Sendable {
    let index: IDTable
    public let dependencies: Adjacency
    public let dependents: Adjacency
}

/// The outcome of validation: errors (each naming its step), or the plan and the graph.
public struct ValidationOutcome: Sendable {
    public var errors: [ValidationError]
    public var plan: WorkflowPlan?
    var graph: ValidatedGraph?
    let spec: WorkflowSpec
    let limits: WorkflowLimits

    public var isValid: Bool { errors.isEmpty && graph != nil }

    public var response: ValidateWorkflowResponse {
        ValidateWorkflowResponse(valid: isValid, errors: errors, plan: isValid ? plan : nil)
    }

    /// What the engine runs (steps' inputs parsed and compiled): nil unless valid.
    public var compiled: CompiledWorkflow? {
        guard isValid, let graph, let plan else { return nil }
        return WorkflowValidator.compile(spec, graph: graph, plan: plan, limits: limits)
    }
}

/// ValidateWorkflow: every check names its step, and the plan comes from one pass of Kahn's
/// algorithm over an integer-indexed graph. The only string hashing is the id map.
public enum WorkflowValidator {
    /// Error codes (ValidationError.code).
    public enum Code {
        public static let noSteps = "NO_STEPS"
        public static let tooManySteps = "TOO_MANY_STEPS"
        public static let invalidID = "INVALID_ID"
        public static let duplicateID = "DUPLICATE_ID"
        public static let missingSkill = "MISSING_SKILL"
        public static let unknownSkill = "UNKNOWN_SKILL"
        public static let skillNotLoadable = "SKILL_NOT_LOADABLE"
        public static let missingDependency = "MISSING_DEPENDENCY"
        public static let selfDependency = "SELF_DEPENDENCY"
        public static let cycle = "CYCLE"
        public static let unknownStepReference = "UNKNOWN_STEP_REFERENCE"
        public static let referenceNotUpstream = "REFERENCE_NOT_UPSTREAM"
        public static let selfReference = "SELF_REFERENCE"
        public static let unknownInput = "UNKNOWN_INPUT"
        public static let badReference = "BAD_REFERENCE"
        public static let badInputs = "BAD_INPUTS"
        public static let badCondition = "BAD_CONDITION"
        public static let badTimeout = "BAD_TIMEOUT"
        public static let badRetry = "BAD_RETRY"
        public static let badCache = "BAD_CACHE"
        public static let badWorkflow = "BAD_WORKFLOW"
        public static let badInputDeclaration = "BAD_INPUT_DECLARATION"
        public static let badOutputs = "BAD_OUTPUTS"
    }

    public static func validate(_ spec: WorkflowSpec, limits: WorkflowLimits = WorkflowLimits()) -> ValidationOutcome {
        var errors: [ValidationError] = []
        func fail(_ step: String, _ code: String, _ message: String) {
            errors.append(ValidationError(stepId: step, code: code, message: message))
        }
        let count = spec.steps.count
        if count == 0 { fail("", Code.noSteps, "the workflow has no steps") }
        if count > WorkflowLimits.maxSteps {
            fail("", Code.tooManySteps, "the workflow has \(count) steps; at most \(WorkflowLimits.maxSteps)")
            return ValidationOutcome(errors: errors, plan: nil, graph: nil, spec: spec, limits: limits)
        }

        // Workflow-level values.
        let timeoutSeconds = spec.timeoutSeconds == 0 ? limits.defaultTimeoutSeconds : spec.timeoutSeconds
        if spec.timeoutSeconds > WorkflowLimits.maxTimeoutSeconds {
            fail("", Code.badTimeout, "timeout_seconds \(spec.timeoutSeconds) is over \(WorkflowLimits.maxTimeoutSeconds) (a day)")
        }
        if spec.parallelism > limits.maxParallelism {
            fail("", Code.badWorkflow, "parallelism \(spec.parallelism) is over this service's limit of \(limits.maxParallelism) (WORKFLOW_MAX_PARALLELISM)")
        }
        let parallelism = Int(spec.parallelism == 0 ? limits.maxParallelism : min(spec.parallelism, limits.maxParallelism))

        // Declared inputs.
        var declared = Set<String>()
        if spec.inputs.count > WorkflowLimits.maxInputs {
            fail("", Code.badInputDeclaration, "the workflow declares \(spec.inputs.count) inputs; at most \(WorkflowLimits.maxInputs)")
        }
        for (position, input) in spec.inputs.enumerated() {
            if !Identifier.isValid(input.name) {
                fail("", Code.badInputDeclaration, "inputs[\(position)]: \"\(input.name.prefix(80))\" is not a valid input name (a letter or _, then letters, digits, _ or -; at most 128)")
            } else if !declared.insert(input.name).inserted {
                fail("", Code.badInputDeclaration, "input \(input.name) is declared twice")
            }
            if !input.type.isEmpty && !InputTypes.all.contains(input.type) {
                fail("", Code.badInputDeclaration, "input \(input.name): type \"\(input.type)\" is not one of \(InputTypes.all.sorted().joined(separator: ", "))")
            }
            if !input.defaultJson.isEmpty {
                do {
                    let value = try JSONValue.parse(input.defaultJson)
                    if let problem = InputTypes.mismatch(value, input.type) {
                        fail("", Code.badInputDeclaration, "input \(input.name): the default \(problem)")
                    }
                } catch {
                    fail("", Code.badInputDeclaration, "input \(input.name): default_json is not JSON: \(error)")
                }
            }
        }

        // The id map: the one dictionary of strings.
        var index = IDTable(capacity: count)
        for position in 0..<count {
            let id = spec.steps[position].id
            if !Identifier.isValid(id) {
                fail(id, Code.invalidID, "steps[\(position)]: \(id.isEmpty ? "the id is empty" : "\"\(id.prefix(80))\" is not a valid id") (a letter or _, then letters, digits, _ or -; at most 128)")
                continue
            }
            if let first = index.insert(id, position: position) {
                fail(id, Code.duplicateID, "steps[\(position)]: the id \(id) is already used by steps[\(first)]")
                continue
            }
        }

        // Edges in one flat array (CSR): explicit dependencies, then those references imply.
        // `implied[edge]` marks the edges that come from references (for cycle messages).
        var edgeStart = [Int32](repeating: 0, count: count + 1)
        var edges: [Int32] = []
        var implied: [Bool] = []
        edges.reserveCapacity(count * 2)
        implied.reserveCapacity(count * 2)
        var seenBy = [Int32](repeating: -1, count: count)
        var roots: [Reference.Root] = []
        roots.reserveCapacity(8)

        for position in 0..<count {
            let step = spec.steps[position]
            let id = step.id
            edgeStart[position] = Int32(edges.count)
            let me = Int32(position)
            if step.skill.isEmpty {
                fail(id, Code.missingSkill, "step \(id) names no skill")
            } else if step.skill.utf8.count > 256 || step.skill.utf8.contains(where: { $0 < 0x21 }) {
                fail(id, Code.missingSkill, "step \(id): skill \"\(step.skill.prefix(80))\" is not a valid skill name")
            }
            for dependency in step.dependsOn {
                if dependency == id {
                    fail(id, Code.selfDependency, "step \(id) depends on itself")
                    continue
                }
                guard let target = index[dependency] else {
                    fail(id, Code.missingDependency, "step \(id) depends on \(dependency), which is not a step of this workflow")
                    continue
                }
                if seenBy[target] != me {
                    seenBy[target] = me
                    edges.append(Int32(target))
                    implied.append(false)
                }
            }
            if !step.inputsJson.isEmpty {
                if step.inputsJson.utf8.count > WorkflowLimits.maxInputsBytes {
                    fail(id, Code.badInputs, "step \(id): inputs are \(step.inputsJson.utf8.count) bytes; at most \(WorkflowLimits.maxInputsBytes)")
                } else if let failure = InputsScan.scan(step.inputsJson, into: &roots) {
                    if failure.isReference {
                        fail(id, Code.badReference, "step \(id) inputs: \(failure.message)")
                    } else {
                        fail(id, Code.badInputs, "step \(id): inputs_json \(failure.message)")
                    }
                }
            }
            let fromInputs = roots.count
            if !step.condition.isEmpty {
                do {
                    let expression = try Expression.parse(step.condition)
                    for reference in expression.references { roots.append(reference.root) }
                } catch {
                    fail(id, Code.badCondition, "step \(id): condition \"\(step.condition.prefix(120))\": \(error)")
                }
            }
            // References imply dependencies.
            for (offset, root) in roots.enumerated() {
                link(root, step: id, me: me, place: offset < fromInputs ? "in its inputs" : "in its condition", index: index, declared: declared,
                     seenBy: &seenBy, edges: &edges, implied: &implied, errors: &errors)
            }
            roots.removeAll(keepingCapacity: true)
            if step.timeoutSeconds > timeoutSeconds {
                fail(id, Code.badTimeout, "step \(id): timeout_seconds \(step.timeoutSeconds) is longer than the workflow's \(timeoutSeconds)")
            }
            if let policy = step.retry {
                _ = validateRetry(policy, step: id, fail: fail)
            }
            if step.cacheTtlSeconds > WorkflowLimits.maxCacheTTLSeconds {
                fail(id, Code.badCache, "step \(id): cache_ttl_seconds \(step.cacheTtlSeconds) is over \(WorkflowLimits.maxCacheTTLSeconds) (30 days)")
            }
        }
        edgeStart[count] = Int32(edges.count)

        // Run outputs: references to known steps only.
        if !spec.outputsJson.isEmpty {
            do {
                let value = try JSONValue.parse(spec.outputsJson)
                guard case .object = value else { throw JSONParseError(message: "outputs must be an object, not \(value.typeName)", offset: 0) }
                switch CompiledValue.compile(value, visit: { reference in
                    if let target = reference.stepID, index[target] == nil {
                        fail("", Code.badOutputs, "outputs use \(reference), but there is no step \(target)")
                    }
                    if case .input(let name) = reference.root, !declared.contains(name) {
                        fail("", Code.badOutputs, "outputs use \(reference), but the workflow declares no input \(name)")
                    }
                }) {
                case .success: break
                case .failure(let error): fail("", Code.badOutputs, "outputs: \(error)")
                }
            } catch {
                fail("", Code.badOutputs, "outputs_json: \(error)")
            }
        }

        guard errors.isEmpty else { return ValidationOutcome(errors: errors, plan: nil, graph: nil, spec: spec, limits: limits) }

        // Kahn's algorithm: in-degrees from the CSR, a FIFO of ready steps, levels on the way.
        var indegree = [Int32](repeating: 0, count: count)
        var dependentCount = [Int32](repeating: 0, count: count)
        for position in 0..<count {
            indegree[position] = edgeStart[position + 1] - edgeStart[position]
        }
        for edge in edges { dependentCount[Int(edge)] += 1 }
        // Reverse edges (dependents), also CSR.
        var dependentStart = [Int32](repeating: 0, count: count + 1)
        for position in 0..<count { dependentStart[position + 1] = dependentStart[position] + dependentCount[position] }
        var fill = dependentStart
        var dependentEdges = [Int32](repeating: 0, count: edges.count)
        for position in 0..<count {
            for edge in Int(edgeStart[position])..<Int(edgeStart[position + 1]) {
                let target = Int(edges[edge])
                dependentEdges[Int(fill[target])] = Int32(position)
                fill[target] += 1
            }
        }
        var order = [Int32]()
        order.reserveCapacity(count)
        for position in 0..<count where indegree[position] == 0 { order.append(Int32(position)) }
        var level = [Int32](repeating: 0, count: count)
        var head = 0
        while head < order.count {
            let node = Int(order[head])
            head += 1
            let next = level[node] + 1
            for edge in Int(dependentStart[node])..<Int(dependentStart[node + 1]) {
                let dependent = Int(dependentEdges[edge])
                if level[dependent] < next { level[dependent] = next }
                indegree[dependent] -= 1
                if indegree[dependent] == 0 { order.append(Int32(dependent)) }
            }
        }
        if order.count < count {
            reportCycles(spec: spec, indegree: indegree, edgeStart: edgeStart, edges: edges, implied: implied, fail: fail)
            return ValidationOutcome(errors: errors, plan: nil, graph: nil, spec: spec, limits: limits)
        }

        // The plan: levels, depth, width, one longest chain.
        var depth = 0
        for value in level where Int(value) + 1 > depth { depth = Int(value) + 1 }
        var levelSizes = [Int](repeating: 0, count: depth)
        for value in level { levelSizes[Int(value)] += 1 }
        var levels = levelSizes.map { size -> WorkflowPlan.Level in
            var level = WorkflowPlan.Level()
            level.stepIds.reserveCapacity(size)
            return level
        }
        var orderIDs = [String]()
        orderIDs.reserveCapacity(count)
        var deepest = 0
        for node in order {
            let position = Int(node)
            let id = spec.steps[position].id
            orderIDs.append(id)
            levels[Int(level[position])].stepIds.append(id)
            if level[position] > level[deepest] { deepest = position }
        }
        var criticalPath: [String] = []
        var cursor = deepest
        while true {
            criticalPath.append(spec.steps[cursor].id)
            let wanted = level[cursor] - 1
            if wanted < 0 { break }
            var previous = -1
            for edge in Int(edgeStart[cursor])..<Int(edgeStart[cursor + 1]) where level[Int(edges[edge])] == wanted {
                previous = Int(edges[edge])
                break
            }
            if previous < 0 { break }
            cursor = previous
        }
        criticalPath.reverse()
        let plan = WorkflowPlan(
            order: orderIDs, levels: levels, depth: UInt32(depth), width: UInt32(levelSizes.max() ?? 0), criticalPath: criticalPath)

        let graph = ValidatedGraph(
            index: index, dependencies: Adjacency(start: edgeStart, targets: edges), dependents: Adjacency(start: dependentStart, targets: dependentEdges))
        _ = parallelism
        return ValidationOutcome(errors: [], plan: plan, graph: graph, spec: spec, limits: limits)
    }

    /// Compiles a valid workflow for the engine: inputs parsed into templates, conditions,
    /// effective timeouts, retries and cache TTLs.
    static func compile(_ spec: WorkflowSpec, graph: ValidatedGraph, plan: WorkflowPlan, limits: WorkflowLimits) -> CompiledWorkflow? {
        let timeoutSeconds = spec.timeoutSeconds == 0 ? limits.defaultTimeoutSeconds : spec.timeoutSeconds
        var steps: [CompiledStep] = []
        steps.reserveCapacity(spec.steps.count)
        for step in spec.steps {
            let template: JSONValue
            do {
                template = step.inputsJson.isEmpty ? .object([:]) : try JSONValue.parse(step.inputsJson)
            } catch {
                return nil
            }
            guard case .success(let inputs) = CompiledValue.compile(template, visit: { _ in }) else { return nil }
            let condition = step.condition.isEmpty ? nil : try? Expression.parse(step.condition)
            if !step.condition.isEmpty && condition == nil { return nil }
            var cacheTTL: Duration?
            if step.cacheTtlSeconds > 0 {
                cacheTTL = .seconds(Int64(step.cacheTtlSeconds))
            } else if step.cache || spec.cache {
                cacheTTL = limits.defaultCacheTTLSeconds > 0 ? .seconds(Int64(limits.defaultCacheTTLSeconds)) : nil
            }
            steps.append(CompiledStep(
                id: step.id, skill: step.skill, inputs: inputs, inputsTemplate: template, condition: condition,
                timeout: .seconds(Int64(step.timeoutSeconds > 0 ? step.timeoutSeconds : timeoutSeconds)),
                retry: step.retry.map { validateRetry($0, step: step.id, fail: { _, _, _ in }) } ?? EffectiveRetry(), cacheTTL: cacheTTL))
        }
        var outputs: CompiledValue?
        if !spec.outputsJson.isEmpty {
            guard let value = try? JSONValue.parse(spec.outputsJson), case .success(let compiled) = CompiledValue.compile(value, visit: { _ in }) else {
                return nil
            }
            outputs = compiled
        }
        let parallelism = Int(spec.parallelism == 0 ? limits.maxParallelism : min(spec.parallelism, limits.maxParallelism))
        return CompiledWorkflow(
            spec: spec, steps: steps, index: graph.index.dictionary, dependencies: graph.dependencies, dependents: graph.dependents, plan: plan,
            timeout: .seconds(Int64(timeoutSeconds)), parallelism: max(parallelism, 1), inputs: spec.inputs, outputs: outputs)
    }

    /// One reference of step `me`: an error, or an (implied) dependency edge.
    static func link(
        _ root: Reference.Root, step id: String, me: Int32, place: String, index: IDTable, declared: Set<String>,
        seenBy: inout [Int32], edges: inout [Int32], implied: inout [Bool], errors: inout [ValidationError]
    ) {
        switch root {
        case .input(let name):
            if !declared.contains(name) {
                errors.append(ValidationError(stepId: id, code: Code.unknownInput, message: "step \(id) \(place) uses ${inputs.\(name)}, but the workflow declares no input \(name)\(declared.isEmpty ? "" : " (inputs: \(declared.sorted().prefix(10).joined(separator: ", ")))")"))
            }
        case .stepOutput(let target), .stepStatus(let target):
            if target == id {
                errors.append(ValidationError(stepId: id, code: Code.selfReference, message: "step \(id) \(place) uses ${steps.\(id)...}: a step cannot read its own output"))
                return
            }
            guard let targetIndex = index[target] else {
                errors.append(ValidationError(stepId: id, code: Code.unknownStepReference, message: "step \(id) \(place) uses ${steps.\(target)...}, but there is no step \(target)"))
                return
            }
            if seenBy[targetIndex] != me {
                seenBy[targetIndex] = me
                edges.append(Int32(targetIndex))
                implied.append(true)
            }
        }
    }

    static func validateRetry(_ policy: RetryPolicy, step id: String, fail: (String, String, String) -> Void) -> EffectiveRetry {
        var retry = EffectiveRetry()
        if policy.maxAttempts > WorkflowLimits.maxAttempts {
            fail(id, Code.badRetry, "step \(id): retry.max_attempts \(policy.maxAttempts) is over \(WorkflowLimits.maxAttempts)")
        }
        retry.maxAttempts = max(1, Int(min(policy.maxAttempts, WorkflowLimits.maxAttempts)))
        if policy.initialBackoffMs > WorkflowLimits.maxBackoffMs {
            fail(id, Code.badRetry, "step \(id): retry.initial_backoff_ms \(policy.initialBackoffMs) is over \(WorkflowLimits.maxBackoffMs) (an hour)")
        }
        if policy.maxBackoffMs > WorkflowLimits.maxBackoffMs {
            fail(id, Code.badRetry, "step \(id): retry.max_backoff_ms \(policy.maxBackoffMs) is over \(WorkflowLimits.maxBackoffMs) (an hour)")
        }
        if policy.initialBackoffMs > 0 { retry.initialBackoff = .milliseconds(Int64(policy.initialBackoffMs)) }
        if policy.maxBackoffMs > 0 {
            retry.maxBackoff = .milliseconds(Int64(policy.maxBackoffMs))
            if policy.initialBackoffMs > policy.maxBackoffMs {
                fail(id, Code.badRetry, "step \(id): retry.initial_backoff_ms \(policy.initialBackoffMs) is more than max_backoff_ms \(policy.maxBackoffMs)")
            }
        } else if retry.initialBackoff > retry.maxBackoff {
            retry.maxBackoff = retry.initialBackoff * 100
        }
        if policy.multiplier != 0 {
            if !(policy.multiplier >= 1 && policy.multiplier <= 100) {
                fail(id, Code.badRetry, "step \(id): retry.multiplier \(policy.multiplier) must be between 1 and 100")
            } else {
                retry.multiplier = policy.multiplier
            }
        }
        if !(policy.jitter >= 0 && policy.jitter <= 1) {
            fail(id, Code.badRetry, "step \(id): retry.jitter \(policy.jitter) must be between 0 and 1")
        } else {
            retry.jitter = policy.jitter
        }
        if !policy.retryOn.isEmpty || !policy.retryOnErrors.isEmpty {
            var codes = Set<StatusCode>()
            for code in policy.retryOn {
                if case .unrecognized(let raw) = code {
                    fail(id, Code.badRetry, "step \(id): retry.retry_on has an unknown status code \(raw)")
                } else if code == .ok {
                    fail(id, Code.badRetry, "step \(id): retry.retry_on cannot hold OK")
                } else {
                    codes.insert(code)
                }
            }
            for name in policy.retryOnErrors where name != "*" && !Identifier.isValid(name) {
                fail(id, Code.badRetry, "step \(id): retry.retry_on_errors has \"\(name.prefix(80))\", which is not an exception type name")
            }
            retry.retryOn = codes
            retry.retryOnErrors = Set(policy.retryOnErrors)
        }
        return retry
    }

    /// Finds the cycles among the steps Kahn's algorithm could not order and reports each
    /// with its path. A cycle closed by a reference is REFERENCE_NOT_UPSTREAM on the step
    /// that holds the reference.
    static func reportCycles(
        spec: WorkflowSpec, indegree: [Int32], edgeStart: [Int32], edges: [Int32], implied: [Bool],
        fail: (String, String, String) -> Void
    ) {
        let count = indegree.count
        // 0: not visited, 1: on the current walk, 2: done.
        var mark = [UInt8](repeating: 0, count: count)
        var positionOnWalk = [Int](repeating: -1, count: count)
        var reported = 0
        for start in 0..<count where indegree[start] > 0 && mark[start] == 0 && reported < 10 {
            // Walk dependencies that are themselves unordered: every unordered step has one.
            var walk: [Int] = []
            var walkEdges: [Int] = []
            var node = start
            while mark[node] == 0 {
                mark[node] = 1
                positionOnWalk[node] = walk.count
                walk.append(node)
                var nextNode = -1
                for edge in Int(edgeStart[node])..<Int(edgeStart[node + 1]) where indegree[Int(edges[edge])] > 0 {
                    nextNode = Int(edges[edge])
                    walkEdges.append(edge)
                    break
                }
                if nextNode < 0 { break }
                node = nextNode
            }
            if mark[node] == 1, let from = Optional(positionOnWalk[node]), from >= 0, from < walk.count, walkEdges.count >= walk.count {
                let cycle = Array(walk[from...])
                let cycleEdges = Array(walkEdges[from..<walk.count])
                let ids = cycle.map { spec.steps[$0].id }
                let path = (ids + [ids[0]]).joined(separator: " -> ")
                if let referenceEdge = cycleEdges.firstIndex(where: { implied[$0] }) {
                    let holder = ids[referenceEdge]
                    let target = ids[(referenceEdge + 1) % ids.count]
                    fail(holder, Code.referenceNotUpstream,
                         "step \(holder) uses the output of \(target), which is not upstream: \(target) runs after \(holder) (cycle \(path), each needs the next)")
                } else {
                    fail(ids[0], Code.cycle, "cycle: \(path) (each step depends on the next)")
                }
                reported += 1
            }
            for node in walk {
                mark[node] = 2
                positionOnWalk[node] = -1
            }
        }
    }
}

/// Workflow input types.
enum InputTypes {
    static let all: Set<String> = ["string", "number", "integer", "boolean", "object", "array"]

    /// Why `value` does not fit `type` (as the end of a sentence), or nil.
    static func mismatch(_ value: JSONValue, _ type: String) -> String? {
        let fits: Bool
        switch (type, value) {
        case ("", _): fits = true
        case ("string", .string), ("boolean", .bool), ("object", .object), ("array", .array), ("integer", .int): fits = true
        case ("number", .int), ("number", .double): fits = true
        case ("integer", .double(let number)): fits = number == number.rounded()
        default: fits = false
        }
        return fits ? nil : "is \(value.typeName), not \(type)"
    }
}
