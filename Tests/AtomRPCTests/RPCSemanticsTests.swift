import AtomAPI
import AtomEcho
import AtomGateway
import AtomProto
import AtomRPC
import AtomTesting
import Foundation
import Synchronization
import Testing

/// RPC semantics through a real gateway and real servers (ZeroMQ over ipc, in this process).
@Suite("RPC semantics", .serialized, .timeLimit(.minutes(2)))
struct RPCSemanticsTests {
    func withStack(instances: Int = 1, capacity: Int = 64, _ body: (InProcessStack, EchoClient) async throws -> Void) async throws {
        let stack = try InProcessStack()
        for index in 0..<instances {
            stack.serve(EchoServiceImpl(), instanceID: "echo-\(index + 1)", capacity: capacity)
        }
        let client = try stack.client()
        defer { client.close() }
        let echo = EchoClient(client)
        do {
            try await waitForInstances(client, count: instances)
            try await body(stack, echo)
        } catch {
            await stack.stop()
            throw error
        }
        await stack.stop()
    }

    func waitForInstances(_ client: RPCClient, count: Int) async throws {
        guard count > 0 else { return }
        for _ in 0..<200 {
            let listing = try await GatewayClient(client).listServices(ListServicesRequest())
            if listing.services.first(where: { $0.name == EchoClient.serviceName })?.instances.count ?? 0 >= count { return }
            try await Task.sleep(for: .milliseconds(20))
        }
        Issue.record("instances did not register")
    }

    @Test("a unary call round-trips its payload")
    func unary() async throws {
        try await withStack { _, echo in
            let payload = (0..<1000).map { UInt8($0 % 251) }
            let response = try await echo.echo(EchoRequest(payload: payload, text: "héllo 👋"))
            #expect(response.payload == payload)
            #expect(response.text == "héllo 👋")
            #expect(response.instanceId == "echo-1")
        }
    }

    @Test("every non-OK status code reaches the caller with its message")
    func statusCodes() async throws {
        try await withStack { _, echo in
            for code in StatusCode.allCases where code != .ok {
                let error = await #expect(throws: RPCError.self) {
                    _ = try await echo.fail(FailRequest(code: code, message: "because \(code.displayName)"))
                }
                #expect(error?.code == code)
                #expect(error?.message == "because \(code.displayName)")
            }
        }
    }

    @Test("a server-streaming call delivers every message in order, then ends")
    func streaming() async throws {
        try await withStack { _, echo in
            var sequences: [UInt32] = []
            for try await message in echo.echoStream(EchoStreamRequest(text: "s", count: 200)) {
                sequences.append(message.sequence)
            }
            #expect(sequences == Array(0..<200))
            let failing = echo.echoStream(EchoStreamRequest(count: 200_000))
            await #expect(throws: RPCError.self) { for try await _ in failing {} }
        }
    }

    @Test("an unknown method is UNIMPLEMENTED; an unknown service is UNAVAILABLE within its deadline")
    func unknownTargets() async throws {
        try await withStack { stack, echo in
            let method = await #expect(throws: RPCError.self) {
                _ = try await echo.rpc.unary(service: EchoClient.serviceName, method: "Nope", request: EchoRequest(), responseType: EchoResponse.self)
            }
            #expect(method?.code == .unimplemented)
            #expect(method?.message.contains("Echo") == true)
            let start = ContinuousClock.now
            let service = await #expect(throws: RPCError.self) {
                _ = try await echo.rpc.unary(service: "atom.v1.Nothing", method: "X", request: EchoRequest(), responseType: EchoResponse.self, options: CallOptions(timeout: .seconds(5)))
            }
            #expect(service?.code == .unavailable)
            #expect(service?.reason == "NO_INSTANCE")
            #expect(ContinuousClock.now - start < .seconds(3))
        }
    }

    @Test("an undecodable request payload is INVALID_ARGUMENT and the service keeps serving")
    func undecodablePayload() async throws {
        try await withStack { _, echo in
            // CancelCall's field 1 is a varint; EchoRequest's field 1 is bytes: the wire types clash.
            let error = await #expect(throws: RPCError.self) {
                _ = try await echo.rpc.unary(service: EchoClient.serviceName, method: "Echo", request: CancelCall(callId: 7), responseType: EchoResponse.self)
            }
            #expect(error?.code == .invalidArgument)
            let still = try await echo.echo(EchoRequest(text: "still here"))
            #expect(still.text == "still here")
        }
    }

    @Test("oversized requests and responses are RESOURCE_EXHAUSTED")
    func oversized() async throws {
        try await withStack { _, echo in
            let big = [UInt8](repeating: 1, count: RPCLimits.maxPayloadBytes + 1)
            let request = await #expect(throws: RPCError.self) { _ = try await echo.echo(EchoRequest(payload: big)) }
            #expect(request?.code == .resourceExhausted)
            // A request just under the limit comes back as a response just over it.
            let edge = [UInt8](repeating: 2, count: RPCLimits.maxPayloadBytes - 2)
            let response = await #expect(throws: RPCError.self) {
                _ = try await echo.echo(EchoRequest(payload: edge, text: "0123456789"))
            }
            #expect(response?.code == .resourceExhausted)
            let fits = try await echo.echo(EchoRequest(payload: [UInt8](repeating: 3, count: 1024 * 1024)))
            #expect(fits.payload.count == 1024 * 1024)
        }
    }

    @Test("a call past its deadline gets DEADLINE_EXCEEDED on time; the handler is cancelled")
    func deadline() async throws {
        try await withStack { _, echo in
            let start = ContinuousClock.now
            let error = await #expect(throws: RPCError.self) {
                _ = try await echo.sleep(SleepRequest(durationMs: 5_000), options: CallOptions(timeout: .milliseconds(200)))
            }
            let elapsed = ContinuousClock.now - start
            #expect(error?.code == .deadlineExceeded)
            #expect(elapsed >= .milliseconds(190))
            #expect(elapsed < .seconds(4), "well before the 5 s sleep ends (a loose bound: the machine may be busy)")
            // The handler was cancelled: the instance's slot frees up.
            let listing = try await GatewayClient(echo.rpc).listServices(ListServicesRequest())
            #expect(listing.services.first?.instances.first?.inflight ?? 99 <= 1)
        }
    }

    @Test("cancelling the calling task cancels the call")
    func cancellation() async throws {
        try await withStack { _, echo in
            let task = Task { try await echo.sleep(SleepRequest(durationMs: 5_000)) }
            try await Task.sleep(for: .milliseconds(100))
            let start = ContinuousClock.now
            task.cancel()
            let result = await task.result
            #expect(ContinuousClock.now - start < .seconds(4), "well before the 5 s sleep ends")
            #expect(throws: RPCError.self) { try result.get() }
            #expect((try? result.get()) == nil)
            if case .failure(let error as RPCError) = result { #expect(error.code == .cancelled) }
        }
    }

    @Test("one slow call never holds up the others")
    func concurrency() async throws {
        try await withStack { _, echo in
            // The 50 quick calls must all finish while the slow one is still sleeping: an order,
            // not a timing, so a busy machine cannot fail it.
            let slowDone = Atomic<Bool>(false)
            async let slow = {
                let response = try await echo.sleep(SleepRequest(durationMs: 3_000))
                slowDone.store(true, ordering: .sequentiallyConsistent)
                return response
            }()
            try await Task.sleep(for: .milliseconds(50))
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<50 {
                    group.addTask { _ = try await echo.echo(EchoRequest(text: "\(index)")) }
                }
                try await group.waitForAll()
            }
            let slowFinishedFirst = slowDone.load(ordering: .sequentiallyConsistent)
            #expect(!slowFinishedFirst)
            let slept = try await slow.sleptMs
            #expect(slept >= 1_400)
        }
    }

    @Test("calls beyond an instance's capacity queue at the gateway and all complete")
    func capacityQueueing() async throws {
        try await withStack(capacity: 1) { _, echo in
            let start = ContinuousClock.now
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<3 { group.addTask { _ = try await echo.sleep(SleepRequest(durationMs: 200)) } }
                try await group.waitForAll()
            }
            // One at a time: about 3 x 200 ms.
            #expect(ContinuousClock.now - start >= .milliseconds(580))
        }
    }

    @Test("calls spread over the instances of a service")
    func loadBalancing() async throws {
        try await withStack(instances: 2) { _, echo in
            let instances = try await withThrowingTaskGroup(of: String.self) { group in
                for _ in 0..<40 { group.addTask { try await echo.sleep(SleepRequest(durationMs: 20)).instanceId } }
                var seen: [String: Int] = [:]
                for try await id in group { seen[id, default: 0] += 1 }
                return seen
            }
            #expect(Set(instances.keys) == ["echo-1", "echo-2"])
            #expect(instances.values.allSatisfy { $0 >= 10 })
        }
    }

    @Test("a graceful shutdown finishes calls in flight and stops routing to the instance")
    func gracefulShutdown() async throws {
        let stack = try InProcessStack()
        let first = stack.serve(EchoServiceImpl(), instanceID: "echo-1")
        stack.serve(EchoServiceImpl(), instanceID: "echo-2")
        let client = try stack.client()
        let echo = EchoClient(client)
        try await waitForInstances(client, count: 2)
        let inFlight = Task { try await echo.sleep(SleepRequest(durationMs: 300)) }
        try await Task.sleep(for: .milliseconds(100))
        first.shutdown()
        let slept = try await inFlight.value.sleptMs
        #expect(slept >= 290)
        for _ in 0..<10 {
            let answer = try await echo.echo(EchoRequest())
            #expect(answer.instanceId == "echo-2")
        }
        client.close()
        await stack.stop()
    }

    @Test("the gateway answers its own health and listing; health of an unknown service is SERVICE_UNKNOWN")
    func gatewayServices() async throws {
        try await withStack(instances: 2) { _, echo in
            let gateway = GatewayClient(echo.rpc)
            let health = try await gateway.health(GatewayHealthRequest())
            #expect(health.gatewayStatus == .serving)
            let service = try #require(health.services.first { $0.service == EchoClient.serviceName })
            #expect(service.status == .serving)
            #expect(service.instances.map(\.instanceId) == ["echo-1", "echo-2"])
            #expect(service.instances.allSatisfy { $0.status == .serving && $0.capacity == 64 })
            let unknown = try await gateway.health(GatewayHealthRequest(service: "atom.v1.Nope"))
            #expect(unknown.services.map(\.status) == [.serviceUnknown])
            let listing = try await gateway.listServices(ListServicesRequest())
            #expect(listing.services.first?.methods == ["Echo", "EchoStream", "Fail", "Sleep"])
            let check = try await HealthClient(echo.rpc).check(HealthCheckRequest(service: EchoClient.serviceName))
            #expect(check.status == .serving)
        }
    }

    @Test("with no gateway at all a call fails fast with a clear UNAVAILABLE")
    func noGateway() async throws {
        let client = try RPCClient(endpoint: "ipc:///tmp/atom-nothing-here-\(UInt32.random(in: 0...UInt32.max))", connectTimeout: .milliseconds(300))
        defer { client.close() }
        let start = ContinuousClock.now
        let error = await #expect(throws: RPCError.self) { _ = try await EchoClient(client).echo(EchoRequest()) }
        #expect(error?.code == .unavailable)
        #expect(error?.message.contains("is `atom up` running?") == true)
        #expect(ContinuousClock.now - start < .seconds(2))
    }

    /// After `close()` no reactor is left to answer: a call must fail at once, never wait for a
    /// deadline nothing enforces; and a task that prefers the client's executor still runs.
    @Test("a call made after the client is closed fails at once with CANCELLED", .timeLimit(.minutes(1)))
    func callAfterClose() async throws {
        let client = try RPCClient(endpoint: "ipc:///tmp/atom-nothing-here-\(UInt32.random(in: 0...UInt32.max))", connectTimeout: .seconds(30))
        client.close()
        for round in 0..<3 {
            let start = ContinuousClock.now
            let error = await #expect(throws: RPCError.self) {
                _ = try await EchoClient(client).echo(EchoRequest(), options: CallOptions(timeout: .seconds(60)))
            }
            #expect(error?.code == .cancelled, "round \(round)")
            #expect(ContinuousClock.now - start < .seconds(2), "round \(round)")
            try await Task.sleep(for: .milliseconds(50))  // later rounds come after the reactor has ended
        }
        let answer = await withTaskExecutorPreference(client.executor) { 6 * 7 }
        #expect(answer == 42)
    }
}
