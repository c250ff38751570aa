internal import AtomMetrics
internal import AtomRPC
internal import Foundation
internal import Histogram

/// One benchmark's figures, in microseconds. The JSON schema is the same for every suite
/// (documented in docs/benchmarks.md).
struct BenchResult: Codable {
    let name: String
    let unit: String
    let rounds: UInt64
    let min: Double
    let median: Double
    let mean: Double
    let stddev: Double
    let p95: Double
    let p99: Double
    let max: Double
    /// Throughput benchmarks only.
    let calls_per_s: Double?
    let concurrency: Int?
    /// The target this result is held to, in words (nil when it has none).
    var target: String?
    /// The result it is compared with in the same run, if any.
    var baseline: String?
    /// Set by `--compare`: more than 1.5x slower than the same result in the baseline file.
    var regression: Bool?
    /// Throughput benchmarks of the rpc suite with a stack of their own: the CPU time (all
    /// threads, user and system) each process on the call's path used per call, in µs
    /// (`ProcessCPU`).
    var cpu_us_per_call: [String: Double]?
    /// Throughput benchmarks of the rpc suite: the share of the machine's CPU time the
    /// hypervisor gave to other guests during the phase, in percent (`HostSteal`).
    var host_steal_pct: Double?

    /// Summarises a histogram of nanoseconds.
    init(
        name: String, histogram: Histogram<UInt64>, callsPerSecond: Double? = nil, concurrency: Int? = nil,
        target: String? = nil, baseline: String? = nil
    ) {
        func us(_ ns: UInt64) -> Double { (Double(ns) / 1000 * 10).rounded() / 10 }
        self.name = name
        unit = "us"
        rounds = histogram.totalCount
        min = us(histogram.min)
        median = us(histogram.valueAtPercentile(50))
        mean = (histogram.mean / 100).rounded() / 10
        stddev = (histogram.stdDeviation / 100).rounded() / 10
        p95 = us(histogram.valueAtPercentile(95))
        p99 = us(histogram.valueAtPercentile(99))
        max = us(histogram.max)
        calls_per_s = callsPerSecond.map { $0.rounded() }
        self.concurrency = concurrency
        self.target = target
        self.baseline = baseline
    }
}

/// A result that could not be measured in this run, and why (never a made-up figure).
struct BenchSkip: Codable {
    let name: String
    let reason: String
}

/// A target from an issue, checked against the figures of the same run.
struct BenchTarget: Codable {
    let name: String
    let description: String
    let value: Double
    let limit: Double
    let unit: String
    let pass: Bool
}

struct BenchReport: Codable {
    let schema_version: Int
    let suites: [String]
    let started_at: String
    let build: String
    let cores: Int
    let host: String
    var results: [BenchResult] = []
    var targets: [BenchTarget] = []
    /// The rpc suite's transport, ipc or tcp (absent without that suite).
    var rpc_transport: String?
    /// `ATOM_IDLE_POLL_US` of the benchmark's client and of the temporary stacks it starts (which
    /// inherit its environment); a stack given with `--gateway` has its own.
    var idle_poll_us: Int?
    /// The scheduler slice the kernel gave this process's threads on the message path
    /// (`ATOM_REACTOR_SLICE_US`; the stacks it starts inherit the setting): 0 when none took it
    /// (set to 0, or a kernel before 6.12).
    var reactor_slice_us: Int?
    /// Results that could not be measured, with the reason (absent when none were skipped).
    var skipped: [BenchSkip]?
    /// Results more than 1.5x slower than in the `--compare` file (absent without `--compare`).
    var regressions: [String]?

    init(suites: [String]) {
        schema_version = 1
        self.suites = suites
        started_at = ISO8601DateFormatter().string(from: Date())
        #if DEBUG
        build = "debug"
        #else
        build = "release"
        #endif
        cores = ProcessInfo.processInfo.activeProcessorCount
        host = ProcessInfo.processInfo.hostName
        let environment = try? AtomEnvironment()
        idle_poll_us = environment.map { Int($0.idlePollWindow / .microseconds(1)) }
        if let environment { ReactorScheduling.configure(slice: environment.reactorSlice) }
    }

    func result(_ name: String) -> BenchResult? { results.first { $0.name == name } }

    /// A nanosecond histogram sized for RPC latencies (1 ns to 60 s, 3 significant digits).
    static func histogram() -> Histogram<UInt64> {
        Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000_000, numberOfSignificantValueDigits: .three)
    }

    /// The seed's table (Name, Min, Max, Mean, StdDev, Median, Rounds) plus p95, p99 and
    /// throughput, then each target and whether it was met.
    func table() -> String {
        let headers = ["Name (time in us)", "Min", "Max", "Mean", "StdDev", "Median", "p95", "p99", "Rounds", "calls/s"]
        let rows = results.map { result in
            [
                result.name, fmt(result.min), fmt(result.max), fmt(result.mean), fmt(result.stddev), fmt(result.median),
                fmt(result.p95), fmt(result.p99), String(result.rounds), result.calls_per_s.map { String(Int($0)) } ?? "",
            ]
        }
        let widths = headers.indices.map { column in
            ([headers[column]] + rows.map { $0[column] }).map(\.count).max() ?? 0
        }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { index, cell in
                index == 0 ? cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
                    : String(repeating: " ", count: widths[index] - cell.count) + cell
            }.joined(separator: "  ")
        }
        let rule = String(repeating: "-", count: widths.reduce(0, +) + 2 * (widths.count - 1))
        var lines = [rule, line(headers), rule] + rows.map(line) + [rule]
        for result in results {
            guard let cpu = result.cpu_us_per_call, !cpu.isEmpty else { continue }
            let parts = cpu.sorted { $0.key < $1.key }.map { "\($0.key) \(fmt($0.value))" }
            lines.append("CPU per call  \(result.name): \(parts.joined(separator: " + ")) = \(fmt(cpu.values.reduce(0, +))) us (every thread of each process)")
        }
        for result in results {
            guard let steal = result.host_steal_pct else { continue }
            lines.append("Host steal    \(result.name): \(fmt(steal))% of the machine's CPU time went to other guests")
        }
        if build == "debug" { lines.append("note: debug build; use `make bench` (release) for figures worth comparing") }
        for skip in skipped ?? [] {
            lines.append("SKIP  \(skip.name): \(skip.reason)")
        }
        for regression in regressions ?? [] {
            lines.append("REGRESSION  \(regression)")
        }
        for target in targets {
            lines.append("\(target.pass ? "PASS" : "FAIL")  \(target.name): \(target.description) (\(fmt(target.value)) \(target.unit) vs limit \(fmt(target.limit)) \(target.unit))")
        }
        return lines.joined(separator: "\n")
    }

    /// Marks every result more than `threshold` times slower than the same result in `baseline`
    /// (median latency up, or calls per second down).
    mutating func compare(with baseline: BenchReport, threshold: Double = 1.5) {
        regressions = regressions ?? []
        for index in results.indices {
            let current = results[index]
            guard let previous = baseline.result(current.name) else { continue }
            var slower: String?
            if let rate = current.calls_per_s, let before = previous.calls_per_s, before > 0 {
                if rate * threshold < before {
                    slower = String(format: "%@: %.0f calls/s vs %.0f in the baseline (%.2fx slower)", current.name, rate, before, before / max(rate, 1))
                }
            } else if previous.median > 0, current.median > previous.median * threshold {
                slower = String(format: "%@: median %.1f us vs %.1f us in the baseline (%.2fx slower)", current.name, current.median, previous.median, current.median / previous.median)
            }
            results[index].regression = slower != nil
            if let slower { regressions = (regressions ?? []) + [slower] }
        }
    }

    static func read(from path: String) throws -> BenchReport {
        try JSONDecoder().decode(BenchReport.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
    }

    func write(to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try encoder.encode(self).write(to: URL(fileURLWithPath: path))
    }

    private func fmt(_ value: Double) -> String {
        value >= 1000 ? String(format: "%.0f", value) : String(format: "%.1f", value)
    }
}

/// What every suite shares while it measures.
extension BenchReport {
    /// The benchmark's client of a gateway: `ATOM_IDLE_POLL_US` applies to it as to the stacks it
    /// starts (the report's `idle_poll_us` says so), so both sides of a call poll alike.
    static func client(endpoint: String) throws -> RPCClient {
        let window = (try? AtomEnvironment())?.idlePollWindow ?? IdlePoll.defaultWindow
        return try RPCClient(endpoint: endpoint, name: "atom-bench", idlePollWindow: window)
    }

    /// A progress line, on stderr: stdout carries the table.
    static func progress(_ line: String) {
        FileHandle.standardError.write(Data("bench: \(line)\n".utf8))
    }

    /// Runs `body` and records how long it took into `histogram`.
    static func time<T>(_ histogram: inout Histogram<UInt64>, _ body: () async throws -> T) async rethrows -> T {
        let start = ContinuousClock.now
        let result = try await body()
        _ = histogram.record(LatencyRecorder.nanoseconds(ContinuousClock.now - start))
        return result
    }

    /// The same for synchronous work (the codec suite), with no async call in the timed span.
    static func time<T>(_ histogram: inout Histogram<UInt64>, _ body: () throws -> T) rethrows -> T {
        let start = ContinuousClock.now
        let result = try body()
        _ = histogram.record(LatencyRecorder.nanoseconds(ContinuousClock.now - start))
        return result
    }
}
