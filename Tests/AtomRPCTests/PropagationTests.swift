import AtomAPI
import AtomEcho
import AtomProto
import AtomRPC
import AtomTesting
import Testing

/// A service that calls another service through the gateway while serving a call, the way
/// the marketplace calls the installer: it passes on what is left of its deadline and the
/// request id.
struct RelayService: EchoService {
    let client: RPCClient

    func echo(_ request: EchoRequest, context: RPCContext) async throws -> EchoResponse {
        let options = CallOptions(parent: context)
        var response = try await EchoClient(client).rpc.unary(
            service: "atom.v1.Target", method: "Echo", request: request, responseType: EchoResponse.self, options: options)
        response.text += " via relay (budget \(Int((options.timeout / .milliseconds(1)).rounded())) ms)"
        return response
    }

    func echoStream(_ request: EchoStreamRequest, writer: RPCStreamWriter<EchoResponse>, context: RPCContext) async throws {}

    func sleep(_ request: SleepRequest, context: RPCContext) async throws -> SleepResponse {
        try await client.unary(
            service: "atom.v1.Target", method: "Sleep", request: request, responseType: SleepResponse.self,
            options: CallOptions(parent: context))
    }

    func fail(_ request: FailRequest, context: RPCContext) async throws -> EchoResponse {
        EchoResponse(text: context.requestID)
    }
}

/// The same echo implementation under another service name, as the relay's downstream.
struct TargetService: RPCService {
    static let serviceName = "atom.v1.Target"
    let inner = EchoServiceImpl()
    var methodHandlers: [RPCMethodHandler] {
        [
            .unary("Echo") { (request: EchoRequest, context: RPCContext) in
                var response = try await inner.echo(request, context: context)
                response.text = "\(response.text) [request \(context.requestID)]"
                return response
            },
            .unary("Sleep") { (request: SleepRequest, context: RPCContext) in try await inner.sleep(request, context: context) },
        ]
    }
}

@Suite("Service-to-service calls", .serialized, .timeLimit(.minutes(1)))
struct PropagationTests {
    @Test("a service calling another passes on the request id and what is left of its deadline")
    func propagation() async throws {
        let stack = try InProcessStack()
        let relayClient = try stack.client(name: "relay")
        stack.serve(RelayService(client: relayClient), instanceID: "relay-1")
        stack.serve(TargetService(), instanceID: "target-1")
        let client = try stack.client()
        let echo = EchoClient(client)
        do {
            try await Task.sleep(for: .milliseconds(300))
            let options = CallOptions(
                timeout: .seconds(5), metadata: [MetadataEntry(key: RPCMetadataKey.requestID, value: "req-42")])
            let response = try await echo.echo(EchoRequest(text: "hi"), options: options)
            #expect(response.text.hasPrefix("hi [request req-42] via relay"))
            let budget = Int(response.text.split(separator: "budget ").last?.split(separator: " ").first ?? "") ?? 0
            #expect(budget > 0 && budget < 5_000, "the downstream budget must be what was left: \(budget) ms")

            // The downstream call cannot outlive the caller's deadline.
            let start = ContinuousClock.now
            let error = await #expect(throws: RPCError.self) {
                _ = try await echo.sleep(SleepRequest(durationMs: 5_000), options: CallOptions(timeout: .milliseconds(300)))
            }
            #expect(error?.code == .deadlineExceeded)
            // Well before the 5 s sleep ends (a loose bound: the machine may be busy).
            #expect(ContinuousClock.now - start < .seconds(3))
        } catch {
            client.close()
            relayClient.close()
            await stack.stop()
            throw error
        }
        client.close()
        relayClient.close()
        await stack.stop()
    }
}

/// A service that answers with responses it encoded itself (`RPCMethodHandler.unaryEncoded`).
struct PreEncodedService: RPCService {
    static let serviceName = "atom.v1.PreEncoded"
    var methodHandlers: [RPCMethodHandler] {
        [
            .unaryEncoded("Echo", responseType: EchoResponse.self) { (request: EchoRequest, _: RPCContext) in
                // An empty payload asks for an answer over the size limit.
                if request.payload.isEmpty { return [UInt8](repeating: 0, count: RPCLimits.maxPayloadBytes + 1) }
                return try EchoResponse(payload: request.payload, text: "pre-encoded").serializedBytes()
            }
        ]
    }
}

@Suite("Pre-encoded responses", .timeLimit(.minutes(1)))
struct PreEncodedTests {
    @Test("a handler's own encoding reaches the caller as it is; over the size limit it is RESOURCE_EXHAUSTED")
    func preEncoded() async throws {
        let stack = try InProcessStack()
        stack.serve(PreEncodedService(), instanceID: "pre-1")
        let client = try stack.client()
        defer { client.close() }
        func call(_ request: EchoRequest) async throws -> EchoResponse {
            try await client.unary(
                service: PreEncodedService.serviceName, method: "Echo", request: request, responseType: EchoResponse.self,
                options: CallOptions(timeout: .seconds(5)))
        }
        do {
            let answer = try await call(EchoRequest(payload: [1, 2, 3]))
            #expect(answer.payload == [1, 2, 3] && answer.text == "pre-encoded")
            let error = await #expect(throws: RPCError.self) { _ = try await call(EchoRequest()) }
            #expect(error?.code == .resourceExhausted)
        } catch {
            await stack.stop()
            throw error
        }
        await stack.stop()
    }
}
