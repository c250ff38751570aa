internal import AtomAPI
internal import AtomEcho
internal import AtomProto
internal import AtomRPC
internal import Foundation
internal import Histogram
internal import Synchronization

/// `atom bench rpc`: the gateway's unary round trip and throughput, beside a raw ZeroMQ
/// REQ/REP round trip between the same two processes (no gateway) measured in the same run.
struct RPCBenchmark {
    let gateway: String?
    let rounds: Int
    let seconds: Double
    /// Every measurement of the suite uses the same one, so that the comparisons hold.
    let transport: LocalStack.Transport

    /// 100 bytes, like the peers' published echo figures.
    static let payload = [UInt8](repeating: 0x61, count: 100)

    func run(into report: inout BenchReport) async throws {
        var stack: LocalStack?
        let endpoint: String
        // Unix socket paths are short-lived files of this run (at most 107 bytes: kept short).
        let scratch = "/tmp/atom-bench-\(getpid())-\(UInt16.random(in: 0...UInt16.max))"
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        report.rpc_transport = transport.rawValue
        BenchReport.progress("transport: \(transport.rawValue) (the gateway round trip, the raw baseline and the C-broker reference alike)")
        let rawEndpoint = try transport.freeEndpoint(in: scratch, name: "raw-echo")
        let proxy = try ReferenceProxy(transport: transport, scratch: scratch)
        // The processes on each path, for CPU per call: only a stack of this run's own.
        var gatewayPath: ProcessCPU?, brokerPath: ProcessCPU?
        if let gateway {
            endpoint = gateway
            try RawEchoResponder.start(endpoint: rawEndpoint)
            try RawEchoResponder.start(endpoint: proxy.backend, connect: true)
        } else {
            let local = try LocalStack(transport: transport)
            stack = local
            BenchReport.progress("starting a temporary stack at \(local.endpoint)")
            let gatewayProcess = try local.startGateway()
            let echoProcess = try local.startEcho(
                instanceID: "bench-echo",
                environment: ["ATOM_ECHO_RAW_ENDPOINT": rawEndpoint, "ATOM_ECHO_RAW_WORKER_ENDPOINT": proxy.backend])
            gatewayPath = ProcessCPU([("gateway", gatewayProcess.pid), ("service", echoProcess.pid), ("client", getpid())])
            brokerPath = ProcessCPU([("broker", proxy.brokerPID), ("service", echoProcess.pid), ("client", getpid())])
            try await local.waitForService(EchoClient.serviceName)
            endpoint = local.endpoint
        }
        defer { if let stack { Task { await stack.stopAll() } } }
        do {
            try await measure(endpoint: endpoint, rawEndpoint: rawEndpoint, proxy: proxy, cpu: gatewayPath, brokerCPU: brokerPath, into: &report)
        } catch {
            await proxy.stop()
            if let stack { await stack.stopAll() }
            throw error
        }
        await proxy.stop()
        if let stack {
            await stack.stopAll()
        }
    }

    private func measure(
        endpoint: String, rawEndpoint: String, proxy: ReferenceProxy, cpu: ProcessCPU?, brokerCPU: ProcessCPU?,
        into report: inout BenchReport
    ) async throws {
        BenchReport.progress("rpc_raw_zmq_roundtrip: \(rounds) round trips")
        let raw = try await Self.rawRoundTrips(endpoint: rawEndpoint, rounds: rounds)
        report.results.append(BenchResult(name: "rpc_raw_zmq_roundtrip", histogram: raw))
        BenchReport.progress("reference_c_broker_unary: one call at a time through libzmq's zmq_proxy for \(seconds) s")
        let (brokeredUnary, _) = try await proxy.throughput(inFlight: 1, seconds: seconds, payload: Self.payload)
        report.results.append(BenchResult(name: "reference_c_broker_unary", histogram: brokeredUnary))
        BenchReport.progress("reference_c_broker_throughput_8: 8 in flight through libzmq's zmq_proxy for \(seconds) s")
        var brokerCPU = brokerCPU
        brokerCPU?.start()
        let brokerSteal = HostSteal.sample()
        let (brokered, rate) = try await proxy.throughput(inFlight: 8, seconds: seconds, payload: Self.payload)
        var brokeredResult = BenchResult(
            name: "reference_c_broker_throughput_8", histogram: brokered, callsPerSecond: rate, concurrency: 8)
        brokeredResult.cpu_us_per_call = brokerCPU?.perCall(calls: brokered.totalCount)
        brokeredResult.host_steal_pct = HostSteal.percent(from: brokerSteal, to: HostSteal.sample())
        report.results.append(brokeredResult)

        let client = try BenchReport.client(endpoint: endpoint)
        defer { client.close() }
        // The callers run on the client's reactor thread (co-located callers, see
        // RPCClient.executor): the gateway and the service are what is measured, not thread
        // hops inside the benchmark process.
        try await withTaskExecutorPreference(client.executor) {
            try await measureGateway(client, cpu: cpu, into: &report)
        }
    }

    private func measureGateway(_ client: RPCClient, cpu: ProcessCPU?, into report: inout BenchReport) async throws {
        let echo = EchoClient(client)
        let request = EchoRequest(payload: Self.payload)
        for _ in 0..<min(1000, rounds) { _ = try await echo.echo(request) }

        BenchReport.progress("rpc_gateway_local: \(rounds) calls the gateway answers itself (one hop)")
        let health = HealthClient(client)
        var local = BenchReport.histogram()
        for _ in 0..<rounds { _ = try await BenchReport.time(&local) { try await health.check(HealthCheckRequest()) } }
        report.results.append(BenchResult(name: "rpc_gateway_local", histogram: local))

        BenchReport.progress("rpc_gateway_unary: \(rounds) sequential calls")
        var unary = BenchReport.histogram()
        for _ in 0..<rounds { _ = try await BenchReport.time(&unary) { try await echo.echo(request) } }
        report.results.append(BenchResult(
            name: "rpc_gateway_unary", histogram: unary, target: "median <= 3x rpc_raw_zmq_roundtrip; p99 < 1000 us",
            baseline: "rpc_raw_zmq_roundtrip"))

        for concurrency in [1, 8, 32] {
            BenchReport.progress("rpc_gateway_throughput_\(concurrency): \(concurrency) callers for \(seconds) s")
            var phaseCPU = cpu
            phaseCPU?.start()
            let steal = HostSteal.sample()
            let (histogram, callsPerSecond) = try await throughput(echo, request: request, concurrency: concurrency)
            var result = BenchResult(
                name: "rpc_gateway_throughput_\(concurrency)", histogram: histogram, callsPerSecond: callsPerSecond,
                concurrency: concurrency, target: concurrency == 8 ? ">= 20000 calls/s" : nil)
            result.cpu_us_per_call = phaseCPU?.perCall(calls: histogram.totalCount)
            result.host_steal_pct = HostSteal.percent(from: steal, to: HostSteal.sample())
            report.results.append(result)
        }

        if let raw = report.result("rpc_raw_zmq_roundtrip"), let gateway = report.result("rpc_gateway_unary") {
            report.targets.append(BenchTarget(
                name: "rpc_gateway_unary_vs_raw", description: "gateway median at most 3x the raw ZeroMQ median",
                value: gateway.median, limit: raw.median * 3, unit: "us", pass: gateway.median <= raw.median * 3))
            report.targets.append(BenchTarget(
                name: "rpc_gateway_unary_p99", description: "gateway p99 under 1 ms", value: gateway.p99, limit: 1000,
                unit: "us", pass: gateway.p99 < 1000))
        }
        if let eight = report.result("rpc_gateway_throughput_8"), let rate = eight.calls_per_s {
            // The absolute target depends on the machine as much as on the code: libzmq's own broker,
            // measured in the same run, tells the two apart.
            let reference = report.result("reference_c_broker_throughput_8")?.calls_per_s.map {
                String(format: "; libzmq's C broker in the same run: %.0f calls/s (ours %.2fx)", $0, rate / $0)
            } ?? ""
            report.targets.append(BenchTarget(
                name: "rpc_gateway_throughput_8", description: "at least 20,000 calls/s with 8 concurrent callers\(reference)",
                value: rate, limit: 20_000, unit: "calls/s", pass: rate >= 20_000))
        }
    }

    private func throughput(_ echo: EchoClient, request: EchoRequest, concurrency: Int) async throws -> (Histogram<UInt64>, Double) {
        let duration = Duration.milliseconds(Int64(seconds * 1000))
        let start = ContinuousClock.now
        let stopAt = start + duration
        let merged = try await withThrowingTaskGroup(of: Histogram<UInt64>.self) { group in
            // Children inherit the caller's executor preference.
            for _ in 0..<concurrency {
                group.addTask {
                    var histogram = BenchReport.histogram()
                    while ContinuousClock.now < stopAt {
                        _ = try await BenchReport.time(&histogram) { try await echo.echo(request) }
                    }
                    return histogram
                }
            }
            var merged = BenchReport.histogram()
            for try await histogram in group { merged.add(histogram) }
            return merged
        }
        let elapsed = Double((ContinuousClock.now - start) / .milliseconds(1)) / 1000
        return (merged, Double(merged.totalCount) / elapsed)
    }

    /// REQ/REP round trips, encoding an EchoRequest and decoding the EchoResponse with
    /// protobuf-c on each side, on a thread of its own (blocking calls stay off the pool).
    static func rawRoundTrips(endpoint: String, rounds: Int) async throws -> Histogram<UInt64> {
        try await withCheckedThrowingContinuation { continuation in
            let thread = Thread(named: "atom-bench-raw", onMessagePath: true) {
                do {
                    let socket = try ZMQSocket(.req)
                    try socket.connect(endpoint)
                    var poller = ZMQPoller([.socket(socket)])
                    var histogram = BenchReport.histogram()
                    let request = EchoRequest(payload: payload)
                    func roundTrip() throws {
                        try socket.send([try request.serializedBytes()], wait: true)
                        while true {
                            _ = try poller.poll(timeoutMs: 5_000)
                            if let frames = try socket.receive() {
                                _ = try EchoResponse(serializedBytes: frames.last ?? [])
                                return
                            }
                        }
                    }
                    for _ in 0..<min(1000, rounds) { try roundTrip() }
                    for _ in 0..<rounds { try BenchReport.time(&histogram, roundTrip) }
                    socket.close()
                    continuation.resume(returning: histogram)
                } catch {
                    continuation.resume(throwing: error)
                }
            }
            thread.start()
        }
    }
}
