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

    /// Which of `names` no skill answers to (validation's UNKNOWN_SKILL). Throws when it
    /// cannot tell (the loader is not reachable).
    func unknownSkills(among names: Set<String>) async throws -> Set<String>
}
