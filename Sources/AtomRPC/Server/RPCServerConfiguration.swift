/// How a service instance connects to the gateway.
public struct RPCServerConfiguration: Sendable {
    /// The gateway's endpoint for services (and clients), e.g. "tcp://127.0.0.1:7700".
    public var gatewayEndpoint: String
    /// Unique among the instances of the service; defaults to "<host>-<pid>-<random>".
    public var instanceID: String
    /// Calls this instance takes at once; the gateway queues the rest.
    public var capacity: Int
    /// How often the instance and the gateway prove liveness; three silent intervals mean dead.
    public var heartbeatInterval: Duration
    /// How long a graceful shutdown waits for calls in flight.
    public var drainTimeout: Duration
    public var version: String
    /// Where handlers run.
    public var handlerExecution: HandlerExecution
    /// Plaintext, or CurveZMQ keys for the link to the gateway.
    public var security: TransportSecurity

    /// Where a server runs its handlers.
    public enum HandlerExecution: Sendable {
        /// The shared cooperative pool: right for handlers that compute or might block.
        case sharedPool
        /// The reactor thread that owns the socket: no thread hop per call, for handlers
        /// that only await and never block (one blocking handler stalls every call).
        case reactorThread
    }

    public init(
        gatewayEndpoint: String,
        instanceID: String? = nil,
        capacity: Int = 64,
        heartbeatInterval: Duration = .seconds(1),
        drainTimeout: Duration = .seconds(10),
        version: String = AtomVersion.current,
        handlerExecution: HandlerExecution = .sharedPool,
        security: TransportSecurity = .plaintext
    ) {
        self.handlerExecution = handlerExecution
        self.security = security
        self.gatewayEndpoint = gatewayEndpoint
        self.instanceID = instanceID ?? RPCServerConfiguration.defaultInstanceID()
        self.capacity = capacity
        self.heartbeatInterval = heartbeatInterval
        self.drainTimeout = drainTimeout
        self.version = version
    }

    static func defaultInstanceID() -> String {
        let suffix = String(UInt32.random(in: 0...UInt32.max), radix: 16)
        return "\(HostInfo.hostname)-\(HostInfo.pid)-\(suffix)"
    }
}

/// The version every component reports.
public enum AtomVersion {
    public static let current = "0.1.0"
}
