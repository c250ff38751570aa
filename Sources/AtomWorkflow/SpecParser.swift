public import AtomProto
internal import AtomSkillFormat
internal import Foundation
internal import Yams

/// A spec that cannot be read: the field path and what is wrong with it.
public struct SpecError: Error, Sendable, CustomStringConvertible {
    /// Like `steps[2] (fetch).retry.max_attempts`; empty for the whole document.
    public let path: String
    public let message: String
    /// The step the problem is in, when it is in one.
    public let stepID: String

    public var description: String { path.isEmpty ? message : "\(path): \(message)" }
}

/// Reads a workflow spec from YAML or JSON text into the wire form (`WorkflowSpec`), strictly:
/// unknown fields, wrong types and out-of-range numbers are errors naming the field.
///
/// ```yaml
/// name: summarize-page
/// inputs:
///   url: {type: string, required: true}
/// timeout_seconds: 120
/// parallelism: 4
/// steps:
///   - id: fetch
///     skill: http-get
///     inputs: {url: "${inputs.url}"}
///     retry: {max_attempts: 3, initial_backoff_ms: 200, retry_on: [UNAVAILABLE, ConnectionError]}
///   - id: summarize
///     skill: summarize
///     inputs: {text: "${steps.fetch.output.body}"}
///     condition: "${steps.fetch.output.status} == 200"
///     cache: true
/// ```
public enum SpecParser {
    /// The largest spec text accepted.
    public static let maxBytes = 4 << 20
    /// The deepest nesting accepted in the document.
    public static let maxDepth = JSONValue.maxDepth
    /// The most values (scalars and collections, aliases expanded) in one document.
    public static let maxNodes = 2_000_000

    public static func parse(_ text: String) throws(SpecError) -> WorkflowSpec {
        try decode(try document(text))
    }

    /// The document as a JSON value: JSON text when it starts with `{`, YAML otherwise.
    public static func document(_ text: String) throws(SpecError) -> JSONValue {
        guard text.utf8.count <= maxBytes else {
            throw SpecError(path: "", message: "the spec is \(text.utf8.count) bytes; at most \(maxBytes)", stepID: "")
        }
        let trimmed = text.drop { $0.isWhitespace }
        guard !trimmed.isEmpty else { throw SpecError(path: "", message: "the spec is empty", stepID: "") }
        if trimmed.first == "{" {
            do {
                return try JSONValue.parse(text)
            } catch {
                throw SpecError(path: "", message: "not valid JSON: \(error)", stepID: "")
            }
        }
        if let depth = YAMLNesting.lineBeyond(maxDepth, in: text) {
            throw SpecError(path: "", message: "the document is nested more than \(maxDepth) levels deep (at line \(depth))", stepID: "")
        }
        let node: Node?
        do {
            node = try Yams.compose(yaml: text)
        } catch {
            throw SpecError(path: "", message: "not valid YAML: \(error)", stepID: "")
        }
        guard let node else { throw SpecError(path: "", message: "the spec is empty", stepID: "") }
        var budget = maxNodes
        return try convert(node, path: "", depth: 0, budget: &budget)
    }

    static func convert(_ node: Node, path: String, depth: Int, budget: inout Int) throws(SpecError) -> JSONValue {
        budget -= 1
        guard budget > 0 else { throw SpecError(path: path, message: "the document has more than \(maxNodes) values (aliases expanded)", stepID: "") }
        guard depth < maxDepth else { throw SpecError(path: path, message: "nested more than \(maxDepth) levels deep", stepID: "") }
        switch node {
        case .scalar(let scalar):
            switch Tag.Name(rawValue: node.tag.rawValue) {
            case .null: return .null
            case .bool: return node.bool.map(JSONValue.bool) ?? .string(scalar.string)
            case .int:
                if let value = Int64(exactly: node.int ?? Int.min), node.int != nil { return .int(value) }
                throw SpecError(path: path, message: "\(scalar.string) is not a 64-bit integer", stepID: "")
            case .float:
                guard let value = node.float, value.isFinite else {
                    throw SpecError(path: path, message: "\(scalar.string) is not a finite number", stepID: "")
                }
                return .double(value)
            default:
                return .string(scalar.string)
            }
        case .sequence(let sequence):
            var elements: [JSONValue] = []
            for (index, element) in sequence.enumerated() {
                elements.append(try convert(element, path: "\(path)[\(index)]", depth: depth + 1, budget: &budget))
            }
            return .array(elements)
        case .mapping(let mapping):
            var members: [String: JSONValue] = [:]
            for (key, value) in mapping {
                guard case .scalar(let keyScalar) = key else {
                    throw SpecError(path: path, message: "a key is not a plain name", stepID: "")
                }
                let name = keyScalar.string
                let memberPath = path.isEmpty ? name : "\(path).\(name)"
                guard members[name] == nil else { throw SpecError(path: memberPath, message: "the key appears twice", stepID: "") }
                members[name] = try convert(value, path: memberPath, depth: depth + 1, budget: &budget)
            }
            return .object(members)
        case .alias:
            throw SpecError(path: path, message: "YAML aliases are not supported here", stepID: "")
        }
    }

    // MARK: - Document to WorkflowSpec

    static let workflowFields = ["name", "description", "inputs", "steps", "timeout_seconds", "parallelism", "fail_fast", "cache", "outputs"]
    static let stepFields = ["id", "skill", "inputs", "depends_on", "timeout_seconds", "retry", "condition", "cache", "cache_ttl_seconds"]
    static let retryFields = ["max_attempts", "initial_backoff_ms", "max_backoff_ms", "multiplier", "jitter", "retry_on"]
    static let inputFields = ["type", "required", "default", "description"]

    public static func decode(_ document: JSONValue) throws(SpecError) -> WorkflowSpec {
        let reader = FieldReader(path: "", stepID: "")
        guard case .object(let root) = document else {
            throw SpecError(path: "", message: "a workflow is a mapping with name, steps, ...; got \(document.typeName)", stepID: "")
        }
        try reader.onlyKnown(root, workflowFields, what: "workflow")
        var spec = WorkflowSpec()
        spec.name = try reader.string(root, "name") ?? "workflow"
        spec.description = try reader.string(root, "description") ?? ""
        spec.timeoutSeconds = try reader.integer(root, "timeout_seconds", range: 1...Int64(WorkflowLimits.maxTimeoutSeconds)) ?? 0
        spec.parallelism = try reader.integer(root, "parallelism", range: 1...1_000_000) ?? 0
        spec.failFast = try reader.boolean(root, "fail_fast") ?? false
        spec.cache = try reader.boolean(root, "cache") ?? false
        if let outputs = root["outputs"] {
            guard case .object = outputs else { throw reader.error("outputs", "must be a mapping of names to values, not \(outputs.typeName)") }
            spec.outputsJson = outputs.canonicalText
        }
        if let inputs = root["inputs"] { spec.inputs = try decodeInputs(inputs) }
        guard let stepsValue = root["steps"] else { throw SpecError(path: "steps", message: "is missing: a workflow needs at least one step", stepID: "") }
        guard case .array(let steps) = stepsValue else { throw reader.error("steps", "must be a list of steps, not \(stepsValue.typeName)") }
        guard steps.count <= WorkflowLimits.maxSteps else {
            throw SpecError(path: "steps", message: "has \(steps.count) steps; at most \(WorkflowLimits.maxSteps)", stepID: "")
        }
        spec.steps.reserveCapacity(steps.count)
        for (index, value) in steps.enumerated() {
            spec.steps.append(try decodeStep(value, index: index))
        }
        return spec
    }

    static func decodeInputs(_ value: JSONValue) throws(SpecError) -> [WorkflowInput] {
        var declared: [WorkflowInput] = []
        switch value {
        case .array(let names):
            for (index, name) in names.enumerated() {
                guard case .string(let text) = name else {
                    throw SpecError(path: "inputs[\(index)]", message: "must be an input name, not \(name.typeName)", stepID: "")
                }
                declared.append(WorkflowInput(name: text))
            }
        case .object(let members):
            for name in members.keys.sorted() {
                let reader = FieldReader(path: "inputs.\(name)", stepID: "")
                var input = WorkflowInput(name: name)
                switch members[name]! {
                case .null: break
                case .object(let fields):
                    try reader.onlyKnown(fields, inputFields, what: "input")
                    input.type = try reader.string(fields, "type") ?? ""
                    input.required = try reader.boolean(fields, "required") ?? false
                    input.description = try reader.string(fields, "description") ?? ""
                    if let value = fields["default"] { input.defaultJson = value.canonicalText }
                case let other:
                    throw reader.error("", "must be a mapping with type, required, default, description (or empty), not \(other.typeName)")
                }
                declared.append(input)
            }
        default:
            throw SpecError(path: "inputs", message: "must be a mapping of input names to declarations, or a list of names; got \(value.typeName)", stepID: "")
        }
        return declared
    }

    static func decodeStep(_ value: JSONValue, index: Int) throws(SpecError) -> WorkflowStep {
        guard case .object(let fields) = value else {
            throw SpecError(path: "steps[\(index)]", message: "a step is a mapping with id, skill, ...; got \(value.typeName)", stepID: "")
        }
        var stepID = ""
        if case .string(let id)? = fields["id"] { stepID = id }
        let reader = FieldReader(path: stepID.isEmpty ? "steps[\(index)]" : "steps[\(index)] (\(stepID))", stepID: stepID)
        try reader.onlyKnown(fields, stepFields, what: "step")
        var step = WorkflowStep()
        step.id = try reader.string(fields, "id", required: true) ?? ""
        step.skill = try reader.string(fields, "skill", required: true) ?? ""
        if let inputs = fields["inputs"] {
            guard case .object = inputs else { throw reader.error("inputs", "must be a mapping of names to values, not \(inputs.typeName)") }
            step.inputsJson = inputs.canonicalText
        }
        switch fields["depends_on"] {
        case nil, .null?: break
        case .string(let one)?: step.dependsOn = [one]
        case .array(let many)?:
            for (position, item) in many.enumerated() {
                guard case .string(let name) = item else { throw reader.error("depends_on[\(position)]", "must be a step id, not \(item.typeName)") }
                step.dependsOn.append(name)
            }
        case let other?:
            throw reader.error("depends_on", "must be a step id or a list of step ids, not \(other.typeName)")
        }
        step.timeoutSeconds = try reader.integer(fields, "timeout_seconds", range: 1...Int64(WorkflowLimits.maxTimeoutSeconds)) ?? 0
        step.condition = try reader.string(fields, "condition") ?? ""
        step.cache = try reader.boolean(fields, "cache") ?? false
        step.cacheTtlSeconds = try reader.integer(fields, "cache_ttl_seconds", range: 1...Int64(WorkflowLimits.maxCacheTTLSeconds)) ?? 0
        if let retry = fields["retry"] {
            step.retry = try decodeRetry(retry, reader: reader)
        }
        return step
    }

    static func decodeRetry(_ value: JSONValue, reader parent: FieldReader) throws(SpecError) -> RetryPolicy {
        var policy = RetryPolicy()
        var reader = parent
        reader.path += ".retry"
        switch value {
        case .int:
            // `retry: 3` is three attempts with the defaults.
            policy.maxAttempts = try reader.integer(["max_attempts": value], "max_attempts", range: 1...Int64(WorkflowLimits.maxAttempts)) ?? 1
            return policy
        case .object(let fields):
            try reader.onlyKnown(fields, retryFields, what: "retry policy")
            policy.maxAttempts = try reader.integer(fields, "max_attempts", range: 1...Int64(WorkflowLimits.maxAttempts)) ?? 0
            policy.initialBackoffMs = try reader.integer(fields, "initial_backoff_ms", range: 0...Int64(WorkflowLimits.maxBackoffMs)) ?? 0
            policy.maxBackoffMs = try reader.integer(fields, "max_backoff_ms", range: 0...Int64(WorkflowLimits.maxBackoffMs)) ?? 0
            policy.multiplier = try reader.number(fields, "multiplier", range: 1...100) ?? 0
            policy.jitter = try reader.number(fields, "jitter", range: 0...1) ?? 0
            switch fields["retry_on"] {
            case nil: break
            case .array(let names)?:
                for (position, name) in names.enumerated() {
                    guard case .string(let text) = name else {
                        throw reader.error("retry_on[\(position)]", "must be a status code like UNAVAILABLE or an exception type like ConnectionError, not \(name.typeName)")
                    }
                    if let code = statusCode(named: text) {
                        policy.retryOn.append(code)
                    } else if text == "*" || (Identifier.isValid(text) && text.contains(where: \.isLowercase)) {
                        policy.retryOnErrors.append(text)
                    } else {
                        throw reader.error("retry_on[\(position)]", "\(text) is not a status code (\(StatusCode.allCases.map(\.displayName).joined(separator: ", "))) nor an exception type name")
                    }
                }
            case let other?:
                throw reader.error("retry_on", "must be a list of status codes and exception types, not \(other.typeName)")
            }
            return policy
        default:
            throw reader.error("", "must be a mapping (max_attempts, initial_backoff_ms, ...) or a number of attempts, not \(value.typeName)")
        }
    }

    static func statusCode(named name: String) -> StatusCode? {
        StatusCode.allCases.first { $0.displayName == name && $0 != .ok }
    }
}

/// Reads typed fields of one mapping, with errors that name the field.
struct FieldReader {
    var path: String
    let stepID: String

    func error(_ field: String, _ message: String) -> SpecError {
        let full = field.isEmpty ? path : (path.isEmpty ? field : (field.hasPrefix("[") ? path + field : "\(path).\(field)"))
        return SpecError(path: full, message: message, stepID: stepID)
    }

    func onlyKnown(_ fields: [String: JSONValue], _ known: [String], what: String) throws(SpecError) {
        for key in fields.keys.sorted() where !known.contains(key) {
            var hint = ""
            if let close = known.first(where: { Self.distance($0, key) <= 2 }) { hint = " (did you mean \(close)?)" }
            throw error(key, "unknown field\(hint); a \(what) has \(known.joined(separator: ", "))")
        }
    }

    func string(_ fields: [String: JSONValue], _ key: String, required: Bool = false) throws(SpecError) -> String? {
        switch fields[key] {
        case nil, .null?:
            if required { throw error(key, "is missing") }
            return nil
        case .string(let value)?: return value
        case let other?: throw error(key, "must be a string, not \(other.typeName) \(other.canonicalText.prefix(40))")
        }
    }

    func boolean(_ fields: [String: JSONValue], _ key: String) throws(SpecError) -> Bool? {
        switch fields[key] {
        case nil, .null?: return nil
        case .bool(let value)?: return value
        case let other?: throw error(key, "must be true or false, not \(other.typeName) \(other.canonicalText.prefix(40))")
        }
    }

    func integer(_ fields: [String: JSONValue], _ key: String, range: ClosedRange<Int64>) throws(SpecError) -> UInt32? {
        let number: Int64
        switch fields[key] {
        case nil, .null?: return nil
        case .int(let value)?: number = value
        case .double(let value)? where value == value.rounded() && abs(value) < 1e15: number = Int64(value)
        case let other?: throw error(key, "must be an integer, not \(other.typeName) \(other.canonicalText.prefix(40))")
        }
        guard range.contains(number) else { throw error(key, "is \(number); it must be between \(range.lowerBound) and \(range.upperBound)") }
        return UInt32(number)
    }

    func number(_ fields: [String: JSONValue], _ key: String, range: ClosedRange<Double>) throws(SpecError) -> Double? {
        let number: Double
        switch fields[key] {
        case nil, .null?: return nil
        case .int(let value)?: number = Double(value)
        case .double(let value)?: number = value
        case let other?: throw error(key, "must be a number, not \(other.typeName) \(other.canonicalText.prefix(40))")
        }
        guard range.contains(number) else { throw error(key, "is \(number); it must be between \(range.lowerBound) and \(range.upperBound)") }
        return number
    }

    /// Edit distance, for "did you mean" hints on short field names.
    static func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        if abs(a.count - b.count) > 2 { return 3 }
        var previous = Array(0...b.count)
        for i in 1...max(a.count, 1) where !a.isEmpty {
            var current = [i] + [Int](repeating: 0, count: b.count)
            for j in 1...max(b.count, 1) where !b.isEmpty {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }
}
