public import AtomMetrics
public import AtomRPC

/// Settings of the gateway process. Every key is documented where it is read (`atom-gateway
/// --help` and docs/ARCHITECTURE.md).
public struct GatewayConfiguration: Sendable {
    /// Where clients and service instances connect, e.g. "tcp://127.0.0.1:7700" or "ipc:///run/atom/gw".
    public var endpoint: String
    /// A second endpoint to listen on, for processes on this host (an ipc:// endpoint).
    public var localEndpoint: String?
    /// Interval of the gateway's heartbeats to instances.
    public var heartbeatInterval: Duration
    /// Calls that may wait per service for an instance with free capacity; beyond it callers
    /// get RESOURCE_EXHAUSTED.
    public var maxQueuedPerService: Int
    /// How long a call for a service with no live instance waits for one to register before it
    /// fails with UNAVAILABLE (bounded by the call's own deadline): lets services start in any
    /// order and restart without failing their callers.
    public var noInstanceWait: Duration
    /// How long a health fan-out waits for instances to answer.
    public var healthTimeout: Duration
    /// Budgets and baselines `atom metrics` judges operations by.
    public var performancePolicy: PerformancePolicy
    /// How long the broker thread keeps polling after activity before it sleeps (see `ATOM_IDLE_POLL_US`).
    public var idlePollWindow: Duration
    /// CurveZMQ: when set, every link is encrypted and only the listed public keys may connect.
    public var curve: CurveServerSecurity?

    public init(
        endpoint: String = "tcp://127.0.0.1:7700",
        localEndpoint: String? = nil,
        heartbeatInterval: Duration = .seconds(1),
        maxQueuedPerService: Int = 10_000,
        noInstanceWait: Duration = .seconds(1),
        healthTimeout: Duration = .seconds(1),
        performancePolicy: PerformancePolicy = PerformancePolicy(),
        curve: CurveServerSecurity? = nil,
        idlePollWindow: Duration = IdlePoll.defaultWindow
    ) {
        self.idlePollWindow = idlePollWindow
        self.curve = curve
        self.performancePolicy = performancePolicy
        self.endpoint = endpoint
        self.localEndpoint = localEndpoint
        self.heartbeatInterval = heartbeatInterval
        self.maxQueuedPerService = maxQueuedPerService
        self.noInstanceWait = noInstanceWait
        self.healthTimeout = healthTimeout
    }
}
