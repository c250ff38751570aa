/// A skill folder or manifest that cannot be used, with the field at fault (`limits.memory`,
/// `examples[2].inputs`) and what to do about it. Services map it to INVALID_ARGUMENT (or
/// NOT_FOUND when the folder or manifest is missing).
public struct SkillFormatError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Code: String, Sendable, Hashable {
        /// No folder, or no manifest in it.
        case notFound = "not_found"
        /// The manifest is not valid YAML or JSON.
        case unreadable
        /// A field is missing, unknown, of the wrong type or out of range.
        case invalidField = "invalid_field"
    }

    public var code: Code
    /// The manifest field at fault; empty for the folder or the file as a whole.
    public var field: String
    public var message: String

    public init(_ code: Code, field: String = "", _ message: String) {
        self.code = code
        self.field = field
        self.message = message
    }

    public var description: String { field.isEmpty ? message : "\(field): \(message)" }
}
