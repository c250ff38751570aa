internal import AtomAPI
internal import AtomProto
internal import AtomRPC
internal import Foundation
internal import Histogram

/// `atom bench install`: the installer through the gateway beside bare uv and pip + venv,
/// in one run, with the same cache states. Needs the package index (PyPI) for `requests`.
struct InstallBenchmark {
    let rounds: Int
    let package: String

    /// python3's real path (`sys.executable`), read once.
    static let python: String = {
        let path = output("/usr/bin/env", ["python3", "-c", "import sys; print(sys.executable)"]) ?? ""
        return path.isEmpty ? "python3" : path
    }()

    /// The uv binary the baseline runs, resolved as the installer resolves it: when the `uv` on
    /// PATH is a wrapper script (a pyenv shim), the uv beside python3 that reports the same
    /// version. Bare uv is the floor the installer is compared with, so neither pays for a shim.
    static let uv: String = {
        guard let onPath = output("/usr/bin/env", ["sh", "-c", "command -v uv"]), onPath.hasPrefix("/") else { return "uv" }
        let head = FileHandle(forReadingAtPath: onPath).flatMap { try? $0.read(upToCount: 2) }
        guard head == Data("#!".utf8) else { return onPath }
        let beside = (python as NSString).deletingLastPathComponent + "/uv"
        guard beside != onPath, FileManager.default.isExecutableFile(atPath: beside),
              let wrapped = output(onPath, ["--version"]), output(beside, ["--version"]) == wrapped
        else { return onPath }
        return beside
    }()

    /// A short command's trimmed standard output, or nil when it fails.
    private static func output(_ executable: String, _ arguments: [String]) -> String? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return nil }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { return nil }
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    static let batchSets = [["requests==2.28.0"], ["requests==2.31.0"], ["urllib3==1.26.18", "idna==3.4"]]

    func run(into report: inout BenchReport) async throws {
        let stack = try LocalStack(transport: .ipc)
        BenchReport.progress("starting a temporary gateway and installer at \(stack.endpoint) (home \(stack.home)); baselines run \(Self.uv) and \(Self.python)")
        do {
            try stack.startGateway()
            try stack.start("atom-installer", name: "bench-installer", environment: ["ATOM_INSTANCE_ID": "bench-installer"])
            try await stack.waitForService(InstallerClient.serviceName)
            try await measure(stack, into: &report)
            await stack.stopAll()
        } catch {
            for name in ["atom-gateway", "bench-installer"] {
                let log = stack.log(of: name)
                if !log.isEmpty { BenchReport.progress("\(name) log:\n\(log.suffix(2000))") }
            }
            await stack.stopAll()
            throw error
        }
    }

    private func measure(_ stack: LocalStack, into report: inout BenchReport) async throws {
        let client = try BenchReport.client(endpoint: stack.endpoint)
        defer { client.close() }
        let installer = InstallerClient(client)
        let uvCache = "\(stack.home)/cache/uv"
        let long = CallOptions(timeout: .seconds(600))

        func install(_ packages: [String], skill: String, force: Bool) async throws -> InstallResult {
            let request = InstallRequest(skillId: skill, packages: packages, agentId: "atom-bench", options: InstallOptions(force: force))
            var final: InstallResult?
            for try await event in installer.installDependencies(request, options: long) where event.phase == .done { final = event.result }
            guard let result = final, result.success else {
                throw CLIFailure(.failure, "install of \(packages.joined(separator: " ")) failed: \(final?.error ?? "no result")")
            }
            return result
        }

        // The installer and bare uv alternate round by round, so drift in the network or in the
        // machine's load hits both alike.
        BenchReport.progress("install_fresh_cold + baseline_uv_cold: \(rounds) rounds of \(package), empty caches, alternating")
        var cold = BenchReport.histogram(), uvCold = BenchReport.histogram()
        for round in 0..<rounds {
            try? FileManager.default.removeItem(atPath: uvCache)
            try await BenchReport.time(&cold) { _ = try await install([package], skill: "bench-cold-\(round)", force: true) }
            try await BenchReport.time(&uvCold) { try await bareUV(cache: "\(stack.home)/bench-uv-cold-\(UUID().uuidString)") }
        }
        report.results.append(BenchResult(name: "install_fresh_cold", histogram: cold))
        report.results.append(BenchResult(name: "baseline_uv_cold", histogram: uvCold))

        let uvWarmCache = "\(stack.home)/bench-uv-warm"
        try await bareUV(cache: uvWarmCache)
        BenchReport.progress("install_fresh_warm_cache + baseline_uv_warm: \(rounds) rounds, warm caches, alternating")
        var warm = BenchReport.histogram(), uvWarm = BenchReport.histogram()
        for round in 0..<rounds {
            try await BenchReport.time(&warm) { _ = try await install([package], skill: "bench-warm-\(round)", force: true) }
            try await BenchReport.time(&uvWarm) { try await bareUV(cache: uvWarmCache) }
        }
        report.results.append(BenchResult(name: "install_fresh_warm_cache", histogram: warm))
        report.results.append(BenchResult(name: "baseline_uv_warm", histogram: uvWarm))

        let hits = 200
        BenchReport.progress("install_cached_env_hit: \(hits) repeated installs through the gateway")
        _ = try await install([package], skill: "bench-hit", force: false)
        var hit = BenchReport.histogram()
        for _ in 0..<hits {
            try await BenchReport.time(&hit) {
                let result = try await install([package], skill: "bench-hit", force: false)
                guard result.cached else { throw CLIFailure(.failure, "a repeated install was not a cache hit") }
            }
        }
        report.results.append(BenchResult(name: "install_cached_env_hit", histogram: hit))

        // Warm the cache for every batch set, then time fresh builds of them.
        for (index, set) in Self.batchSets.enumerated() { _ = try await install(set, skill: "bench-prime-\(index)", force: true) }
        BenchReport.progress("install_single / install_batch_3 / install_sequential_3: \(rounds) rounds each, warm cache")
        var single = BenchReport.histogram(), batch = BenchReport.histogram(), sequential = BenchReport.histogram()
        for _ in 0..<rounds {
            try await BenchReport.time(&single) { _ = try await install(Self.batchSets[0], skill: "bench-single", force: true) }
            try await BenchReport.time(&batch) {
                let request = BatchInstallRequest(
                    installations: Self.batchSets.enumerated().map { index, set in
                        InstallRequest(skillId: "bench-batch-\(index)", packages: set, options: InstallOptions(force: true))
                    }, agentId: "atom-bench")
                let response = try await installer.batchInstall(request, options: long)
                guard response.failures == 0 else { throw CLIFailure(.failure, "batch failed: \(response.results.map(\.error))") }
            }
            try await BenchReport.time(&sequential) {
                for (index, set) in Self.batchSets.enumerated() { _ = try await install(set, skill: "bench-seq-\(index)", force: true) }
            }
        }
        report.results.append(BenchResult(name: "install_single", histogram: single))
        report.results.append(BenchResult(name: "install_batch_3", histogram: batch))
        report.results.append(BenchResult(name: "install_sequential_3", histogram: sequential))

        BenchReport.progress("resolve_direct_50: 200 direct conflict checks of 50 packages through the gateway")
        let fifty = (0..<50).map { "package-\($0)>=1.\($0),<3,!=2.0" }
        var direct = BenchReport.histogram()
        for _ in 0..<200 {
            try await BenchReport.time(&direct) {
                let response = try await installer.resolveDependencies(ResolveRequest(packages: fifty, directOnly: true))
                guard response.ok else { throw CLIFailure(.failure, "unexpected conflicts in resolve_direct_50") }
            }
        }
        report.results.append(BenchResult(name: "resolve_direct_50", histogram: direct))

        let pipRounds = max(1, min(rounds, 3))
        BenchReport.progress("baseline_venv_pip: \(pipRounds) x python3 -m venv + pip install \(package)")
        var pip = BenchReport.histogram()
        for _ in 0..<pipRounds { try await BenchReport.time(&pip) { try await venvPip(in: "\(stack.home)/bench-pip-\(UUID().uuidString)") } }
        report.results.append(BenchResult(name: "baseline_venv_pip", histogram: pip))

        addTargets(&report)
    }

    private func addTargets(_ report: inout BenchReport) {
        var targets: [BenchTarget] = []
        func target(_ name: String, _ description: String, _ value: Double?, _ limit: Double?, unit: String = "us") {
            guard let value, let limit else { return }
            targets.append(BenchTarget(name: name, description: description, value: value, limit: limit, unit: unit, pass: value <= limit))
        }
        let results = report.results
        func median(_ name: String) -> Double? { results.first { $0.name == name }?.median }
        target("install_cached_env_hit_median", "cache hit median at most 1 ms through the gateway", median("install_cached_env_hit"), 1000)
        target("install_fresh_cold_vs_uv", "fresh cold install at most 1.3x bare uv (same cache state)",
               median("install_fresh_cold"), median("baseline_uv_cold").map { $0 * 1.3 })
        target("install_fresh_vs_pip", "fresh cold install at least 3x faster than venv + pip",
               median("install_fresh_cold"), median("baseline_venv_pip").map { $0 / 3 })
        target("install_batch_3_vs_single", "batch of 3 at most 1.5x one install",
               median("install_batch_3"), median("install_single").map { $0 * 1.5 })
        target("resolve_direct_50_median", "direct conflict check on 50 packages at most 5 ms", median("resolve_direct_50"), 5000)
        report.targets += targets
    }

    private func bareUV(cache: String) async throws {
        let venv = "\(cache)-venv-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: venv) }
        let environment = ["UV_CACHE_DIR": cache, "UV_LINK_MODE": "hardlink", "UV_NO_CONFIG": "1", "UV_PYTHON_DOWNLOADS": "never", "VIRTUAL_ENV": ""]
        // The same resolved interpreter the installer uses (not a wrapper such as a pyenv shim).
        try await command(Self.uv, ["venv", venv, "--python", Self.python, "--quiet"], environment: environment)
        try await command(Self.uv, ["pip", "install", package, "--python", "\(venv)/bin/python", "--quiet"], environment: environment)
    }

    private func venvPip(in directory: String) async throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try await command(Self.python, ["-m", "venv", directory])
        try await command("\(directory)/bin/pip", ["install", "--quiet", "--disable-pip-version-check", package])
    }

    /// Runs a tool to completion off the cooperative pool; throws with its output on failure.
    private func command(_ executable: String, _ arguments: [String], environment: [String: String] = [:]) async throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [executable] + arguments
        var variables = ProcessInfo.processInfo.environment
        for (key, value) in environment { variables[key] = value }
        process.environment = variables
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("atom-bench-\(UUID().uuidString).log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: log) }
        let handle = try FileHandle(forWritingTo: log)
        process.standardOutput = handle
        process.standardError = handle
        let status: Int32 = try await withCheckedThrowingContinuation { continuation in
            process.terminationHandler = { continuation.resume(returning: $0.terminationStatus) }
            do { try process.run() } catch {
                process.terminationHandler = nil
                continuation.resume(throwing: error)
            }
        }
        try? handle.close()
        guard status == 0 else {
            let output = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            throw CLIFailure(.failure, "\(executable) \(arguments.joined(separator: " ")) failed (exit \(status)): \(output.suffix(800))")
        }
    }
}
