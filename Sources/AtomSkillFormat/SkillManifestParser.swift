internal import Foundation
internal import Yams

extension SkillManifest {
    /// The manifest file names a skill folder may hold, in the order they are looked for.
    public static let fileNames = ["skill.yaml", "skill.yml", "skill.json"]

    /// The longest name a skill may have: names become module names, file names and catalog ids.
    public static let maxNameLength = 64
    /// Bounds on the fields a catalog entry carries, so that the largest search page (100
    /// entries) stays below the 4 MiB message limit whatever the skills hold. Lengths are UTF-8
    /// bytes (a character may hold any number of combining marks), except the description's
    /// 4,000 characters, which its 16,000 bytes bound as well.
    public static let maxDescriptionLength = 4_000
    public static let maxDescriptionBytes = 16_000
    public static let maxTags = 32
    public static let maxPackages = 64
    public static let maxPackageLength = 200
    public static let maxAuthorLength = 200
    public static let maxVersionLength = 64
    public static let maxEntryLength = 255

    /// The largest manifest text accepted.
    public static let maxBytes = 1 << 20
    /// The most values (scalars and collections, YAML aliases expanded) a manifest may hold: far
    /// more than any real one, and small enough that a few lines of nested aliases (a "billion
    /// laughs" document) are refused in milliseconds instead of expanding without end.
    public static let maxValues = 100_000

    /// Parses manifest text. `json` selects JSON; otherwise YAML (a superset of JSON for manifests).
    public static func parse(_ text: String, json: Bool = false) throws(SkillFormatError) -> SkillManifest {
        guard text.utf8.count <= maxBytes else {
            throw SkillFormatError(.invalidField, "the manifest is \(text.utf8.count) bytes; at most \(maxBytes)")
        }
        let document: JSONValue
        do {
            document = json ? try JSONValue.parse(json: text) : try parseYAML(text)
        } catch let error as SkillFormatError {
            throw error
        } catch {
            throw SkillFormatError(.unreadable, "the manifest is not valid \(json ? "JSON" : "YAML"): \(Self.describe(error))")
        }
        return try parse(document)
    }

    /// YAML to a document, refusing text nested past `JSONValue.maxDepth` before the composer
    /// (which recurses) sees it, and a document whose aliases expand past `maxValues` before the
    /// decoder (which expands them) sees it.
    private static func parseYAML(_ text: String) throws -> JSONValue {
        if let line = YAMLNesting.lineBeyond(JSONValue.maxDepth, in: text) {
            throw SkillFormatError(.invalidField, "the manifest is nested more than \(JSONValue.maxDepth) levels deep (at line \(line))")
        }
        // The resolver YAMLDecoder itself uses: the decoder, not tags, picks scalar types.
        let parser = try Parser(yaml: text, resolver: Resolver.basic.appending(.merge))
        return try withExtendedLifetime(parser) {
            let root = try parser.singleRoot() ?? ""
            var budget = maxValues
            guard fits(root, budget: &budget) else {
                throw SkillFormatError(.invalidField, "the manifest holds more than \(maxValues) values (YAML aliases expanded)")
            }
            return try YAMLDecoder().decode(JSONValue.self, from: root)
        }
    }

    /// Whether `node`, aliases expanded, holds at most `budget` values; stops counting once over.
    private static func fits(_ node: Node, budget: inout Int) -> Bool {
        budget -= 1
        guard budget >= 0 else { return false }
        switch node {
        case .scalar, .alias:
            return true
        case .sequence(let sequence):
            for element in sequence where !fits(element, budget: &budget) { return false }
            return true
        case .mapping(let mapping):
            for (key, value) in mapping where !fits(key, budget: &budget) || !fits(value, budget: &budget) { return false }
            return true
        }
    }

    /// Builds a manifest from a decoded document, checking every field; unknown fields are errors
    /// so that a typo (`pakages`) is caught instead of ignored.
    public static func parse(_ document: JSONValue) throws(SkillFormatError) -> SkillManifest {
        guard case .object(let fields) = document else {
            if document == .null || document == .string("") { throw SkillFormatError(.invalidField, "the manifest is empty") }
            throw SkillFormatError(.invalidField, "the manifest must be a mapping of fields, not \(document.typeNameWithArticle)")
        }
        var reader = FieldReader(fields: fields, path: "")
        let name = try reader.requiredString("name")
        try checkName(name)
        let version = try reader.requiredString("version")
        guard version.utf8.count <= maxVersionLength else {
            throw SkillFormatError(.invalidField, field: "version", "is \(version.utf8.count) bytes; at most \(maxVersionLength)")
        }
        guard SemanticVersion(version) != nil else {
            throw SkillFormatError(.invalidField, field: "version", "\"\(version)\" is not a semantic version like 1.2.0")
        }
        let description = try reader.requiredString("description")
        guard description.count <= maxDescriptionLength else {
            throw SkillFormatError(.invalidField, field: "description", "is \(description.count) characters; at most \(maxDescriptionLength)")
        }
        guard description.utf8.count <= maxDescriptionBytes else {
            throw SkillFormatError(.invalidField, field: "description", "is \(description.utf8.count) bytes of UTF-8; at most \(maxDescriptionBytes)")
        }
        let category = try reader.requiredString("category")
        try checkToken(category, field: "category")
        let runtimeText = try reader.requiredString("runtime")
        guard let runtime = Runtime(rawValue: runtimeText) else {
            throw SkillFormatError(.invalidField, field: "runtime", "\"\(runtimeText)\" is not a runtime; use python or node")
        }
        let entry = try reader.optionalString("entry") ?? runtime.defaultEntry
        try checkEntry(entry)
        let function = try reader.optionalString("function") ?? "execute"
        guard function.utf8.count <= maxNameLength else {
            throw SkillFormatError(.invalidField, field: "function", "is \(function.utf8.count) bytes; at most \(maxNameLength)")
        }
        guard isIdentifier(function) else {
            throw SkillFormatError(.invalidField, field: "function", "\"\(function)\" is not a function name")
        }
        let packages = try reader.stringList("packages")
        guard packages.count <= maxPackages else {
            throw SkillFormatError(.invalidField, field: "packages", "has \(packages.count) items; at most \(maxPackages)")
        }
        for (index, package) in packages.enumerated() {
            guard !package.trimmingCharacters(in: .whitespaces).isEmpty else {
                throw SkillFormatError(.invalidField, field: "packages[\(index)]", "is empty")
            }
            guard package.utf8.count <= maxPackageLength else {
                throw SkillFormatError(.invalidField, field: "packages[\(index)]", "is \(package.utf8.count) bytes; at most \(maxPackageLength)")
            }
        }
        let tags = try reader.stringList("tags")
        guard tags.count <= maxTags else {
            throw SkillFormatError(.invalidField, field: "tags", "has \(tags.count) items; at most \(maxTags)")
        }
        for (index, tag) in tags.enumerated() { try checkToken(tag, field: "tags[\(index)]") }
        let author = try reader.optionalString("author") ?? ""
        guard author.utf8.count <= maxAuthorLength else {
            throw SkillFormatError(.invalidField, field: "author", "is \(author.utf8.count) bytes of UTF-8; at most \(maxAuthorLength)")
        }

        var permissions = Permissions()
        if var sub = try reader.optionalObject("permissions") {
            permissions.network = try sub.optionalBool("network") ?? false
            try sub.finish()
        }
        var limits = Limits()
        if var sub = try reader.optionalObject("limits") {
            if let memory = try sub.optionalString("memory") {
                guard isQuantity(memory, units: ["k", "m", "g", "kb", "mb", "gb", "ki", "mi", "gi", "kib", "mib", "gib"]) else {
                    throw SkillFormatError(.invalidField, field: "limits.memory", "\"\(memory)\" is not a memory size like 256m or 1g")
                }
                limits.memory = memory
            }
            if let cpu = try sub.optionalNumberText("cpu") {
                guard let value = Double(cpu), value >= 0.01, value <= 1024 else {
                    throw SkillFormatError(.invalidField, field: "limits.cpu", "\"\(cpu)\" is not a number of CPUs between 0.01 and 1024")
                }
                limits.cpu = cpu
            }
            if let timeout = try sub.optionalNumber("timeout_seconds") {
                guard timeout > 0, timeout <= 3_600 else {
                    throw SkillFormatError(.invalidField, field: "limits.timeout_seconds", "\(timeout) is out of range; use more than 0 and at most 3600")
                }
                limits.timeoutSeconds = timeout
            }
            try sub.finish()
        }
        let inputSchema = try reader.optionalSchema("inputs") ?? .anyObject
        let outputSchema = try reader.optionalSchema("outputs") ?? .anyObject

        var examples: [Example] = []
        if let list = try reader.optionalArray("examples") {
            for (index, item) in list.enumerated() {
                let path = "examples[\(index)]"
                guard case .object(let exampleFields) = item else {
                    throw SkillFormatError(.invalidField, field: path, "must be a mapping with inputs and expect, not \(item.typeNameWithArticle)")
                }
                var sub = FieldReader(fields: exampleFields, path: path + ".")
                let exampleName = try sub.optionalString("name") ?? "example \(index + 1)"
                let inputs = try sub.optionalObjectValue("inputs") ?? [:]
                let expect = try sub.optionalObjectValue("expect") ?? [:]
                try sub.finish()
                // An example is documentation and a test: its inputs must be inputs the skill accepts.
                if let violation = inputSchema.violations(of: .object(inputs), root: "\(path).inputs", limit: 1).first {
                    throw SkillFormatError(.invalidField, field: violation.path, "does not match the inputs schema: \(violation.message) (\(violation.keyword))")
                }
                examples.append(Example(name: exampleName, inputs: inputs, expect: expect))
            }
        }
        try reader.finish()
        return SkillManifest(
            name: name, version: version, description: description, category: category, runtime: runtime,
            entry: entry, function: function, packages: packages, tags: tags, author: author,
            permissions: permissions, limits: limits, inputSchema: inputSchema, outputSchema: outputSchema,
            examples: examples
        )
    }

    /// Skill names: lowercase letters, digits, `-` and `_`, starting with a letter.
    public static func checkName(_ name: String, field: String = "name") throws(SkillFormatError) {
        guard !name.isEmpty, name.count <= maxNameLength else {
            throw SkillFormatError(.invalidField, field: field, "must be 1 to \(maxNameLength) characters")
        }
        guard let first = name.unicodeScalars.first, ("a"..."z").contains(first) else {
            throw SkillFormatError(.invalidField, field: field, "\"\(name)\" must start with a lowercase letter")
        }
        if let bad = name.unicodeScalars.first(where: { !(("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "-" || $0 == "_") }) {
            throw SkillFormatError(.invalidField, field: field, "\"\(name)\" has '\(bad)'; use lowercase letters, digits, '-' and '_'")
        }
    }

    private static func checkToken(_ token: String, field: String) throws(SkillFormatError) {
        guard !token.isEmpty, token.count <= 64,
              token.unicodeScalars.allSatisfy({ ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "-" || $0 == "_" })
        else {
            throw SkillFormatError(.invalidField, field: field, "\"\(token)\" must be 1 to 64 lowercase letters, digits, '-' or '_'")
        }
    }

    /// The entry is a relative path that stays inside the skill folder.
    private static func checkEntry(_ entry: String) throws(SkillFormatError) {
        guard entry.utf8.count <= maxEntryLength else {
            throw SkillFormatError(.invalidField, field: "entry", "is \(entry.utf8.count) bytes; at most \(maxEntryLength)")
        }
        guard !entry.isEmpty, !entry.hasPrefix("/"), !entry.contains("\\"), !entry.contains("\0") else {
            throw SkillFormatError(.invalidField, field: "entry", "\"\(entry)\" must be a relative path inside the skill folder")
        }
        if entry.split(separator: "/").contains(where: { $0 == ".." }) {
            throw SkillFormatError(.invalidField, field: "entry", "\"\(entry)\" leaves the skill folder ('..')")
        }
    }

    private static func isIdentifier(_ text: String) -> Bool {
        guard let first = text.unicodeScalars.first, first == "_" || ("a"..."z").contains(first) || ("A"..."Z").contains(first) else { return false }
        return text.unicodeScalars.allSatisfy { $0 == "_" || ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) }
    }

    private static func isQuantity(_ text: String, units: Set<String>) -> Bool {
        let lower = text.lowercased()
        let number = lower.prefix { $0.isASCII && ($0.isNumber || $0 == ".") }
        guard let value = Double(number), value > 0 else { return false }
        return units.contains(String(lower.dropFirst(number.count)))
    }

    private static func describe(_ error: any Error) -> String {
        if let decoding = error as? DecodingError {
            switch decoding {
            case .dataCorrupted(let context): return context.underlyingError.map { "\($0)" } ?? context.debugDescription
            default: return "\(decoding)"
            }
        }
        return "\(error)"
    }
}

/// Reads the fields of one mapping, remembering which were used so unknown ones can be reported.
private struct FieldReader {
    let fields: [String: JSONValue]
    let path: String
    private var used: Set<String> = []

    init(fields: [String: JSONValue], path: String) {
        self.fields = fields
        self.path = path
    }

    private mutating func take(_ key: String) -> JSONValue? {
        used.insert(key)
        guard let value = fields[key], value != .null else { return nil }
        return value
    }

    mutating func requiredString(_ key: String) throws(SkillFormatError) -> String {
        guard let value = try optionalString(key), !value.isEmpty else {
            throw SkillFormatError(.invalidField, field: path + key, "is required")
        }
        return value
    }

    mutating func optionalString(_ key: String) throws(SkillFormatError) -> String? {
        guard let value = take(key) else { return nil }
        guard case .string(let text) = value else {
            let hint = key == "version" ? " (quote it in YAML: version: \"1.0.0\")" : ""
            throw SkillFormatError(.invalidField, field: path + key, "must be a string, not \(value.typeNameWithArticle)\(hint)")
        }
        return text
    }

    /// A number written either as a number or as a string (`cpu: 0.5` or `cpu: "0.5"`).
    mutating func optionalNumberText(_ key: String) throws(SkillFormatError) -> String? {
        guard let value = take(key) else { return nil }
        switch value {
        case .string(let text): return text
        case .number(let number): return number.rounded() == number ? String(Int64(number)) : "\(number)"
        default: throw SkillFormatError(.invalidField, field: path + key, "must be a number, not \(value.typeNameWithArticle)")
        }
    }

    mutating func optionalNumber(_ key: String) throws(SkillFormatError) -> Double? {
        guard let value = take(key) else { return nil }
        guard case .number(let number) = value, number.isFinite else {
            throw SkillFormatError(.invalidField, field: path + key, "must be a number, not \(value.typeNameWithArticle)")
        }
        return number
    }

    mutating func optionalBool(_ key: String) throws(SkillFormatError) -> Bool? {
        guard let value = take(key) else { return nil }
        guard case .bool(let flag) = value else {
            throw SkillFormatError(.invalidField, field: path + key, "must be true or false, not \(value.typeNameWithArticle)")
        }
        return flag
    }

    mutating func stringList(_ key: String) throws(SkillFormatError) -> [String] {
        guard let list = try optionalArray(key) else { return [] }
        var strings: [String] = []
        for (index, item) in list.enumerated() {
            guard case .string(let text) = item else {
                throw SkillFormatError(.invalidField, field: "\(path)\(key)[\(index)]", "must be a string, not \(item.typeNameWithArticle)")
            }
            strings.append(text)
        }
        return strings
    }

    mutating func optionalArray(_ key: String) throws(SkillFormatError) -> [JSONValue]? {
        guard let value = take(key) else { return nil }
        guard case .array(let list) = value else {
            throw SkillFormatError(.invalidField, field: path + key, "must be a list, not \(value.typeNameWithArticle)")
        }
        return list
    }

    mutating func optionalObjectValue(_ key: String) throws(SkillFormatError) -> [String: JSONValue]? {
        guard let value = take(key) else { return nil }
        guard case .object(let object) = value else {
            throw SkillFormatError(.invalidField, field: path + key, "must be a mapping, not \(value.typeNameWithArticle)")
        }
        return object
    }

    mutating func optionalObject(_ key: String) throws(SkillFormatError) -> FieldReader? {
        guard let object = try optionalObjectValue(key) else { return nil }
        return FieldReader(fields: object, path: path + key + ".")
    }

    /// A JSON Schema for an object: a mapping whose `type`, when given, is "object".
    /// The schema is compiled here, so an unsupported keyword or a malformed rule is a manifest
    /// error naming it (see `JSONSchema`).
    mutating func optionalSchema(_ key: String) throws(SkillFormatError) -> JSONSchema? {
        guard let schema = try optionalObjectValue(key) else { return nil }
        if let type = schema["type"], type != .string("object") {
            throw SkillFormatError(.invalidField, field: path + key + ".type", "a skill takes and returns an object; the schema's type must be \"object\", not \(type.jsonText)")
        }
        return try JSONSchema(.object(schema), field: path + key)
    }

    func finish() throws(SkillFormatError) {
        if let unknown = fields.keys.filter({ !used.contains($0) }).sorted().first {
            throw SkillFormatError(.invalidField, field: path + unknown, "is not a manifest field (see docs/SKILL_FORMAT.md)")
        }
    }
}
