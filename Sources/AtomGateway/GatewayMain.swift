internal import AtomRPC
internal import AtomMetrics
internal import Foundation
internal import Logging

/// The `atom-gateway` executable.
///
/// Reads `ATOM_GATEWAY` (the endpoint to listen on), `ATOM_HEARTBEAT_MS` and `ATOM_LOG_LEVEL`;
/// `--endpoint` overrides `ATOM_GATEWAY`. Stops on SIGINT or SIGTERM.
public enum GatewayMain {
    public static func run(arguments: [String] = CommandLine.arguments) async -> Never {
        var environment: AtomEnvironment
        let settings: AtomSettings.Resolved
        do {
            settings = try AtomSettings.resolve()
            environment = try AtomEnvironment(settings.values)
        } catch {
            fail("\(error)")
        }
        var index = 1
        while index < arguments.count {
            switch arguments[index] {
            case "--endpoint":
                guard index + 1 < arguments.count else { fail("--endpoint needs a value like tcp://127.0.0.1:7700") }
                environment.gateway = arguments[index + 1]
                if let problem = AtomEnvironment.endpointProblem(environment.gateway) {
                    fail("--endpoint \(environment.gateway) \(problem)")
                }
                index += 2
            case "--help", "-h":
                print("""
                    usage: atom-gateway [--endpoint ENDPOINT]
                      --endpoint   where to listen (default: $ATOM_GATEWAY or \(AtomEnvironment.defaultGateway))
                    environment: ATOM_GATEWAY, ATOM_HEARTBEAT_MS (default 1000), ATOM_LOG_LEVEL (default info),
                      ATOM_IDLE_POLL_US (default 500: microseconds of polling after call traffic before sleeping),
                      ATOM_REACTOR_SLICE_US (default 100: the scheduler slice of threads on the message path; 0: the kernel's),
                      ATOM_GATEWAY_LOCAL (a second endpoint to listen on, such as ipc:///PATH, for processes on this host),
                      ATOM_METRICS_BASELINES (a baselines file for regression alerts),
                      ATOM_METRICS_HTTP_PORT, ATOM_METRICS_HTTP_ADDRESS (default 127.0.0.1): Prometheus /metrics,
                      ATOM_CURVE_SECRET_KEY + ATOM_CURVE_AUTHORIZED_KEYS: CurveZMQ with a list of accepted keys
                    """)
                exit(0)
            default:
                fail("unknown argument \(arguments[index]); see --help")
            }
        }
        let curve: CurveServerSecurity?
        do {
            curve = try environment.gatewaySecurity()
        } catch {
            fail("\(error)")
        }
        ServiceMain.bootstrapLogging(level: environment.logLevel)
        ReactorScheduling.configure(slice: environment.reactorSlice)
        // ATOM_METRICS_BASELINES: a baselines file (`atom metrics --save-baselines FILE`).
        var policy = PerformancePolicy()
        if let path = settings.value("ATOM_METRICS_BASELINES") {
            do {
                policy.baselines = try PerformancePolicy.loadBaselines(from: path)
            } catch {
                fail("ATOM_METRICS_BASELINES=\(path) cannot be read: \(error)")
            }
        }
        let gateway: Gateway
        do {
            gateway = try Gateway(
                configuration: GatewayConfiguration(
                    endpoint: environment.gateway, localEndpoint: environment.gatewayLocal,
                    heartbeatInterval: environment.heartbeatInterval, performancePolicy: policy, curve: curve,
                    idlePollWindow: environment.idlePollWindow),
                logger: Logger(label: "atom-gateway"))
        } catch {
            fail("\(error)")
        }
        let signals = SignalHandler { _ in gateway.stop() }
        ParentWatch.start { gateway.stop() }
        // ATOM_METRICS_HTTP_PORT: serve Prometheus text on http://ATOM_METRICS_HTTP_ADDRESS:PORT/metrics.
        var metricsHTTP: Task<Void, Never>?
        if let text = settings.value("ATOM_METRICS_HTTP_PORT") {
            guard let port = UInt16(text), port > 0 else { fail("ATOM_METRICS_HTTP_PORT=\(text) is not a port (1-65535)") }
            let address = settings.value("ATOM_METRICS_HTTP_ADDRESS") ?? "127.0.0.1"
            let endpoint = gateway.boundEndpoint
            let logger = Logger(label: "atom-gateway")
            metricsHTTP = Task {
                do {
                    let security: TransportSecurity = curve.map { .curve(serverPublicKey: $0.keys.publicKey, keys: $0.keys) } ?? .plaintext
                    try await MetricsHTTPServer.run(address: address, port: port, gatewayEndpoint: endpoint, security: security, logger: logger)
                } catch is CancellationError {
                } catch {
                    logger.error("the metrics HTTP server stopped", metadata: ["error": "\(error)"])
                }
            }
        }
        await gateway.run()
        metricsHTTP?.cancel()
        withExtendedLifetime(signals) {}
        exit(0)
    }

    private static func fail(_ message: String) -> Never {
        FileHandle.standardError.write(Data("atom-gateway: \(message)\n".utf8))
        exit(2)
    }
}
