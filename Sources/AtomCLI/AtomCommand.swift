public import ArgumentParser
internal import AtomRPC
internal import Foundation

/// The `atom` command line: the gateway's client and the stack's supervisor.
public struct AtomCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "atom",
        abstract: "Atom Skills: install, load, find and chain skills through the Atom services.",
        discussion: """
            Exit codes: 0 success, 1 failure, 2 bad usage or configuration, 3 gateway not reachable,
            4 the service answered with an error, 5 something is not healthy.
            Environment: ATOM_GATEWAY (default \(AtomEnvironment.defaultGateway)), ATOM_HOME (default ~/.atom).
            """,
        version: AtomVersion.current,
        subcommands: [
            UpCommand.self, DownCommand.self, HealthCommand.self, ServicesCommand.self, InstallCommand.self, ResolveCommand.self,
            EnvsCommand.self, SkillCommand.self, SearchCommand.self, MarketplaceCommand.self, MetricsCommand.self, PingCommand.self, ConfigCommand.self, KeysCommand.self, BenchCommand.self,
            WorkflowCommand.self, ReferenceBrokerCommand.self,
        ]
    )

    public init() {}
}

/// Options every command that talks to the gateway shares.
struct GatewayOptions: ParsableArguments {
    @Option(name: .long, help: "Gateway endpoint (default: $ATOM_GATEWAY or \(AtomEnvironment.defaultGateway)).")
    var gateway: String?

    @Option(name: .long, help: "Seconds to wait for an answer.")
    var timeout: Double = 5

    @Flag(name: .long, help: "Print JSON instead of text.")
    var json = false

    func environment() throws -> AtomEnvironment {
        var environment: AtomEnvironment
        do {
            environment = try AtomEnvironment()
        } catch {
            throw CLIFailure(.usage, "\(error)")
        }
        ReactorScheduling.configure(slice: environment.reactorSlice)
        if let gateway {
            if let problem = AtomEnvironment.endpointProblem(gateway) {
                throw CLIFailure(.usage, "--gateway \(gateway) \(problem)")
            }
            environment.gateway = gateway
        }
        return environment
    }

    func client() throws -> RPCClient {
        let environment = try environment()
        return try RPCClient(
            endpoint: environment.gateway, name: "atom-cli", security: try security(environment),
            keepaliveInterval: environment.heartbeatInterval)
    }

    /// CurveZMQ keys from ATOM_CURVE_SERVER_KEY and ATOM_CURVE_SECRET_KEY, or plaintext.
    func security(_ environment: AtomEnvironment) throws -> TransportSecurity {
        do {
            return try environment.clientSecurity()
        } catch {
            throw CLIFailure(.usage, "\(error)")
        }
    }

    var callOptions: CallOptions {
        CallOptions(timeout: .milliseconds(Int64(max(timeout, 0.001) * 1000)))
    }
}
