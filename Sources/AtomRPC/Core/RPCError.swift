public import AtomProto

/// An RPC failure with a gRPC status code and a message a person can act on.
///
/// Handlers throw it; the runtime sends it to the caller as the call's final status. Any other
/// error a handler throws reaches the caller as UNKNOWN with the error's description.
public struct RPCError: Error, Sendable, Hashable, CustomStringConvertible {
    public var code: StatusCode
    public var message: String
    public var details: [StatusDetail]

    public init(_ code: StatusCode, _ message: String, details: [StatusDetail] = []) {
        self.code = code
        self.message = message
        self.details = details
    }

    public var description: String { "\(code.displayName): \(message)" }

    init(status: RPCStatus) {
        self.init(status.code, status.message, details: status.details)
    }

    var status: RPCStatus { RPCStatus(code: code, message: message, details: details) }

    /// Maps any error to the status sent on the wire: RPCError as is, codec errors as
    /// INVALID_ARGUMENT, cancellation as CANCELLED, the rest as UNKNOWN.
    public static func from(_ error: any Error) -> RPCError {
        switch error {
        case let error as RPCError: error
        case let error as ProtoError: RPCError(.invalidArgument, error.description)
        case is CancellationError: RPCError(.cancelled, "the call was cancelled")
        default: RPCError(.unknown, String(describing: error))
        }
    }

    /// The ErrorInfo detail's reason, if the error carries one.
    public var reason: String? {
        for detail in details where detail.type == ErrorInfo.protoName {
            if let info = try? ErrorInfo(serializedBytes: detail.value) { return info.reason }
        }
        return nil
    }

    /// An error with an ErrorInfo detail naming a machine-readable reason.
    public static func withReason(_ code: StatusCode, _ message: String, reason: String) -> RPCError {
        let info = ErrorInfo(reason: reason, domain: "atom")
        let detail = (try? info.serializedBytes()).map { StatusDetail(type: ErrorInfo.protoName, value: $0) }
        return RPCError(code, message, details: detail.map { [$0] } ?? [])
    }
}

extension StatusCode {
    /// gRPC's spelling, like "INVALID_ARGUMENT".
    public var displayName: String {
        let name = protoName
        let prefix = "STATUS_CODE_"
        return name.hasPrefix(prefix) ? String(name.dropFirst(prefix.count)) : name
    }
}
