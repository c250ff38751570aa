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
        do {
            environment = try AtomEnvironment()
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
                      ATOM_METRICS_BASELINES (a baselines file for regression alerts)
                    """)
                exit(0)
            default:
                fail("unknown argument \(arguments[index]); see --help")
            }
        }
        ServiceMain.bootstrapLogging(level: environment.logLevel)
        // ATOM_METRICS_BASELINES: a baselines file (`atom metrics --save-baselines FILE`).
        var policy = PerformancePolicy()
        if let path = ProcessInfo.processInfo.environment["ATOM_METRICS_BASELINES"], !path.isEmpty {
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
                    endpoint: environment.gateway, heartbeatInterval: environment.heartbeatInterval, performancePolicy: policy),
                logger: Logger(label: "atom-gateway"))
        } catch {
            fail("\(error)")
        }
        let signals = SignalHandler { _ in gateway.stop() }
        ParentWatch.start { gateway.stop() }
        await gateway.run()
        withExtendedLifetime(signals) {}
        exit(0)
    }

    private static func fail(_ message: String) -> Never {
        FileHandle.standardError.write(Data("atom-gateway: \(message)\n".utf8))
        exit(2)
    }
}
