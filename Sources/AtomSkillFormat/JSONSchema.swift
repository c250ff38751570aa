internal import Foundation

/// The JSON Schema subset a skill manifest may use for its `inputs` and `outputs`, compiled once
/// when the manifest is read and checked against values (a call's inputs, a skill's outputs).
///
/// Validation keywords: `type` (a name or a list of names: object, array, string, number,
/// integer, boolean, null), `enum`, `const`; objects: `properties`, `required`,
/// `additionalProperties` (true, false or a schema), `minProperties`, `maxProperties`; arrays:
/// `items` (one schema for every item), `minItems`, `maxItems`, `uniqueItems`; strings:
/// `minLength`, `maxLength` (in Unicode characters), `pattern` (unanchored, ICU syntax); numbers:
/// `minimum`, `maximum`, `exclusiveMinimum`, `exclusiveMaximum` (numbers, as in draft 6 and later),
/// `multipleOf`; combinators: `allOf`, `anyOf`, `oneOf`, `not`. Annotations, accepted and not
/// checked: `title`, `description`, `default`, `examples`, `format`, `$schema`, `$id`,
/// `$comment`, `readOnly`, `writeOnly`, `deprecated`. Any other keyword (`$ref`,
/// `patternProperties`, `if`, ...) is a manifest error naming it, so a schema never silently
/// promises a check that is not made.
public struct JSONSchema: Sendable, Hashable, CustomStringConvertible {
    /// The schema as written in the manifest.
    public let source: JSONValue
    private let node: Node

    /// `{type: object}`: any object (the default of `inputs` and `outputs`).
    public static let anyObject = try! JSONSchema(.object(["type": .string("object")]))

    /// Compiles a schema; the error names the keyword at fault by its path under `field`
    /// (`inputs.properties.count.minimum`).
    public init(_ source: JSONValue, field: String = "") throws(SkillFormatError) {
        self.source = source
        node = try Node(source, path: field)
    }

    /// The schema as compact JSON text.
    public var jsonText: String { source.jsonText }
    public var description: String { jsonText }

    /// True when the schema checks nothing beyond the value being an object (no need to parse a
    /// value only to check it).
    public var onlyRequiresObject: Bool { node.onlyRequiresObject }

    public static func == (lhs: JSONSchema, rhs: JSONSchema) -> Bool { lhs.source == rhs.source }
    public func hash(into hasher: inout Hasher) { hasher.combine(source) }

    /// The ways `value` breaks the schema (at most `limit`, in document order); empty when it
    /// conforms. Paths start at `root` (`inputs.items[2].name`).
    public func violations(of value: JSONValue, root: String = "inputs", limit: Int = 5) -> [Violation] {
        var found: [Violation] = []
        node.check(value, path: root, into: &found, limit: max(1, limit))
        return found
    }

    /// One way a value breaks a schema: where, which keyword, and what is wrong.
    public struct Violation: Sendable, Hashable, CustomStringConvertible {
        /// Where in the value: `inputs`, `inputs.count`, `inputs.items[2]`.
        public var path: String
        /// The schema keyword that failed (`type`, `required`, `minimum`, ...).
        public var keyword: String
        public var message: String
        public var description: String { "\(path): \(message) (\(keyword))" }

        public init(path: String, keyword: String, message: String) {
            self.path = path
            self.keyword = keyword
            self.message = message
        }
    }

    /// Keywords that are checked.
    public static let validationKeywords: Set<String> = [
        "type", "enum", "const", "properties", "required", "additionalProperties", "minProperties", "maxProperties",
        "items", "minItems", "maxItems", "uniqueItems", "minLength", "maxLength", "pattern", "minimum", "maximum",
        "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "allOf", "anyOf", "oneOf", "not",
    ]
    /// Keywords that are accepted and not checked.
    public static let annotationKeywords: Set<String> = [
        "title", "description", "default", "examples", "format", "$schema", "$id", "$comment", "readOnly", "writeOnly", "deprecated",
    ]
    static let typeNames: Set<String> = ["object", "array", "string", "number", "integer", "boolean", "null"]
}

extension JSONSchema {
    final class Node: Sendable {
        enum Additional: Sendable {
            case allowed
            case forbidden
            case schema(Node)
        }

        let types: Set<String>?
        let enumValues: [JSONValue]?
        let constValue: JSONValue?
        let properties: [(name: String, schema: Node)]
        let propertyIndex: [String: Node]
        let required: [String]
        let additional: Additional
        let minProperties: Int?
        let maxProperties: Int?
        let items: Node?
        let minItems: Int?
        let maxItems: Int?
        let uniqueItems: Bool
        let minLength: Int?
        let maxLength: Int?
        let pattern: (text: String, regex: NSRegularExpression)?
        let minimum: Double?
        let maximum: Double?
        let exclusiveMinimum: Double?
        let exclusiveMaximum: Double?
        let multipleOf: Double?
        let allOf: [Node]
        let anyOf: [Node]
        let oneOf: [Node]
        let not: Node?
        /// `true` (accepts everything) or `false` (accepts nothing) as a whole schema.
        let constant: Bool?

        init(_ source: JSONValue, path: String) throws(SkillFormatError) {
            func at(_ keyword: String) -> String { path.isEmpty ? keyword : "\(path).\(keyword)" }
            func fail(_ keyword: String, _ message: String) -> SkillFormatError {
                SkillFormatError(.invalidField, field: at(keyword), message)
            }
            let fields: [String: JSONValue]
            switch source {
            case .bool(let value):
                fields = [:]
                constant = value
            case .object(let object):
                fields = object
                constant = nil
            default:
                throw SkillFormatError(.invalidField, field: path, "a schema is a mapping (or true/false), not \(source.typeNameWithArticle)")
            }
            for key in fields.keys.sorted() where !JSONSchema.validationKeywords.contains(key) && !JSONSchema.annotationKeywords.contains(key) {
                throw fail(key, "\"\(key)\" is not a supported schema keyword; supported: \(JSONSchema.validationKeywords.sorted().joined(separator: ", ")) (annotations: \(JSONSchema.annotationKeywords.sorted().joined(separator: ", "))); see docs/SKILL_FORMAT.md")
            }
            func count(_ keyword: String) throws(SkillFormatError) -> Int? {
                guard let value = fields[keyword] else { return nil }
                guard case .number(let number) = value, number >= 0, number.rounded() == number, number < 1e15 else {
                    throw fail(keyword, "must be a whole number of 0 or more, not \(value.jsonText)")
                }
                return Int(number)
            }
            func number(_ keyword: String) throws(SkillFormatError) -> Double? {
                guard let value = fields[keyword] else { return nil }
                guard case .number(let number) = value, number.isFinite else {
                    throw fail(keyword, "must be a number, not \(value.jsonText)")
                }
                return number
            }
            func schemas(_ keyword: String) throws(SkillFormatError) -> [Node] {
                guard let value = fields[keyword] else { return [] }
                guard case .array(let list) = value, !list.isEmpty else {
                    throw fail(keyword, "must be a non-empty list of schemas, not \(value.jsonText)")
                }
                var nodes: [Node] = []
                for (index, item) in list.enumerated() { nodes.append(try Node(item, path: "\(at(keyword))[\(index)]")) }
                return nodes
            }

            switch fields["type"] {
            case nil:
                types = nil
            case .string(let name)?:
                guard JSONSchema.typeNames.contains(name) else {
                    throw fail("type", "\"\(name)\" is not a type; use one of \(JSONSchema.typeNames.sorted().joined(separator: ", "))")
                }
                types = [name]
            case .array(let list)?:
                var names: Set<String> = []
                for item in list {
                    guard case .string(let name) = item, JSONSchema.typeNames.contains(name) else {
                        throw fail("type", "\(item.jsonText) is not a type; use one of \(JSONSchema.typeNames.sorted().joined(separator: ", "))")
                    }
                    names.insert(name)
                }
                guard !names.isEmpty else { throw fail("type", "is an empty list") }
                types = names
            case let value?:
                throw fail("type", "must be a type name or a list of them, not \(value.jsonText)")
            }
            switch fields["enum"] {
            case nil: enumValues = nil
            case .array(let list)? where !list.isEmpty: enumValues = list
            case let value?: throw fail("enum", "must be a non-empty list of values, not \(value.jsonText)")
            }
            constValue = fields["const"]

            var properties: [(name: String, schema: Node)] = []
            switch fields["properties"] {
            case nil: break
            case .object(let map)?:
                for name in map.keys.sorted() {
                    properties.append((name, try Node(map[name]!, path: "\(at("properties")).\(name)")))
                }
            case let value?: throw fail("properties", "must be a mapping of property names to schemas, not \(value.jsonText)")
            }
            self.properties = properties
            propertyIndex = Dictionary(uniqueKeysWithValues: properties.map { ($0.name, $0.schema) })
            switch fields["required"] {
            case nil: required = []
            case .array(let list)?:
                var names: [String] = []
                for item in list {
                    guard case .string(let name) = item else { throw fail("required", "must be a list of property names, not \(fields["required"]!.jsonText)") }
                    names.append(name)
                }
                required = names
            case let value?: throw fail("required", "must be a list of property names, not \(value.jsonText)")
            }
            switch fields["additionalProperties"] {
            case nil, .bool(true)?: additional = .allowed
            case .bool(false)?: additional = .forbidden
            case let value?: additional = .schema(try Node(value, path: at("additionalProperties")))
            }
            minProperties = try count("minProperties")
            maxProperties = try count("maxProperties")
            switch fields["items"] {
            case nil: items = nil
            case let value?:
                guard value.typeName == "object" || value.typeName == "boolean" else {
                    throw fail("items", "must be one schema for every item, not \(value.jsonText) (tuple forms are not supported)")
                }
                items = try Node(value, path: at("items"))
            }
            minItems = try count("minItems")
            maxItems = try count("maxItems")
            switch fields["uniqueItems"] {
            case nil: uniqueItems = false
            case .bool(let value)?: uniqueItems = value
            case let value?: throw fail("uniqueItems", "must be true or false, not \(value.jsonText)")
            }
            minLength = try count("minLength")
            maxLength = try count("maxLength")
            switch fields["pattern"] {
            case nil: pattern = nil
            case .string(let text)?:
                do {
                    pattern = (text, try NSRegularExpression(pattern: text))
                } catch {
                    throw fail("pattern", "\"\(text)\" is not a valid regular expression")
                }
            case let value?: throw fail("pattern", "must be a regular expression string, not \(value.jsonText)")
            }
            minimum = try number("minimum")
            maximum = try number("maximum")
            if let value = fields["exclusiveMinimum"], case .bool = value {
                throw fail("exclusiveMinimum", "must be a number (the bound itself, as in JSON Schema draft 6 and later), not a boolean")
            }
            if let value = fields["exclusiveMaximum"], case .bool = value {
                throw fail("exclusiveMaximum", "must be a number (the bound itself, as in JSON Schema draft 6 and later), not a boolean")
            }
            exclusiveMinimum = try number("exclusiveMinimum")
            exclusiveMaximum = try number("exclusiveMaximum")
            multipleOf = try number("multipleOf")
            if let multipleOf, multipleOf <= 0 { throw fail("multipleOf", "must be more than 0, not \(multipleOf)") }
            allOf = try schemas("allOf")
            anyOf = try schemas("anyOf")
            oneOf = try schemas("oneOf")
            not = try fields["not"].map { value throws(SkillFormatError) in try Node(value, path: at("not")) }
        }

        var onlyRequiresObject: Bool {
            constant == nil && types == ["object"] && enumValues == nil && constValue == nil && properties.isEmpty && required.isEmpty
                && { if case .allowed = additional { true } else { false } }() && minProperties == nil && maxProperties == nil
                && items == nil && minItems == nil && maxItems == nil && !uniqueItems && minLength == nil && maxLength == nil
                && pattern == nil && minimum == nil && maximum == nil && exclusiveMinimum == nil && exclusiveMaximum == nil
                && multipleOf == nil && allOf.isEmpty && anyOf.isEmpty && oneOf.isEmpty && not == nil
        }

        func accepts(_ value: JSONValue) -> Bool {
            var found: [Violation] = []
            check(value, path: "", into: &found, limit: 1)
            return found.isEmpty
        }

        func check(_ value: JSONValue, path: String, into found: inout [Violation], limit: Int) {
            func add(_ keyword: String, _ message: String) {
                if found.count < limit { found.append(Violation(path: path, keyword: keyword, message: message)) }
            }
            if let constant {
                if !constant { add("false", "no value is allowed here") }
                return
            }
            if let types, !types.contains(where: { Self.isType(value, $0) }) {
                let wanted = types.sorted().map { Self.article($0) }.joined(separator: " or ")
                add("type", "expected \(wanted), got \(Self.article(Self.describeType(value)))")
                return
            }
            if let enumValues, !enumValues.contains(where: { Self.equal($0, value) }) {
                let shown = enumValues.prefix(10).map(\.jsonText).joined(separator: ", ")
                add("enum", "\(Self.short(value)) is not one of \(shown)\(enumValues.count > 10 ? ", ..." : "")")
            }
            if let constValue, !Self.equal(constValue, value) {
                add("const", "must be \(constValue.jsonText), not \(Self.short(value))")
            }
            switch value {
            case .object(let fields):
                for name in required where fields[name] == nil {
                    add("required", "missing required property \"\(name)\"")
                }
                for name in fields.keys.sorted() {
                    let child = Self.child(path, name)
                    if let schema = propertyIndex[name] {
                        schema.check(fields[name]!, path: child, into: &found, limit: limit)
                    } else {
                        switch additional {
                        case .allowed: break
                        case .forbidden:
                            if found.count < limit {
                                let known = properties.map(\.name).joined(separator: ", ")
                                found.append(Violation(path: child, keyword: "additionalProperties", message: "property \"\(name)\" is not allowed\(known.isEmpty ? "" : "; allowed: \(known)")"))
                            }
                        case .schema(let schema): schema.check(fields[name]!, path: child, into: &found, limit: limit)
                        }
                    }
                }
                if let minProperties, fields.count < minProperties { add("minProperties", "has \(fields.count) properties; at least \(minProperties)") }
                if let maxProperties, fields.count > maxProperties { add("maxProperties", "has \(fields.count) properties; at most \(maxProperties)") }
            case .array(let list):
                if let minItems, list.count < minItems { add("minItems", "has \(list.count) items; at least \(minItems)") }
                if let maxItems, list.count > maxItems { add("maxItems", "has \(list.count) items; at most \(maxItems)") }
                if uniqueItems {
                    outer: for i in list.indices {
                        for j in list.indices where j > i && Self.equal(list[i], list[j]) {
                            add("uniqueItems", "items \(i) and \(j) are equal")
                            break outer
                        }
                    }
                }
                if let items {
                    for (index, item) in list.enumerated() where found.count < limit {
                        items.check(item, path: "\(path)[\(index)]", into: &found, limit: limit)
                    }
                }
            case .string(let text):
                if minLength != nil || maxLength != nil {
                    let length = text.unicodeScalars.count
                    if let minLength, length < minLength { add("minLength", "is \(length) characters long; at least \(minLength)") }
                    if let maxLength, length > maxLength { add("maxLength", "is \(length) characters long; at most \(maxLength)") }
                }
                if let pattern {
                    let range = NSRange(text.startIndex..<text.endIndex, in: text)
                    if pattern.regex.firstMatch(in: text, range: range) == nil {
                        add("pattern", "\(Self.short(value)) does not match the pattern \(JSONValue.string(pattern.text).jsonText)")
                    }
                }
            case .number(let number):
                if let minimum, number < minimum { add("minimum", "\(Self.short(value)) is less than the minimum \(Self.format(minimum))") }
                if let maximum, number > maximum { add("maximum", "\(Self.short(value)) is more than the maximum \(Self.format(maximum))") }
                if let exclusiveMinimum, number <= exclusiveMinimum { add("exclusiveMinimum", "\(Self.short(value)) must be more than \(Self.format(exclusiveMinimum))") }
                if let exclusiveMaximum, number >= exclusiveMaximum { add("exclusiveMaximum", "\(Self.short(value)) must be less than \(Self.format(exclusiveMaximum))") }
                if let multipleOf {
                    let quotient = number / multipleOf
                    if abs(quotient - quotient.rounded()) > 1e-9 * max(1, abs(quotient)) {
                        add("multipleOf", "\(Self.short(value)) is not a multiple of \(Self.format(multipleOf))")
                    }
                }
            default:
                break
            }
            for (index, schema) in allOf.enumerated() where found.count < limit {
                var inner: [Violation] = []
                schema.check(value, path: path, into: &inner, limit: limit - found.count)
                if let first = inner.first { found.append(Violation(path: first.path, keyword: "allOf[\(index)].\(first.keyword)", message: first.message)) }
            }
            if !anyOf.isEmpty, !anyOf.contains(where: { $0.accepts(value) }) {
                add("anyOf", "matches none of the \(anyOf.count) allowed schemas")
            }
            if !oneOf.isEmpty {
                let matching = oneOf.filter { $0.accepts(value) }.count
                if matching != 1 { add("oneOf", "matches \(matching) of the \(oneOf.count) schemas; exactly one must match") }
            }
            if let not, not.accepts(value) { add("not", "matches a schema it must not match") }
        }

        static func isType(_ value: JSONValue, _ name: String) -> Bool {
            switch (name, value) {
            case ("object", .object), ("array", .array), ("string", .string), ("number", .number), ("boolean", .bool), ("null", .null): true
            case ("integer", .number(let number)): number.isFinite && number.rounded() == number
            default: false
            }
        }

        static func describeType(_ value: JSONValue) -> String {
            if case .number(let number) = value, number.rounded() == number { return "integer" }
            return value.typeName
        }

        static func article(_ type: String) -> String {
            switch type {
            case "null": "null"
            case "array", "object", "integer": "an \(type)"
            default: "a \(type)"
            }
        }

        /// Equality as JSON Schema means it: numbers by value, objects by members.
        static func equal(_ a: JSONValue, _ b: JSONValue) -> Bool { a == b }

        static func short(_ value: JSONValue) -> String {
            let text = value.jsonText
            return text.count > 60 ? String(text.prefix(57)) + "..." : text
        }

        static func format(_ number: Double) -> String { JSONValue.number(number).jsonText }

        static func child(_ path: String, _ name: String) -> String {
            let plain = !name.isEmpty && name.unicodeScalars.allSatisfy { CharacterSet.alphanumerics.contains($0) || $0 == "_" || $0 == "-" }
            return plain ? "\(path).\(name)" : "\(path)[\(JSONValue.string(name).jsonText)]"
        }
    }
}
