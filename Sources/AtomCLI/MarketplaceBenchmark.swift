internal import AtomAPI
internal import AtomProto
internal import AtomRPC
internal import Foundation
internal import Histogram

/// `atom bench marketplace`: 100,000 skills with real package descriptions; searches of five
/// shapes through the gateway (uncached and cached) and inside the service, beside SQLite FTS5
/// and tantivy on the same data and queries, plus the import itself.
struct MarketplaceBenchmark {
    let rounds: Int
    let skills: Int
    /// Where the data set and the tantivy environment are kept between runs.
    let cacheDirectory: String

    static let shapes = ["rare", "common", "multi", "prefix", "filtered"]

    struct Queries: Decodable {
        struct Query: Decodable {
            let query: String
            let category: String?
        }

        let count: Int
        let queries: [String: Query]
    }

    func run(into report: inout BenchReport) async throws {
        try FileManager.default.createDirectory(atPath: cacheDirectory, withIntermediateDirectories: true)
        let base = "\(cacheDirectory)/skills-\(skills)"
        let data = base + ".jsonl", queriesFile = base + ".queries.json"
        if !FileManager.default.fileExists(atPath: data) || !FileManager.default.fileExists(atPath: queriesFile) {
            BenchReport.progress("building \(skills) skills from Debian package descriptions (apt-cache dumpavail) into \(data)")
            let script = "\(cacheDirectory)/dataset.py"
            try MarketplaceBenchmarkScripts.dataset.write(toFile: script, atomically: true, encoding: .utf8)
            _ = try await Self.command("python3", [script, base, String(skills)])
        }
        let queries = try JSONDecoder().decode(Queries.self, from: Data(contentsOf: URL(fileURLWithPath: queriesFile)))
        for shape in Self.shapes {
            guard let query = queries.queries[shape] else { throw CLIFailure(.failure, "\(queriesFile) has no \(shape) query") }
            BenchReport.progress("\(shape): \"\(query.query)\"\(query.category.map { " in category \($0)" } ?? "")")
        }

        let stack = try LocalStack(transport: .ipc)
        BenchReport.progress("starting a temporary gateway and marketplace at \(stack.endpoint) (home \(stack.home))")
        do {
            try stack.startGateway()
            try stack.start("atom-marketplace", name: "bench-marketplace", environment: [
                "ATOM_INSTANCE_ID": "bench-marketplace", "MARKETPLACE_SEED_PATH": "", "MARKETPLACE_CACHE_TTL": "300",
            ])
            try stack.startEcho(instanceID: "bench-echo")
            try await stack.waitForService(MarketplaceClient.serviceName)
            try await stack.waitForService(EchoClient.serviceName)
            try await measure(stack, data: data, queries: queries, into: &report)
            await stack.stopAll()
        } catch {
            let log = stack.log(of: "bench-marketplace")
            if !log.isEmpty { BenchReport.progress("marketplace log:\n\(log.suffix(2000))") }
            await stack.stopAll()
            throw error
        }
        try await inProcess(data: data, queriesFile: queriesFile, into: &report)
        try await baselines(data: data, queriesFile: queriesFile, into: &report)
        addTargets(&report)
    }

    private func measure(_ stack: LocalStack, data: String, queries: Queries, into report: inout BenchReport) async throws {
        let client = try BenchReport.client(endpoint: stack.endpoint)
        defer { client.close() }
        let marketplace = MarketplaceClient(client)

        BenchReport.progress("import_100k: importing \(queries.count) skills (one Import call with the bundle's path)")
        var importTime = BenchReport.histogram()
        let imported = try await BenchReport.time(&importTime) {
            try await marketplace.import(ImportRequest(path: data), options: CallOptions(timeout: .seconds(600)))
        }
        guard imported.failed == 0, imported.added + imported.unchanged == UInt32(queries.count) else {
            throw CLIFailure(.failure, "the import did not take every skill: \(imported.added) added, \(imported.failed) failed: \(imported.errors.prefix(3).map(\.message))")
        }
        report.results.append(BenchResult(name: "import_100k", histogram: importTime, target: "at most 10 s"))

        // The searches run on the client's reactor thread, as in the rpc and loader suites (a
        // high-rate caller's choice, see ARCHITECTURE "Threads"): no thread hop per response.
        try await withTaskExecutorPreference(client.executor) {
            try await searches(marketplace, client: client, queries: queries, into: &report)
        }
    }

    private func searches(_ marketplace: MarketplaceClient, client: RPCClient, queries: Queries, into report: inout BenchReport) async throws {
        // The bare gateway round trip, in blocks alternating with the cached searches.
        var floor = TransportFloor(client)
        try await floor.warm()
        for shape in Self.shapes {
            let query = queries.queries[shape]!
            let request = SearchRequest(query: query.query, category: query.category ?? "")
            var uncachedRequest = request
            uncachedRequest.bypassCache = true
            let first = try await marketplace.search(uncachedRequest)
            BenchReport.progress("search_\(shape): \(first.total) matches; top: \(first.items.prefix(3).map(\.name).joined(separator: ", "))")
            for _ in 0..<min(200, rounds) { _ = try await marketplace.search(uncachedRequest) }
            var uncached = BenchReport.histogram(), service = BenchReport.histogram(), cached = BenchReport.histogram()
            for _ in 0..<rounds {
                let response = try await BenchReport.time(&uncached) { try await marketplace.search(uncachedRequest) }
                _ = service.record(max(response.serviceNs, 1))
            }
            _ = try await marketplace.search(request)
            try await floor.interleaved(rounds, into: &cached, phase: shape) {
                let response = try await marketplace.search(request)
                guard response.cached else { throw CLIFailure(.failure, "a repeated search of \(shape) was not served from the cache") }
            }
            report.results.append(BenchResult(name: "search_\(shape)_uncached", histogram: uncached, target: "p99 <= 2000 us (through the gateway)"))
            report.results.append(BenchResult(
                name: "search_\(shape)_service", histogram: service, target: "p99 <= 500 us and <= 2x baseline_tantivy_\(shape) p99",
                baseline: "baseline_tantivy_\(shape)"))
            report.results.append(BenchResult(
                name: "search_\(shape)_cached", histogram: cached, target: "p99 <= 500 us (through the gateway)",
                baseline: TransportFloor.resultName(phase: shape)))
        }
        report.results += floor.results
    }

    /// The service's search code in a process of its own, one call after another with nothing
    /// else running (as the baselines run theirs): `search_<shape>_inprocess`. Set beside
    /// `search_<shape>_service`, it tells the search's own cost from what the service's
    /// surroundings (the RPC runtime, the thread hop, the other processes) add to the same code.
    private func inProcess(data: String, queriesFile: String, into report: inout BenchReport) async throws {
        let home = "/tmp/atom-bench-search-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: home) }
        let binary = try ExecutableLocator.path(for: "atom-marketplace")
        BenchReport.progress("search_*_inprocess: the search code in its own process (atom-marketplace bench-search), \(rounds) rounds a shape")
        let output = try await Self.command(binary, ["bench-search", home, data, queriesFile, String(rounds)])
        guard let line = output.split(separator: "\n").last,
              let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: [NSNumber]]
        else { throw CLIFailure(.failure, "atom-marketplace bench-search printed no samples: \(output.suffix(300))") }
        for shape in Self.shapes {
            guard let samples = object[shape] else { continue }
            var histogram = BenchReport.histogram()
            for sample in samples { _ = histogram.record(max(sample.uint64Value, 1)) }
            report.results.append(BenchResult(name: "search_\(shape)_inprocess", histogram: histogram))
        }
    }

    /// FTS5 and tantivy in Python on the same data and queries. tantivy is installed with uv into
    /// a benchmark-only environment; when that fails the reason is reported.
    private func baselines(data: String, queriesFile: String, into report: inout BenchReport) async throws {
        let script = "\(cacheDirectory)/baselines.py"
        try MarketplaceBenchmarkScripts.baselines.write(toFile: script, atomically: true, encoding: .utf8)
        let baselineRounds = String(min(rounds, 2_000))
        // FTS5 takes 50-400 ms a search for the common shapes (minutes a shape at 2,000 rounds,
        // half an hour on a loaded machine): a few hundred rounds show its class.
        let fts5Rounds = String(min(rounds, 300))
        BenchReport.progress("baseline_fts5: SQLite FTS5 with bm25, top 20, \(fts5Rounds) rounds a shape")
        let fts5 = try await Self.command("python3", [script, data, queriesFile, fts5Rounds, "fts5"])
        record(fts5, engine: "fts5", into: &report)

        let venv = "\(cacheDirectory)/tantivy-venv"
        var python = "\(venv)/bin/python"
        if !FileManager.default.isExecutableFile(atPath: python) {
            BenchReport.progress("installing tantivy from PyPI with uv into \(venv) (benchmark only)")
            do {
                _ = try await Self.command("uv", ["venv", venv, "--quiet"])
                _ = try await Self.command("uv", ["pip", "install", "--python", python, "--quiet", "tantivy"])
            } catch {
                python = ""
                let reason = "tantivy could not be installed: \(error)"
                BenchReport.progress("baseline_tantivy: unavailable: \(reason)")
                report.skipped = (report.skipped ?? []) + [BenchSkip(name: "baseline_tantivy_*", reason: "unavailable: \(reason)")]
            }
        }
        guard !python.isEmpty else { return }
        BenchReport.progress("baseline_tantivy: tantivy (PyPI), top 20 with the exact count, \(baselineRounds) rounds a shape")
        let tantivy = try await Self.command(python, [script, data, queriesFile, baselineRounds, "tantivy"])
        record(tantivy, engine: "tantivy", into: &report)
    }

    private func record(_ output: String, engine: String, into report: inout BenchReport) {
        guard let line = output.split(separator: "\n").last,
              let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
        else {
            report.skipped = (report.skipped ?? []) + [BenchSkip(name: "baseline_\(engine)_*", reason: "unavailable: unreadable output: \(output.suffix(300))")]
            return
        }
        if let reason = object["unavailable"] as? String {
            BenchReport.progress("baseline_\(engine): unavailable: \(reason)")
            report.skipped = (report.skipped ?? []) + [BenchSkip(name: "baseline_\(engine)_*", reason: "unavailable: \(reason)")]
            return
        }
        for shape in Self.shapes {
            if let samples = object[shape] as? [NSNumber] {
                var histogram = BenchReport.histogram()
                for sample in samples { _ = histogram.record(max(sample.uint64Value, 1)) }
                report.results.append(BenchResult(name: "baseline_\(engine)_\(shape)", histogram: histogram))
            } else {
                let reason = ((object[shape] as? [String: Any])?["unavailable"] as? String) ?? "no result"
                BenchReport.progress("baseline_\(engine)_\(shape): unavailable: \(reason)")
                report.skipped = (report.skipped ?? []) + [BenchSkip(name: "baseline_\(engine)_\(shape)", reason: "unavailable: \(reason)")]
            }
        }
    }

    private func addTargets(_ report: inout BenchReport) {
        func p99(_ name: String) -> Double? { report.result(name)?.p99 }
        var targets: [BenchTarget] = []
        func target(_ name: String, _ description: String, _ value: Double?, _ limit: Double?, unit: String = "us") {
            guard let value, let limit else { return }
            targets.append(BenchTarget(name: name, description: description, value: value, limit: limit, unit: unit, pass: value <= limit))
        }
        for shape in Self.shapes {
            target("search_\(shape)_service_p99", "inside the service p99 at most 0.5 ms", p99("search_\(shape)_service"), 500)
            target("search_\(shape)_service_vs_tantivy", "inside the service p99 at most 2x tantivy's p99",
                   p99("search_\(shape)_service"), p99("baseline_tantivy_\(shape)").map { $0 * 2 })
            target("search_\(shape)_uncached_p99", "through the gateway p99 at most 2 ms", p99("search_\(shape)_uncached"), 2000)
            // The echo calls of the same blocks tell the transport's tail from the service's.
            let floor = p99(TransportFloor.resultName(phase: shape)).map { String(format: "; echo calls beside it: p99 %.0f us", $0) } ?? ""
            target("search_\(shape)_cached_p99", "cached p99 at most 0.5 ms\(floor)", p99("search_\(shape)_cached"), 500)
        }
        target("import_100k", "importing 100,000 skills at most 10 s", report.result("import_100k").map { $0.max / 1_000_000 }, 10, unit: "s")
        report.targets += targets
    }

    /// Runs a tool off the cooperative pool; returns its standard output, throws with its output on failure.
    static func command(_ executable: String, _ arguments: [String]) async throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable.hasPrefix("/") ? executable : "/usr/bin/env")
        process.arguments = executable.hasPrefix("/") ? arguments : [executable] + arguments
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("atom-bench-\(UUID().uuidString).out")
        let errors = FileManager.default.temporaryDirectory.appendingPathComponent("atom-bench-\(UUID().uuidString).err")
        _ = FileManager.default.createFile(atPath: output.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errors.path, contents: nil)
        defer {
            try? FileManager.default.removeItem(at: output)
            try? FileManager.default.removeItem(at: errors)
        }
        let outHandle = try FileHandle(forWritingTo: output), errHandle = try FileHandle(forWritingTo: errors)
        process.standardOutput = outHandle
        process.standardError = errHandle
        let status: Int32 = try await withCheckedThrowingContinuation { continuation in
            process.terminationHandler = { continuation.resume(returning: $0.terminationStatus) }
            do { try process.run() } catch {
                process.terminationHandler = nil
                continuation.resume(throwing: error)
            }
        }
        try? outHandle.close()
        try? errHandle.close()
        let text = (try? String(contentsOf: output, encoding: .utf8)) ?? ""
        guard status == 0 else {
            let log = (try? String(contentsOf: errors, encoding: .utf8)) ?? ""
            throw CLIFailure(.failure, "\(executable) \(arguments.prefix(2).joined(separator: " ")) failed (exit \(status)): \(log.suffix(800))")
        }
        return text
    }
}
