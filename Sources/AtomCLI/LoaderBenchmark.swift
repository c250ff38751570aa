internal import AtomAPI
internal import AtomMetrics
internal import AtomProto
internal import AtomRPC
internal import Foundation
internal import Histogram

/// `atom bench loader`: the loader through the gateway (a temporary gateway and loader, real
/// sandboxed hosts) beside the reference system's way of loading a skill: `importlib` in a
/// fresh Python process.
struct LoaderBenchmark {
    let rounds: Int
    let loadRounds: Int

    func run(into report: inout BenchReport) async throws {
        let stack = try LocalStack(transport: .ipc)
        let skills = "\(stack.home)/bench-skills"
        try FileManager.default.createDirectory(atPath: skills, withIntermediateDirectories: true)
        BenchReport.progress("starting a temporary gateway and loader at \(stack.endpoint) (home \(stack.home))")
        do {
            try stack.startGateway()
            try stack.start("atom-loader", name: "bench-loader", environment: [
                "ATOM_INSTANCE_ID": "bench-loader", "SKILLS_DIRS": skills, "SKILL_HOT_RELOAD_ENABLED": "true", "LOADER_HOST_IDLE_SECONDS": "0",
                "LOADER_CACHE_SIZE": "10000", "LOADER_HOSTS_PER_ENVIRONMENT": "1",
            ])
            try stack.startEcho(instanceID: "bench-echo")
            try await stack.waitForService(LoaderClient.serviceName)
            try await stack.waitForService(EchoClient.serviceName)
            try await measure(stack, skills: skills, into: &report)
            await stack.stopAll()
        } catch {
            let log = stack.log(of: "bench-loader")
            if !log.isEmpty { BenchReport.progress("bench-loader log:\n\(log.suffix(2000))") }
            await stack.stopAll()
            throw error
        }
    }

    static func writeSkill(_ folder: String, name: String, body: String) throws {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try "name: \(name)\nversion: \"1.0.0\"\ndescription: A benchmark skill.\ncategory: bench\nruntime: python\n"
            .write(toFile: "\(folder)/skill.yaml", atomically: true, encoding: .utf8)
        try body.write(toFile: "\(folder)/main.py", atomically: true, encoding: .utf8)
    }

    static let trivial = "def execute(inputs):\n    return {\"ok\": True}\n"

    private func measure(_ stack: LocalStack, skills: String, into report: inout BenchReport) async throws {
        let client = try BenchReport.client(endpoint: stack.endpoint)
        defer { client.close() }
        let loader = LoaderClient(client)

        // First load with the host's start: the environment has no host before each round (the
        // last skill using it was unloaded, which stops its host).
        BenchReport.progress("skill_load_first: \(loadRounds) loads of a small skill, each starting its sandboxed host")
        let first = "\(skills)/first"
        try Self.writeSkill(first, name: "first", body: Self.trivial)
        var loadFirst = BenchReport.histogram()
        for _ in 0..<loadRounds {
            try await BenchReport.time(&loadFirst) {
                let response = try await loader.loadSkill(LoadSkillRequest(path: first))
                guard !response.cached else { throw CLIFailure(.failure, "a first load was answered from the cache") }
            }
            _ = try await loader.unloadSkill(UnloadSkillRequest(name: "first"))
        }
        report.results.append(BenchResult(name: "skill_load_first", histogram: loadFirst, target: "median <= 50 ms", baseline: "baseline_importlib_fresh_process"))

        // Into a warm host: an anchor skill keeps the host alive; each round loads new content.
        BenchReport.progress("skill_load_warm_host: \(loadRounds) loads of new skill content into a warm host")
        let anchor = "\(skills)/anchor"
        try Self.writeSkill(anchor, name: "anchor", body: Self.trivial)
        _ = try await loader.loadSkill(LoadSkillRequest(path: anchor))
        var loadWarm = BenchReport.histogram()
        for round in 0..<loadRounds {
            // A new folder each round: new content in the loaded skill's own folder would race
            // the hot reload (on in this stack) to it, and a busy machine lets the reload win.
            let folder = "\(skills)/warm-\(round)"
            try Self.writeSkill(folder, name: "warm", body: "ROUND = \(round)\n" + Self.trivial)
            try await BenchReport.time(&loadWarm) {
                let response = try await loader.loadSkill(LoadSkillRequest(path: folder))
                guard !response.cached else { throw CLIFailure(.failure, "new content was answered from the cache") }
            }
        }
        report.results.append(BenchResult(name: "skill_load_warm_host", histogram: loadWarm, target: "median <= 5 ms"))

        BenchReport.progress("skill_get_cached: \(rounds) GetSkill calls through the gateway, in blocks alternating with echo calls (\(TransportFloor.resultName))")
        var get = BenchReport.histogram()
        var floor = TransportFloor(client)
        try await withTaskExecutorPreference(client.executor) {
            try await floor.warm()
            try await floor.interleaved(rounds, into: &get) { _ = try await loader.getSkill(GetSkillRequest(name: "anchor")) }
        }
        report.results += floor.results
        report.results.append(BenchResult(name: "skill_get_cached", histogram: get, target: "median <= 0.3 ms", baseline: TransportFloor.resultName))

        BenchReport.progress("skill_execute_trivial: \(rounds) ExecuteSkill calls of a trivial skill through the gateway")
        var execute = BenchReport.histogram()
        let request = ExecuteSkillRequest(name: "anchor", inputsJson: #"{"x": 1}"#)
        _ = try await loader.executeSkill(request)
        try await withTaskExecutorPreference(client.executor) {
            for _ in 0..<rounds {
                try await BenchReport.time(&execute) {
                    let response = try await loader.executeSkill(request)
                    guard response.failure == nil else { throw CLIFailure(.failure, "the trivial skill failed: \(response.failure!.message)") }
                }
            }
        }
        report.results.append(BenchResult(name: "skill_execute_trivial", histogram: execute, target: "median <= 1 ms"))

        // Save (an editor's write-and-rename) to the new code answering, polled with ExecuteSkill.
        let reloadRounds = max(10, loadRounds / 2)
        BenchReport.progress("hot_reload_save_to_serve: \(reloadRounds) editor saves, each until the new code answers")
        var reload = BenchReport.histogram()
        for round in 1...reloadRounds {
            let text = "def execute(inputs):\n    return {\"round\": \(round)}\n"
            let temporary = "\(anchor)/.main.py.swp"
            try text.write(toFile: temporary, atomically: false, encoding: .utf8)
            let saved = ContinuousClock.now
            guard rename(temporary, "\(anchor)/main.py") == 0 else { throw CLIFailure(.failure, "rename failed: errno \(errno)") }
            let expected = #"{"round": \#(round)}"#
            while true {
                let response = try await loader.executeSkill(ExecuteSkillRequest(name: "anchor"))
                if response.outputsJson == expected { break }
                if ContinuousClock.now - saved > .seconds(10) { throw CLIFailure(.failure, "round \(round): the new code never answered") }
            }
            _ = reload.record(LatencyRecorder.nanoseconds(ContinuousClock.now - saved))
            // Let the watcher settle, so rounds do not merge into one debounce window.
            try await Task.sleep(for: .milliseconds(60))
        }
        report.results.append(BenchResult(name: "hot_reload_save_to_serve", histogram: reload, target: "p95 <= 50 ms"))

        BenchReport.progress("baseline_importlib_fresh_process: \(loadRounds) x python3 + importlib of the same file")
        let python = InstallBenchmark.python
        let script = "import importlib.util, sys; spec = importlib.util.spec_from_file_location('skill', sys.argv[1]); "
            + "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module); module.execute({})"
        var baseline = BenchReport.histogram()
        for _ in 0..<loadRounds {
            try await BenchReport.time(&baseline) { try await Self.runToExit(python, ["-c", script, "\(first)/main.py"]) }
        }
        report.results.append(BenchResult(name: "baseline_importlib_fresh_process", histogram: baseline))
        addTargets(&report)
    }

    private func addTargets(_ report: inout BenchReport) {
        let results = report.results
        func value(_ name: String, _ path: KeyPath<BenchResult, Double>) -> Double? { results.first { $0.name == name }?[keyPath: path] }
        func target(_ name: String, _ description: String, _ value: Double?, _ limit: Double) {
            guard let value else { return }
            report.targets.append(BenchTarget(name: name, description: description, value: value, limit: limit, unit: "us", pass: value <= limit))
        }
        target("skill_load_first_median", "first load with host start at most 50 ms (reference: 500-1000 ms)", value("skill_load_first", \.median), 50_000)
        target("skill_load_warm_host_median", "load into a warm host at most 5 ms", value("skill_load_warm_host", \.median), 5_000)
        target("skill_get_cached_median", "cached GetSkill through the gateway at most 0.3 ms", value("skill_get_cached", \.median), 300)
        target("skill_execute_trivial_median", "trivial ExecuteSkill through the gateway at most 1 ms", value("skill_execute_trivial", \.median), 1_000)
        target("hot_reload_save_to_serve_p95", "save to new code answering, p95 at most 50 ms", value("hot_reload_save_to_serve", \.p95), 50_000)
    }

    /// Runs a program to its exit off the cooperative pool.
    static func runToExit(_ executable: String, _ arguments: [String]) async throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        let status: Int32 = try await withCheckedThrowingContinuation { continuation in
            process.terminationHandler = { continuation.resume(returning: $0.terminationStatus) }
            do { try process.run() } catch {
                process.terminationHandler = nil
                continuation.resume(throwing: error)
            }
        }
        guard status == 0 else { throw CLIFailure(.failure, "\(executable) \(arguments.joined(separator: " ")) exited with \(status)") }
    }
}
