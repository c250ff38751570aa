public import AtomProto

/// Per-call settings for an outgoing call.
public struct CallOptions: Sendable {
    /// Time the call may take, end to end; the caller gets an answer by then, whatever happens.
    public var timeout: Duration
    /// Metadata sent with the call (request id and caller are added when missing).
    public var metadata: [MetadataEntry]

    /// The default deadline of a call when none is given.
    public static let defaultTimeout: Duration = .seconds(30)

    public init(timeout: Duration = CallOptions.defaultTimeout, metadata: [MetadataEntry] = []) {
        self.timeout = timeout
        self.metadata = metadata
    }

    /// Options for a call made while serving `parent`: the deadline is what is left of the
    /// parent's (less a small margin so the parent can still answer), never more than `timeout`,
    /// and the request id travels on.
    public init(parent: RPCContext, timeout: Duration? = nil) {
        var budget = timeout ?? CallOptions.defaultTimeout
        if let remaining = parent.remaining {
            budget = min(budget, max(remaining - .milliseconds(5), .zero))
        }
        self.timeout = budget
        self.metadata = [MetadataEntry(key: RPCMetadataKey.requestID, value: parent.requestID)]
    }
}

/// Well-known metadata keys.
public enum RPCMetadataKey {
    /// Identifies one user-level request across every hop it causes.
    public static let requestID = "request-id"
    /// Who made the call: a client name or a service instance id.
    public static let caller = "caller"
}
