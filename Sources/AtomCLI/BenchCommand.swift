internal import ArgumentParser
internal import AtomRPC
internal import Foundation

/// `atom bench`: benchmark suites against a temporary stack (or a running one).
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Run benchmark suites and compare them with their targets.",
        discussion: """
            Suites: codec, rpc, install, loader, marketplace, workflow. Without --gateway, starts a temporary stack of its own and \
            stops it after. `install` needs the package index (PyPI) and always runs its own stack. `marketplace` builds \
            100,000 skills from Debian's package descriptions (cached in $ATOM_HOME/bench), runs its own stack, and installs \
            tantivy from PyPI into a benchmark-only environment for its baseline. \
            Build with `swift build -c release` (or `make bench`) for figures worth comparing.
            """)

    @Argument(help: "Suites to run (default: every suite).")
    var suites: [String] = []

    @Option(name: .long, help: "Benchmark a running stack at this gateway endpoint instead of a temporary one.")
    var gateway: String?

    @Option(name: .long, help: "Write the results as JSON to this file.")
    var json: String?

    @Option(name: .long, help: "Sequential round trips per latency benchmark.")
    var rounds: Int = 10_000

    @Option(name: .long, help: "Seconds each throughput benchmark runs.", transform: SecondsArgument.parse)
    var seconds: Double = 3

    @Option(name: .long, help: "rpc suite: the transport of its temporary stack, raw baseline and C-broker reference: ipc (what the services of `atom up` use) or tcp (loopback, as between hosts). With --gateway, that endpoint's.")
    var transport: String = "ipc"

    @Flag(name: .long, help: "Fewer rounds and shorter runs (1,000 rounds, 1 s).")
    var quick = false

    @Option(name: .long, help: "A JSON report of an earlier run: results more than 1.5x slower are marked and the exit code is 5.")
    var compare: String?

    @Option(name: .long, help: "Rounds of each install benchmark (each is a real install).")
    var installRounds: Int = 3

    @Option(name: .long, help: "Rounds of each loader load benchmark (each starts or loads into a host).")
    var loadRounds: Int = 100

    @Option(name: .long, help: "The package the install benchmark installs.")
    var installPackage: String = "requests==2.28.0"

    @Option(name: .long, help: "Skills in the marketplace benchmark's catalog.")
    var marketplaceSkills: Int = 100_000

    @Option(name: .long, help: "Searches of each shape and kind in the marketplace benchmark (default: --rounds, at most 5,000).")
    var marketplaceRounds: Int?

    func run() async throws {
        try await reportingFailures { try await runSuites() }
    }

    private func runSuites() async throws {
        let known = ["codec", "rpc", "install", "loader", "marketplace", "workflow"]
        // Every suite by default; `install` downloads from the package index (PyPI) like the
        // peers it is compared with.
        let selected = suites.isEmpty ? known : suites
        for suite in selected where !known.contains(suite) {
            throw CLIFailure(.usage, "unknown suite \(suite); suites: \(known.joined(separator: ", "))")
        }
        guard rounds > 0, seconds > 0, installRounds > 0 else {
            throw CLIFailure(.usage, "--rounds, --seconds and --install-rounds must be positive")
        }
        let rounds = quick ? min(self.rounds, 1_000) : self.rounds
        let seconds = quick ? min(self.seconds, 1) : self.seconds
        var baselineReport: BenchReport?
        if let compare {
            do {
                baselineReport = try BenchReport.read(from: compare)
            } catch {
                throw CLIFailure(.usage, "--compare \(compare) is not a benchmark report written by `atom bench --json`: \(error)")
            }
        }
        if let gateway, let problem = AtomEnvironment.endpointProblem(gateway) {
            throw CLIFailure(.usage, "--gateway \(gateway) \(problem)")
        }
        var report = BenchReport(suites: selected)
        for suite in selected {
            switch suite {
            case "codec":
                try CodecBenchmark(rounds: rounds).run(into: &report)
            case "install":
                try await InstallBenchmark(rounds: quick ? 1 : installRounds, package: installPackage).run(into: &report)
            case "loader":
                try await LoaderBenchmark(rounds: rounds, loadRounds: quick ? 20 : loadRounds).run(into: &report)
            case "workflow":
                try await WorkflowBenchmark(quick: quick).run(into: &report)
            case "marketplace":
                guard marketplaceSkills >= 1_000 else { throw CLIFailure(.usage, "--marketplace-skills must be at least 1000") }
                let home = (try? AtomEnvironment().home) ?? NSTemporaryDirectory()
                try await MarketplaceBenchmark(
                    rounds: max(1, marketplaceRounds ?? min(rounds, 5_000)), skills: marketplaceSkills, cacheDirectory: "\(home)/bench/marketplace"
                ).run(into: &report)
            default:
                guard let transport = LocalStack.Transport(rawValue: gateway.map { $0.hasPrefix("ipc://") ? "ipc" : "tcp" } ?? transport) else {
                    throw CLIFailure(.usage, "--transport must be ipc or tcp (got \(transport))")
                }
                let rpc = RPCBenchmark(gateway: gateway, rounds: rounds, seconds: seconds, transport: transport)
                try await rpc.run(into: &report)
            }
        }
        if let baselineReport { report.compare(with: baselineReport) }
        report.reactor_slice_us = ReactorScheduling.appliedSlice.map { Int($0 / .microseconds(1)) } ?? 0
        print(report.table())
        if let json {
            try report.write(to: json)
            print("wrote \(json)")
        }
        if report.targets.contains(where: { !$0.pass }) || !(report.regressions ?? []).isEmpty {
            throw ExitCode(ExitStatus.unhealthy.rawValue)
        }
    }
}
