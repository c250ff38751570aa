public import AtomProto
public import AtomRPC
internal import AtomSkillFormat

/// A loader failure: a status code, a message a person can act on, and a machine-readable
/// reason (`SKILL_TIMEOUT`, `SKILL_MEMORY`, `HOST_CRASHED`, ...). Mapped to `RPCError` once, at
/// the service boundary.
public struct LoaderError: Error, Sendable, CustomStringConvertible {
    public var code: StatusCode
    public var message: String
    public var reason: String

    public init(_ code: StatusCode, _ message: String, reason: String = "") {
        self.code = code
        self.message = message
        self.reason = reason
    }

    public var description: String { "\(code.displayName): \(message)" }

    public var rpcError: RPCError {
        reason.isEmpty ? RPCError(code, message) : RPCError.withReason(code, message, reason: reason)
    }

    /// Any error as the status a caller sees.
    static func rpc(_ error: any Error) -> RPCError {
        switch error {
        case let error as LoaderError: error.rpcError
        case let error as SkillFormatError:
            RPCError(error.code == .notFound ? .notFound : .invalidArgument, error.description)
        default: RPCError.from(error)
        }
    }
}
