internal import AtomAPI
internal import AtomProto
internal import AtomRPC
internal import AtomWorkflow
internal import Foundation
internal import Histogram

/// `atom bench workflow`: validation of 10, 1,000 and 10,000-step graphs beside networkx's
/// cycle check and topological sort of the same graphs (in Python, same run); 40 chained
/// trivial steps and 3 parallel 100 ms branches through the loader service, when it exists.
struct WorkflowBenchmark {
    let quick: Bool

    /// The Python with networkx (`ATOM_BENCH_PYTHON`, else python3 on PATH).
    static var python: String { ProcessInfo.processInfo.environment["ATOM_BENCH_PYTHON"] ?? "python3" }

    func run(into report: inout BenchReport) async throws {
        for size in [10, 1_000, 10_000] {
            let rounds = Self.rounds(size: size, quick: quick)
            let graph = Self.graph(steps: size)
            progress("validate_\(size): \(rounds) validations of a \(size)-step graph (\(graph.edges.count) edges)")
            report.results.append(BenchResult(name: "validate_\(size)", histogram: try validate(graph.spec, rounds: rounds), target: size == 1_000 ? "median <= 1000 us and below baseline_networkx_1000" : nil, baseline: "baseline_networkx_\(size)"))
            progress("baseline_networkx_\(size): \(rounds) x networkx DiGraph + is_directed_acyclic_graph + topological_sort")
            switch networkx(graph, rounds: rounds) {
            case .success(let histogram):
                report.results.append(BenchResult(name: "baseline_networkx_\(size)", histogram: histogram))
            case .failure(let reason):
                report.skipped = (report.skipped ?? []) + [BenchSkip(name: "baseline_networkx_\(size)", reason: reason.description)]
            }
        }
        await loaderBenchmarks(into: &report)
        addTargets(&report)
    }

    static func rounds(size: Int, quick: Bool) -> Int {
        let full = size <= 10 ? 20_000 : (size <= 1_000 ? 2_000 : 100)
        return quick ? max(20, full / 10) : full
    }

    struct Graph {
        let spec: WorkflowSpec
        /// (dependency, dependent) pairs.
        let edges: [(Int, Int)]
    }

    /// A reproducible DAG: step i depends on 1-3 of the 50 steps before it and reads the
    /// first one's output (a reference, so an implied dependency is checked too).
    static func graph(steps count: Int) -> Graph {
        var generator = SplitMix(seed: UInt64(count))
        var spec = WorkflowSpec(name: "bench-\(count)")
        var edges: [(Int, Int)] = []
        for index in 0..<count {
            var step = WorkflowStep(id: "s\(index)", skill: "noop")
            if index == 0 {
                step.inputsJson = #"{"x":1}"#
            } else {
                var dependencies: [Int] = []
                let wanted = 1 + Int(generator.next() % 3)
                for _ in 0..<wanted {
                    let low = max(0, index - 50)
                    let candidate = low + Int(generator.next() % UInt64(index - low))
                    if !dependencies.contains(candidate) { dependencies.append(candidate) }
                }
                step.dependsOn = dependencies.map { "s\($0)" }
                step.inputsJson = #"{"x":"${steps.s\#(dependencies[0]).output.v}","n":\#(index)}"#
                edges += dependencies.map { ($0, index) }
            }
            spec.steps.append(step)
        }
        return Graph(spec: spec, edges: edges)
    }

    func validate(_ spec: WorkflowSpec, rounds: Int) throws -> Histogram<UInt64> {
        var histogram = BenchReport.histogram()
        let limits = WorkflowLimits()
        // Warm up, and check the graph is valid (a benchmark of a failing path would mislead).
        let first = WorkflowValidator.validate(spec, limits: limits)
        guard first.isValid else {
            throw CLIFailure(.failure, "the benchmark graph is not valid: \(first.errors.prefix(3).map(\.message))")
        }
        for _ in 0..<min(rounds, 20) { _ = WorkflowValidator.validate(spec, limits: limits) }
        for _ in 0..<rounds {
            let start = ContinuousClock.now
            let outcome = WorkflowValidator.validate(spec, limits: limits)
            let elapsed = ContinuousClock.now - start
            precondition(outcome.isValid)
            _ = histogram.record(RPCBenchmark.nanoseconds(elapsed))
        }
        return histogram
    }

    struct Skip: Error, CustomStringConvertible {
        let description: String
    }

    static let networkxScript = """
        import json, sys, time
        try:
            import networkx as nx
        except ImportError as error:
            print(json.dumps({"error": "networkx is not installed for " + sys.executable + ": " + str(error)}))
            sys.exit(0)
        data = json.load(open(sys.argv[1]))
        nodes = ["s%d" % i for i in range(data["n"])]
        edges = [("s%d" % a, "s%d" % b) for a, b in data["edges"]]
        for _ in range(min(20, data["rounds"])):
            g = nx.DiGraph(); g.add_nodes_from(nodes); g.add_edges_from(edges)
            nx.is_directed_acyclic_graph(g); list(nx.topological_sort(g))
        out = []
        for _ in range(data["rounds"]):
            t = time.perf_counter_ns()
            g = nx.DiGraph()
            g.add_nodes_from(nodes)
            g.add_edges_from(edges)
            assert nx.is_directed_acyclic_graph(g)
            order = list(nx.topological_sort(g))
            out.append(time.perf_counter_ns() - t)
        print(json.dumps({"version": nx.__version__, "python": sys.version.split()[0], "ns": out}))
        """

    /// networkx on the same graph: build the DiGraph, check for cycles, sort (what a Python
    /// engine does per validation).
    func networkx(_ graph: Graph, rounds: Int) -> Result<Histogram<UInt64>, Skip> {
        let directory = NSTemporaryDirectory() + "atom-bench-networkx-\(getpid())-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let payload: [String: Any] = ["n": graph.spec.steps.count, "edges": graph.edges.map { [$0.0, $0.1] }, "rounds": rounds]
            try JSONSerialization.data(withJSONObject: payload).write(to: URL(fileURLWithPath: "\(directory)/graph.json"))
            try Self.networkxScript.write(toFile: "\(directory)/bench.py", atomically: true, encoding: .utf8)
        } catch {
            return .failure(Skip(description: "cannot write the baseline's files: \(error)"))
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [Self.python, "\(directory)/bench.py", "\(directory)/graph.json"]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        do {
            try process.run()
        } catch {
            return .failure(Skip(description: "cannot run \(Self.python): \(error)"))
        }
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        guard process.terminationStatus == 0,
              let line = text.split(separator: "\n").last,
              let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
        else {
            return .failure(Skip(description: "\(Self.python) failed (exit \(process.terminationStatus)): \(text.suffix(300))"))
        }
        if let error = object["error"] as? String { return .failure(Skip(description: error)) }
        guard let samples = object["ns"] as? [Int] else { return .failure(Skip(description: "unexpected output from the networkx script: \(text.prefix(200))")) }
        var histogram = BenchReport.histogram()
        for sample in samples { _ = histogram.record(UInt64(max(1, sample))) }
        if let version = object["version"] as? String, let python = object["python"] as? String {
            progress("  networkx \(version) on Python \(python)")
        }
        return .success(histogram)
    }

    /// The two results that need the loader service: measured when `atom-loader` exists.
    func loaderBenchmarks(into report: inout BenchReport) async {
        guard (try? ExecutableLocator.path(for: "atom-loader")) != nil else {
            let reason = "loader service not available: this build has no atom-loader executable (the loader issue has not landed), so no skill can run"
            progress("step_overhead_chain_40, parallel_3x100ms: skipped (\(reason))")
            report.skipped = (report.skipped ?? []) + [
                BenchSkip(name: "step_overhead_chain_40", reason: reason), BenchSkip(name: "parallel_3x100ms", reason: reason),
            ]
            return
        }
        let reason = "loader service present, but this benchmark does not drive it yet (its skill contract landed after the workflow service)"
        report.skipped = (report.skipped ?? []) + [
            BenchSkip(name: "step_overhead_chain_40", reason: reason), BenchSkip(name: "parallel_3x100ms", reason: reason),
        ]
    }

    private func addTargets(_ report: inout BenchReport) {
        func median(_ name: String) -> Double? { report.result(name)?.median }
        func target(_ name: String, _ description: String, _ value: Double?, _ limit: Double?) {
            guard let value, let limit else { return }
            report.targets.append(BenchTarget(name: name, description: description, value: value, limit: limit, unit: "us", pass: value <= limit))
        }
        target("validate_1000_median", "validation of 1,000 steps at most 1 ms", median("validate_1000"), 1_000)
        target("validate_1000_vs_networkx", "validation of 1,000 steps faster than networkx in the same run", median("validate_1000"), median("baseline_networkx_1000"))
        target("step_overhead_chain_40", "orchestration per step at most 2 ms", median("step_overhead_chain_40"), 2_000)
        target("parallel_3x100ms", "3 parallel 100 ms branches in at most 130 ms", median("parallel_3x100ms"), 130_000)
    }

    private func progress(_ line: String) {
        FileHandle.standardError.write(Data("bench: \(line)\n".utf8))
    }
}

/// A small reproducible random generator (SplitMix64).
struct SplitMix {
    var state: UInt64

    init(seed: UInt64) { state = seed &+ 0x9E37_79B9_7F4A_7C15 }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
