/// Size limits of the wire.
public enum RPCLimits {
    /// The largest request or response payload, like gRPC's default 4 MiB receive limit.
    /// Larger payloads fail with RESOURCE_EXHAUSTED before they are sent.
    public static let maxPayloadBytes = 4 * 1024 * 1024
    /// Envelope overhead allowed on top of the payload.
    public static let envelopeAllowance = 64 * 1024
    /// Sockets disconnect a peer that sends a bigger frame (ZMQ_MAXMSGSIZE): a guard against
    /// garbage, never reached by well-behaved peers.
    public static let maxFrameBytes = maxPayloadBytes + envelopeAllowance
}
