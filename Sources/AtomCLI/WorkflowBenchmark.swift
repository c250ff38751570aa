internal import AtomAPI
internal import AtomMetrics
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
            BenchReport.progress("validate_\(size): \(rounds) validations of a \(size)-step graph (\(graph.edges.count) edges)")
            report.results.append(BenchResult(name: "validate_\(size)", histogram: try validate(graph.spec, rounds: rounds), target: size == 1_000 ? "median <= 1000 us and below baseline_networkx_1000" : nil, baseline: "baseline_networkx_\(size)"))
            BenchReport.progress("baseline_networkx_\(size): \(rounds) x networkx DiGraph + is_directed_acyclic_graph + topological_sort")
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
            _ = histogram.record(LatencyRecorder.nanoseconds(elapsed))
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
            BenchReport.progress("  networkx \(version) on Python \(python)")
        }
        return .success(histogram)
    }

    /// The results that need the loader service: a temporary gateway, loader and workflow
    /// service, real Python skills in the loader's warm hosts.
    func loaderBenchmarks(into report: inout BenchReport) async {
        guard (try? ExecutableLocator.path(for: "atom-loader")) != nil else {
            let reason = "loader service not available: this build has no atom-loader executable, so no skill can run"
            BenchReport.progress("step_overhead_chain_40, parallel_3x100ms: skipped (\(reason))")
            report.skipped = (report.skipped ?? []) + [
                BenchSkip(name: "step_overhead_chain_40", reason: reason), BenchSkip(name: "parallel_3x100ms", reason: reason),
            ]
            return
        }
        do {
            let stack = try LocalStack(transport: .ipc)
            do {
                try await measureThroughLoader(stack, into: &report)
                await stack.stopAll()
            } catch {
                for name in ["atom-gateway", "bench-loader", "bench-workflow"] {
                    let log = stack.log(of: name)
                    if !log.isEmpty { BenchReport.progress("\(name) log:\n\(log.suffix(2000))") }
                }
                await stack.stopAll()
                throw error
            }
        } catch {
            let reason = "the loader benchmarks failed: \(error)"
            BenchReport.progress(reason)
            report.skipped = (report.skipped ?? []) + [
                BenchSkip(name: "step_overhead_chain_40", reason: reason), BenchSkip(name: "parallel_3x100ms", reason: reason),
            ]
        }
    }

    static func writeSkill(_ directory: String, name: String, code: String) throws {
        let folder = "\(directory)/\(name)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try """
            name: \(name)
            version: "1.0.0"
            description: A workflow benchmark skill.
            category: bench
            runtime: python
            """.write(toFile: "\(folder)/skill.yaml", atomically: true, encoding: .utf8)
        try code.write(toFile: "\(folder)/main.py", atomically: true, encoding: .utf8)
    }

    func measureThroughLoader(_ stack: LocalStack, into report: inout BenchReport) async throws {
        let skills = "\(stack.home)/skills"
        try Self.writeSkill(skills, name: "bench-noop", code: "def execute(inputs):\n    return {\"n\": inputs.get(\"n\", 0) + 1}\n")
        try Self.writeSkill(skills, name: "bench-sleep", code: "import time\n\ndef execute(inputs):\n    time.sleep(inputs.get(\"ms\", 100) / 1000)\n    return {\"slept\": inputs.get(\"ms\", 100)}\n")
        BenchReport.progress("starting a temporary gateway, loader and workflow service at \(stack.endpoint)")
        try stack.startGateway()
        // Three branches of one skill need three warm hosts of the same environment.
        try stack.start("atom-loader", name: "bench-loader", environment: [
            "ATOM_INSTANCE_ID": "bench-loader", "SKILLS_DIRS": skills, "LOADER_HOSTS_PER_ENVIRONMENT": "4",
        ])
        try stack.start("atom-workflow", name: "bench-workflow", environment: ["ATOM_INSTANCE_ID": "bench-workflow"])
        try await stack.waitForService(LoaderClient.serviceName)
        try await stack.waitForService(WorkflowClient.serviceName)
        let client = try BenchReport.client(endpoint: stack.endpoint)
        defer { client.close() }
        let loader = LoaderClient(client)
        let workflow = WorkflowClient(client)
        for name in ["bench-noop", "bench-sleep"] {
            _ = try await loader.loadSkill(LoadSkillRequest(name: name), options: CallOptions(timeout: .seconds(60)))
        }
        let chain = "name: chain-40\nsteps:\n" + (0..<40).map { index in
            index == 0 ? "  - {id: s0, skill: bench-noop, inputs: {n: 0}}\n"
                : "  - {id: s\(index), skill: bench-noop, inputs: {n: \"${steps.s\(index - 1).output.n}\"}}\n"
        }.joined()
        let parallel = "name: parallel-3\nsteps:\n" + (0..<3).map { "  - {id: b\($0), skill: bench-sleep, inputs: {ms: 100}}\n" }.joined()

        func run(_ spec: String) async throws -> Duration {
            let request = RunWorkflowRequest(workflow: ValidateWorkflowRequest(specText: spec, skillCheck: .off))
            let start = ContinuousClock.now
            var last: StepEvent?
            for try await event in workflow.runWorkflow(request, options: CallOptions(timeout: .seconds(60))) { last = event }
            let elapsed = ContinuousClock.now - start
            guard last?.runState == .succeeded else { throw CLIFailure(.failure, "a benchmark run did not succeed: \(last?.error ?? "no result")") }
            return elapsed
        }

        let rounds = quick ? 5 : 30
        // Warm up: every host the runs will use is started and has imported the skills.
        for _ in 0..<3 {
            _ = try await run(chain)
            _ = try await run(parallel)
        }
        BenchReport.progress("baseline_execute_trivial: 200 ExecuteSkill calls of the same skill through the gateway")
        var direct = BenchReport.histogram()
        for _ in 0..<200 {
            try await BenchReport.time(&direct) {
                let response = try await loader.executeSkill(ExecuteSkillRequest(name: "bench-noop", inputsJson: #"{"n":1}"#, timeoutMs: 5_000))
                guard response.failure == nil else { throw CLIFailure(.failure, "bench-noop failed: \(response.failure?.message ?? "")") }
            }
        }
        report.results.append(BenchResult(name: "baseline_execute_trivial", histogram: direct))

        BenchReport.progress("step_overhead_chain_40: \(rounds) runs of 40 chained trivial steps through the loader (per step)")
        var chainPerStep = BenchReport.histogram()
        var netPerStep = BenchReport.histogram()
        let directMedian = direct.valueAtPercentile(50)
        for _ in 0..<rounds {
            let nanoseconds = LatencyRecorder.nanoseconds(try await run(chain))
            _ = chainPerStep.record(nanoseconds / 40)
            _ = netPerStep.record(max(1, (nanoseconds / 40) > directMedian ? nanoseconds / 40 - directMedian : 1))
        }
        report.results.append(BenchResult(
            name: "step_overhead_chain_40", histogram: chainPerStep, target: "median <= 2000 us per step (the skill's own call included)"))
        report.results.append(BenchResult(name: "step_overhead_chain_40_net", histogram: netPerStep, baseline: "baseline_execute_trivial"))

        BenchReport.progress("parallel_3x100ms: \(rounds) runs of 3 independent 100 ms skills")
        var parallelRuns = BenchReport.histogram()
        for _ in 0..<rounds { _ = parallelRuns.record(LatencyRecorder.nanoseconds(try await run(parallel))) }
        report.results.append(BenchResult(name: "parallel_3x100ms", histogram: parallelRuns, target: "median <= 130000 us"))
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
