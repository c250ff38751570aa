public import AtomSkillFormat

/// A JSON value with exact types (an integer stays an integer, `true` is never `1`).
///
/// Step inputs and outputs travel as JSON text; the engine parses them once into this type,
/// resolves references against it and writes canonical text (sorted keys) for cache keys.
public enum JSONValue: Sendable, Hashable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    /// The deepest nesting the parsers accept: deeper documents are refused with an error
    /// instead of exhausting the stack.
    public static let maxDepth = JSONParser.defaultMaxDepth

    /// A member of an object, an element of an array by a decimal index, or nil.
    public subscript(member name: String) -> JSONValue? {
        switch self {
        case .object(let members): return members[name]
        case .array(let elements):
            guard let index = Int(name), index >= 0, index < elements.count else { return nil }
            return elements[index]
        default: return nil
        }
    }

    /// The JSON type's name, for error messages.
    public var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "boolean"
        case .int: "integer"
        case .double: "number"
        case .string: "string"
        case .array: "array"
        case .object: "object"
        }
    }

    /// Truthiness in conditions: false, null, 0, "" , [] and {} are false.
    public var isTruthy: Bool {
        switch self {
        case .null: false
        case .bool(let value): value
        case .int(let value): value != 0
        case .double(let value): value != 0 && !value.isNaN
        case .string(let value): !value.isEmpty
        case .array(let value): !value.isEmpty
        case .object(let value): !value.isEmpty
        }
    }

    public var numberValue: Double? {
        switch self {
        case .int(let value): Double(value)
        case .double(let value): value
        default: nil
        }
    }
}

// MARK: - Parsing

/// A JSON syntax error with the byte offset where it was found (the shared parser's).
public typealias JSONParseError = AtomSkillFormat.JSONParseError

extension JSONValue: JSONParsable {
    public static func number(parsed number: JSONNumber) -> JSONValue {
        switch number {
        case .int(let value): .int(value)
        case .double(let value): .double(value)
        }
    }

    /// Parses JSON text (RFC 8259; nesting at most `maxDepth`; a repeated member name is an error).
    public static func parse(_ text: String) throws(JSONParseError) -> JSONValue {
        try JSONParser.parse(text, maxDepth: maxDepth, duplicateMembers: .rejected)
    }

    /// Parses text that must hold a JSON object; empty text is an empty object.
    public static func parseObject(_ text: String) throws(JSONParseError) -> [String: JSONValue] {
        if text.isEmpty { return [:] }
        guard case .object(let members) = try parse(text) else {
            throw JSONParseError(message: "expected a JSON object", offset: 0)
        }
        return members
    }
}

// MARK: - Writing

extension JSONValue {
    /// Canonical JSON text: object members sorted by name, no insignificant whitespace. Equal
    /// values give equal text (cache keys depend on it).
    public var canonicalText: String {
        var out = ""
        write(into: &out)
        return out
    }

    func write(into out: inout String) {
        switch self {
        case .null: out += "null"
        case .bool(let value): out += value ? "true" : "false"
        case .int(let value): out += String(value)
        case .double(let value):
            if value == value.rounded(.towardZero) && abs(value) < 1e15 {
                out += String(Int64(value))
                out += ".0"
            } else {
                out += "\(value)"
            }
        case .string(let value): Self.writeString(value, into: &out)
        case .array(let elements):
            out += "["
            for (offset, element) in elements.enumerated() {
                if offset > 0 { out += "," }
                element.write(into: &out)
            }
            out += "]"
        case .object(let members):
            out += "{"
            for (offset, key) in members.keys.sorted().enumerated() {
                if offset > 0 { out += "," }
                Self.writeString(key, into: &out)
                out += ":"
                members[key]!.write(into: &out)
            }
            out += "}"
        }
    }

    static func writeString(_ value: String, into out: inout String) {
        out += "\""
        var needsEscape = false
        for byte in value.utf8 where byte < 0x20 || byte == 0x22 || byte == 0x5C {
            needsEscape = true
            break
        }
        if !needsEscape {
            out += value
        } else {
            for scalar in value.unicodeScalars {
                switch scalar {
                case "\"": out += "\\\""
                case "\\": out += "\\\\"
                case "\n": out += "\\n"
                case "\r": out += "\\r"
                case "\t": out += "\\t"
                default:
                    if scalar.value < 0x20 {
                        let hex = String(scalar.value, radix: 16)
                        out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                    } else {
                        out.unicodeScalars.append(scalar)
                    }
                }
            }
        }
        out += "\""
    }
}

extension Dictionary where Key == String, Value == JSONValue {
    /// The object as canonical JSON text.
    var canonicalText: String { JSONValue.object(self).canonicalText }
}
