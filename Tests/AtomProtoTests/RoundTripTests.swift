import AtomProto
import AtomTesting
import Testing

private func roundTrip<M: ProtoMessage>(_ message: M, sourceLocation: SourceLocation = #_sourceLocation) throws -> M {
    let bytes = try message.serializedBytes()
    let decoded = try M(serializedBytes: bytes)
    #expect(decoded == message, "\(M.protoName) changed in a round trip", sourceLocation: sourceLocation)
    // Encoding is deterministic: the decoded value encodes to the same bytes.
    #expect(try decoded.serializedBytes() == bytes, "\(M.protoName) re-encodes differently", sourceLocation: sourceLocation)
    return decoded
}

/// The messages without fields: their only value is the default.
private let fieldlessMessages: Set<String> = [
    "atom.v1.ListServicesRequest", "atom.v1.ListSkillsRequest", "atom.v1.ClearCacheRequest", "atom.v1.CategoriesRequest",
    "atom.v1.CollectMetricsRequest", "atom.v1.GatewayMetricsRequest", "atom.v1.ListEnvironmentsRequest",
]

private func checkSample<M: ProtoMessage>(_ message: M) throws {
    #expect(message != M() || fieldlessMessages.contains(M.protoName),
            "the sample of \(M.protoName) should not be the default value")
    _ = try roundTrip(message)
    // The default value is empty on the wire and decodes from nothing.
    #expect(try M().serializedBytes() == [])
    #expect(try M(serializedBytes: [UInt8]()) == M())
}

@Suite struct RoundTripTests {
    @Test func everyMessageTypeHasASample() {
        let sampled = GeneratedSamples.all.map { type(of: $0).protoName }
        let registered = ProtoRegistry.messageTypes.map { $0.protoName }
        #expect(sampled == registered)
        #expect(Set(registered).count == registered.count)
        #expect(registered.count == 100)
        #expect(registered.contains("atom.v1.WorkflowPlan.Level"))
        #expect(ProtoRegistry.messageType(named: "atom.v1.EchoRequest") == EchoRequest.self)
    }

    @Test(arguments: GeneratedSamples.all.indices)
    func everyMessageTypeRoundTrips(index: Int) throws {
        try checkSample(GeneratedSamples.all[index])
    }

    @Test func namesAndDefaults() throws {
        #expect(EchoRequest.protoName == "atom.v1.EchoRequest")
        #expect(WorkflowPlan.Level.protoName == "atom.v1.WorkflowPlan.Level")
        #expect(EchoRequest(text: "hi").text == "hi")
        #expect(RequestEnvelope(callId: 7).callId == 7)
        #expect(InstallOptions(extraIndexUrls: ["a"]).extraIndexUrls == ["a"])
        #expect(ExecuteSkillRequest(inputsJson: "{}").inputsJson == "{}")
        #expect(FailRequest().code == .ok)
        #expect(HealthCheckResponse().status == .unknown)
        #expect(InstallRequest().options == nil)
        #expect(InstallRequest().packageType == .unspecified)
    }

    @Test func nestedMessages() throws {
        let plan = WorkflowPlan(
            order: ["a", "b", "c"],
            levels: [.init(stepIds: ["a"]), .init(stepIds: []), .init(stepIds: ["b", "c"])],
            depth: 3, width: 2, criticalPath: ["a", "c"]
        )
        let decoded = try roundTrip(plan)
        #expect(decoded.levels.count == 3)
        #expect(decoded.levels[1] == WorkflowPlan.Level())
        _ = try roundTrip(WorkflowPlan.Level(stepIds: ["x", "", "字"]))
        let response = ValidateWorkflowResponse(valid: true, errors: [ValidationError(stepId: "s", code: "c", message: "m")], plan: plan)
        #expect(try roundTrip(response).plan?.levels[2].stepIds == ["b", "c"])
        // A present but empty nested message stays present.
        #expect(try roundTrip(ValidateWorkflowResponse(plan: WorkflowPlan())).plan == WorkflowPlan())
        #expect(try roundTrip(InstallEvent(phase: .done, result: InstallResult())).result != nil)
    }

    @Test func enums() throws {
        #expect(StatusCode(rawValue: 3) == .invalidArgument)
        #expect(StatusCode.invalidArgument.rawValue == 3)
        #expect(StatusCode.invalidArgument.protoName == "STATUS_CODE_INVALID_ARGUMENT")
        #expect(StatusCode.allCases.count == 17)
        #expect(StatusCode.allCases.map(\.rawValue) == Array(0...16))
        #expect(ServingStatus.notServing.protoName == "SERVING_STATUS_NOT_SERVING")
        #expect(PackageType.npm.rawValue == 2)
        #expect(RunState.timedOut.rawValue == 6)
        #expect(StatusCode(rawValue: 99) == .unrecognized(99))
        #expect(StatusCode.unrecognized(99).rawValue == 99)
        #expect(StatusCode.unrecognized(99).protoName == "99")

        for code in StatusCode.allCases + [.unrecognized(17), .unrecognized(12345), .unrecognized(-1), .unrecognized(Int32.min), .unrecognized(Int32.max)] {
            #expect(try roundTrip(FailRequest(code: code, message: "m")).code == code)
        }
        let policy = RetryPolicy(retryOn: [.unavailable, .unrecognized(-5), .ok, .unrecognized(400), .deadlineExceeded])
        #expect(try roundTrip(policy).retryOn == policy.retryOn)
    }

    @Test func emptyValues() throws {
        #expect(try ListServicesRequest().serializedBytes() == [])
        #expect(try ListServicesRequest(serializedBytes: [UInt8]()) == ListServicesRequest())
        #expect(try ClearCacheRequest(serializedBytes: [UInt8]()) == ClearCacheRequest())
        #expect(try EchoRequest(payload: [], text: "").serializedBytes() == [])
        // Repeated empty strings and bytes keep their places.
        let worker = WorkerReady(methods: ["", "Echo", ""])
        #expect(try roundTrip(worker).methods == ["", "Echo", ""])
        let status = RPCStatus(details: [StatusDetail(type: "", value: []), StatusDetail(type: "t", value: [0])])
        #expect(try roundTrip(status).details[1].value == [0])
    }

    @Test func largeValues() throws {
        var generator = SeededRandom(seed: 42)
        let payload = (0..<(4 << 20)).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
        let text = String(repeating: "atom 字🚀 ", count: 1_000_000 / 12)
        #expect(text.utf8.count >= 999_990)
        let decoded = try roundTrip(EchoRequest(payload: payload, text: text))
        #expect(decoded.payload.count == 4 << 20)
        #expect(decoded.text == text)

        let many = (0..<10_000).map { "step-\($0)" }
        #expect(try roundTrip(WorkflowPlan(order: many, levels: many.map { WorkflowPlan.Level(stepIds: [$0]) })).order.count == 10_000)
        let codes = (0..<10_000).map { StatusCode(rawValue: Int32($0 % 20)) }
        #expect(try roundTrip(RetryPolicy(retryOn: codes)).retryOn == codes)
        let services = ListServicesResponse(services: (0..<10_000).map { ServiceInfo(name: "s\($0)", queued: UInt32($0)) })
        #expect(try roundTrip(services).services.last?.queued == 9_999)
    }

    @Test func unicode() throws {
        for text in ["😀👩‍👩‍👧‍👦🏳️‍🌈", "中文字符 日本語 한국어", "e\u{301} café", "\u{10FFFF}", "Ω≈ç√∫"] {
            #expect(try roundTrip(EchoRequest(text: text)).text == text)
            #expect(try roundTrip(WorkerReady(methods: [text, text])).methods == [text, text])
        }
    }

    @Test func integerAndFloatingPointExtremes() throws {
        for value in [UInt64.max, UInt64.max - 1, 0, 1, UInt64(Int64.max), 1 << 63] {
            #expect(try roundTrip(RequestEnvelope(callId: value)).callId == value)
        }
        for value in [UInt32.max, 0, 1, 1 << 31] {
            #expect(try roundTrip(RequestEnvelope(timeoutMs: value)).timeoutMs == value)
        }
        // protobuf-c treats -0.0 like 0 for proto3 presence (it compares with ==), so it is not sent.
        #expect(try InstallEvent(progress: -0.0).serializedBytes() == [])
        for value in [1.0, -1.0, .pi, -.pi, .greatestFiniteMagnitude, -.greatestFiniteMagnitude,
                      .leastNonzeroMagnitude, -.leastNormalMagnitude, .infinity, -.infinity, 1e-300, -123456.789] {
            let decoded = try roundTrip(InstallEvent(progress: value))
            #expect(decoded.progress.bitPattern == value.bitPattern)
        }
        let nan = try InstallEvent(serializedBytes: InstallEvent(progress: .nan).serializedBytes())
        #expect(nan.progress.isNaN)
        let policy = RetryPolicy(maxAttempts: .max, initialBackoffMs: .max, maxBackoffMs: 1, multiplier: -2.5, jitter: 1e-9)
        #expect(try roundTrip(policy) == policy)
    }
}
