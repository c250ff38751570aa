internal import ArgumentParser
internal import AtomAPI
internal import AtomProto
internal import AtomRPC
internal import Foundation

/// `atom ping`: calls the echo service repeatedly and reports who answered, how fast, or why
/// not. A diagnostic for the transport and for fail-over.
struct PingCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ping",
        abstract: "Call the echo service repeatedly; show which instance answered each call and how fast.",
        discussion: "Exits 0 when every call succeeded, 4 when one failed, 3 when the gateway is not reachable.")

    @OptionGroup var options: GatewayOptions

    @Option(name: .long, help: "Number of calls.")
    var count = 5

    @Option(name: .long, help: "Milliseconds between calls.")
    var intervalMs = 200

    @Option(name: .long, help: "Ask the echo service to hold each call this many milliseconds (its Sleep method): for deadlines, cancellation and fail-over.")
    var holdMs = 0

    struct Outcome: Encodable {
        let sequence: Int
        /// Milliseconds since the first call started.
        let at_ms: Double
        let latency_us: Double
        let instance: String?
        let code: String
        let message: String?
    }

    func run() async throws {
        try await reportingFailures(json: options.json) {
            guard count > 0, count <= 1_000_000, intervalMs >= 0, intervalMs <= 3_600_000, holdMs >= 0, holdMs <= 3_600_000 else {
                throw CLIFailure(.usage, "--count must be 1-1000000, --interval-ms 0-3600000 and --hold-ms 0-3600000")
            }
            let client = try options.client()
            defer { client.close() }
            let echo = EchoClient(client)
            let start = ContinuousClock.now
            var outcomes: [Outcome] = []
            for sequence in 0..<count {
                if sequence > 0 && intervalMs > 0 { try await Task.sleep(for: .milliseconds(intervalMs)) }
                let callStart = ContinuousClock.now
                let at = Double((callStart - start) / .microseconds(1)) / 1000
                var outcome: Outcome
                do {
                    let instance: String
                    if holdMs > 0 {
                        instance = try await echo.sleep(SleepRequest(durationMs: UInt32(holdMs)), options: options.callOptions).instanceId
                    } else {
                        instance = try await echo.echo(EchoRequest(text: "ping \(sequence)"), options: options.callOptions).instanceId
                    }
                    outcome = Outcome(
                        sequence: sequence, at_ms: at, latency_us: Double((ContinuousClock.now - callStart) / .nanoseconds(1)) / 1000,
                        instance: instance, code: "OK", message: nil)
                } catch {
                    let rpc = RPCError.from(error)
                    if rpc.reason == "GATEWAY_UNREACHABLE" && outcomes.isEmpty { throw error }
                    outcome = Outcome(
                        sequence: sequence, at_ms: at, latency_us: Double((ContinuousClock.now - callStart) / .nanoseconds(1)) / 1000,
                        instance: nil, code: rpc.code.displayName, message: rpc.message)
                }
                outcomes.append(outcome)
                if !options.json {
                    if let instance = outcome.instance {
                        print(String(format: "%5d  %@  %.0f us", sequence, instance, outcome.latency_us))
                    } else {
                        print(String(format: "%5d  %@  %@", sequence, outcome.code, outcome.message ?? ""))
                    }
                }
            }
            if options.json { try printJSON(outcomes) }
            if outcomes.contains(where: { $0.code != "OK" }) { throw ExitCode(ExitStatus.serviceError.rawValue) }
        }
    }
}
