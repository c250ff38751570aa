/// A `${...}` reference: to a workflow input, or to an earlier step's output or status.
public struct Reference: Sendable, Hashable, CustomStringConvertible {
    public enum Root: Sendable, Hashable {
        /// `${inputs.NAME...}`
        case input(String)
        /// `${steps.ID.output...}`
        case stepOutput(String)
        /// `${steps.ID.status}`: "succeeded", "cached" or "skipped".
        case stepStatus(String)
    }

    public let root: Root
    /// Members (or decimal array indices) below the root.
    public let path: [String]

    public var description: String {
        var text: String
        switch root {
        case .input(let name): text = "inputs.\(name)"
        case .stepOutput(let id): text = "steps.\(id).output"
        case .stepStatus(let id): text = "steps.\(id).status"
        }
        for member in path { text += ".\(member)" }
        return "${\(text)}"
    }

    /// The step this reference reads from, if any.
    public var stepID: String? {
        switch root {
        case .input: nil
        case .stepOutput(let id), .stepStatus(let id): id
        }
    }

    /// Parses the text between `${` and `}`.
    static func parse(_ text: Substring) -> Result<Reference, TemplateError> {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        for part in parts where part.isEmpty || !part.utf8.allSatisfy(Identifier.isMemberByte) {
            return .failure(TemplateError("${\(text)}: \"\(part)\" is not a valid name (letters, digits, _ and -)"))
        }
        switch parts.first {
        case "inputs":
            guard parts.count >= 2 else { return .failure(TemplateError("${\(text)}: name an input, like ${inputs.url}")) }
            return .success(Reference(root: .input(String(parts[1])), path: parts.dropFirst(2).map(String.init)))
        case "steps":
            guard parts.count >= 3 else {
                return .failure(TemplateError("${\(text)}: name a step and its output, like ${steps.fetch.output.body}"))
            }
            let id = String(parts[1])
            switch parts[2] {
            case "output": return .success(Reference(root: .stepOutput(id), path: parts.dropFirst(3).map(String.init)))
            case "status":
                guard parts.count == 3 else { return .failure(TemplateError("${\(text)}: a status has no members")) }
                return .success(Reference(root: .stepStatus(id), path: []))
            default:
                return .failure(TemplateError("${\(text)}: after steps.\(id) comes output or status, not \(parts[2])"))
            }
        default:
            return .failure(TemplateError("${\(text)}: references start with inputs. or steps."))
        }
    }
}

public struct TemplateError: Error, Sendable, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

enum Identifier {
    static func isMemberByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "_"), UInt8(ascii: "-"):
            true
        default: false
        }
    }

    /// Step ids and input names: a letter or `_`, then letters, digits, `_` and `-`; at most 128.
    static func isValid(_ text: String) -> Bool {
        let utf8 = text.utf8
        guard let first = utf8.first, utf8.count <= 128 else { return false }
        switch first {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "_"): break
        default: return false
        }
        return utf8.allSatisfy(isMemberByte)
    }
}

/// A string with `${...}` references, compiled once. `$${` is a literal `${`.
public struct Template: Sendable, Hashable {
    public enum Part: Sendable, Hashable {
        case literal(String)
        case reference(Reference)
    }

    public let parts: [Part]

    /// The references in the string, or nil when it has none (the common case, checked
    /// without allocating).
    static func compile(_ text: String) -> Result<Template?, TemplateError> {
        let utf8 = text.utf8
        // Fast path: no '$' at all.
        guard utf8.contains(UInt8(ascii: "$")) else { return .success(nil) }
        var parts: [Part] = []
        var literal = ""
        var index = text.startIndex
        var sawReference = false
        while index < text.endIndex {
            let character = text[index]
            if character == "$" {
                let next = text.index(after: index)
                if next < text.endIndex, text[next] == "$", text.index(after: next) < text.endIndex, text[text.index(after: next)] == "{" {
                    literal += "${"
                    index = text.index(next, offsetBy: 2)
                    sawReference = true  // an escape still needs rewriting
                    continue
                }
                if next < text.endIndex, text[next] == "{" {
                    let bodyStart = text.index(after: next)
                    guard let close = text[bodyStart...].firstIndex(of: "}") else {
                        return .failure(TemplateError("\"\(text.prefix(80))\": ${ without a closing }"))
                    }
                    let body = text[bodyStart..<close]
                    switch Reference.parse(body.trimmingSpaces) {
                    case .success(let reference):
                        if !literal.isEmpty {
                            parts.append(.literal(literal))
                            literal = ""
                        }
                        parts.append(.reference(reference))
                        sawReference = true
                    case .failure(let error):
                        return .failure(error)
                    }
                    index = text.index(after: close)
                    continue
                }
            }
            literal.append(character)
            index = text.index(after: index)
        }
        guard sawReference else { return .success(nil) }
        if !literal.isEmpty { parts.append(.literal(literal)) }
        return .success(Template(parts: parts))
    }

    public var references: [Reference] {
        parts.compactMap { if case .reference(let reference) = $0 { reference } else { nil } }
    }
}

extension Substring {
    var trimmingSpaces: Substring {
        var text = self
        while text.first == " " { text = text.dropFirst() }
        while text.last == " " { text = text.dropLast() }
        return text
    }
}

/// A JSON value whose strings may hold references: literal subtrees stay as they are.
public indirect enum CompiledValue: Sendable, Hashable {
    case literal(JSONValue)
    case template(Template)
    case array([CompiledValue])
    case object([String: CompiledValue])

    /// Compiles every string in `value`; calls `visit` for each reference found.
    static func compile(_ value: JSONValue, visit: (Reference) -> Void) -> Result<CompiledValue, TemplateError> {
        switch value {
        case .string(let text):
            switch Template.compile(text) {
            case .success(nil): return .success(.literal(value))
            case .success(let template?):
                template.references.forEach(visit)
                // "${...}" alone keeps the referenced value's type.
                return .success(.template(template))
            case .failure(let error): return .failure(error)
            }
        case .array(let elements):
            var compiled: [CompiledValue] = []
            var dynamic = false
            for element in elements {
                switch compile(element, visit: visit) {
                case .success(let value):
                    if case .literal = value {} else { dynamic = true }
                    compiled.append(value)
                case .failure(let error): return .failure(error)
                }
            }
            return .success(dynamic ? .array(compiled) : .literal(value))
        case .object(let members):
            var compiled: [String: CompiledValue] = [:]
            var dynamic = false
            for (key, member) in members {
                switch compile(member, visit: visit) {
                case .success(let value):
                    if case .literal = value {} else { dynamic = true }
                    compiled[key] = value
                case .failure(let error): return .failure(error)
                }
            }
            return .success(dynamic ? .object(compiled) : .literal(value))
        default:
            return .success(.literal(value))
        }
    }
}

/// What references resolve against during a run.
public protocol ReferenceScope {
    func input(_ name: String) -> JSONValue?
    /// nil: the step has no output (it did not run).
    func stepOutput(_ id: String) -> JSONValue?
    func stepStatus(_ id: String) -> String?
}

public struct ResolutionError: Error, Sendable, CustomStringConvertible {
    public let description: String
}

extension Reference {
    /// The referenced value. A step skipped by its condition has a null output.
    func resolve(in scope: some ReferenceScope) throws(ResolutionError) -> JSONValue {
        var value: JSONValue
        switch root {
        case .input(let name):
            guard let input = scope.input(name) else { throw ResolutionError(description: "\(self): the input \(name) was not given") }
            value = input
        case .stepOutput(let id):
            guard let output = scope.stepOutput(id) else { throw ResolutionError(description: "\(self): step \(id) has no output") }
            value = output
        case .stepStatus(let id):
            return .string(scope.stepStatus(id) ?? "pending")
        }
        for (depth, member) in path.enumerated() {
            if case .null = value, depth > 0 || root.isStepOutput { return .null }
            guard let next = value[member: member] else {
                let walked = path.prefix(depth).map { ".\($0)" }.joined()
                let base: String
                switch root {
                case .input(let name): base = "inputs.\(name)\(walked)"
                case .stepOutput(let id): base = "steps.\(id).output\(walked)"
                case .stepStatus(let id): base = "steps.\(id).status"
                }
                var hint = ""
                if case .object(let members) = value {
                    hint = members.isEmpty ? " (it is an empty object)" : " (it has \(members.keys.sorted().prefix(10).joined(separator: ", ")))"
                } else if case .array(let elements) = value {
                    hint = " (an array of \(elements.count))"
                } else {
                    hint = " (it is a \(value.typeName))"
                }
                throw ResolutionError(description: "\(self): \(base) has no member \(member)\(hint)")
            }
            value = next
        }
        return value
    }
}

extension Reference.Root {
    var isStepOutput: Bool { if case .stepOutput = self { true } else { false } }
}

extension CompiledValue {
    /// The value with every reference resolved. A string that is one reference takes the
    /// referenced value as is; references inside longer strings are written as text.
    func resolve(in scope: some ReferenceScope) throws(ResolutionError) -> JSONValue {
        switch self {
        case .literal(let value): return value
        case .template(let template):
            if template.parts.count == 1, case .reference(let reference) = template.parts[0] {
                return try reference.resolve(in: scope)
            }
            var text = ""
            for part in template.parts {
                switch part {
                case .literal(let literal): text += literal
                case .reference(let reference):
                    switch try reference.resolve(in: scope) {
                    case .null: break
                    case .string(let string): text += string
                    case let other: text += other.canonicalText
                    }
                }
            }
            return .string(text)
        case .array(let elements):
            var resolved: [JSONValue] = []
            resolved.reserveCapacity(elements.count)
            for element in elements { resolved.append(try element.resolve(in: scope)) }
            return .array(resolved)
        case .object(let members):
            var resolved: [String: JSONValue] = [:]
            resolved.reserveCapacity(members.count)
            for (key, member) in members { resolved[key] = try member.resolve(in: scope) }
            return .object(resolved)
        }
    }
}
