public import AtomProto
internal import AtomRPC

/// Why a step's attempt failed: a status code (UNKNOWN for a skill that raised,
/// DEADLINE_EXCEEDED for a timeout), a message, and the skill's exception type if any.
public struct StepFailure: Error, Sendable, Hashable, CustomStringConvertible {
    public var code: StatusCode
    public var message: String
    public var errorType: String

    public init(_ code: StatusCode, _ message: String, errorType: String = "") {
        self.code = code
        self.message = message
        self.errorType = errorType
    }

    public var description: String {
        errorType.isEmpty ? "\(code.displayName): \(message)" : "\(code.displayName) \(errorType): \(message)"
    }

    /// Any error as a step failure (RPC errors keep their code).
    public static func from(_ error: any Error) -> StepFailure {
        if let failure = error as? StepFailure { return failure }
        let rpc = RPCError.from(error)
        return StepFailure(rpc.code, rpc.message)
    }
}

/// Runs a step's skill. The engine's only view of skills: production runs them through the
/// loader service (`LoaderStepExecutor`); the scheduler's tests run Swift closures.
public protocol StepExecutor: Sendable {
    /// Runs `skill` with `inputs` (a JSON object's text) and returns its outputs (a JSON
    /// object's text), or throws a `StepFailure`. Must honour cancellation; the engine also
    /// stops waiting at `timeout`.
    func execute(skill: String, inputs: String, timeout: Duration) async throws -> String

    /// The skill's version and content hash (part of a cache key).
    func identity(of skill: String) async throws -> String

    /// What is wrong with the skills of `names` that cannot run: none answers to the name
    /// (validation's UNKNOWN_SKILL), or it exists but cannot be loaded (SKILL_NOT_LOADABLE).
    /// Skills that can run are left out. Throws when it cannot tell (the loader is not
    /// reachable or does not answer in time).
    func skillProblems(among names: Set<String>) async throws -> [String: SkillProblem]
}

/// Why a skill named in a workflow cannot run.
public enum SkillProblem: Sendable, Hashable {
    /// No skill answers to the name.
    case unknown
    /// The skill exists but cannot be loaded; why (an import error, an invalid manifest, a
    /// failed install), as the loader said it.
    case notLoadable(String)
}
