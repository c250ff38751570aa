internal import AtomAPI
internal import AtomProto
internal import AtomRPC
internal import Histogram

/// The bare gateway round trip (Echo, 100 bytes) measured in the same run, and the same
/// moments, as a service's cheapest calls: `reference_gateway_echo_unary`.
///
/// Why: a cached GetSkill or a cached search is one round trip through the gateway with almost
/// no work at either end, so on these shared, noisy machines its figure is mostly the
/// transport's. Measured in alternating blocks with the service's calls, the difference
/// between the two is what the service itself adds.
struct TransportFloor {
    static let resultName = "reference_gateway_echo_unary"
    /// Calls per block: long enough to keep each kind of call back to back (as a caller that
    /// repeats a call sees it), short enough that both kinds see the same noise.
    static let block = 50

    private let echo: EchoClient
    private let request = EchoRequest(payload: RPCBenchmark.payload)
    private(set) var histogram = BenchReport.histogram()
    /// The echo calls of each named phase alone (`reference_gateway_echo_unary_<phase>`): a
    /// slow moment of the machine during one phase shows there, where the whole run's figure
    /// dilutes it.
    private var phases: [(name: String, histogram: Histogram<UInt64>)] = []

    init(_ client: RPCClient) {
        echo = EchoClient(client)
    }

    /// Warms the path to the echo service.
    func warm() async throws {
        for _ in 0..<200 { _ = try await echo.echo(request) }
    }

    /// `rounds` timed calls of `call`, in blocks alternating with blocks of echo calls. With a
    /// `phase` name, that phase's echo calls are also reported on their own.
    mutating func interleaved(
        _ rounds: Int, into histogram: inout Histogram<UInt64>, phase: String? = nil, _ call: () async throws -> Void
    ) async throws {
        var phaseHistogram = BenchReport.histogram()
        var done = 0
        while done < rounds {
            let count = min(Self.block, rounds - done)
            for _ in 0..<count { try await BenchReport.time(&histogram, call) }
            done += count
            // As many echo calls as calls, so each side has the same weight in every moment.
            for _ in 0..<count { _ = try await BenchReport.time(&phaseHistogram) { try await echo.echo(request) } }
        }
        self.histogram.add(phaseHistogram)
        if let phase { phases.append((phase, phaseHistogram)) }
    }

    /// The name of a phase's own echo figure.
    static func resultName(phase: String) -> String { "\(resultName)_\(phase)" }

    /// The whole run's echo figure, then each phase's.
    var results: [BenchResult] {
        [BenchResult(name: Self.resultName, histogram: histogram)]
            + phases.map { BenchResult(name: Self.resultName(phase: $0.name), histogram: $0.histogram) }
    }
}
