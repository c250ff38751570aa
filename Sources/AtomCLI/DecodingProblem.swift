internal import Foundation

/// A `DecodingError` as a person reads it: where in the document, and what was wrong, instead
/// of Swift's debug description of coding keys.
enum DecodingProblem {
    static func describe(_ error: any Error) -> String {
        guard let decoding = error as? DecodingError else { return "\(error)" }
        switch decoding {
        case .typeMismatch(let type, let context):
            return "\(place(context.codingPath)): expected \(name(of: type))"
        case .valueNotFound(let type, let context):
            return "\(place(context.codingPath)): expected \(name(of: type)), found null"
        case .keyNotFound(let key, let context):
            return "\(place(context.codingPath + [key])): missing"
        case .dataCorrupted(let context):
            if context.codingPath.isEmpty { return "not valid JSON" }
            return "\(place(context.codingPath)): \(context.debugDescription)"
        @unknown default:
            return "\(decoding)"
        }
    }

    /// `packages[0]`, `item 2: packages`, or "the document" at the top.
    static func place(_ path: [any CodingKey]) -> String {
        guard !path.isEmpty else { return "the document" }
        var keys = path[...]
        var prefix = ""
        if let index = keys.first?.intValue {
            prefix = "item \(index)"
            keys = keys.dropFirst()
        }
        var text = ""
        for key in keys {
            if let index = key.intValue { text += "[\(index)]" } else { text += (text.isEmpty ? "" : ".") + key.stringValue }
        }
        return [prefix, text].filter { !$0.isEmpty }.joined(separator: ": ")
    }

    static func name(of type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Bool.Type: "true or false"
        case is Int.Type, is Double.Type, is UInt32.Type, is UInt64.Type: "a number"
        case is [Any].Type: "a list"
        case is [String: Any].Type: "an object"
        default:
            String(describing: type).hasPrefix("Array") ? "a list" : "an object"
        }
    }
}
