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
            4 the call failed with the gateway in reach (an error, or its deadline passed), 5 something is not healthy.
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

    /// ArgumentParser's own `main`, except that a command line it cannot parse exits with 2 (bad
    /// usage, as every other usage error of `atom`) rather than its EX_USAGE (64).
    public static func main() async {
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            if exitCode(for: error) == .validationFailure {
                FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
                Foundation.exit(ExitStatus.usage.rawValue)
            }
            exit(withError: error)
        }
    }
}

/// Options every command that talks to the gateway shares.
struct GatewayOptions: ParsableArguments {
    @Option(name: .long, help: "Gateway endpoint (default: $ATOM_GATEWAY or \(AtomEnvironment.defaultGateway)).")
    var gateway: String?

    @Option(name: .long, help: "Seconds to wait for an answer.", transform: SecondsArgument.parse)
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
        SecondsArgument.callOptions(timeout)
    }
}
