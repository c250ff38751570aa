public import AtomProto
public import AtomMetrics

/// What a handler knows about the call it serves.
public struct RPCContext: Sendable {
    public let service: String
    public let method: String
    /// When the caller stops waiting; nil when the call has no deadline.
    public let deadline: ContinuousClock.Instant?
    public let metadata: [MetadataEntry]
    /// The instance serving the call.
    public let instanceID: String
    /// The instance's latency recorder: handlers record their domain operations here
    /// (`context.metrics.record("skill_load", duration)`); the gateway merges them across
    /// instances. Every RPC method's latency is recorded by the runtime already.
    public let metrics: LatencyRecorder

    public init(
        service: String, method: String, deadline: ContinuousClock.Instant?,
        metadata: [MetadataEntry], instanceID: String, metrics: LatencyRecorder = LatencyRecorder()
    ) {
        self.service = service
        self.method = method
        self.deadline = deadline
        self.metadata = metadata
        self.instanceID = instanceID
        self.metrics = metrics
    }

    public func metadataValue(_ key: String) -> String? {
        metadata.first { $0.key == key }?.value
    }

    public var requestID: String { metadataValue(RPCMetadataKey.requestID) ?? "" }
    public var caller: String { metadataValue(RPCMetadataKey.caller) ?? "" }

    /// Time left before the deadline (never negative), or nil without a deadline.
    public var remaining: Duration? {
        deadline.map { max($0 - ContinuousClock.now, .zero) }
    }
}
