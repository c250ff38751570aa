/// What a skill declares about itself in `skill.yaml` (or `skill.json`): the shared format of the
/// loader, the marketplace and the bundled catalog. See docs/SKILL_FORMAT.md.
public struct SkillManifest: Sendable, Hashable {
    public enum Runtime: String, Sendable, Hashable, CaseIterable {
        case python
        case node

        /// The entry file a skill of this runtime has when its manifest names none.
        public var defaultEntry: String {
            switch self {
            case .python: "main.py"
            case .node: "index.js"
            }
        }
    }

    /// What the skill may do beyond computing: off by default.
    public struct Permissions: Sendable, Hashable {
        public var network: Bool = false
        public init(network: Bool = false) { self.network = network }
    }

    /// Resources one execution may use. `memory` and `cpu` use the installer's notation
    /// (`512m`, `1.0`).
    public struct Limits: Sendable, Hashable {
        public var memory: String = "256m"
        public var cpu: String = "1.0"
        public var timeoutSeconds: Double = 30
        public init(memory: String = "256m", cpu: String = "1.0", timeoutSeconds: Double = 30) {
            self.memory = memory
            self.cpu = cpu
            self.timeoutSeconds = timeoutSeconds
        }
    }

    /// An example call and (part of) the output it must give: documentation, and the bundled
    /// catalog's tests.
    public struct Example: Sendable, Hashable {
        public var name: String
        public var inputs: [String: JSONValue]
        /// Every key here must appear in the output with an equal value; other output keys are free.
        public var expect: [String: JSONValue]
        public init(name: String, inputs: [String: JSONValue], expect: [String: JSONValue]) {
            self.name = name
            self.inputs = inputs
            self.expect = expect
        }
    }

    public var name: String
    public var version: String
    public var description: String
    public var category: String
    public var runtime: Runtime
    /// Path of the entry file, relative to the skill folder.
    public var entry: String
    /// The function the entry file defines: `def execute(inputs: dict) -> dict` in Python, an
    /// exported (async) `execute(inputs)` in Node.
    public var function: String
    /// Requirements in the installer's notation (`requests==2.31.0`, `lodash@^4`).
    public var packages: [String]
    public var tags: [String]
    public var author: String
    public var permissions: Permissions
    public var limits: Limits
    /// JSON Schemas of the input and output objects (the subset `JSONSchema` supports).
    public var inputSchema: JSONSchema
    public var outputSchema: JSONSchema
    public var examples: [Example]

    public init(
        name: String, version: String, description: String, category: String, runtime: Runtime,
        entry: String? = nil, function: String = "execute", packages: [String] = [], tags: [String] = [],
        author: String = "", permissions: Permissions = .init(), limits: Limits = .init(),
        inputSchema: JSONSchema = .anyObject,
        outputSchema: JSONSchema = .anyObject, examples: [Example] = []
    ) {
        self.name = name
        self.version = version
        self.description = description
        self.category = category
        self.runtime = runtime
        self.entry = entry ?? runtime.defaultEntry
        self.function = function
        self.packages = packages
        self.tags = tags
        self.author = author
        self.permissions = permissions
        self.limits = limits
        self.inputSchema = inputSchema
        self.outputSchema = outputSchema
        self.examples = examples
    }
}

extension SkillManifest.Example {
    /// Whether `output` gives what this example promises: every key of `expect` is in it with an
    /// equal value (objects compared the same way, lists element by element, numbers as numbers).
    public func accepts(_ output: JSONValue) -> Bool {
        Self.matches(.object(expect), output)
    }

    static func matches(_ expected: JSONValue, _ actual: JSONValue) -> Bool {
        switch (expected, actual) {
        case (.object(let wanted), .object(let got)):
            return wanted.allSatisfy { key, value in got[key].map { matches(value, $0) } ?? false }
        case (.array(let wanted), .array(let got)):
            return wanted.count == got.count && zip(wanted, got).allSatisfy(matches)
        case (.number(let a), .number(let b)):
            return abs(a - b) <= 1e-9 * max(1, abs(a))
        default:
            return expected == actual
        }
    }
}
