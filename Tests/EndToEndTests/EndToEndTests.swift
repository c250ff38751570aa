import AtomAPI
import AtomCLI
import AtomProto
import AtomRPC
import AtomTesting
import Foundation
import Testing

/// The real executables as separate processes on loopback TCP: the gateway, echo instances,
/// and the `atom` CLI. Every test stops every process it started, even when it fails.
@Suite("End to end", .serialized, .timeLimit(.minutes(3)))
struct EndToEndTests {
    @Test("calls through the gateway reach both instances of a service")
    func twoInstances() async throws {
        try await withProcessStack(echoInstances: 2) { stack in
            let client = try RPCClient(endpoint: stack.endpoint)
            defer { client.close() }
            let echo = EchoClient(client)
            let seen = try await withThrowingTaskGroup(of: String.self) { group in
                for index in 0..<40 {
                    group.addTask { try await echo.sleep(SleepRequest(durationMs: 30 + UInt32(index % 3))).instanceId }
                }
                var seen = Set<String>()
                for try await id in group { seen.insert(id) }
                return seen
            }
            #expect(seen == ["echo-1", "echo-2"])
            let reply = try await echo.echo(EchoRequest(payload: [1, 2, 3], text: "through two hops"))
            #expect(reply.payload == [1, 2, 3])
        }
    }

    @Test("killing an instance mid-call fails its calls with UNAVAILABLE; the survivor takes over")
    func killMidCall() async throws {
        try await withProcessStack(echoInstances: 2, heartbeatMs: 200) { stack in
            let client = try RPCClient(endpoint: stack.endpoint)
            defer { client.close() }
            let echo = EchoClient(client)
            let victim = try #require(try stack.processes(named: "echo-1").first)
            let start = ContinuousClock.now
            let outcomes = try await withThrowingTaskGroup(of: Result<String, RPCError>.self) { group in
                for _ in 0..<8 {
                    group.addTask {
                        do {
                            return .success(try await echo.sleep(SleepRequest(durationMs: 3_000), options: CallOptions(timeout: .seconds(10))).instanceId)
                        } catch let error as RPCError {
                            return .failure(error)
                        }
                    }
                }
                try await Task.sleep(for: .milliseconds(300))
                victim.kill()
                var outcomes: [Result<String, RPCError>] = []
                for try await outcome in group { outcomes.append(outcome) }
                return outcomes
            }
            let failures = outcomes.compactMap { if case .failure(let error) = $0 { error } else { nil } }
            let successes = outcomes.compactMap { if case .success(let id) = $0 { id } else { nil } }
            #expect(!failures.isEmpty, "calls on the killed instance must fail")
            #expect(failures.allSatisfy { $0.code == .unavailable && $0.reason == "INSTANCE_LOST" }, "\(failures)")
            #expect(successes.allSatisfy { $0 == "echo-2" })
            #expect(!successes.isEmpty)
            // Detected well within the 3 s the survivors take, not at the 10 s deadline.
            #expect(ContinuousClock.now - start < .seconds(5))
            for _ in 0..<10 {
                let answer = try await echo.echo(EchoRequest())
                #expect(answer.instanceId == "echo-2")
            }
        }
    }

    @Test("a frozen instance (SIGSTOP) is declared dead within about three heartbeats")
    func frozenInstance() async throws {
        try await withProcessStack(echoInstances: 2, heartbeatMs: 200) { stack in
            let client = try RPCClient(endpoint: stack.endpoint)
            defer { client.close() }
            let frozen = try #require(try stack.processes(named: "echo-1").first)
            frozen.freeze()
            defer { frozen.thaw() }
            let gateway = GatewayClient(client)
            var gone = false
            let start = ContinuousClock.now
            while ContinuousClock.now - start < .seconds(3) && !gone {
                let listing = try await gateway.listServices(ListServicesRequest())
                gone = !(listing.services.first?.instances.contains { $0.instanceId == "echo-1" } ?? false)
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(gone)
            for _ in 0..<5 {
                let answer = try await EchoClient(client).echo(EchoRequest())
                #expect(answer.instanceId == "echo-2")
            }
        }
    }

    @Test("a client killed mid-call has its call cancelled at the service within three keepalives")
    func killedClient() async throws {
        try await withProcessStack(echoInstances: 1, heartbeatMs: 200) { stack in
            let client = try RPCClient(endpoint: stack.endpoint)
            defer { client.close() }
            let gateway = GatewayClient(client)
            func echoInflight() async throws -> UInt32 {
                try await gateway.listServices(ListServicesRequest()).services.first { $0.name == EchoClient.serviceName }?
                    .instances.map(\.inflight).reduce(0, +) ?? 0
            }
            // A separate `atom` process holds a 60 s call (keepalives every 200 ms, from ATOM_HEARTBEAT_MS).
            let pinger = try stack.start("atom", name: "pinger", arguments: ["ping", "--count", "1", "--hold-ms", "60000", "--timeout", "120"])
            let busy = ContinuousClock.now + .seconds(20)
            while try await echoInflight() == 0 && ContinuousClock.now < busy { try await Task.sleep(for: .milliseconds(20)) }
            #expect(try await echoInflight() == 1, "the held call never reached the echo service")
            // A client that only waits is not mistaken for a dead one.
            try await Task.sleep(for: .seconds(1))
            #expect(try await echoInflight() == 1)
            pinger.kill()
            let killedAt = ContinuousClock.now
            while try await echoInflight() > 0 && ContinuousClock.now - killedAt < .seconds(10) {
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(try await echoInflight() == 0, "the dead client's call still runs at the service")
            // The service counts it as cancelled, not as a 60 s call.
            let metrics = try await gateway.metrics(GatewayMetricsRequest())
            let sleeps = metrics.operations.first { $0.operation == "rpc.atom.v1.Echo/Sleep" }
            #expect(sleeps?.count == 1)
            #expect((sleeps?.p50Us ?? .infinity) < 30_000_000)
            #expect(stack.log(of: "atom-gateway").contains("cancelled its calls"))
        }
    }

    @Test("the gateway merges every instance's latency histograms and reports a silent instance as missing")
    func metricsAggregation() async throws {
        try await withProcessStack(echoInstances: 2, heartbeatMs: 200) { stack in
            let client = try RPCClient(endpoint: stack.endpoint)
            defer { client.close() }
            let echo = EchoClient(client)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<100 { group.addTask { _ = try await echo.sleep(SleepRequest(durationMs: 5)) } }
                try await group.waitForAll()
            }
            let all = try await GatewayClient(client).metrics(GatewayMetricsRequest())
            #expect(all.missing.isEmpty)
            let sleep = try #require(all.operations.first { $0.operation == "rpc.atom.v1.Echo/Sleep" })
            #expect(sleep.count == 100)
            #expect(sleep.p50Us >= 4_000 && sleep.p50Us < 100_000, "\(sleep.p50Us)")
            let perInstance = all.instances.flatMap { $0.operations.filter { $0.operation == "rpc.atom.v1.Echo/Sleep" } }
            #expect(perInstance.map(\.count).reduce(0, +) == 100)
            #expect(perInstance.count == 2)

            let cli = try CLI.run(["metrics", "--json", "--gateway", stack.endpoint], environment: [:])
            #expect(cli.status == 0, "\(cli.output)")
            #expect(cli.output.contains("\"rpc.atom.v1.Echo/Sleep\""))

            let frozen = try #require(try stack.processes(named: "echo-2").first)
            frozen.freeze()
            defer { frozen.thaw() }
            let partial = try await GatewayClient(client).metrics(GatewayMetricsRequest(), options: CallOptions(timeout: .seconds(5)))
            #expect(partial.missing == ["atom.v1.Echo/echo-2"])
            #expect(partial.instances.map(\.instanceId) == ["echo-1"])
        }
    }

    @Test("the gateway serves Prometheus text that a real Prometheus parser reads")
    func prometheusExposition() async throws {
        let stack = try LocalStack(heartbeatMs: 200, binDirectory: TestBinaries.directory)
        let port = try #require(Int(try LocalStack.freeTCPEndpoint().split(separator: ":").last ?? ""))
        do {
            try stack.start("atom-gateway", environment: ["ATOM_METRICS_HTTP_PORT": String(port)])
            try stack.startEcho(instanceID: "echo-1")
            try await stack.waitForService(EchoClient.serviceName)
            let client = try RPCClient(endpoint: stack.endpoint)
            defer { client.close() }
            for index in 0..<50 { _ = try await EchoClient(client).echo(EchoRequest(text: "\(index)")) }
            let script = """
                import sys, urllib.request
                from prometheus_client.parser import text_string_to_metric_families
                text = urllib.request.urlopen(sys.argv[1], timeout=10).read().decode() if sys.argv[1].startswith("http") else open(sys.argv[1]).read()
                for family in text_string_to_metric_families(text):
                    for sample in family.samples:
                        print(family.type, sample.name, sample.labels.get("operation", ""), sample.labels.get("quantile", ""), sample.value)
                """
            let scraped = try CLI.runExecutableAt("/usr/bin/python3", ["-c", script, "http://127.0.0.1:\(port)/metrics"])
            #expect(scraped.status == 0, "\(scraped.output)")
            #expect(scraped.output.contains("summary atom_operation_latency_seconds_count rpc.atom.v1.Echo/Echo  50.0"), "\(scraped.output)")
            #expect(scraped.output.contains("summary atom_operation_latency_seconds rpc.atom.v1.Echo/Echo 0.99 "))
            #expect(scraped.output.contains("gauge atom_metrics_missing_instances   0.0"))

            let printed = try CLI.run(["metrics", "--prometheus", "--gateway", stack.endpoint], environment: [:])
            #expect(printed.status == 0, "\(printed.output)")
            let file = NSTemporaryDirectory() + "atom-prom-\(UUID().uuidString).txt"
            defer { try? FileManager.default.removeItem(atPath: file) }
            try printed.output.write(toFile: file, atomically: true, encoding: .utf8)
            let parsed = try CLI.runExecutableAt("/usr/bin/python3", ["-c", script, file])
            #expect(parsed.status == 0, "\(parsed.output)")
            #expect(parsed.output.contains("atom_operation_latency_seconds_count rpc.atom.v1.Echo/Echo"))
        } catch {
            print(stack.log(of: "atom-gateway"))
            await stack.stopAll()
            throw error
        }
        await stack.stopAll()
    }

    @Test("`atom bench rpc --quick` writes the documented JSON; --compare flags a 1.5x regression")
    func benchJSON() async throws {
        let directory = NSTemporaryDirectory() + "atom-bench-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (run, object, results) = try CLI.bench(["rpc", "--quick", "--rounds", "300", "--seconds", "0.3"], in: directory)
        // Exit 0 or 5 (a target missed on a debug build) are both a completed run.
        #expect(run.status == 0 || run.status == 5, "\(run.output)")
        #expect(run.output.contains("Name (time in us)"))
        #expect(object["schema_version"] as? Int == 1)
        let names = results.compactMap { $0["name"] as? String }
        #expect(names == [
            "rpc_raw_zmq_roundtrip", "reference_c_broker_unary", "reference_c_broker_throughput_8", "rpc_gateway_local", "rpc_gateway_unary", "rpc_gateway_throughput_1",
            "rpc_gateway_throughput_8", "rpc_gateway_throughput_32",
        ])
        for result in results {
            for key in ["name", "unit", "rounds", "min", "median", "mean", "stddev", "p95", "p99", "max"] {
                #expect(result[key] != nil, "\(result["name"] ?? "?") lacks \(key)")
            }
            let median = try #require(result["median"] as? Double)
            #expect(median > 0 && median <= (result["p99"] as? Double ?? 0) && (result["p99"] as? Double ?? 0) <= (result["max"] as? Double ?? 0))
        }
        #expect(results.first { $0["name"] as? String == "rpc_gateway_throughput_8" }?["calls_per_s"] as? Double ?? 0 > 0)
        #expect(results.first { $0["name"] as? String == "rpc_gateway_unary" }?["baseline"] as? String == "rpc_raw_zmq_roundtrip")
        // Where each throughput phase's CPU went, per process on the call's path: every process
        // did some work for the calls.
        for (name, roles) in [
            ("rpc_gateway_throughput_8", ["client", "gateway", "service"]), ("reference_c_broker_throughput_8", ["broker", "client", "service"]),
        ] {
            let cpu = try #require(results.first { $0["name"] as? String == name }?["cpu_us_per_call"] as? [String: Double], "\(name) lacks cpu_us_per_call")
            #expect(cpu.keys.sorted() == roles)
            #expect(cpu.values.reduce(0, +) > 0)
        }
        #expect(run.output.contains("CPU per call  rpc_gateway_throughput_8: client "))
        let targets = try #require(object["targets"] as? [[String: Any]])
        #expect(targets.count == 3)
        // The throughput verdict names the C broker's rate in the same run, and the share of it.
        let brokerRate = try #require(results.first { $0["name"] as? String == "reference_c_broker_throughput_8" }?["calls_per_s"] as? Double)
        let throughputTarget = try #require(targets.first { $0["name"] as? String == "rpc_gateway_throughput_8" }?["description"] as? String)
        #expect(throughputTarget.contains("libzmq's C broker in the same run: \(String(format: "%.0f", brokerRate)) calls/s"), "\(throughputTarget)")

        // A baseline ten times faster than anything real: every result regresses.
        var faster = object
        faster["results"] = results.map { result -> [String: Any] in
            var result = result
            for key in ["min", "median", "mean", "p95", "p99", "max"] { result[key] = (result[key] as? Double ?? 1) / 10 }
            if let rate = result["calls_per_s"] as? Double { result["calls_per_s"] = rate * 10 }
            return result
        }
        let baselinePath = directory + "/baseline.json"
        try JSONSerialization.data(withJSONObject: faster).write(to: URL(fileURLWithPath: baselinePath))
        let compared = try CLI.run(["bench", "rpc", "--quick", "--rounds", "300", "--seconds", "0.3", "--compare", baselinePath], environment: [:])
        #expect(compared.status == 5, "\(compared.output)")
        #expect(compared.output.contains("REGRESSION  rpc_gateway_unary: median"))
        let bad = try CLI.run(["bench", "rpc", "--compare", directory + "/missing.json"], environment: [:])
        #expect(bad.status == 2)
    }

    @Test("`atom bench loader --quick` writes every documented result, the cached gets beside the echo round trip of the same run")
    func loaderBenchJSON() async throws {
        let (run, object, results) = try CLI.bench(["loader", "--quick", "--rounds", "120", "--load-rounds", "10"], in: NSTemporaryDirectory())
        // Exit 0 or 5 (a target missed on a debug build) are both a completed run.
        #expect(run.status == 0 || run.status == 5, "\(run.output)")
        #expect(results.compactMap { $0["name"] as? String } == [
            "skill_load_first", "skill_load_warm_host", "reference_gateway_echo_unary", "skill_get_cached", "skill_execute_trivial",
            "hot_reload_save_to_serve", "baseline_importlib_fresh_process",
        ])
        func result(_ name: String) -> [String: Any]? { results.first { $0["name"] as? String == name } }
        // Both halves of the interleaved measurement have every round.
        #expect(result("skill_get_cached")?["rounds"] as? Int == 120)
        #expect(result("reference_gateway_echo_unary")?["rounds"] as? Int == 120)
        #expect(result("skill_get_cached")?["baseline"] as? String == "reference_gateway_echo_unary")
        let targets = try #require(object["targets"] as? [[String: Any]])
        #expect(targets.count == 5)
    }

    @Test("`atom bench codec` times encode and decode of a search response and a request envelope")
    func codecBenchJSON() async throws {
        let (run, _, results) = try CLI.bench(["codec", "--rounds", "200"], in: NSTemporaryDirectory())
        #expect(run.status == 0, "\(run.output)")
        #expect(results.compactMap { $0["name"] as? String } == [
            "codec_encode_search_response", "codec_decode_search_response", "codec_encode_request_envelope", "codec_decode_request_envelope",
        ])
        for result in results {
            #expect(result["rounds"] as? Int == 200)
            #expect((result["median"] as? Double ?? 0) > 0)
        }
    }

    @Test("a deadline is met through real processes; the service keeps serving")
    func deadline() async throws {
        try await withProcessStack { stack in
            let client = try RPCClient(endpoint: stack.endpoint)
            defer { client.close() }
            let echo = EchoClient(client)
            let start = ContinuousClock.now
            let error = await #expect(throws: RPCError.self) {
                _ = try await echo.sleep(SleepRequest(durationMs: 10_000), options: CallOptions(timeout: .milliseconds(250)))
            }
            #expect(error?.code == .deadlineExceeded)
            #expect(ContinuousClock.now - start < .seconds(5), "well before the 10 s sleep ends")
            let answer = try await echo.echo(EchoRequest(text: "after"))
            #expect(answer.text == "after")
        }
    }

    @Test("garbage and truncated frames at the gateway never crash it")
    func garbageAtGateway() async throws {
        try await withProcessStack { stack in
            let gateway = try #require(try stack.processes(named: "atom-gateway").first)
            try RawPeer.sendGarbage(to: stack.endpoint)
            try await Task.sleep(for: .milliseconds(300))
            #expect(gateway.isRunning)
            let client = try RPCClient(endpoint: stack.endpoint)
            defer { client.close() }
            let answer = try await EchoClient(client).echo(EchoRequest(text: "still routing"))
            #expect(answer.text == "still routing")
            // Counted, and shown to operators.
            let health = try await GatewayClient(client).health(GatewayHealthRequest())
            #expect(health.droppedMessages >= 8, "\(health.droppedMessages)")
        }
    }

    @Test("garbage from a fake gateway never crashes a service; it still answers real requests")
    func garbageAtService() async throws {
        let fake = try RawPeer.FakeGateway()
        let stack = try LocalStack(endpoint: fake.endpoint, heartbeatMs: 200, binDirectory: TestBinaries.directory)
        let service = try stack.startEcho(instanceID: "echo-g")
        do {
            let ready = try fake.waitForReady(timeout: .seconds(10))
            #expect(ready.service == EchoClient.serviceName)
            fake.sendGarbage(to: ready.identity)
            let answer = try fake.call(ready.identity, method: "Echo", request: EchoRequest(text: "ok?"), timeout: .seconds(5))
            #expect(service.isRunning)
            #expect(answer.status?.code ?? .ok == .ok)
            #expect(try EchoResponse(serializedBytes: answer.payload).text == "ok?")
        } catch {
            print(stack.log(of: "echo-g"))
            await stack.stopAll()
            throw error
        }
        await stack.stopAll()
    }

    @Test("after a gateway restart, services re-register and the same client works again")
    func gatewayRestart() async throws {
        try await withProcessStack(heartbeatMs: 200) { stack in
            let client = try RPCClient(endpoint: stack.endpoint)
            defer { client.close() }
            let echo = EchoClient(client)
            _ = try await echo.echo(EchoRequest(text: "before"))
            let gateway = try #require(try stack.processes(named: "atom-gateway").first)
            gateway.kill()
            #expect(await gateway.waitForExit(timeout: .seconds(5)))
            // While it is down, calls end by their deadline with a clear status.
            let down = await #expect(throws: RPCError.self) {
                _ = try await echo.echo(EchoRequest(), options: CallOptions(timeout: .milliseconds(500)))
            }
            #expect(down?.code == .unavailable || down?.code == .deadlineExceeded)
            try stack.startGateway()
            try await stack.waitForService(EchoClient.serviceName, timeout: .seconds(15))
            let after = try await echo.echo(EchoRequest(text: "after"), options: CallOptions(timeout: .seconds(5)))
            #expect(after.text == "after")
        }
    }

    @Test("a call in flight when the gateway is killed ends with UNAVAILABLE once the restarted gateway answers, not at its deadline; a call sent to the new one runs")
    func callLostInGatewayRestart() async throws {
        try await withProcessStack(heartbeatMs: 200) { stack in
            // A keepalive a heartbeat: the client hears of the new gateway within about one.
            let client = try RPCClient(endpoint: stack.endpoint, keepaliveInterval: .milliseconds(200))
            defer { client.close() }
            let echo = EchoClient(client)
            _ = try await echo.echo(EchoRequest(text: "before"))
            let started = ContinuousClock.now
            let held = Task { try await echo.sleep(SleepRequest(durationMs: 30_000), options: CallOptions(timeout: .seconds(60))) }
            try await Task.sleep(for: .milliseconds(300))
            let gateway = try #require(try stack.processes(named: "atom-gateway").first)
            gateway.kill()
            #expect(await gateway.waitForExit(timeout: .seconds(5)))
            try stack.startGateway()
            // A call sent as the new gateway comes up reaches it and is not taken for lost, though
            // the client has not heard of the new gateway yet when it sends it.
            let fresh = Task { try await echo.sleep(SleepRequest(durationMs: 1_500), options: CallOptions(timeout: .seconds(30))) }
            let error = await #expect(throws: RPCError.self) { _ = try await held.value }
            #expect(error?.code == .unavailable && error?.reason == "GATEWAY_RESTARTED", "\(String(describing: error))")
            #expect(error?.message.contains("restarted while the call was in flight; it may or may not have run") == true)
            #expect(ContinuousClock.now - started < .seconds(20), "long before the 60 s deadline and the 30 s sleep")
            _ = try await fresh.value
            // The same client goes on with the new gateway.
            try await stack.waitForService(EchoClient.serviceName, timeout: .seconds(15))
            #expect(try await echo.echo(EchoRequest(text: "after"), options: CallOptions(timeout: .seconds(5))).text == "after")
        }
    }

    @Test("SIGTERM: an instance stops taking calls, finishes the ones in flight and exits 0")
    func gracefulTermination() async throws {
        try await withProcessStack(echoInstances: 2, heartbeatMs: 200) { stack in
            let client = try RPCClient(endpoint: stack.endpoint)
            defer { client.close() }
            let echo = EchoClient(client)
            let leaving = try #require(try stack.processes(named: "echo-1").first)
            let calls = Task {
                try await withThrowingTaskGroup(of: SleepResponse.self) { group in
                    for _ in 0..<6 { group.addTask { try await echo.sleep(SleepRequest(durationMs: 600)) } }
                    var answers: [SleepResponse] = []
                    for try await answer in group { answers.append(answer) }
                    return answers
                }
            }
            try await Task.sleep(for: .milliseconds(200))
            leaving.terminate()
            let answers = try await calls.value
            #expect(answers.count == 6, "calls in flight at SIGTERM finish")
            #expect(answers.contains { $0.instanceId == "echo-1" }, "some of them were on the instance that left")
            #expect(await leaving.waitForExit(timeout: .seconds(10)))
            #expect(leaving.exitStatus == 0)
            for _ in 0..<10 {
                let answer = try await echo.echo(EchoRequest())
                #expect(answer.instanceId == "echo-2")
            }
        }
    }

    @Test("services may start before the gateway")
    func anyStartOrder() async throws {
        let stack = try LocalStack(heartbeatMs: 200, binDirectory: TestBinaries.directory)
        do {
            try stack.startEcho(instanceID: "early")
            try await Task.sleep(for: .milliseconds(700))
            try stack.startGateway()
            try await stack.waitForService(EchoClient.serviceName, timeout: .seconds(15))
            let client = try RPCClient(endpoint: stack.endpoint)
            defer { client.close() }
            let answer = try await EchoClient(client).echo(EchoRequest(text: "late gateway"))
            #expect(answer.instanceId == "early")
        } catch {
            await stack.stopAll()
            throw error
        }
        await stack.stopAll()
    }

    @Test("`atom up --detach` starts a healthy stack and `atom down` leaves no process behind")
    func upDetachDown() async throws {
        let home = NSTemporaryDirectory() + "atom-up-\(UInt32.random(in: 0...UInt32.max))"
        let endpoint = try LocalStack.freeTCPEndpoint()
        let environment = ["ATOM_HOME": home, "ATOM_GATEWAY": endpoint]
        defer {
            _ = try? CLI.run(["down"], environment: environment)
            try? FileManager.default.removeItem(atPath: home)
        }
        let up = try CLI.run(["up", "--detach", "--json"], environment: environment)
        #expect(up.status == 0, "\(up.output)")
        let health = try CLI.run(["health", "--json"], environment: environment)
        #expect(health.status == 0, "\(health.output)")
        #expect(health.output.contains("\"healthy\" : true"))
        // `atom up` seeds the marketplace with the bundled skills/.
        let search = try CLI.run(["search", "summar", "--json"], environment: environment)
        #expect(search.status == 0 && search.output.contains("\"summarize-text\""), "\(search.output)")
        let again = try CLI.run(["up", "--detach"], environment: environment)
        #expect(again.status == 1)
        #expect(again.output.contains("already running"))
        // A second stack (another home) given this stack's endpoint cannot listen there, and says
        // so at once: it does not take the running stack's health for its own.
        let otherHome = home + "-second"
        defer { try? FileManager.default.removeItem(atPath: otherHome) }
        let second = try CLI.run(["up", "--detach", "--ready-timeout", "20"], environment: ["ATOM_HOME": otherHome, "ATOM_GATEWAY": endpoint])
        #expect(second.status == 1, "\(second.output)")
        #expect(second.output.contains("cannot listen on \(endpoint)") && second.output.contains("another stack or program holds it"), "\(second.output)")
        #expect(StackProcesses.find(home: otherHome).isEmpty, "the second stack left \(StackProcesses.find(home: otherHome))")
        // The first stack is untouched.
        #expect(try CLI.run(["health"], environment: environment).status == 0)
        let pids = StackProcesses.find(home: home)
        #expect(pids.count >= 3, "supervisor, gateway and echo: \(pids)")
        // The supervisor restarts a child that crashes.
        let client = try RPCClient(endpoint: endpoint)
        defer { client.close() }
        let before = try await GatewayClient(client).health(GatewayHealthRequest(service: EchoClient.serviceName))
        let crashed = try #require(before.services.first?.instances.first?.pid)
        kill(Int32(crashed), SIGKILL)
        var restarted: UInt32?
        for _ in 0..<100 where restarted == nil {
            try await Task.sleep(for: .milliseconds(100))
            let now = try? await GatewayClient(client).health(GatewayHealthRequest(service: EchoClient.serviceName))
            restarted = now?.services.first?.instances.first { $0.pid != crashed && $0.status == .serving }?.pid
        }
        #expect(restarted != nil, "the echo service was not restarted after a crash")
        let down = try CLI.run(["down"], environment: environment)
        #expect(down.status == 0, "\(down.output)")
        let leftovers = StackProcesses.find(home: home)
        #expect(leftovers.isEmpty, "left behind: \(leftovers)")
        let after = try CLI.run(["health"], environment: environment)
        #expect(after.status == 3)
        #expect(after.output.contains("gateway not reachable at \(endpoint) (no connection within 1 s): is `atom up` running?"), "\(after.output)")
    }

    @Test("the CLI rejects bad input with a clear message and a distinct exit code")
    func cliErrors() async throws {
        let badGateway = try CLI.run(["health", "--gateway", "localhost:1"], environment: [:])
        #expect(badGateway.status == 2)
        #expect(badGateway.output.contains("not an endpoint"))
        let badEnvironment = try CLI.run(["services"], environment: ["ATOM_GATEWAY": "nonsense"])
        #expect(badEnvironment.status == 2)
        #expect(badEnvironment.output.contains("ATOM_GATEWAY=nonsense"))
        let badSuite = try CLI.run(["bench", "nosuchsuite"], environment: [:])
        #expect(badSuite.status == 2)
        let gatewayBadPort = try CLI.runExecutable("atom-gateway", ["--endpoint", "tcp://127.0.0.1:99999"], environment: [:])
        #expect(gatewayBadPort.status == 2)
        #expect(gatewayBadPort.output.contains("invalid port"))
        // A port someone else holds: the gateway says so and stops, it does not wait.
        let holder = try ZMQSocket(.router)
        try holder.bind("tcp://127.0.0.1:*")
        let taken = try holder.lastEndpoint()
        let gatewayTaken = try CLI.runExecutable("atom-gateway", ["--endpoint", taken], environment: [:])
        holder.close()
        #expect(gatewayTaken.status == 2)
        #expect(gatewayTaken.output.contains("cannot listen on \(taken)"))
    }
}
